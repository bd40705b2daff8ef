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
    layer_scale_name = Arg("str", "layer_scale", "Name of the layer_scale parameter on the block's module "
                           "(timm's ConvNeXt: gamma).")
    layer_scale_flat = Arg("bool", False, "Store layer_scale as [C] (timm) instead of [C, 1, ...] (torchvision); "
                           "either way it scales the channels.")
    layer_scale_scalar = Arg("bool", False, "One scalar layer_scale parameter (shape []) instead of one per "
                             "channel (timm NFNet's skipinit_gain).")
    bare_shortcut = Arg("bool", False, "The shortcut's one layer is the child shortcut_name itself (keys "
                        "'downsample.weight'), not an nn.Sequential holding it ('downsample.0.weight').")

    #: attributes of the compiled module (cnnshape.torch_backend.modules.Residual): a child of
    #: that name would be shadowed by them
    MODULE_ATTRS = ("_body", "_shortcut", "_after", "_scale")

    def check_args(self, values):
        body, after = values.get("body", ()), values.get("after") or ()
        shortcut = values.get("shortcut") or ()
        if values.get("bare_shortcut") and len(shortcut) != 1:
            raise LayerError(f"bare_shortcut: true registers the shortcut's one layer as the child itself; the "
                             f"shortcut has {len(shortcut)} layers",
                             "give the shortcut exactly one layer, or drop bare_shortcut", "bare_shortcut")
        scale = values.get("layer_scale_name", "layer_scale")
        if not scale or "." in scale or scale in self.MODULE_ATTRS:
            raise LayerError(f"layer_scale_name {scale!r} cannot name a parameter of the Residual module",
                             "use a plain name such as gamma or layer_scale", "layer_scale_name")
        names = [(x.name if x.name is not None else str(j), "body") for j, x in enumerate(body)]
        names += [(x.name if x.name is not None else str(len(body) + j), "after") for j, x in enumerate(after)]
        if shortcut:
            names.append((values.get("shortcut_name", "shortcut"), "shortcut_name"))
        for name, key in names:
            if name in self.MODULE_ATTRS:
                raise LayerError(f"the child name '{name}' clashes with the Residual module's own attribute "
                                 f"'{name}' (its forward would read the attribute, not the layer)",
                                 f"rename it, e.g. {name.strip('_')}_layer", key)
            if values.get("layer_scale") is not None and name == scale:
                raise LayerError(f"the child name '{name}' clashes with the Residual's layer_scale parameter "
                                 f"'{scale}' (torch refuses a child and a parameter of one name)",
                                 "rename the layer, or set layer_scale_name to another name", key)

    def own_parameters(self):
        return ((self.layer_scale_name, "per-channel scale of the body's output"),) \
            if self.layer_scale is not None else ()

    def own_params(self, out):
        return 0 if self.layer_scale is None else 1 if self.layer_scale_scalar else out[0]

    def analyze(self, shape, rf, walk):
        out, body_rf, reports = walk.seq(self.body, shape, rf, "body")
        if self.shortcut and self.bare_shortcut:
            s_out, s_rf, s_rep = walk.seq(self.shortcut, shape, rf, "shortcut", names=[self.shortcut_name])
            reports += s_rep
        elif self.shortcut:
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
        lane = [] if short is None else [short] if self.bare_shortcut else list(short.children)
        return [body, lane], "+", after

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

        Residual = child.modules.Residual
        body, short, after = self.split_rows(row.children)
        scale = None if self.layer_scale is None else (self.layer_scale, body[-1].output[0], len(body[-1].output) - 1,
                                                       self.layer_scale_name, self.layer_scale_flat,
                                                       self.layer_scale_scalar)
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
                           [f"layer_scale=({self.layer_scale!r}, {body[-1].output[0]}, {len(body[-1].output) - 1}, "
                            f"{self.layer_scale_name!r}, {self.layer_scale_flat!r}, {self.layer_scale_scalar!r})"]),
                        depth)

    @classmethod
    def from_torch(cls, module, items):
        if not is_container(module, "Residual", "_body", "_after", "_shortcut"):
            return None
        kids = dict(module._modules)
        d = {"type": "Residual", "body": items(_named(module, module._body), "")}
        if module._shortcut is not None and type(kids[module._shortcut]).__name__ not in ("Sequential", "Sequence"):
            d["shortcut"] = items([(module._shortcut, kids[module._shortcut])], "")
            d["bare_shortcut"] = True
        elif module._shortcut is not None:
            d["shortcut"] = items(seq_children(kids[module._shortcut]), f"{module._shortcut}.")
            if module._shortcut != "shortcut":
                d["shortcut_name"] = module._shortcut
        if module._after:
            d["after"] = items(_named(module, module._after), "", len(module._body))
        own = getattr(module, "_scale", None)
        name = own[0] if own else "layer_scale" if "layer_scale" in module._parameters else None
        scale = module._parameters.get(name) if name else None
        if scale is not None:  # the value it starts from; trained values load with the state_dict
            # (a model built on the meta device has no values: ConvNeXt's initial 1e-6)
            d["layer_scale"] = 1e-6 if scale.is_meta else float(scale.detach().flatten()[0]) if scale.numel() else 1.0
            if name != "layer_scale":
                d["layer_scale_name"] = name
            if scale.dim() == 1 and scale.numel() > 1:
                d["layer_scale_flat"] = True
            elif scale.dim() == 0:
                d["layer_scale_scalar"] = True
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
            if data.get("bare_shortcut") is True:  # the one layer is the child itself
                out.append((sc_path + (0,), sc[0], scr, f"{label}.{sname}", None))
            else:
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
