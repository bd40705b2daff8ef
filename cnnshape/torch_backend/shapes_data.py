"""Generated labelled data for any input rank (numpy, vectorised over samples).

- 2-D ``[C, H, W]``: circle, square, triangle, cross, ring, horizontal bar, vertical bar,
  diagonal — drawn at random position and size, with noise, in a random colour per
  channel;
- 1-D ``[C, L]``: sine, square wave, sawtooth, triangle wave, noise burst, chirp —
  random frequency and phase per sample, noise;
- 3-D ``[C, D, H, W]``: sphere, cube, rod (along a random axis), hollow shell;
- flat ``[F]``: the 2-D shapes of the nearest square size, flattened.
"""

import numpy as np

SHAPES_2D = ("circle", "square", "triangle", "cross", "ring", "hbar", "vbar", "diagonal")
WAVES_1D = ("sine", "square", "sawtooth", "triangle", "burst", "chirp")
SOLIDS_3D = ("sphere", "cube", "rod", "shell")


def _images(n, h, w, rng, k=len(SHAPES_2D)):
    y = rng.integers(0, k, n)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy[None] / max(h - 1, 1), xx[None] / max(w - 1, 1)   # 0..1
    cy = rng.uniform(0.35, 0.65, (n, 1, 1)).astype(np.float32)
    cx = rng.uniform(0.35, 0.65, (n, 1, 1)).astype(np.float32)
    r = rng.uniform(0.18, 0.3, (n, 1, 1)).astype(np.float32)
    t = np.maximum(0.06, 1.5 / max(min(h, w), 1))  # stroke width, at least ~1.5 px
    dy, dx = yy - cy, xx - cx
    masks = {
        "circle": dy ** 2 + dx ** 2 <= r ** 2,
        "square": (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85),
        "triangle": (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6),
        "cross": ((np.abs(dy) <= t) | (np.abs(dx) <= t)) & (np.abs(dy) <= r) & (np.abs(dx) <= r),
        "ring": np.abs(np.sqrt(dy ** 2 + dx ** 2) - r) <= t,
        "hbar": (np.abs(dy) <= t) & (np.abs(dx) <= r),
        "vbar": (np.abs(dx) <= t) & (np.abs(dy) <= r),
        "diagonal": (np.abs(dy - dx) <= t * 1.2) & (np.abs(dx) <= r),
    }
    img = np.zeros((n, h, w), dtype=np.float32)
    for i, name in enumerate(SHAPES_2D):
        sel = y == i
        img[sel] = masks[name][sel]
    return img, y


def classes_for(shape) -> tuple[str, ...]:
    """The class names generated for an input of this rank."""
    return {1: SHAPES_2D, 3: SHAPES_2D, 2: WAVES_1D, 4: SOLIDS_3D}[len(tuple(shape))]


def shapes(shape, n: int, seed: int, notices: list[str], k: int | None = None):
    """(x [n, *shape], y [n], class names) for ``shape``; numpy arrays. ``k``: use only
    the first k classes."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    k = min(k or len(classes_for(shape)), len(classes_for(shape)))
    if len(shape) == 3:
        c, h, w = shape
        img, y = _images(n, h, w, rng, k)
        colour = rng.uniform(0.5, 1.0, (n, c, 1, 1)).astype(np.float32)
        x = img[:, None] * colour + rng.normal(0, 0.15, (n, c, h, w)).astype(np.float32)
        notices.append(f"shapes: {n} generated {h}x{w} images in {c} channel(s), {k} classes")
        return x, y, list(SHAPES_2D[:k])
    if len(shape) == 1:
        side = max(4, int(round(shape[0] ** 0.5)))
        img, y = _images(n, side, side, rng, k)
        flat = img.reshape(n, -1)
        if flat.shape[1] != shape[0]:  # pad/crop to the exact width
            out = np.zeros((n, shape[0]), dtype=np.float32)
            m = min(shape[0], flat.shape[1])
            out[:, :m] = flat[:, :m]
            flat = out
        x = flat + rng.normal(0, 0.15, flat.shape).astype(np.float32)
        notices.append(f"shapes: {n} generated {side}x{side} images flattened to [{shape[0]}]")
        return x, y, list(SHAPES_2D[:k])
    if len(shape) == 2:
        c, length = shape
        y = rng.integers(0, k, n)
        t = np.linspace(0, 1, length, dtype=np.float32)[None]
        f = rng.uniform(3, 8, (n, 1)).astype(np.float32)
        ph = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        cyc = (t * f + ph) % 1.0
        waves = {
            "sine": np.sin(2 * np.pi * cyc),
            "square": np.where(cyc < 0.5, 1.0, -1.0),
            "sawtooth": 2 * cyc - 1,
            "triangle": 4 * np.abs(cyc - 0.5) - 1,
            "burst": np.exp(-((t - ph) ** 2) / 0.005) * np.sin(2 * np.pi * 40 * t),
            "chirp": np.sin(2 * np.pi * (f * t + 10 * t ** 2)),
        }
        sig = np.zeros((n, length), dtype=np.float32)
        for i, name in enumerate(WAVES_1D):
            sig[y == i] = waves[name][y == i]
        gain = rng.uniform(0.5, 1.0, (n, c, 1)).astype(np.float32)
        x = sig[:, None] * gain + rng.normal(0, 0.2, (n, c, length)).astype(np.float32)
        notices.append(f"shapes: {n} generated 1-D signals of length {length} in {c} channel(s), "
                       f"{k} classes ({', '.join(WAVES_1D[:k])})")
        return x, y, list(WAVES_1D[:k])
    c, d, h, w = shape
    y = rng.integers(0, k, n)
    zz, yy, xx = np.mgrid[0:d, 0:h, 0:w].astype(np.float32)
    zz, yy, xx = zz[None] / max(d - 1, 1), yy[None] / max(h - 1, 1), xx[None] / max(w - 1, 1)
    cen = rng.uniform(0.4, 0.6, (3, n, 1, 1, 1)).astype(np.float32)
    r = rng.uniform(0.2, 0.3, (n, 1, 1, 1)).astype(np.float32)
    dz, dy, dx = zz - cen[0], yy - cen[1], xx - cen[2]
    rad = np.sqrt(dz ** 2 + dy ** 2 + dx ** 2)
    thick = np.maximum(0.08, 1.5 / max(min(d, h, w), 1))
    axis = rng.integers(0, 3, (n, 1, 1, 1))
    rod = np.where(axis == 0, (np.abs(dy) <= thick) & (np.abs(dx) <= thick) & (np.abs(dz) <= r),
                   np.where(axis == 1, (np.abs(dz) <= thick) & (np.abs(dx) <= thick) & (np.abs(dy) <= r),
                            (np.abs(dz) <= thick) & (np.abs(dy) <= thick) & (np.abs(dx) <= r)))
    solids = {
        "sphere": rad <= r,
        "cube": (np.abs(dz) <= r * 0.8) & (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8),
        "rod": rod,
        "shell": np.abs(rad - r) <= thick,
    }
    vol = np.zeros((n, d, h, w), dtype=np.float32)
    for i, name in enumerate(SOLIDS_3D):
        vol[y == i] = solids[name][y == i]
    x = vol[:, None] + rng.normal(0, 0.15, (n, c, d, h, w)).astype(np.float32)
    notices.append(f"shapes: {n} generated {d}x{h}x{w} volumes in {c} channel(s), {k} classes "
                   f"({', '.join(SOLIDS_3D[:k])})")
    return x, y, list(SOLIDS_3D[:k])
