"""What a net learned: conv filters and feature maps, as PNG grids or terminal half-blocks.

``filters(model, name)`` and ``feature_maps(model, x, name)`` take tensors out of the
compiled ``nn.Sequential``; ``grid`` tiles 2-D arrays (each normalised on its own, so
weak maps stay visible) and ``write_png`` stacks labelled grids into one image;
``half_blocks`` draws an array in a terminal with ``▀`` (two pixels per character).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CnnshapeError


class VizError(CnnshapeError):
    pass


@dataclass(frozen=True)
class Panel:
    title: str
    tiles: list          # list of 2-D (grey) or [H, W, 3] (colour) float arrays; 1-D arrays for "lines"
    labels: list | None = None
    #: "image" (tiles drawn as pixels) or "lines" (each tile a 1-D signal drawn as a line plot)
    kind: str = "image"


#: channels of a 1-D signal drawn as line plots (the rest are counted in the title)
MAX_LINES = 16


def input_panel(title: str, x) -> Panel:
    """The input sample: a line plot per channel for a 1-D signal ``[C, L]``, else an image."""
    a = x.detach().float().cpu().numpy()
    if a.ndim == 2:
        return _lines(title, a)
    return Panel(title, [input_tile(x)])


def maps_panel(title: str, a: np.ndarray) -> Panel:
    """Feature maps ``[C, ...]``: line plots per channel for 1-D maps ``[C, L]`` (and for a
    flat vector, one line), image tiles otherwise."""
    if a.ndim in (1, 2) and a.shape[-1] > 1:
        return _lines(title, a if a.ndim == 2 else a[None])
    return Panel(title, map_tiles(a))


def filters_panel(title: str, w: np.ndarray) -> Panel:
    """Conv filters ``[out, in, *kernel]``: 1-D kernels of one input channel as line plots
    (one per filter), everything else as image tiles (see :func:`filter_tiles`)."""
    if w.ndim == 3 and w.shape[1] == 1 and w.shape[2] >= 8:
        return _lines(title, w[:, 0, :], "filters", "f")
    return Panel(title, filter_tiles(w))


def _lines(title: str, a: np.ndarray, noun: str = "channels", tag: str = "c") -> Panel:
    shown = a[:MAX_LINES]
    more = f" (first {MAX_LINES} of {a.shape[0]} {noun})" if a.shape[0] > MAX_LINES else ""
    labels = [f"{tag}{i}" for i in range(len(shown))]
    return Panel(title + more, list(shown), labels, "lines")


def _plot_lines(p: Panel, width: int = 720, row_h: int = 56):
    """A line plot per 1-D tile, stacked; a signal longer than the plot is drawn as its
    min..max envelope per pixel column (nothing is dropped)."""
    from PIL import Image, ImageDraw

    left, pad, top = 120, 6, 20
    img = Image.new("RGB", (max(left + width + pad, 8 * len(p.title) + 8), top + len(p.tiles) * row_h + pad),
                    (32, 32, 32))
    draw = ImageDraw.Draw(img)
    draw.text((pad, 3), p.title, fill=(230, 230, 230))
    for i, t in enumerate(p.tiles):
        t = np.asarray(t, dtype=np.float64).ravel()
        t = np.where(np.isfinite(t), t, 0.0)
        y0 = top + i * row_h
        lo, hi = float(t.min()), float(t.max())
        label = (p.labels[i] if p.labels else f"{i}") + f" [{lo:.3g}, {hi:.3g}]"
        draw.text((pad, y0 + row_h // 2 - 6), label, fill=(200, 200, 200))
        draw.rectangle((left, y0 + 2, left + width, y0 + row_h - 4), outline=(70, 70, 70))
        span = hi - lo if hi > lo else 1.0
        inner = row_h - 10

        def ypix(v):
            return y0 + 4 + inner - (v - lo) / span * inner

        if hi == lo:
            draw.line((left, ypix(lo) - inner / 2, left + width, ypix(lo) - inner / 2), fill=(120, 200, 255))
        elif len(t) > width:
            edges = np.linspace(0, len(t), width + 1).astype(int)
            mins = np.minimum.reduceat(t, edges[:-1])
            maxs = np.maximum.reduceat(t, edges[:-1])
            for x, (a, b) in enumerate(zip(mins, maxs)):
                draw.line((left + x, ypix(b), left + x, ypix(a)), fill=(120, 200, 255))
        else:
            xs = np.linspace(left, left + width, len(t)) if len(t) > 1 else np.array([left + width / 2])
            pts = [(float(x), float(ypix(v))) for x, v in zip(xs, t)]
            if len(pts) > 1:
                draw.line(pts, fill=(120, 200, 255), width=2)
            if len(t) <= 64:
                for x, y in pts:
                    draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(255, 220, 120))
    return img


#: pixels of a picture given to ``viz --image`` (larger ones are refused, not decoded)
MAX_IMAGE_PIXELS = 50_000_000


def load_image(path, input_shape) -> tuple[object, list[str]]:
    """(tensor ``[C, H, W]``, notes): the picture at ``path`` (any size and mode Pillow
    reads) converted to the spec's channels (grey or RGB), resized to its H x W (bilinear)
    and scaled to zero mean and unit variance, as the training data is. Every change is
    named in the notes; VizError for an unreadable file or a non-image input."""
    import torch

    try:
        from PIL import Image
    except ImportError:
        raise VizError("--image needs Pillow: pip install pillow") from None
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise VizError(f"--image feeds a picture; the spec's input {list(shape)} is not [1, H, W] (grey) or "
                       "[3, H, W] (RGB): use --data instead")
    C, H, W = shape
    notes = []
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS or 0 in im.size:
                raise VizError(f"{path}: {w}x{h} pixels is not a picture cnnshape reads (at most "
                               f"{MAX_IMAGE_PIXELS:,} pixels)")
            mode = "L" if C == 1 else "RGB"
            if im.mode != mode:
                what = "grey" if mode == "L" else "RGB"
                notes.append(f"{Path(path).name}: converted {im.mode} to {what} (the spec's input has {C} channel"
                             f"{'s' if C > 1 else ''})")
            im = im.convert(mode)
            if (w, h) != (W, H):
                notes.append(f"{Path(path).name}: resized {w}x{h} to {W}x{H} (bilinear"
                             f"{'' if w * H == h * W else ', aspect ratio not kept'}) to fit input {list(shape)}")
                im = im.resize((W, H), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise VizError(f"{path}: cannot read the picture ({exc})") from None
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    std = float(a.std())
    a = (a - a.mean()) / (std if std > 0 else 1.0)
    notes.append("scaled to zero mean and unit variance (as cnnshape's training data)")
    return torch.from_numpy(np.ascontiguousarray(a)), notes


def child(model, name: str):
    """(path, module) for a top-level name or index, or a dotted path into blocks
    (``layer2.0.conv1``, the state_dict prefix); VizError with did-you-mean otherwise."""
    modules = {n: m for n, m in model.named_modules() if n}
    top = [n for n, _ in model.named_children()]
    if name not in modules and name.isdigit() and int(name) < len(top):
        name = top[int(name)]
    if name not in modules:
        import difflib

        close = difflib.get_close_matches(name, list(modules), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        shown = ", ".join(top)
        raise VizError(f"no layer named '{name}'{hint}; top-level layers: {shown} (dotted paths such as "
                       f"'{next((n for n in modules if '.' in n), 'layer1.0.conv1')}' reach into blocks)")
    return name, modules[name]


def conv_layers(model) -> list[str]:
    """Dotted paths of the modules that have a conv kernel (weight of rank >= 3)."""
    return [n for n, m in model.named_modules()
            if n and getattr(m, "weight", None) is not None and m.weight.dim() >= 3]


def filters(model, name: str) -> np.ndarray:
    """Conv weights as numpy ``[out, in, *kernel]``."""
    name, m = child(model, name)
    w = getattr(m, "weight", None)
    if w is None or w.dim() < 3:
        raise VizError(f"layer '{name}' ({type(m).__name__}) has no convolution filters; "
                       f"conv layers: {', '.join(conv_layers(model)[:12]) or 'none'}")
    return w.detach().float().cpu().numpy()


def feature_maps(model, x, name: str) -> np.ndarray:
    """Output of the module at ``name`` for one sample ``x`` ([*input]) as numpy."""
    import torch

    name, module = child(model, name)
    seen = []
    hook = module.register_forward_hook(lambda mod, inp, out: seen.append(out[0] if isinstance(out, tuple) else out))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x.unsqueeze(0))
    finally:
        hook.remove()
        model.train(was)
    return seen[0][0].float().cpu().numpy()


def filter_tiles(w: np.ndarray) -> list[np.ndarray]:
    """One tile per output channel: RGB when there are 3 input channels, else the mean."""
    tiles = []
    for f in w:
        if f.ndim == 2:       # 1-D conv: [in, k] -> show as in x k
            tiles.append(f)
        elif f.ndim == 3:     # 2-D conv: [in, kh, kw]
            tiles.append(np.moveaxis(f, 0, -1) if f.shape[0] == 3 else f.mean(0))
        else:                 # 3-D conv: middle depth slice
            tiles.append(f.mean(0)[f.shape[1] // 2])
    return tiles


def map_tiles(a: np.ndarray) -> list[np.ndarray]:
    """One tile per channel of an activation ``[C, ...]``."""
    if a.ndim == 1:
        return [a[None, :]]
    if a.ndim == 2:           # [C, L]: one row per channel, stacked as one image
        return [a]
    if a.ndim == 3:
        return list(a)
    return [c[c.shape[0] // 2] for c in a]  # [C, D, H, W]: middle slice


def input_tile(x) -> np.ndarray:
    a = x.detach().float().cpu().numpy()
    if a.ndim == 3:
        return np.moveaxis(a, 0, -1) if a.shape[0] == 3 else a.mean(0)
    if a.ndim == 2:
        return a
    if a.ndim == 4:
        return a.mean(0)[a.shape[1] // 2]
    side = int(round(a.shape[0] ** 0.5))
    return a[: side * side].reshape(side, side) if side * side <= a.shape[0] else a[None]


def _norm(t: np.ndarray) -> np.ndarray:
    t = t.astype(np.float32)
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)


def write_png(path, panels: list[Panel], scale: int | None = None) -> str:
    """Stack labelled tile grids into one PNG (Pillow); returns the path."""
    from PIL import Image, ImageDraw

    blocks = []
    for p in panels:
        if p.kind == "lines":
            blocks.append(_plot_lines(p))
            continue
        tiles = [_norm(t) for t in p.tiles]
        th = max(t.shape[0] for t in tiles)
        tw = max(t.shape[1] for t in tiles)
        s = scale or max(1, min(12, 64 // max(th, tw, 1)) or 1)
        if not scale and th * s < 8:  # thin tiles (1-D kernels): at least 8 px high, at most 512 wide
            s = max(s, min(-(-8 // th), max(1, 512 // max(tw, 1))))
        cols = min(len(tiles), max(1, int(np.ceil(np.sqrt(len(tiles) * 1.6)))))
        rows = int(np.ceil(len(tiles) / cols))
        pad = 4
        W = cols * (tw * s + pad) + pad
        H = rows * (th * s + pad) + pad + 18
        img = Image.new("RGB", (max(W, 8 * len(p.title) + 8), H), (32, 32, 32))
        draw = ImageDraw.Draw(img)
        draw.text((pad, 3), p.title, fill=(230, 230, 230))
        for i, t in enumerate(tiles):
            arr = (t * 255).astype(np.uint8)
            tile = Image.fromarray(arr, "RGB" if arr.ndim == 3 else "L").convert("RGB")
            tile = tile.resize((t.shape[1] * s, t.shape[0] * s), Image.NEAREST)
            r, c = divmod(i, cols)
            img.paste(tile, (pad + c * (tw * s + pad), 18 + pad + r * (th * s + pad)))
        blocks.append(img)
    W = max(b.width for b in blocks)
    out = Image.new("RGB", (W, sum(b.height for b in blocks)), (32, 32, 32))
    y = 0
    for b in blocks:
        out.paste(b, (0, y))
        y += b.height
    import io

    from ..atomic import write_atomic

    buf = io.BytesIO()
    out.save(buf, format="PNG")
    write_atomic(path, buf.getvalue())  # a reader never sees half a picture
    return str(path)


def half_blocks(a: np.ndarray, max_width: int = 32):
    """A rich Text drawing 2-D array ``a`` with ``▀`` (top pixel fg, bottom pixel bg)."""
    from rich.text import Text

    a = _norm(a if a.ndim == 2 else a.mean(-1))
    h, w = a.shape
    step = max(1, int(np.ceil(w / max_width)))
    a = a[::step, ::step]
    if a.shape[0] % 2:
        a = np.vstack([a, np.zeros((1, a.shape[1]), dtype=a.dtype)])
    text = Text()
    for r in range(0, a.shape[0], 2):
        for top, bot in zip(a[r], a[r + 1]):
            t, b = int(top * 255), int(bot * 255)
            text.append("▀", style=f"rgb({t},{t},{t}) on rgb({b},{b},{b})")
        text.append("\n")
    return text


def tile_grid_text(tiles: list[np.ndarray], labels: list[str], width: int = 100, tile_width: int = 16):
    """Several half-block tiles side by side, wrapped to ``width`` characters."""
    from rich.table import Table

    cols = max(1, width // (tile_width + 2))
    table = Table.grid(padding=(0, 1))
    for _ in range(min(cols, len(tiles))):
        table.add_column()
    row = []
    for t, lab in zip(tiles, labels):
        cell = half_blocks(t, tile_width)
        cell.append(lab[:tile_width], style="dim")
        row.append(cell)
        if len(row) == cols:
            table.add_row(*row)
            row = []
    if row:
        table.add_row(*row)
    return table
