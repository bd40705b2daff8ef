"""The Repeat block and its ``first`` overrides."""

from ..base import Arg, ArgErrors, Layer, LayerError, did_you_mean, register
from ._copies import check_child_names, child_names_arg, copy_name
from ._base import Block, child_names, child_row, expanded_rows, item_name


@register
class Repeat(Block):
    """``n`` copies of ``body`` in sequence; ``first`` changes the first copy.

    Shape: ``body`` applied ``n`` times (the first copy with ``first``'s changes, e.g. a
    stride 2 and a projection shortcut that start a ResNet stage).
    """

    n = Arg("int", doc="How many copies.", ge=1)
    body = Arg("layers", doc="The repeated layers (one item: each copy is that item itself).")
    first = Arg("overrides", None, "Changes to the first copy: {child path: {argument: value}}, or "
                "{argument of the repeated block: value}.", nullable=True)
    child_names = child_names_arg

    def check_args(self, values):
        check_child_names(values.get("child_names", "{index}"), values.get("n", 1))

    def first_copy(self) -> tuple[Layer, ...]:
        """The body of the first copy (``first`` applied); LayerError if a path of
        ``first`` names nothing."""
        return apply_overrides(self.body, self.first) if self.first else self.body

    def copies(self) -> list[tuple[Layer, ...]]:
        """The body of every copy (the first with ``first`` applied)."""
        return [self.first_copy()] + [self.body] * (self.n - 1)

    def copy_count(self) -> int:
        return self.n

    def expanded_rows(self) -> int:
        per_copy = sum(expanded_rows(x) for x in self.body) + (1 if len(self.body) > 1 else 0)
        return 1 + self.n * per_copy

    def analyze(self, shape, rf, walk):
        """Copies 2..n share one body: a copy whose input (shape, receptive field, walk
        state) was seen before reuses that analysis (rows relabelled, not recomputed)."""
        reports = []
        first = self.first_copy()
        for i in range(self.n):
            body = first if i == 0 else self.body
            shape, rf, rep = walk.copy(i, body, shape, rf, "body", len(body) != 1, copy_name(self.child_names, i))
            reports += rep
        return shape, rf, reports

    def size_flow(self, row, state, sizer):
        return sizer.rows(row.children, state)

    @classmethod
    def item_prefix(cls, key, branch, values, dotted):
        return f"{dotted}.*", 0

    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        body = data.get("body") if isinstance(data.get("body"), list) else []
        copy0 = child_row(row, 0)
        try:
            c0 = copy_name(data["child_names"], 0) if isinstance(data.get("child_names"), str) else "0"
        except (ValueError, KeyError, IndexError):
            c0 = "0"
        inner = None
        if isinstance(data.get("first"), dict) and len(body) == 1:
            inner = (data["first"], path)
        out = []
        for j, x in enumerate(body):
            r = copy0 if len(body) == 1 else child_row(copy0, j)
            out.append((path + ("body", j), x, r,
                        f"{label}.{c0}" if len(body) == 1 else f"{label}.{c0}.{item_name(x, j)}", inner))
        return out

    @classmethod
    def tree_note(cls, data):
        return f"×{data.get('n')}"


def apply_overrides(body: tuple[Layer, ...], overrides: dict) -> tuple[Layer, ...]:
    """``body`` with ``overrides`` ({path or argument: value}) applied (see Repeat.first)."""
    body = list(body)
    for path, change in overrides.items():
        single = body[0] if len(body) == 1 else None
        if single is not None and single.is_block and path in single.ARGS and path != "name":
            try:
                body[0] = single.replace(**{path: change})
            except ArgErrors as exc:
                raise LayerError(f"Repeat.first: '{path}': {exc}", "check the value", "first") from None
            continue
        if not isinstance(change, dict):
            raise LayerError(f"Repeat.first: '{path}' must map to argument changes like {{stride: 2}}, "
                             f"received {change!r}", "e.g. first: {conv1: {stride: 2}}", "first")
        parts = path.split(".")
        body = list(_override_path(tuple(body), parts, change, path))
    return tuple(body)


def _override_path(layers, parts, change, full, offset=0):
    names = child_names(layers, offset)
    target = parts[0]
    if target not in names:
        # a one-item body that is a block: the path starts inside it (a ResNet stage's copy
        # is the Residual itself, so first: {conv1: ...} names the Residual's conv1)
        if len(layers) == 1 and getattr(layers[0], "is_block", False):
            return (_override_inside(layers[0], parts, change, full),)
        raise LayerError(f"Repeat.first: no child '{target}' for '{full}'{did_you_mean(target, names)}",
                         f"children here: {', '.join(names)}", "first")
    i = names.index(target)
    out = list(layers)
    if len(parts) == 1:
        try:
            out[i] = layers[i].replace(**change)
        except (ArgErrors, TypeError) as exc:  # from the changed layer: report them on first
            raise LayerError(f"Repeat.first: '{full}': {exc}", "check the argument names and values", "first") from None
    elif getattr(layers[i], "is_block", False):
        out[i] = _override_inside(layers[i], parts[1:], change, full)
    else:
        raise LayerError(f"Repeat.first: '{full}': '{target}' is a {layers[i].type}, not a block",
                         "a path goes through blocks only", "first")
    return tuple(out)


def _override_inside(block, parts, change, full):
    every = []
    for key, bi, seq in block.sequences():
        group, offset = block.override_group(key, bi)
        if group is not None:
            every.append(group)
            if parts[0] == group and len(parts) > 1:
                new = _override_path(seq, parts[1:], change, full)
            else:
                continue
        else:
            names = child_names(seq, offset)
            every += names
            if parts[0] not in names:
                continue
            new = _override_path(seq, parts, change, full, offset)
        return block.replace_sequence(key, bi, new)
    raise LayerError(f"Repeat.first: no child '{parts[0]}' in {block.type} for '{full}'"
                     f"{did_you_mean(parts[0], every)}", f"children: {', '.join(every)}", "first")
