"""``cnnshape draw``: the classic CNN figure, headless and deterministic (no torch).

Feature maps are boxes whose height grows with the spatial size, whose thickness grows with
the channels and whose oblique depth shows the second spatial axis (all log-scaled, so a
224x224x3 input and a 7x7x2048 map both stay readable); vectors are bars. Each transition
is labelled with the layer that makes it (``Conv2d 3x3 /2``); shape-keeping layers
(activations, normalisation, dropout) fold into the label of the layer before them.
Blocks are frames: collapsed (one box, ``layer1 · Repeat ×3``) below ``depth``, expanded
above it, with their lanes (a Residual's body and skip, a Concat's branches) and the merge
(``+`` add, ``C`` concatenate, ``x`` multiply). A block type says how it is drawn through
``Block.draw_lanes(row)``; without one its children are drawn in sequence.

The figure is a list of primitives (:class:`Scene`) rendered to SVG with drawsvg and to PNG
with Pillow, so both show the same picture and the same spec always gives the same bytes.
"""

import math
from dataclasses import dataclass, field

from .analysis import LayerReport, Report
from .layers.blocks import NESTED
from .limits import printable

FONT = 11
PAD = 24
GAP = 34  # horizontal space for a transition arrow + label
COLORS = {
    "convolution": "#4C78A8", "transposed convolution": "#72B7B2", "pooling": "#E45756",
    "adaptive pooling": "#F58518", "normalisation": "#B279A2", "dense": "#54A24B",
    "reshape": "#9D755D", "block": "#BAB0AC", "input": "#CCCCCC",
}
DEFAULT_COLOR = "#8CA0B3"
#: characters of one line of text in a picture (longer names are cut with …)
MAX_LABEL = 100
#: lines of an arrow's label (a run of folded layers is summarised past this)
MAX_LABEL_LINES = 6
#: a PNG's pixels and side: larger pictures are drawn smaller (down to MIN_PNG_SCALE),
#: else refused with a clear error (the SVG has no such limit: its size follows the spec)
MAX_PNG_PIXELS = 40_000_000
MAX_PNG_SIDE = 30_000
MIN_PNG_SCALE = 0.5


class PictureTooLarge(ValueError):
    """The figure cannot be rasterised within the PNG limits."""


def fit(text: str) -> str:
    """``text`` safe in a picture: unsafe characters escaped (SVG must stay XML), each
    line cut to MAX_LABEL characters."""
    return "\n".join(line if len(line) <= MAX_LABEL else line[:MAX_LABEL - 1] + "…"
                      for line in printable(text, "\n").split("\n"))


def _fold(labels: list[str]) -> str:
    """The label of an arrow: one line per folded layer, at most MAX_LABEL_LINES."""
    if len(labels) > MAX_LABEL_LINES:
        labels = labels[:MAX_LABEL_LINES - 1] + [f"… {len(labels) - MAX_LABEL_LINES + 1:,} more"]
    return "\n".join(labels)


# ----------------------------------------------------------------------------- primitives
@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "none"
    stroke: str = "#333333"
    dash: bool = False
    radius: float = 0

    def moved(self, dx: float, dy: float) -> "Rect":
        return Rect(self.x + dx, self.y + dy, self.w, self.h, self.fill, self.stroke, self.dash, self.radius)


@dataclass(frozen=True)
class Poly:
    points: tuple[tuple[float, float], ...]
    fill: str = "none"
    stroke: str = "#333333"
    closed: bool = True
    dash: bool = False

    def moved(self, dx: float, dy: float) -> "Poly":
        return Poly(tuple((x + dx, y + dy) for x, y in self.points), self.fill, self.stroke, self.closed, self.dash)


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    size: int = FONT
    anchor: str = "middle"  # start | middle | end
    color: str = "#222222"
    bold: bool = False

    def __post_init__(self):  # whatever a spec author wrote: shown escaped, cut, on few lines
        object.__setattr__(self, "text", fit(self.text))

    def moved(self, dx: float, dy: float) -> "Label":
        return Label(self.x + dx, self.y + dy, self.text, self.size, self.anchor, self.color, self.bold)


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float
    text: str
    fill: str = "#FFFFFF"

    def moved(self, dx: float, dy: float) -> "Circle":
        return Circle(self.x + dx, self.y + dy, self.r, self.text, self.fill)


@dataclass
class Scene:
    width: float = 0
    height: float = 0
    items: list = field(default_factory=list)

    def shift(self, dx: float, dy: float) -> list:
        """The items moved by (dx, dy)."""
        return [it.moved(dx, dy) for it in self.items]


# ----------------------------------------------------------------------------- scales
def _log(n: int, base: float, per: float, cap: float) -> float:
    return min(cap, base + per * math.log2(max(n, 1) + 1))


def map_height(n: int) -> float:
    return _log(n, 10, 12, 150)


def map_thickness(c: int) -> float:
    return _log(c, 3, 4.5, 64)


def text_width(text: str, size: int = FONT) -> float:
    return len(fit(text)) * size * 0.58


def _short(shape) -> str:
    return "x".join(str(s) for s in shape)


def _arg_text(v) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v) if len(set(v)) > 1 else str(v[0])
    return str(v)


def transition_label(row: LayerReport) -> str:
    """``Conv2d 3x3 /2`` for the layer that makes a map (kernel and stride when it has them)."""
    layer = row.layer
    parts = [row.type]
    k = getattr(layer, "kernel_size", None)
    if k is not None and not isinstance(k, str):
        rank = max(len(row.input) - 1, 1)
        kk = k if isinstance(k, (list, tuple)) else [k] * rank
        parts.append("x".join(str(x) for x in kk))
    s = getattr(layer, "stride", None)
    if s is None and k is not None and "pool" in layer.family:
        s = k
    if s not in (None, 1, [1], [1, 1], [1, 1, 1]) and not isinstance(s, str):
        parts.append("/" + _arg_text(s))
    return " ".join(parts)


def _keeps_shape(row: LayerReport) -> bool:
    """Pointwise layers that keep the shape and do no multiply-accumulates (activations,
    normalisation, dropout): they fold into the label of the arrow before them."""
    return not row.children and row.layer is not NESTED and not row.macs and tuple(row.input) == tuple(row.output)


# ----------------------------------------------------------------------------- nodes
def _map(shape, color: str, title: str, caption: str) -> Scene:
    """One feature map (cuboid) or vector (bar) with its caption below, anchored at its
    vertical middle (the scene's ``height/2`` is the flow line)."""
    s = Scene()
    if len(shape) >= 2:
        c, spatial = shape[0], shape[1:]
        h = map_height(spatial[-2] if len(spatial) >= 2 else spatial[0])
        d = 0.35 * map_height(spatial[-1]) if len(spatial) >= 2 else 0
        t = map_thickness(c)
    else:
        h, d, t = map_height(shape[0] if shape else 1) * 0.9, 0, 9
    w = t + d
    cap_w = max(text_width(caption, FONT - 1), text_width(title, FONT - 1))
    width = max(w, cap_w) + 4
    ox = (width - w) / 2
    top = 16 + d
    s.items.append(Label(width / 2, 11, title, FONT - 1, color="#555555"))
    if d:
        # top and side faces of the cuboid (oblique projection up and to the right)
        s.items.append(Poly(((ox, top), (ox + d, top - d), (ox + d + t, top - d), (ox + t, top)), _tint(color, 0.35)))
        s.items.append(Poly(((ox + t, top), (ox + t + d, top - d), (ox + t + d, top + h - d), (ox + t, top + h)),
                            _tint(color, -0.15)))
    s.items.append(Rect(ox, top, t, h, color))
    s.items.append(Label(width / 2, top + h + 14, caption, FONT - 1))
    s.width, s.height = width, top + h + 20
    s.mid = top + h / 2  # type: ignore[attr-defined]
    return s


def _tint(color: str, amount: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    if amount >= 0:
        r, g, b = (int(v + (255 - v) * amount) for v in (r, g, b))
    else:
        r, g, b = (int(v * (1 + amount)) for v in (r, g, b))
    return f"#{r:02X}{g:02X}{b:02X}"


def _color(row: LayerReport) -> str:
    fam = row.layer.family
    return COLORS.get(fam, DEFAULT_COLOR)


def _arrow(x0: float, x1: float, y: float, label: str, items: list) -> None:
    """An arrow with its label above it, one line per folded layer."""
    items.append(Poly(((x0, y), (x1 - 5, y)), closed=False))
    items.append(Poly(((x1 - 6, y - 3.5), (x1, y), (x1 - 6, y + 3.5)), "#333333"))
    for i, line in enumerate(reversed(label.split("\n") if label else [])):
        items.append(Label((x0 + x1) / 2, y - 6 - i * (FONT - 1), line, FONT - 2, color="#444444"))


def _label_width(label: str) -> float:
    return max((text_width(line, FONT - 2) for line in label.split("\n")), default=0)


def _lead(label: str) -> float:
    """Room for the labelled arrow into a lane's first node (none when unlabelled)."""
    return max(GAP, _label_width(label) + 10) if label else 0


@dataclass
class _Placed:
    scene: Scene
    mid: float  # y of the flow line inside the scene


def _hstack(parts: list[tuple[_Placed, str]], tail: str = "") -> _Placed:
    """Place ``(node, label of the arrow into it)`` left to right on one flow line (a
    labelled first arrow leads in; ``tail`` labels an arrow out of the last node)."""
    above = max((p.mid for p, _ in parts), default=0)
    below = max((p.scene.height - p.mid for p, _ in parts), default=0)
    s = Scene()
    x = 0.0
    for i, (p, label) in enumerate(parts):
        if i or label:
            gap = max(GAP, _label_width(label) + 10)
            _arrow(x, x + gap, above, label, s.items)
            x += gap
        s.items += p.scene.shift(x, above - p.mid)
        x += p.scene.width
    if tail:
        gap = max(GAP, _label_width(tail) + 10)
        _arrow(x, x + gap, above, tail, s.items)
        x += gap
    s.width, s.height = x, above + below
    return _Placed(s, above)


def _leaf_node(row: LayerReport, folded: list[str]) -> _Placed:
    segments = (row.path or row.name).split(".")
    title = ".".join(segments[-2:]) if row.name.isdigit() and len(segments) > 1 else row.name
    m = _map(row.output, _color(row), title, _short(row.output))
    return _Placed(m, m.mid)  # type: ignore[attr-defined]


def _sequence(rows, depth: int, level: int, first_label: str | None = None, top: bool = False) -> tuple[list, str]:
    """Nodes of a child sequence with the labels of the arrows into them; shape-keeping
    layers fold into the previous label. Returns (parts, trailing folded label)."""
    parts: list[tuple[_Placed, str]] = []
    pending: list[str] = [first_label] if first_label else []
    for row in rows:
        if _keeps_shape(row):
            pending.append(row.type)
            continue
        if row.children:
            node = _block_node(row, depth, level, top)
            label = _fold(pending)
        else:
            node = _leaf_node(row, pending)
            label = _fold(pending + [transition_label(row)])
        parts.append((node, label))
        pending = []
    return parts, ", ".join(_fold(pending).split("\n"))


def _frame(inner: _Placed, title: str, merge: str | None = None) -> _Placed:
    """A block's frame around ``inner``; ``merge`` (collapsed blocks) draws the block's skip
    or branch sign on a bypass line over the frame."""
    s = Scene()
    top = 18 + (16 if merge else 0)
    width = max(inner.scene.width + 16, text_width(title, FONT - 1) + 12)
    s.items.append(Rect(0, top - 4, width, inner.scene.height + 12, "#F4F4F4", "#999999", dash=True, radius=6))
    s.items.append(Label(6, top - 8, title, FONT - 1, "start", "#333333", True))
    s.items += inner.scene.shift(8 + (width - 16 - inner.scene.width) / 2, top + 2)
    mid = top + 2 + inner.mid
    if merge:
        y = 10
        s.items.append(Poly(((-6, mid), (-6, y), (width - 4, y)), closed=False, dash=True))
        s.items.append(Circle(width + 2, y, 6, merge))
        s.items.append(Poly(((width + 2, y + 6), (width + 2, mid)), closed=False, dash=True))
    s.width = width + (10 if merge else 0)
    s.height = top + inner.scene.height + 12
    return _Placed(s, mid)


def _lanes(row: LayerReport):
    """(lanes, merge symbol, rows after the merge) from the block's own ``draw_lanes``;
    None when the block has no lanes (its children are a plain sequence)."""
    return row.layer.draw_lanes(row)  # a row with children is a block's (or NESTED's)


def _block_title(row: LayerReport) -> str:
    layer = row.layer
    n = getattr(layer, "n", None)
    kind = row.type
    title = f"{row.name}: {kind}" + (f" x{n}" if isinstance(n, int) else "")
    inner = {c.type for c in row.children}
    if n and len(inner) == 1:
        title += f" ({inner.pop()})"
    return title


def _merge_symbol(row: LayerReport, lanes) -> str | None:
    """The symbol of the block's merge; a Repeat of Residual blocks shows their skip."""
    sym = lanes[1] if lanes else None
    if sym is None and row.children and row.children[0].children:
        inner = _lanes(row.children[0])
        sym = inner[1] if inner else None
    return sym


def _one_map(row: LayerReport) -> "_Placed":
    m = _map(row.output, COLORS["block"], "", _short(row.output))
    return _Placed(m, m.mid)  # type: ignore[attr-defined]


def _sequence_block(row: LayerReport, depth: int, level: int) -> "_Placed":
    """A block without lanes, open: its children in a row, in a frame."""
    parts, tail = _sequence(row.children, depth, level + 1)
    if not parts:
        parts = [(_one_map(row), tail)]
    return _frame(_hstack(parts, tail.replace(", ", "\n")), _block_title(row))


def _placed_lanes(lane_rows, depth: int, level: int) -> list:
    """(placed lane or None for an identity lane, its tail text, its first arrow's label) per lane."""
    placed = []
    for lane in lane_rows:
        parts, tail = _sequence(lane, depth, level + 1)
        if not parts:  # an identity lane (skip connection)
            placed.append((None, tail or "identity", ""))
        else:
            placed.append((_hstack([(parts[0][0], "")] + parts[1:], tail.replace(", ", "\n")), tail, parts[0][1]))
    return placed


def _stack_lanes(placed_lanes, s: Scene) -> tuple[list, float]:
    """Lanes drawn one under the other into ``s``: the (kind, y, extra) of each, and the height."""
    y = 0.0
    entries = []
    for p, tail, first in placed_lanes:
        if p is None:
            entries.append(("skip", y + 8, tail))
            y += 22
            continue
        lead = _lead(first)
        s.items += p.scene.shift(24 + lead, y)
        if first:
            _arrow(20, 24 + lead, y + p.mid, first, s.items)
        entries.append(("lane", y + p.mid, p.scene.width + 24 + lead))
        y += p.scene.height + 10
    return entries, y


def _lanes_node(placed_lanes, sym: str) -> "_Placed":
    """Parallel lanes from one input to the merge circle ``sym``."""
    width = max([p.scene.width + _lead(f) for p, _, f in placed_lanes if p is not None] + [60])
    s = Scene()
    entries, height = _stack_lanes(placed_lanes, s)
    mid = entries[0][1]
    xin, xm = 0.0, width + 24 + 30
    for kind, ly, extra in entries:
        if kind == "skip":
            s.items.append(Poly(((xin, mid), (xin + 8, ly), (xm - 8, ly), (xm, mid)), closed=False, dash=True))
            s.items.append(Label((xin + xm) / 2, ly - 3, extra, FONT - 2, color="#666666"))
        else:
            s.items.append(Poly(((xin, mid), (20, ly)), closed=False))
            if abs(ly - mid) < 1:
                _arrow(extra, xm - 9, ly, "", s.items)
            else:  # a lower lane bends up into the merge
                s.items.append(Poly(((extra, ly), (xm, ly), (xm, mid + 9)), closed=False))
    s.items.append(Circle(xm, mid, 9, sym))
    s.width, s.height = xm + 10, height
    return _Placed(s, mid)


def _block_node(row: LayerReport, depth: int, level: int, top: bool = False) -> _Placed:
    lanes = _lanes(row)
    if top and row.layer.draw_transparent:
        level -= 1  # a top-level plain grouping (VGG's features) opens without using up a level
    if level + 1 >= depth:  # collapsed: one map in a frame, a skip arc for residual blocks
        return _frame(_one_map(row), _block_title(row), _merge_symbol(row, lanes))
    if not lanes:
        return _sequence_block(row, depth, level)
    lane_rows, sym, after = lanes
    node = _lanes_node(_placed_lanes(lane_rows, depth, level), sym)
    if after:
        parts, tail = _sequence(after, depth, level + 1)
        node = _hstack([(node, "")] + parts, tail.replace(", ", "\n"))
    return _frame(node, _block_title(row))


# ----------------------------------------------------------------------------- the figure
def figure(report: Report, depth: int = 1, title: str | None = None) -> Scene:
    """The whole network as a :class:`Scene` (``depth`` = block levels shown expanded)."""
    spec = report.spec
    inp = _map(spec.input, COLORS["input"], "input", _short(spec.input))
    first = None if report.ok else min((d.index for d in report.errors if d.index is not None), default=0)
    # a spec with errors: only the layers analysed before its first error (the recovery's
    # rows after it rest on assumed shapes), then the erroneous layer and what was not reached
    rows = report.layers if first is None else [r for r in report.layers if r.index < first]
    parts, tail = _sequence(rows, depth, 0, top=True)
    if first is not None and first < len(spec.layers):
        parts.append((_error_node(report, first), tail.replace(", ", "\n")))
        tail = ""
    body = _hstack([(_Placed(inp, inp.mid), "")] + parts, tail.replace(", ", "\n"))  # type: ignore[attr-defined]
    s = Scene()
    head = title if title is not None else (spec.name or "network")
    t = report.totals
    sub = f"{t.params:,} params, {t.macs:,} MACs per sample"
    sub2 = ""
    if not report.ok:
        e = report.errors[0]
        sub = f"error in {e.name}: {e.message}" if e.name else f"error: {e.message}"
        if first is not None:
            drawn = f"drawn: the layers before {first} (analysed), then the error at layer {first}"
            rest = len(spec.layers) - first - 1
            sub2 = drawn + (f"; {rest:,} later layers not analysed" if rest else "")
    s.items.append(Label(PAD, PAD, head, FONT + 3, "start", bold=True))
    s.items.append(Label(PAD, PAD + 16, sub, FONT - 1, "start", "#555555" if report.ok else "#B00020"))
    down = 34
    if sub2:
        s.items.append(Label(PAD, PAD + 30, sub2, FONT - 1, "start", "#555555"))
        down = 48
    s.items += body.scene.shift(PAD, PAD + down)
    s.width = max(body.scene.width, text_width(sub, FONT - 1), text_width(sub2, FONT - 1),
                  text_width(head, FONT + 3)) + 2 * PAD
    s.height = body.scene.height + down + 2 * PAD
    return s


def _error_node(report: Report, first: int) -> _Placed:
    """The erroneous layer as a red dashed box (no shape: its output is not known), with
    the count of the layers after it that were not analysed."""
    spec = report.spec
    s = Scene()
    title = f"{spec.names[first]}: {spec.layers[first].type}"
    rest = len(spec.layers) - first - 1
    caption = f"{rest:,} more not analysed" if rest else "error"
    width = max(text_width(title, FONT - 1), text_width(caption, FONT - 1), 40) + 8
    s.items.append(Label(width / 2, 11, title, FONT - 1, color="#B00020", bold=True))
    s.items.append(Rect(4, 18, width - 8, 40, "#FDECEE", "#B00020", dash=True, radius=4))
    s.items.append(Label(width / 2, 42, "error", FONT - 1, color="#B00020"))
    s.items.append(Label(width / 2, 72, caption, FONT - 1, color="#666666"))
    s.width, s.height = width, 78
    return _Placed(s, 38)


# ----------------------------------------------------------------------------- renderers
def to_svg(scene: Scene) -> str:
    import drawsvg as dw

    d = dw.Drawing(math.ceil(scene.width), math.ceil(scene.height), font_family="DejaVu Sans, Arial, sans-serif")
    d.append(dw.Rectangle(0, 0, math.ceil(scene.width), math.ceil(scene.height), fill="#FFFFFF"))
    for it in scene.items:
        if isinstance(it, Rect):
            d.append(dw.Rectangle(_r(it.x), _r(it.y), _r(it.w), _r(it.h), fill=it.fill, stroke=it.stroke,
                                  stroke_width=1, rx=it.radius or None,
                                  stroke_dasharray="4,3" if it.dash else None))
        elif isinstance(it, Poly):
            pts = [c for p in it.points for c in (_r(p[0]), _r(p[1]))]
            d.append(dw.Lines(*pts, close=it.closed, fill=it.fill if it.closed else "none", stroke=it.stroke,
                         stroke_width=1, stroke_dasharray="4,3" if it.dash else None))
        elif isinstance(it, Label):
            d.append(dw.Text(it.text, it.size, _r(it.x), _r(it.y), text_anchor=it.anchor, fill=it.color,
                             font_weight="bold" if it.bold else None))
        else:
            d.append(dw.Circle(_r(it.x), _r(it.y), it.r, fill=it.fill, stroke="#333333"))
            d.append(dw.Text(it.text, FONT + 1, _r(it.x), _r(it.y + 4), text_anchor="middle"))
    return d.as_svg()


def _r(v: float) -> float:
    return round(v, 1)


def to_png(scene: Scene, scale: float = 2.0) -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFont

    scale = png_scale(scene, scale)
    w, h = math.ceil(scene.width * scale), math.ceil(scene.height * scale)
    img = Image.new("RGB", (w, h), "#FFFFFF")
    g = ImageDraw.Draw(img)
    fonts: dict = {}

    def font(size):
        if size not in fonts:
            fonts[size] = ImageFont.load_default(size=int(size * scale))
        return fonts[size]

    def pt(x, y):
        return (x * scale, y * scale)

    for it in scene.items:
        if isinstance(it, Rect):
            box = [pt(it.x, it.y), pt(it.x + it.w, it.y + it.h)]
            if it.dash:
                g.rounded_rectangle(box, radius=it.radius * scale, fill=it.fill if it.fill != "none" else None)
                _dashed(g, [(it.x, it.y), (it.x + it.w, it.y), (it.x + it.w, it.y + it.h), (it.x, it.y + it.h),
                            (it.x, it.y)], scale, it.stroke)
            else:
                g.rounded_rectangle(box, radius=it.radius * scale, fill=it.fill if it.fill != "none" else None,
                                    outline=it.stroke, width=max(1, int(scale)))
        elif isinstance(it, Poly):
            pts = [pt(x, y) for x, y in it.points]
            if it.closed:
                g.polygon(pts, fill=it.fill if it.fill != "none" else None, outline=it.stroke, width=max(1, int(scale)))
            elif it.dash:
                _dashed(g, list(it.points), scale, it.stroke)
            else:
                g.line(pts, fill=it.stroke, width=max(1, int(scale)))
        elif isinstance(it, Label):
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[it.anchor]
            g.text(pt(it.x, it.y), it.text, fill=it.color, font=font(it.size), anchor=anchor,
                   stroke_width=1 if it.bold else 0, stroke_fill=it.color if it.bold else None)
        else:
            r = it.r * scale
            cx, cy = pt(it.x, it.y)
            g.ellipse([cx - r, cy - r, cx + r, cy + r], fill=it.fill, outline="#333333", width=max(1, int(scale)))
            g.text((cx, cy), it.text, fill="#222222", font=font(FONT + 1), anchor="mm")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def png_scale(scene: Scene, scale: float = 2.0) -> float:
    """``scale``, lowered so that the PNG stays within MAX_PNG_PIXELS and MAX_PNG_SIDE;
    PictureTooLarge when that would go below MIN_PNG_SCALE (text no longer readable)."""
    w, h = max(scene.width, 1), max(scene.height, 1)
    fit_scale = min(scale, MAX_PNG_SIDE / w, MAX_PNG_SIDE / h, math.sqrt(MAX_PNG_PIXELS / (w * h)))
    if fit_scale < MIN_PNG_SCALE:
        raise PictureTooLarge(
            f"the picture is {math.ceil(w):,} x {math.ceil(h):,} points: a readable PNG of it would exceed "
            f"{MAX_PNG_PIXELS:,} pixels or {MAX_PNG_SIDE:,} pixels a side (README: Limits)")
    return fit_scale


def _dashed(g, points, scale, color, on: float = 4, off: float = 3) -> None:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        if length == 0:
            continue
        t = 0.0
        while t < length:
            t1 = min(t + on, length)
            a = (x0 + (x1 - x0) * t / length, y0 + (y1 - y0) * t / length)
            b = (x0 + (x1 - x0) * t1 / length, y0 + (y1 - y0) * t1 / length)
            g.line([(a[0] * scale, a[1] * scale), (b[0] * scale, b[1] * scale)], fill=color, width=max(1, int(scale)))
            t += on + off


def render(report: Report, path: str, depth: int = 1) -> str:
    """Write the figure of ``report`` to ``path`` (``.svg`` or ``.png``); returns the format."""
    scene = figure(report, depth)
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if fmt == "svg":
        data = to_svg(scene).encode("utf-8")
    elif fmt == "png":
        data = to_png(scene)
    else:
        raise ValueError(f"unknown picture format '{fmt}': use a file name ending in .svg or .png")
    from .atomic import write_atomic

    write_atomic(path, data)
    return fmt
