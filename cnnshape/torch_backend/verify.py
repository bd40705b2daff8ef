"""``verify``: build the spec, run a real forward pass and compare every layer's output
shape and parameter counts with the analysis, and the totals with torchinfo."""

import math
from dataclasses import dataclass

from ..analysis import Report, analyze
from ..spec import Spec, load
from .build import BuildError, build, resolve_device


@dataclass(frozen=True)
class Row:
    index: int
    name: str
    type: str
    analysed_shape: tuple
    torch_shape: tuple
    analysed_params: int
    torch_params: int
    analysed_trainable: int
    torch_trainable: int

    @property
    def ok(self) -> bool:
        return (self.analysed_shape == self.torch_shape and self.analysed_params == self.torch_params
                and self.analysed_trainable == self.torch_trainable)


@dataclass(frozen=True)
class Verification:
    report: Report
    rows: tuple[Row, ...]
    device: str
    torchinfo_params: int | None
    torchinfo_trainable: int | None

    @property
    def ok(self) -> bool:
        t = self.report.totals
        info_ok = self.torchinfo_params is None or (
            self.torchinfo_params == t.params and self.torchinfo_trainable == t.trainable_params)
        expected = sum(1 for lr in self.report.layers for r in lr.walk() if not r.layer.inline)
        return all(r.ok for r in self.rows) and len(self.rows) == expected and info_ok


def _check_room(report, spec, n: int, dtype) -> None:
    """BuildError when a forward pass of batch ``n`` would need more than half the memory available."""
    import torch

    from .build import available_memory

    per_sample = (sum(math.prod(r.output) for lr in report.layers for r in lr.walk())
                  + math.prod(spec.input)) * torch.empty((), dtype=dtype).element_size()
    avail = available_memory()
    if avail is not None and n * per_sample > 0.5 * avail:
        raise BuildError([], f"a forward pass with batch {n:,} needs about {n * per_sample / 1e9:,.1f} GB; "
                             f"{avail / 1e9:.1f} GB of memory is available: use a smaller --batch, "
                             "or --device meta for shapes only")


def _checked_rows(report) -> list:
    """Every row, nested ones included, but inline blocks: an inline block has no module of
    its own (its path is the enclosing module's), its layers are checked."""
    return [row for lr in report.layers for row in lr.walk() if not row.layer.inline]


def _torch_shapes(model, modules, report, x) -> dict[str, tuple]:
    """The per-sample output shape of the module at each checked row's dotted path, from one
    forward pass of ``x``."""
    import torch

    seen: dict[str, tuple] = {}
    hooks = []
    for row in _checked_rows(report):
        def hook(mod, inp, out, path=row.path):
            out = out[0] if isinstance(out, tuple) else out
            seen.setdefault(path, tuple(out.shape[1:]))
        hooks.append(modules[row.path].register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _rows(report, modules, seen) -> list[Row]:
    rows = []
    for lr in report.layers:
        for row in lr.walk():
            if row.layer.inline:
                continue
            module = modules[row.path]
            params = sum(p.numel() for p in module.parameters())
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            rows.append(Row(lr.index, row.path, row.type, row.output, seen.get(row.path, ()), row.params, params,
                            row.trainable_params, trainable))
    return rows


def verify(spec, *, device=None, batch: int | None = None, use_torchinfo: bool = True) -> Verification:
    """Run the spec in torch (``device='meta'`` for shape-only checks of huge nets)."""
    import torch

    if not isinstance(spec, Spec):
        spec = load(spec)
    report = analyze(spec)
    model = build(spec, device=device, report=report)
    dev = resolve_device(device)
    n = batch or spec.batch
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None else torch.float32
    if dev.type != "meta":
        _check_room(report, spec, n, dtype)
    try:
        x = torch.randn(n, *spec.input, device=dev, dtype=dtype)
    except (RuntimeError, MemoryError) as exc:
        raise BuildError([], f"cannot allocate the test input of batch {n:,}: {exc}") from None
    # every row, nested ones included, is compared with the module at its dotted path
    modules = dict(model.named_modules())
    rows = _rows(report, modules, _torch_shapes(model, modules, report, x))
    info_params = info_trainable = None
    if use_torchinfo:
        import torchinfo

        stats = torchinfo.summary(model, input_size=(n, *spec.input), device=dev, verbose=0,
                                  dtypes=[x.dtype])
        info_params, info_trainable = stats.total_params, stats.trainable_params
    return Verification(report, tuple(rows), str(dev), info_params, info_trainable)
