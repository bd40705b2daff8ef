"""Compile a spec into a real ``torch.nn.Sequential``.

Children are named by the spec's names (default: indices), so ``state_dict`` keys equal
those of the same hand-written ``nn.Sequential``. The spec is analysed first: a spec the
calculator rejects raises :class:`BuildError` carrying the same located diagnostics,
never a torch traceback.
"""

from collections import OrderedDict

from ..analysis import Report, analyze
from ..errors import CnnshapeError, Diagnostic
from ..spec import Spec, load
from ..units import DTYPE_BYTES



class BuildError(CnnshapeError):
    """The spec cannot be compiled; ``diagnostics`` are the located errors."""

    def __init__(self, diagnostics: list[Diagnostic], message: str | None = None):
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        if message is None and first is not None:
            where = f"line {first.line}: " if first.line else ""
            layer = f"layer {first.index} ({first.name}): " if first.index is not None else ""
            message = f"{where}{layer}{first.message}" + (f" — {first.hint}" if first.hint else "")
        super().__init__(message or "cannot build the spec")


def available_memory() -> int | None:
    """Bytes of memory available to this process (Linux /proc/meminfo), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resolve_device(device):
    """torch.device for ``device`` ('cpu', 'cuda', 'cuda:1', 'mps', 'meta', 'auto' or None);
    a clear BuildError when it is not there (never a silent fallback)."""
    import torch

    if device is None or device == "cpu":
        return torch.device("cpu")
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BuildError([], f"unknown device {device!r}: {exc}; use cpu, cuda, cuda:N, mps, meta or auto") from None
    if dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise BuildError([], f"device {device!r}: cnnshape runs on cpu, cuda, cuda:N, mps or meta "
                             f"(not {dev.type})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BuildError([], f"device {device!r} requested but CUDA is not available on this machine "
                                 "(no NVIDIA GPU, or torch is a CPU build); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BuildError([], f"device {device!r} requested but only {torch.cuda.device_count()} "
                                 "CUDA device(s) exist")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise BuildError([], f"device {device!r} requested but Apple MPS is not available on this "
                                 "machine; use --device cpu")
    return dev


def build(spec, *, device=None, dtype=None, force: bool = False, report: Report | None = None):
    """Compile ``spec`` (a Spec, path, YAML text or dict) into ``torch.nn.Sequential``.

    ``device='meta'`` builds without allocating parameters (shape-only use). A model whose
    parameters would not fit in available memory is refused unless ``force=True``.
    """
    import torch

    if not isinstance(spec, Spec):
        spec = load(spec)
    report = report or analyze(spec)
    if not report.ok:
        raise BuildError(list(report.errors))
    dev = resolve_device(device)
    if (dtype or spec.dtype) not in DTYPE_BYTES:  # torch's names: torch.<dtype>
        raise BuildError([], f"unknown dtype {dtype!r}; use one of {', '.join(DTYPE_BYTES)}")
    tdtype = getattr(torch, dtype or spec.dtype)
    need = report.totals.params * torch.empty((), dtype=tdtype).element_size()
    if dev.type == "cpu" and not force:
        avail = available_memory()
        if avail is not None and need > 0.8 * avail:
            raise BuildError([], f"the model's parameters need {need / 1e9:.2f} GB but only "
                                 f"{avail / 1e9:.2f} GB of memory is available; build with "
                                 "device='meta' for shapes only, or force=True")
    with torch.device(dev):
        model = sequence(report.layers, Compiler(dev))
    return model.to(dtype=tdtype)


class Compiler:
    """What a block's ``compile(row, child)`` hook receives as ``child``: called with a
    child row it builds that row's module; ``sequence(rows)`` builds an ``nn.Sequential``
    of rows and ``modules`` holds the container classes (:mod:`.modules`). The backend
    hands these to the blocks, so the block types never import the backend."""

    def __init__(self, dev=None):
        from . import modules

        self.dev = dev
        self.modules = modules

    def __call__(self, row):
        return module_for(row, self.dev)

    def sequence(self, rows):
        return sequence(rows, self)


def leaf_class(layer):
    """The torch class of a leaf layer: ``layer_modules.<torch_module>`` when the layer
    names one (a module torch.nn lacks), else ``torch.nn.<type>``."""
    from torch import nn

    name = layer.torch_module
    if name:
        from . import layer_modules

        return getattr(layer_modules, name)
    return getattr(nn, layer.type)


def is_inline(row) -> bool:
    return row.layer.inline


def sequence(rows, child):
    """``nn.Sequential`` of the modules of ``rows`` (``child(row)`` builds one), or a
    ``modules.Sequence`` when one of them is an inline block."""
    from torch import nn

    from .modules import Sequence

    items = OrderedDict((r.name, child(r)) for r in rows)
    return Sequence(items) if any(is_inline(r) for r in rows) else nn.Sequential(items)


def module_for(lr, dev=None):
    """The torch module of one analysed row (blocks build their own, recursing here)."""
    import torch

    layer = lr.layer
    if layer.is_block:  # a nested sequence's row too (layers.blocks.NESTED: an nn.Sequential)
        from .modules import Inline

        module = layer.compile(lr, Compiler(dev))
        return Inline(module) if layer.inline else module
    module = leaf_class(layer)(**layer.torch_kwargs(lr.input))
    weight = getattr(layer, "weight", None)
    if weight is not None and isinstance(weight, list):
        w = torch.tensor(weight, dtype=torch.float32, device="cpu")
        if w.dim() == module.weight.dim() - 1:
            w = w.unsqueeze(1)
        if dev is None or torch.device(dev).type != "meta":
            with torch.no_grad():
                module.weight.copy_(w.to(module.weight.dtype))
    if lr.params and not lr.trainable_params:
        for p in module.parameters():
            p.requires_grad_(False)
    return module
