"""Brute force with torch: the input sizes at which the model compiled from a spec (at its
declared input) runs forward without error and without a zero-size tensor, one axis
varied at a time. The oracle of tests/test_sizes*.py."""

import os
import warnings

import torch

from cnnshape.analysis import check
from cnnshape.sizes import Progression
from cnnshape.torch_backend.build import build

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


class _Empty(Exception):
    pass


def _hook(module, inputs, output):
    outs = output if isinstance(output, tuple) else (output,)
    for o in outs:
        if isinstance(o, torch.Tensor) and o.numel() == 0:
            raise _Empty(type(module).__name__)


def _strict_add(self, x):
    """Residual.forward with cnnshape's merge rule: the add needs equal shapes (torch
    alone would broadcast a size-1 axis)."""
    h = x
    for name in self._body:
        h = getattr(self, name)(h)
    s = getattr(self, self._shortcut)(x) if self._shortcut is not None else x
    if h.shape != s.shape:
        raise _Empty(f"residual shapes {tuple(h.shape)} vs {tuple(s.shape)}")
    y = h + s
    for name in self._after:
        y = getattr(self, name)(y)
    return y


def _strict_gate(self, x):
    """SqueezeExcitation.forward with cnnshape's rule: the gate is [C, 1, ...] or x's shape
    (torch alone would broadcast any size-1 axis)."""
    from cnnshape.torch_backend.modules import _run

    g = _run(self, self._gate, x)
    ones = (x.shape[0], x.shape[1], *([1] * (x.dim() - 2)))
    if g.shape != x.shape and tuple(g.shape) != ones:
        raise _Empty(f"gate {tuple(g.shape)} vs {tuple(x.shape)}")
    return x * g


def compiled(spec):
    """The eval-mode model compiled at the declared input, with zero-size guards and
    cnnshape's equal-shape rule on residual adds."""
    from cnnshape.torch_backend.modules import Residual, SqueezeExcitation

    report = check(spec)
    assert report.ok, report.errors
    model = build(report.spec)
    model.eval()
    for m in model.modules():
        m.register_forward_hook(_hook)
        if isinstance(m, Residual):
            m.forward = _strict_add.__get__(m)
        if isinstance(m, SqueezeExcitation):
            m.forward = _strict_gate.__get__(m)
    return report, model


def runs(model, shape, batch: int = 1) -> bool:
    x = torch.zeros(batch, *shape)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            y = model(x)
    except _Empty:
        return False
    except Exception:  # noqa: BLE001 - torch's refusal is the answer
        return False
    y = y[0] if isinstance(y, tuple) else y
    return y.numel() > 0


def brute(spec, dim: int, sizes) -> set[int]:
    """{n in sizes : the compiled model runs with input[dim] = n}."""
    report, model = compiled(spec)
    base = list(report.spec.input)
    ok = set()
    for n in sizes:
        shape = base.copy()
        shape[dim] = n
        if runs(model, shape, report.spec.batch):
            ok.add(n)
    return ok


def members(progressions, upto: int) -> set[int]:
    out = set()
    for g in progressions:
        top = upto if g.stop is None else min(g.stop, upto)
        out.update(range(g.start, top + 1, g.step))
    return out


def as_progression(d) -> Progression:
    return Progression(d["from"], d["to"], d["step"])


def brute_square(spec, sizes) -> set[int]:
    """{n in sizes : the compiled model runs with every spatial axis = n}."""
    report, model = compiled(spec)
    c = report.spec.input[0]
    rank = len(report.spec.input) - 1
    return {n for n in sizes if runs(model, [c] + [n] * rank, report.spec.batch)}
