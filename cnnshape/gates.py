"""CI budgets: ``cnnshape check --max-params 5M --max-macs 1G --max-memory 8GiB ...``.

A budget that a spec exceeds becomes a located error (exit 1) whose hint names the layers
that contribute most, with their YAML lines, so the fix starts where the cost is.

>>> parse_quantity("5M"), parse_quantity("1.5G"), parse_quantity("8GiB"), parse_quantity("512MB")
(5000000, 1500000000, 8589934592, 512000000)
"""

from dataclasses import dataclass

from .errors import Diagnostic
from .units import binary_bytes, parse_quantity, si

__all__ = ["Budgets", "check_budgets", "human", "parse_quantity"]


def human(n: float, binary: bool = False) -> str:
    """A count with an SI prefix (3 significant digits), or bytes in binary units."""
    return binary_bytes(n) if binary else si(n, digits=".3g")


@dataclass(frozen=True)
class Budgets:
    """Limits a spec must stay within (None = no limit)."""

    max_params: int | None = None
    max_trainable_params: int | None = None
    max_macs: int | None = None
    max_memory: int | None = None
    min_rf: int | None = None
    max_rf: int | None = None
    output: tuple[int, ...] | None = None
    optimizer: str = "adam"
    #: the CPU kind of the memory budget's peak (cnnshape.cpu_isa; None/auto: this machine's)
    cpu_isa: str | None = None

    def any(self) -> bool:
        return any(v is not None for k, v in self.__dict__.items() if k not in ("optimizer", "cpu_isa"))


def _top_rows(report, key, n: int = 3):
    rows = sorted((r for r in report.layers if key(r)), key=key, reverse=True)[:n]
    out = []
    for r in rows:
        line = report.spec.position("layers", r.index)[0] if report.spec.source else None
        out.append(f"{r.name} ({human(key(r))}" + (f", line {line})" if line else ")"))
    return ", ".join(out)


def _where(report):
    if report.spec.source is None:
        return None, None
    return report.spec.position("layers")


def check_budgets(report, budgets: Budgets) -> list[Diagnostic]:
    """Located errors for every budget ``report`` exceeds (empty when within budget or when
    the spec has errors of its own: its figures are incomplete then)."""
    if not budgets.any() or not report.ok:
        return []
    line, col = _where(report)
    t = report.totals
    out: list[Diagnostic] = []

    def fail(message, hint):
        out.append(Diagnostic(f"budget exceeded: {message}", hint, line=line, column=col))

    if budgets.max_params is not None and t.params > budgets.max_params:
        fail(f"{human(t.params)} params > {human(budgets.max_params)} (--max-params)",
             f"largest layers: {_top_rows(report, lambda r: r.params)}")
    if budgets.max_trainable_params is not None and t.trainable_params > budgets.max_trainable_params:
        fail(f"{human(t.trainable_params)} trainable params > {human(budgets.max_trainable_params)} "
             "(--max-trainable-params)", f"largest layers: {_top_rows(report, lambda r: r.trainable_params)}; "
             "or freeze layers with trainable: false")
    if budgets.max_macs is not None and t.macs > budgets.max_macs:
        fail(f"{human(t.macs)} MACs per sample > {human(budgets.max_macs)} (--max-macs)",
             f"most expensive layers: {_top_rows(report, lambda r: r.macs)}")
    if budgets.max_memory is not None:
        peak = training_peak(report, budgets.optimizer, budgets.cpu_isa)
        if peak > budgets.max_memory:
            fail(f"training step needs {human(peak, True)} at batch {report.spec.batch} > "
                 f"{human(budgets.max_memory, True)} (--max-memory, optimizer {budgets.optimizer})",
                 "lower batch:, or see `cnnshape check --memory-limit` for the largest batch that fits")
    rf = _final_rf(report)
    if budgets.min_rf is not None and rf is not None and min(rf) < budgets.min_rf:
        fail(f"receptive field {'x'.join(map(str, rf))} < {budgets.min_rf} (--min-rf)",
             "add layers, larger kernels, strides or dilation before the spatial axes are mixed")
    if budgets.max_rf is not None and rf is not None and max(rf) > budgets.max_rf:
        fail(f"receptive field {'x'.join(map(str, rf))} > {budgets.max_rf} (--max-rf)",
             "use fewer or smaller kernels/strides")
    if budgets.output is not None and report.output is not None and tuple(report.output) != tuple(budgets.output):
        fail(f"output {list(report.output)} != {list(budgets.output)} (--output)",
             "change the last layers so the network produces the expected shape")
    return out


def _final_rf(report):
    """Per-axis receptive field size of the last layer that still has one."""
    for r in reversed(report.layers):
        if r.receptive_field is not None:
            return [a.size for a in r.receptive_field]
    return None


def training_peak(report, optimizer: str, cpu_isa: str | None = None) -> int:
    """The memory model's training peak (bytes) for the spec's batch."""
    from .memory import estimate

    return estimate(report, optimizer=optimizer, cpu_isa=cpu_isa).training_peak_bytes
