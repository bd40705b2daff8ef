"""CI budgets: ``cnnshape check --max-params 5M --max-macs 1G --max-memory 8GiB ...``.

A budget that a spec exceeds becomes a located error (exit 1) whose hint names the layers
that contribute most, with their YAML lines, so the fix starts where the cost is.

>>> parse_quantity("5M"), parse_quantity("1.5G"), parse_quantity("8GiB"), parse_quantity("512MB")
(5000000, 1500000000, 8589934592, 512000000)
"""

import math
import re
from dataclasses import dataclass

from .errors import Diagnostic

_SI = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QTY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ki|mi|gi|ti|k|m|g|t)?\s*(b|ib)?\s*$", re.I)


def parse_quantity(text: str) -> int:
    """``"5M"`` -> 5000000; ``"8GiB"`` -> 8*2**30; ``"1e9"`` -> 10**9. ValueError otherwise."""
    m = _QTY.match(str(text))
    if not m:
        raise ValueError(f"expected a number with an optional unit (5M, 1.5G, 8GiB, 512MB), received {text!r}")
    number, prefix, unit = m.group(1), m.group(2) or "", (m.group(3) or "").lower()
    prefix = prefix[:1].upper() + prefix[1:].lower()
    if unit == "ib" and prefix and not prefix.endswith("i"):
        prefix += "i"
    scale = _BIN.get(prefix) or _SI.get(prefix)
    if scale is None:
        raise ValueError(f"unknown unit in {text!r}")
    value = float(number) * scale
    if not math.isfinite(value) or value > 2**62:
        raise ValueError(f"{text!r} is too large")
    return int(round(value))


def human(n: float, binary: bool = False) -> str:
    if binary:
        for factor, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if n >= factor:
                return f"{n / factor:.2f} {suffix}"
        return f"{int(n)} B"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {suffix}"
    return f"{n:g}"


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
