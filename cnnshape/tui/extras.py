"""Optional figures from other parts of cnnshape: valid input sizes and memory.

``cnnshape.sizes`` and ``cnnshape.memory`` are called through these adapters only, so
the studio keeps working (showing nothing) where a module is absent or fails on a design;
every function returns None then.
"""

from importlib import import_module

from ..units import binary_bytes as nbytes  # the one byte formatter (binary units, as check)


def _module(name: str):
    try:
        return import_module(f"cnnshape.{name}")
    except ImportError:
        return None


def _call(fn, *args, **kwargs):
    """``fn(...)``, or None when it raises: a figure another module cannot give for this
    design must not stop the studio (the check itself reports real errors)."""
    try:
        return fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - optional figure; the studio shows nothing instead
        return None


def sizes_summary(report) -> str | None:
    """One line: the input sizes the design accepts ("H ≥ 32, W ≥ 32"), or None."""
    mod = _module("sizes")
    if mod is None or report is None or not hasattr(mod, "sizes"):
        return None
    result = _call(mod.sizes, report)
    if result is None:
        return None
    summary = getattr(result, "summary", None)
    text = _call(summary) if callable(summary) else summary if isinstance(summary, str) else _call(str, result)
    return text.strip().splitlines()[0] if isinstance(text, str) and text.strip() else None


def memory_estimate(report, *, optimizer: str = "adam", batch: int | None = None):
    """``cnnshape.memory.estimate(...)`` or None."""
    mod = _module("memory")
    if mod is None or report is None or not hasattr(mod, "estimate"):
        return None
    return _call(mod.estimate, report, optimizer=optimizer, batch=batch)


def memory_line(report) -> str | None:
    """The totals pane's memory line: saved for backward, training and inference peaks."""
    est = memory_estimate(report)
    if est is None:
        return None
    try:
        return (f"memory (adam, batch {report.spec.batch}): saved for backward {nbytes(est.saved_bytes)}, "
                f"training peak {nbytes(est.training_peak_bytes)}, inference peak {nbytes(est.inference_peak_bytes)}")
    except (AttributeError, TypeError):
        return None


def fit_warning(report, *, batch: int, optimizer: str, free_bytes: int | None, device: str) -> str | None:
    """A warning when a training step at ``batch`` will not fit in ``free_bytes``, or None."""
    if free_bytes is None:
        return None
    est = memory_estimate(report, optimizer=optimizer, batch=batch)
    peak = getattr(est, "training_peak_bytes", None)
    if not isinstance(peak, int) or peak <= free_bytes:
        return None
    mod = _module("memory")
    best = _call(mod.max_batch, report, free_bytes, optimizer=optimizer, training=True) \
        if hasattr(mod, "max_batch") else None
    most = f"; the largest batch that fits is {best}" if isinstance(best, int) else ""
    return (f"batch {batch} needs about {nbytes(peak)} for a training step ({optimizer}), more than the "
            f"{nbytes(free_bytes)} free on {device}{most}")
