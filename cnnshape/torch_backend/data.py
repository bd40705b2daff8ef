"""Offline data sets for brief training, fitted to a spec's input shape.

``load_data(name, input_shape, ...)`` returns a :class:`Dataset`: all samples as one
float tensor ``[N, *input]`` and labels ``[N]`` (held in memory: no per-sample Python on
the training hot path), class names, and notices about what was adapted (resizing,
channel replication). Sources, all offline:

- ``digits``: the 1,797 real 8x8 handwritten digits scikit-learn ships;
- ``mnist`` / ``fashion-mnist`` / ``kmnist``: the standard IDX files, from a local folder
  (a torchvision root works) or downloaded and verified with ``download=True``
  (:mod:`.download`: torchvision's mirrors and MD5 sums, cached);
- ``cifar10`` / ``cifar100``: the *binary* CIFAR files (never a pickle), likewise;
- ``shapes``: generated circles, squares, triangles, crosses... (waves for 1-D inputs,
  solids for 3-D inputs) at any size and channel count;
- ``folder:PATH``: one sub-folder per class of image files (Pillow).
"""

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CnnshapeError

DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "shapes", "folder:PATH")
#: the data sets that can be downloaded, and the other spellings accepted for them
DOWNLOADABLE = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
                "fashionmnist": "fashion-mnist", "kmnist": "kmnist", "cifar10": "cifar10", "cifar-10": "cifar10",
                "cifar100": "cifar100", "cifar-100": "cifar100"}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}
TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: CIFAR binary records: label bytes (cifar100: coarse, fine), then 3x32x32 pixels (R, G, B planes)
CIFAR_LAYOUT = {"cifar10": (1, 0, [f"data_batch_{i}.bin" for i in range(1, 6)], "batches.meta.txt", 10),
                "cifar100": (2, 1, ["train.bin"], "fine_label_names.txt", 100)}
SHAPES_MAX_BYTES = 256 * 1024 * 1024
DATA_MAX_BYTES = 512 * 1024 * 1024
#: an IDX file's body (MNIST's training images are 47 MB)
IDX_MAX_BYTES = 256 * 1024 * 1024
#: pixels of one image in a folder data set (larger images are skipped with a notice)
MAX_IMAGE_PIXELS = 50_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DataError(CnnshapeError):
    """The data set cannot be loaded or does not fit the spec (message says how to fix)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x: object              # torch.Tensor [N, *input], float32
    y: object              # torch.Tensor [N], int64
    classes: tuple[str, ...]
    notices: tuple[str, ...] = field(default=())
    #: logits a model must output (generated data fitted to a wider classifier uses only
    #: the first ``len(classes)`` of them); None: one per class
    outputs: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return int(self.y.shape[0])


# ----------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally .gz): the MNIST format. Raises DataError when corrupt.

    The header is read and checked first (data type, dimensions, total size at most
    ``max_bytes``, default IDX_MAX_BYTES) so a small ``.gz`` that claims gigabytes is refused
    before anything is allocated; the body is read in exactly the size the header states."""
    path = Path(path)
    limit = IDX_MAX_BYTES if max_bytes is None else max_bytes
    opener = gzip.open if path.suffix == ".gz" else open
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{path}: not an IDX file (bad magic number)")
            code, ndim = head[2], head[3]
            if code not in dtypes:
                raise DataError(f"{path}: unknown IDX data type 0x{code:02x}")
            if not 1 <= ndim <= 4:
                raise DataError(f"{path}: IDX header has {ndim} dimensions (expected 1 to 4)")
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dt = np.dtype(dtypes[code])
            need = math.prod(dims) * dt.itemsize
            if need > limit:
                raise DataError(f"{path}: the IDX header says {list(dims)} ({need:,} bytes), more than the "
                                f"{limit:,}-byte limit for a data file")
            body = f.read(need)
            extra = len(f.read(1))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(body) != need or extra:
        raise DataError(f"{path}: IDX header says {list(dims)} ({need} bytes) but the file holds "
                        f"{len(body) + extra}{'+' if extra else ''} bytes")
    return np.frombuffer(body, dtype=dt).reshape(dims)


def find_idx(name: str, data_dir: str | os.PathLike | None, split: str = "train", *, download: bool = False,
             on_event=None, notices: list[str] | None = None) -> tuple[Path, Path]:
    """Locate (with ``download``: fetch) the IDX image/label files of ``name``: in
    ``data_dir`` (or ``CNNSHAPE_DATA``; also the torchvision layout DIR/MNIST/raw,
    DIR/FashionMNIST/raw), else ``./data`` and the cache folder; DataError naming the files,
    their URLs and where to put them."""
    folder = _ensure(name, data_dir, download, on_event, notices)
    found = []
    for stem in IDX_FILES[split]:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            raise DataError(f"{name}: {folder} has no {stem} (gzipped or not)")
    return found[0], found[1]


def _ensure(name, data_dir, download, on_event, notices) -> Path:
    from .download import DownloadError, ensure

    try:
        folder, notes = ensure(name, data_dir, download=download, on_event=on_event)
    except DownloadError as exc:
        raise DataError(str(exc)) from None
    if notices is not None:
        notices.extend(notes)
    return folder


# ------------------------------------------------------------------------ helpers
def _fit_images(x: np.ndarray, shape: tuple[int, ...], source: str, notices: list[str]):
    """Images ``[N, C, H, W]`` (floats 0..1) to the spec input (resize, channels)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n, c, h, w = t.shape
    if len(shape) == 1:  # [F] input: flatten a square image
        side = int(round(shape[0] ** 0.5))
        if side * side * c != shape[0] and side * side != shape[0]:
            raise DataError(f"{source} images are {c}x{h}x{w}; a flat input [{shape[0]}] fits only "
                            f"square images (e.g. input: [{h * w}] or [{c}, {h}, {w}])")
        if (side, side) != (h, w):
            t = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)
            notices.append(f"{source}: resized {h}x{w} to {side}x{side} (bilinear) and flattened to [{shape[0]}]")
        if side * side * c != shape[0]:
            t = t.mean(1, keepdim=True)
        return t.reshape(n, -1)
    if len(shape) != 3:
        raise DataError(f"{source} holds 2-D images but the spec's input is {list(shape)}; "
                        "use --data shapes (it generates 1-D and 3-D data) or an image input [C, H, W]")
    C, H, W = shape
    if (H, W) != (h, w):
        t = F.interpolate(t, size=(H, W), mode="bilinear", align_corners=False)
        notices.append(f"{source}: resized {h}x{w} to {H}x{W} (bilinear) to fit input {list(shape)}")
    if C != c:
        if c == 1:
            t = t.expand(-1, C, -1, -1).contiguous()
            notices.append(f"{source}: replicated the 1 grey channel to {C} channels")
        elif C == 1:
            t = t.mean(1, keepdim=True)
            notices.append(f"{source}: averaged {c} colour channels to 1 grey channel")
        else:
            raise DataError(f"{source} images have {c} channels; the spec's input has {C}")
    return t


def _cap(n: int, shape, notices: list[str], source: str, limit: int | None) -> int:
    """How many samples to keep so the fitted tensor stays under DATA_MAX_BYTES."""
    per = 4 * int(np.prod(shape))
    keep = min(n, limit or n, max(64, DATA_MAX_BYTES // per))
    if keep < min(n, limit or n):
        notices.append(f"{source}: {min(n, limit or n)} samples at {list(shape)} would take "
                       f"{min(n, limit or n) * per / 1e6:.0f} MB in memory; using the first {keep} (--limit to choose)")
    return keep


def _normalise(t):
    """Zero mean, unit variance over the whole set (as the tutorials' Normalize does)."""
    std = float(t.std())
    return (t - t.mean()) / (std if std > 0 else 1.0)


# ------------------------------------------------------------------------ sources
def _digits(shape, notices, limit):
    x, y = read_digits()
    x = (x / 16.0)[:, None, :, :]
    keep = _cap(len(y), shape, notices, "digits", limit)
    x, y = x[:keep], y[:keep]
    return _fit_images(x, shape, "digits (8x8)", notices), y, [str(i) for i in range(10)]


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (images 0..16, labels) read straight from scikit-learn's package
    data file ``sklearn/datasets/data/digits.csv.gz``: importing ``sklearn.datasets`` costs
    ~1.5 s, the file ~20 ms."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("--data digits needs scikit-learn's data file: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        with gzip.open(path, "rb") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read scikit-learn's digits ({exc})") from None
    if table.ndim != 2 or table.shape[1] != 65:
        raise DataError(f"{path}: expected 65 columns (64 pixels + label), found {table.shape}")
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def _idx(name, shape, notices, data_dir, limit, download=False, on_event=None):
    img_path, lab_path = find_idx(name, data_dir, download=download, on_event=on_event, notices=notices)
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or 0 in images.shape:
        raise DataError(f"{img_path}: expected images [N, H, W] (all ≥ 1) and labels [N], received "
                        f"{list(images.shape)} and {list(labels.shape)}")
    k = len(IDX_CLASSES[name])
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{lab_path}: label {int(labels[i])} of sample {i} is not a class of {name} (0..{k - 1})")
    keep = _cap(len(labels), shape, notices, name, limit)
    images, labels = images[:keep], labels[:keep]
    x = images[:, None, :, :].astype(np.float32) / 255.0
    return _fit_images(x, shape, f"{name} ({images.shape[1]}x{images.shape[2]})", notices), \
        labels.astype(np.int64), IDX_CLASSES[name]


def read_cifar(path: Path, label_bytes: int, label_at: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` (uint8) and labels of one CIFAR *binary* file: records of
    ``label_bytes`` label bytes then 3,072 pixel bytes. DataError when the file is not that."""
    rec = label_bytes + 3 * 32 * 32
    try:
        size = path.stat().st_size
        if size == 0 or size % rec or size > IDX_MAX_BYTES:
            raise DataError(f"{path}: {size:,} bytes is not a whole number of {rec}-byte CIFAR records "
                            f"(at most {IDX_MAX_BYTES:,} bytes); not a CIFAR binary file")
        raw = np.fromfile(path, dtype=np.uint8).reshape(-1, rec)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    labels = raw[:, label_at].astype(np.int64)
    bad = labels >= classes
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{path}: label {int(labels[i])} of record {i} is not a class (0..{classes - 1})")
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), labels


def _cifar(name, shape, notices, data_dir, limit, download=False, on_event=None):
    folder = _ensure(name, data_dir, download, on_event, notices)
    label_bytes, label_at, files, names_file, k = CIFAR_LAYOUT[name]
    per_file = []
    wanted = limit
    for f in files:
        x, y = read_cifar(folder / f, label_bytes, label_at, k)
        per_file.append((x, y))
        if wanted is not None and sum(len(p[1]) for p in per_file) >= wanted:
            break
    images = np.concatenate([p[0] for p in per_file])
    labels = np.concatenate([p[1] for p in per_file])
    classes = CIFAR10_CLASSES if name == "cifar10" else [str(i) for i in range(k)]
    try:
        listed = [ln.strip() for ln in (folder / names_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(listed) == k:
            classes = listed
    except (OSError, UnicodeDecodeError):
        notices.append(f"{name}: no readable {names_file}; classes are numbered")
    keep = _cap(len(labels), shape, notices, name, limit)
    x = images[:keep].astype(np.float32) / 255.0
    return _fit_images(x, shape, f"{name} (3x32x32)", notices), labels[:keep], classes


def _class_folders(path, shape) -> tuple[Path, list[str]]:
    """The folder of ``folder:PATH`` and its class sub-folders; DataError when it cannot
    hold a classification data set for ``shape``."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"folder:{path}: {root} is not a folder; give a folder with one sub-folder per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"folder:{path}: found {len(classes)} class folder(s) in {root}; need at least 2 "
                        "(e.g. cats/ and dogs/, each holding image files)")
    if len(shape) != 3:
        raise DataError(f"folder:{path} holds images; the spec's input {list(shape)} is not [C, H, W]")
    return root, classes


def _read_image(Image, f, mode: str, H: int, W: int, sizes: set):
    """The image file ``f`` as a float array in [0, 1], resized to H x W (its size added to ``sizes``)."""
    with Image.open(f) as im:
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS or 0 in im.size:
            raise ValueError(f"{im.size[0]}x{im.size[1]} pixels: not read (limit "
                             f"{MAX_IMAGE_PIXELS:,} pixels)")
        sizes.add(im.size)
        im = im.convert(mode).resize((W, H), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32) / 255.0


def _read_images(Image, root: Path, classes: list[str], mode: str, H: int, W: int):
    """(images, labels, sizes seen, unreadable files) of every class folder."""
    xs, ys, sizes, bad = [], [], set(), []
    for k, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            try:
                xs.append(_read_image(Image, f, mode, H, W, sizes))
                ys.append(k)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                bad.append(f"{f.name} ({exc})")
    return xs, ys, sizes, bad


def _folder(path, shape, notices, limit):
    try:
        from PIL import Image
    except ImportError:
        raise DataError("--data folder:PATH needs Pillow: pip install pillow") from None
    root, classes = _class_folders(path, shape)
    C, H, W = shape
    mode = "L" if C == 1 else "RGB"
    xs, ys, sizes, bad = _read_images(Image, root, classes, mode, H, W)
    if not xs:
        raise DataError(f"folder:{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    if bad:
        notices.append(f"folder: skipped {len(bad)} unreadable file(s), e.g. {bad[0]}")
    if sizes != {(W, H)}:
        notices.append(f"folder: resized images of {len(sizes)} size(s) to {H}x{W}")
    x = np.stack(xs)
    x = x[:, None] if mode == "L" else x.transpose(0, 3, 1, 2)
    if C not in (1, 3):
        raise DataError(f"folder images are grey (1) or RGB (3) channels; the spec's input has {C}")
    y = np.asarray(ys)
    keep = _cap(len(y), shape, notices, "folder", limit)
    if keep < len(y):
        order = np.random.default_rng(0).permutation(len(y))[:keep]
        x, y = x[order], y[order]
    import torch
    return torch.from_numpy(np.ascontiguousarray(x)), y, classes


def known_classes(name: str) -> int | None:
    """How many classes data set ``name`` has, known without loading it (None: generated
    data, which adapts to the spec, or a source that cannot be listed)."""
    key = name.lower()
    if key == "digits":
        return 10
    if key in DOWNLOADABLE:
        return CIFAR_LAYOUT[DOWNLOADABLE[key]][4] if DOWNLOADABLE[key] in CIFAR_LAYOUT else 10
    if key.startswith("folder:"):
        root = Path(name[len("folder:"):]).expanduser()
        try:
            return sum(1 for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) or None
        except OSError:
            return None
    return None


def load_data(name: str, input_shape, *, data_dir=None, limit: int | None = None, samples: int | None = None,
              seed: int = 0, normalise: bool = True, outputs: int | None = None, download: bool = False,
              on_download=None) -> Dataset:
    """Load data set ``name`` (see :data:`DATASETS`) fitted to ``input_shape``.

    ``download`` fetches a missing mnist / fashion-mnist / kmnist / cifar10 / cifar100 (as
    torchvision's ``download=True``; off by default, as there), reporting to
    ``on_download`` (:class:`.download.Event`); ``data_dir`` overrides where files are
    looked for and downloaded to (default: ``./data``, then the cache folder).

    ``outputs`` (the classifier's width) only shapes generated data: ``shapes`` then makes
    ``min(outputs, available)`` classes. Every data set keeps its classes; the trainer
    treats a width mismatch the same for every source (narrower: error, wider: warning).
    """
    import torch

    from .shapes_data import shapes

    shape = tuple(input_shape)
    notices: list[str] = []
    key = name.lower()
    if key == "digits":
        x, y, classes = _digits(shape, notices, limit)
    elif key in DOWNLOADABLE:
        key = DOWNLOADABLE[key]
        loader = _cifar if key in CIFAR_LAYOUT else _idx
        x, y, classes = loader(key, shape, notices, data_dir, limit, download, on_download)
    elif key == "shapes":
        n = samples or limit or 2000
        per_sample = 4 * int(np.prod(shape))
        cap = max(64, SHAPES_MAX_BYTES // per_sample)
        if n > cap:
            notices.append(f"shapes: {n} samples of {list(shape)} would take {n * per_sample / 1e6:.0f} MB; "
                           f"generating {cap}")
            n = cap
        from .shapes_data import classes_for

        available = len(classes_for(shape))
        k = min(outputs, available) if outputs else available
        x, y, classes = shapes(shape, n, seed, notices, k)
    elif key.startswith("folder:"):
        x, y, classes = _folder(name[len("folder:"):], shape, notices, limit)
    else:
        import difflib

        close = difflib.get_close_matches(key, [d.split(":")[0] for d in DATASETS], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(f"unknown data set '{name}'{hint}; use one of: {', '.join(DATASETS)}")
    x = torch.as_tensor(x, dtype=torch.float32)
    if normalise:
        x = _normalise(x)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return Dataset(key, x.contiguous(), y, tuple(classes), tuple(notices))
