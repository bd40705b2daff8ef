"""The Residual block (skip connection)."""

from typing import Any

from ..base import Arg, LayerError, register, shape_str
from ._base import Block, _named, child_row, is_container, item_name, merge_rf, seq_children


@register
class Residual(Block):
    """Skip connection: ``y = after(body(x) + shortcut(x))`` (shortcut: identity if omitted).

    Shape: the output of ``body``; it must equal the shortcut's output (elementwise add).
    Children are named as in torchvision: the body's layers directly, the shortcut as one
    ``nn.Sequential`` named ``shortcut_name``, then ``after``'s layers.
    """


    body = Arg("layers", doc="The main path.")
    shortcut = Arg("layers", None, "The skip path (default: identity), e.g. a 1x1 conv + BatchNorm projection.",
                   nullable=True)
    shortcut_name = Arg("str", "shortcut", "Child name of the shortcut (torchvision ResNets: downsample).")
    after = Arg("layers", None, "Layers applied after the add (e.g. ReLU).", nullable=True)
    layer_scale = Arg("float", None, "A trainable per-channel scale [C, 1, ...] on the body's output, "
                      "initialised to this value, registered as the parameter 'layer_scale' (ConvNeXt).",
                      nullable=True)

    def own_parameters(self):
        return (("layer_scale", "per-channel scale of the body's output"),) if self.layer_scale is not None else ()

    def own_params(self, out):
        return out[0] if self.layer_scale is not None else 0

    def analyze(self, shape, rf, walk):
        out, body_rf, reports = walk.seq(self.body, shape, rf, "body")
        if self.shortcut:
            s_out, s_rf, s_rep = walk.nested(self.shortcut_name, self.shortcut, shape, rf, "shortcut")
            reports += s_rep
        else:
            s_out, s_rf = shape, rf
        if s_out != out:
            raise LayerError(*self._mismatch(shape, out, s_out))
        walk.merge_memory(out)
        rf = merge_rf(walk, [body_rf, s_rf], "the body and the shortcut")
        if self.after:
            out, rf, a_rep = walk.seq(self.after, out, rf, "after", offset=len(self.body))
            reports += a_rep
        return out, rf, reports

    def size_flow(self, row, state, sizer):
        """Sizes at which the body's and the shortcut's outputs are equal."""
        body, short, after = self.split_rows(row.children)
        b = sizer.rows(body, state)
        s = sizer.row(short, state) if short is not None else state
        return sizer.rows(after, sizer.equal([b, s]))

    def memory(self, row, mem, value):
        """The input feeds body and shortcut; the add keeps nothing for backward."""
        body, short, after = self.split_rows(row.children)
        skip = mem.share(value)
        mem.hold(body[-1], True)  # backward: the add's gradient waits for the shortcut
        out = mem.seq(body, value)
        mem.hold(body[-1], False)
        if self.layer_scale is not None:  # layer_scale * h keeps h when the scale is trainable
            trainable = row.trainable_params > sum(c.trainable_params for c in row.children)
            out = mem.merge(row, [out], (0,) if trainable else (), body[-1].output, trainable)
        if short is not None:  # backward: the body's gradient for the input waits for the shortcut's
            mem.hold(row, True, row.input)
            s_out = mem.run(short, skip)
            mem.hold(row, False, row.input)
        else:
            s_out = skip
        return mem.seq(after, mem.merge(row, [out, s_out]))

    def draw_lanes(self, row):
        """The body and the skip (the shortcut's layers, or an identity lane), added."""
        body, short, after = self.split_rows(row.children)
        return [body, list(short.children) if short is not None else []], "+", after

    def split_rows(self, rows) -> tuple[list, Any, list]:
        """(body rows, shortcut row or None, after rows) of this block's analysed children
        (the order ``analyze`` produces and the compiled module registers them in)."""
        rows, nb = list(rows), len(self.body)
        k = nb + (1 if self.shortcut else 0)
        return rows[:nb], (rows[nb] if self.shortcut else None), rows[k:]

    # ------------------------------------------------------------------ structure
    @classmethod
    def item_prefix(cls, key, branch, values, dotted):
        if key == "shortcut":
            return f"{dotted}.{values.get('shortcut_name', 'shortcut')}", 0
        if key == "after" and isinstance(values.get("body"), list):
            return dotted, len(values["body"])
        return dotted, 0

    def override_group(self, key, branch):
        if key == "shortcut":
            return self.shortcut_name, 0
        return None, (len(self.body) if key == "after" else 0)

    # ------------------------------------------------------------------ torch
    def compile(self, row, child):
        from collections import OrderedDict

        from ...torch_backend.modules import Residual

        body, short, after = self.split_rows(row.children)
        scale = None if self.layer_scale is None else (self.layer_scale, body[-1].output[0], len(body[-1].output) - 1)
        module = Residual(OrderedDict((c.name, child(c)) for c in body),
                          None if short is None else child(short), self.shortcut_name,
                          OrderedDict((c.name, child(c)) for c in after), scale)
        own = row.params - sum(c.params for c in row.children)
        if own and row.trainable_params == sum(c.trainable_params for c in row.children):
            for name, _ in self.own_parameters():  # a frozen block (or inside one): as analysed
                getattr(module, name).requires_grad_(False)
        return module

    def export_expr(self, row, em, depth):
        em.needs.update({"OrderedDict", "Residual"})
        body, short, after = self.split_rows(row.children)
        return em.call("Residual", [em.odict(body, depth + 1),
                                    "shortcut=" + ("None" if short is None else em.expr(short, depth + 1)),
                                    f"shortcut_name={self.shortcut_name!r}",
                                    "after=" + em.odict(after, depth + 1)]
                        + ([] if self.layer_scale is None else
                           [f"layer_scale=({self.layer_scale!r}, {body[-1].output[0]}, {len(body[-1].output) - 1})"]),
                        depth)

    @classmethod
    def from_torch(cls, module, items):
        if not is_container(module, "Residual", "_body", "_after", "_shortcut"):
            return None
        kids = dict(module._modules)
        d = {"type": "Residual", "body": items(_named(module, module._body), "")}
        if module._shortcut is not None:
            d["shortcut"] = items(seq_children(kids[module._shortcut]), f"{module._shortcut}.")
            if module._shortcut != "shortcut":
                d["shortcut_name"] = module._shortcut
        if module._after:
            d["after"] = items(_named(module, module._after), "", len(module._body))
        scale = getattr(module, "layer_scale", None)
        if scale is not None:  # the value it starts from; trained values load with the state_dict
            d["layer_scale"] = float(scale.detach().flatten()[0]) if scale.numel() else 1.0
        return d

    # ------------------------------------------------------------------ studio
    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        body = data.get("body") if isinstance(data.get("body"), list) else []
        out = [(path + ("body", j), x, child_row(row, j), f"{label}.{item_name(x, j)}", None)
               for j, x in enumerate(body)]
        k = len(body)
        sc = data.get("shortcut") if isinstance(data.get("shortcut"), list) else []
        sc_path = path + ("shortcut",)
        if first is not None and isinstance(first[0].get("shortcut"), list):
            sc, sc_path = first[0]["shortcut"], first[1] + ("first", "shortcut")
        after = data.get("after") if isinstance(data.get("after"), list) else []
        # the analysed block may have a shortcut the data lacks (set by a Repeat's first:)
        n_rows = len(row.children) if row is not None else 0
        has_sc = bool(sc) or (row is not None and n_rows == len(body) + len(after) + 1)
        if sc:
            scr = child_row(row, k)
            sname = data.get("shortcut_name", "shortcut")
            out += [(sc_path + (j,), x, child_row(scr, j), f"{label}.{sname}.{j}", None) for j, x in enumerate(sc)]
        if has_sc:
            k += 1
        out += [(path + ("after", j), x, child_row(row, k + j), f"{label}.{item_name(x, len(body) + j)}", None)
                for j, x in enumerate(after)]
        return out

    def _mismatch(self, x, body, short):
        what = "the shortcut" if self.shortcut else "the identity shortcut (the block's input)"
        msg = (f"Residual add needs equal shapes: body outputs {shape_str(body)}, {what} outputs "
               f"{shape_str(short)}")
        fix = None
        if len(body) == len(x) and len(body) >= 2 and not self.shortcut:
            strides = [a // b if b and a % b == 0 else None for a, b in zip(x[1:], body[1:])]
            if all(strides):
                rank = len(body) - 1
                stride = strides[0] if len(set(strides)) == 1 else strides
                proj = [{"type": f"Conv{rank}d", "out_channels": body[0], "kernel_size": 1, "stride": stride,
                         "bias": False}, {"type": f"BatchNorm{rank}d"}]
                fix = {"shortcut": proj}
                return (msg, f"add a projection shortcut: shortcut: [{{type: Conv{rank}d, out_channels: "
                             f"{body[0]}, kernel_size: 1, stride: {stride}, bias: false}}, "
                             f"{{type: BatchNorm{rank}d}}]", "body", fix)
        return (msg, "make the body keep the input's shape, or give the shortcut a stride/projection "
                     "that produces the body's shape", "shortcut" if self.shortcut else "body", fix)
