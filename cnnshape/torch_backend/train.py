"""Brief training of a spec on in-memory data, with checkpoints that carry their spec.

``train(spec, dataset, ...)`` is a plain loop over tensors already on the device (one
``index_select`` per batch, no DataLoader, no per-sample Python), so it runs as fast as a
hand-written PyTorch loop (see ``benchmarks/bench_train.py``). It reports progress
through a callback, stops cleanly on a cancel request or Ctrl-C (keeping the weights of
the last good step), and stops before the optimizer step when the loss is not finite,
naming that step.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ..analysis import analyze
from ..errors import CnnshapeError
from ..memory import OPTIMIZERS  # sgd, momentum, adam, adamw: one list for training and its memory figures
from ..spec import Spec, from_data, load

#: the one default learning rate of each optimizer (CLI, studio and API alike)
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "adam": 0.001, "adamw": 0.001}


class TrainError(CnnshapeError):
    """The spec and the data or options do not fit (message says how to fix it)."""


@dataclass(frozen=True)
class TrainConfig:
    """The training options, validated in one place (``TrainError`` on a bad value); the
    CLI, the studio and :func:`train` all build one of these. ``lr=None`` means
    ``DEFAULT_LR[optimizer]`` (see :attr:`learning_rate`)."""

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 64
    lr: float | None = None
    optimizer: str = "momentum"
    #: the momentum of ``optimizer="momentum"`` (SGD with momentum, the tutorials' choice)
    momentum: float = 0.9
    seed: int = 0
    val_fraction: float = 0.1

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise TrainError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        for name in ("batch_size", "epochs", "steps"):
            value = getattr(self, name)
            if value is None and name != "batch_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31:
                raise TrainError(f"{name} must be a whole number from 1 to {2**31:,}, received {value!r}")
        for name in ("lr", "momentum", "val_fraction"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise TrainError(f"{name} must be a finite number, received {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise TrainError(f"lr must be a positive number, received {self.lr}")
        if not 0 <= self.momentum < 1:
            raise TrainError(f"momentum must be in [0, 1), received {self.momentum}")
        if not 0 <= self.val_fraction < 1:
            raise TrainError(f"val_fraction must be in [0, 1), received {self.val_fraction}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise TrainError(f"seed must be a whole number from 0 to 2**63-1, received {self.seed!r}")

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "lr": self.learning_rate, "batch_size": self.batch_size,
                "epochs": self.epochs, "steps": self.steps, "momentum": self.momentum, "seed": self.seed,
                "val_fraction": self.val_fraction}


@dataclass(frozen=True)
class Progress:
    """Sent to ``on_progress`` every few steps and at the end of each epoch."""

    step: int
    total_steps: int
    epoch: int
    epochs: int
    loss: float           # mean training loss since the last report
    accuracy: float       # training accuracy since the last report
    images_per_s: float
    step_ms: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    images_per_s: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TrainResult:
    model: object = field(repr=False)
    device: str
    history: tuple[EpochMetrics, ...]
    steps: int
    seconds: float
    stopped: str | None          # None (finished), "cancelled", "interrupted", "nan"
    message: str
    warnings: tuple[str, ...]
    losses: tuple[float, ...]    # one mean loss per progress report (for plots)

    @property
    def final(self) -> EpochMetrics | None:
        return self.history[-1] if self.history else None

    def to_dict(self) -> dict:
        return {"device": self.device, "steps": self.steps, "seconds": round(self.seconds, 3),
                "stopped": self.stopped, "message": self.message, "warnings": list(self.warnings),
                "epochs": [m.to_dict() for m in self.history],
                "final": self.final.to_dict() if self.final else None}


def loss_for(spec: Spec) -> tuple[str, list[str]]:
    """('cross_entropy' | 'nll' | 'nll_of_log', warnings) for the spec's last layer."""
    last = spec.layers[-1].type
    if last == "LogSoftmax":
        return "nll", []
    if last == "Softmax":
        return "nll_of_log", [
            "the spec ends in Softmax: training uses NLLLoss on log(output) (CrossEntropyLoss would "
            "apply softmax a second time); for better numerics remove the Softmax and let the loss do it"]
    return "cross_entropy", []


def check_fit(spec: Spec, num_classes: int, warnings: list[str] | None = None):
    """The spec's report; TrainError unless the spec outputs ``[k]`` per sample with
    ``k >= num_classes``. The same rule for every data source: a wider classifier trains
    (its extra outputs are never the target) with a note appended to ``warnings``."""
    report = analyze(spec)
    if not report.ok:
        e = report.errors[0]
        raise TrainError(f"the spec has errors; first: layer {e.index} ({e.name}): {e.message}"
                         + (f"\n  fix: {e.hint}" if e.hint else ""))
    out = report.output
    if len(out) != 1:
        raise TrainError(f"a classifier must output [num_classes] per sample; this spec outputs {list(out)}\n"
                         "  fix: add Flatten (and a Linear with out_features: "
                         f"{num_classes}) at the end")
    if out[0] != num_classes:
        last = next((lr for lr in reversed(report.layers) if lr.layer.ARGS.get("out_features")), None)
        where = ""
        if last is not None:
            where = f" on layer {last.index}" + (f" ({last.name})" if last.name != str(last.index) else "")
        if out[0] < num_classes:
            raise TrainError(f"the data has {num_classes} classes but the spec outputs {out[0]} values per "
                             f"sample\n  fix: set out_features: {num_classes}{where}")
        if warnings is not None:
            warnings.append(f"the spec outputs {out[0]} values per sample and the data has {num_classes} "
                            f"classes: outputs {num_classes}..{out[0] - 1} are never the target "
                            f"(set out_features: {num_classes}{where} to match)")
    return report


def _as_spec(spec) -> Spec:
    if isinstance(spec, Spec):
        return spec
    return load(spec) if not isinstance(spec, dict) else from_data(spec)


class _Split(NamedTuple):
    """The training and validation tensors, on the device."""

    x_tr: object
    y_tr: object
    x_val: object
    y_val: object
    n_val: int


def _split(dataset, val_fraction: float, generator, dev) -> _Split:
    """A random ``val_fraction`` of ``dataset`` held out for validation (order from ``generator``)."""
    import torch

    n = len(dataset)
    order = torch.randperm(n, generator=generator)
    n_val = int(round(n * val_fraction))
    if n - n_val < 1:
        raise TrainError(f"only {n} samples: nothing left to train on with val_fraction {val_fraction}")
    val_idx, tr_idx = order[:n_val], order[n_val:]
    return _Split(dataset.x.index_select(0, tr_idx).to(dev), dataset.y.index_select(0, tr_idx).to(dev),
                  dataset.x.index_select(0, val_idx).to(dev), dataset.y.index_select(0, val_idx).to(dev), n_val)


def _schedule(n_tr: int, batch_size: int, epochs: int | None, steps: int | None) -> tuple[int, int, int, int]:
    """(batch size, batches per epoch, epochs, total steps)."""
    bs = min(batch_size, n_tr)
    batches = n_tr // bs + (1 if n_tr % bs > 1 else 0)  # a last batch of 1 is dropped (BatchNorm)
    if steps is None:
        epochs = epochs or 3
        return bs, batches, epochs, epochs * batches
    return bs, batches, math.ceil(steps / batches), steps


def _loss_fn(loss_kind: str):
    """The loss of ``loss_kind`` (:func:`loss_for`): on logits, log-probabilities or probabilities."""
    import torch

    nll = torch.nn.NLLLoss()
    ce = torch.nn.CrossEntropyLoss()

    def loss_fn(out, y):
        if loss_kind == "cross_entropy":
            return ce(out, y)
        if loss_kind == "nll":
            return nll(out, y)
        return nll(torch.log(out.clamp_min(1e-12)), y)
    return loss_fn


@dataclass
class _Sums:
    """Loss, correct predictions, samples and steps summed over an epoch or a progress window."""

    loss: float = 0.0
    correct: float = 0.0
    seen: float = 0.0
    steps: int = 0

    def add(self, loss_v: float, correct: int, k: int) -> None:
        self.loss += loss_v * k
        self.correct += correct
        self.seen += k
        self.steps += 1


class _Loop:
    """The optimizer steps of one run: the step counter, why it stopped, the history."""

    def __init__(self, model, opt, loss_fn, data: _Split, plan: tuple[int, int, int, int], lr,
                 on_progress, should_stop, progress_every: int):
        self.model, self.opt, self.loss_fn, self.data, self.lr = model, opt, loss_fn, data, lr
        self.bs, self.batches, self.epochs, self.total = plan
        self.on_progress, self.should_stop, self.progress_every = on_progress, should_stop, progress_every
        self.step, self.stopped, self.message = 0, None, ""
        self.history: list[EpochMetrics] = []
        self.losses: list[float] = []
        self.t_win = 0.0

    def run(self, generator, dev) -> None:
        import torch

        n_tr = self.data.x_tr.shape[0]
        for epoch in range(1, self.epochs + 1):
            self.model.train()
            perm = torch.randperm(n_tr, generator=generator).to(dev)
            sums, t_epoch = self._epoch(epoch, perm)
            if sums.seen:
                self._end_epoch(epoch, sums, t_epoch)
            if self.stopped or self.step >= self.total:
                break

    def _epoch(self, epoch: int, perm) -> tuple[_Sums, float]:
        sums, window = _Sums(), _Sums()
        t_epoch = self.t_win = time.perf_counter()
        for b in range(self.batches):
            if self.step >= self.total:
                break
            if self.should_stop is not None and self.should_stop():
                self.stopped = "cancelled"
                self.message = f"stopped at step {self.step} of {self.total} (weights of step {self.step} kept)"
                break
            if not self._batch(epoch, perm[b * self.bs:(b + 1) * self.bs], sums, window):
                break
        return sums, t_epoch

    def _batch(self, epoch: int, idx, sums: _Sums, window: _Sums) -> bool:
        """One optimizer step on the samples ``idx``; False when the loss is not finite."""
        xb = self.data.x_tr.index_select(0, idx)
        yb = self.data.y_tr.index_select(0, idx)
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        loss_v = loss.item()
        if not math.isfinite(loss_v):
            self.stopped = "nan"
            self.message = (f"the loss became {loss_v} at step {self.step + 1} (epoch {epoch}); training stopped "
                            f"before that step's update, keeping the weights of step {self.step}. "
                            f"Try a smaller learning rate (now {self.lr})")
            return False
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        optimizer_step(self.opt)
        self.step += 1
        k = yb.shape[0]
        correct = (out.argmax(1) == yb).sum().item()
        sums.add(loss_v, correct, k)
        window.add(loss_v, correct, k)
        if self.on_progress is not None and (self.step % self.progress_every == 0 or self.step == self.total):
            self._report_window(epoch, window)
        return True

    def _report_window(self, epoch: int, window: _Sums) -> None:
        now = time.perf_counter()
        dt = max(now - self.t_win, 1e-9)
        self.losses.append(window.loss / window.seen)
        self.on_progress(Progress(self.step, self.total, epoch, self.epochs, window.loss / window.seen,
                                  window.correct / window.seen, window.seen / dt, dt / window.steps * 1e3))
        window.loss = window.correct = window.seen = 0.0
        window.steps = 0
        self.t_win = now

    def _end_epoch(self, epoch: int, sums: _Sums, t_epoch: float) -> None:
        secs = time.perf_counter() - t_epoch
        d = self.data
        vl, va = _evaluate(self.model, d.x_val, d.y_val, self.loss_fn) if d.n_val else (None, None)
        m = EpochMetrics(epoch, self.step, sums.loss / sums.seen, sums.correct / sums.seen, vl, va, secs,
                         sums.seen / secs)
        self.history.append(m)
        if self.on_progress is not None:
            self.on_progress(Progress(self.step, self.total, epoch, self.epochs, m.train_loss, m.train_accuracy,
                                      m.images_per_s, secs / max(1, sums.seen / self.bs) * 1e3, vl, va))


def _trainable(model, bs: int, n_tr: int, batch_size: int) -> list:
    """The parameters to optimize; TrainError when there are none or BatchNorm gets batches of 1."""
    import torch

    if bs < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise TrainError(f"BatchNorm needs at least 2 samples per batch in training; this run has {n_tr} training "
                         f"sample(s) and batch size {batch_size}: use more data or a larger --batch-size")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainError("the spec has no trainable parameters (all layers trainable: false or parameter-free)")
    return params


def _prepared(spec, dataset) -> tuple[Spec, str, list[str], object]:
    """(spec, loss kind, warnings, report) for training ``spec`` on ``dataset``; TrainError
    when they do not fit."""
    spec = _as_spec(spec)
    if tuple(dataset.x.shape[1:]) != tuple(spec.input):
        raise TrainError(f"the data's samples are {list(dataset.x.shape[1:])} but the spec's input is "
                         f"{list(spec.input)}")
    loss_kind, warnings = loss_for(spec)
    report = check_fit(spec, len(dataset.classes), warnings)
    if spec.dtype != "float32":
        warnings.append(f"the spec's dtype is {spec.dtype}; training runs in float32")
    return spec, loss_kind, warnings, report


def train(spec, dataset, config: TrainConfig | None = None, *, device="cpu", model=None,
          on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, progress_every: int = 10, **options) -> TrainResult:
    """Train ``spec`` (Spec, path, text or dict) on ``dataset`` (:class:`~.data.Dataset`).

    ``config`` (a :class:`TrainConfig`) or its fields as keywords (``epochs``, ``steps``,
    ``batch_size``, ``lr``, ``optimizer``, ``momentum``, ``seed``, ``val_fraction``). Runs
    ``steps`` optimizer steps if given, else ``epochs`` (default 3) passes over the
    training split. ``model`` continues training an already built model of this spec.
    """
    if config is None:
        config = TrainConfig(**options)
    elif options:
        raise TypeError("give a TrainConfig or keyword options, not both")
    import torch

    from .build import build, resolve_device

    spec, loss_kind, warnings, report = _prepared(spec, dataset)
    dev = resolve_device(device)

    torch.manual_seed(config.seed)
    if model is None:
        model = build(spec, device=dev, dtype="float32", report=report)
    model = model.to(dev)
    g = torch.Generator().manual_seed(config.seed)
    data = _split(dataset, config.val_fraction, g, dev)
    n_tr = data.x_tr.shape[0]
    plan = _schedule(n_tr, config.batch_size, config.epochs, config.steps)
    opt = make_optimizer(_trainable(model, plan[0], n_tr, config.batch_size), config)
    loop = _Loop(model, opt, _loss_fn(loss_kind), data, plan, config.learning_rate, on_progress, should_stop,
                 progress_every)
    threads = _threads_for(report, plan[0], dev)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t_start = time.perf_counter()
    try:
        loop.run(g, dev)
    except KeyboardInterrupt:
        loop.stopped = "interrupted"
        loop.message = f"interrupted at step {loop.step} of {loop.total} (weights of step {loop.step} kept)"
    finally:
        if threads:
            torch.set_num_threads(old_threads)
    model.eval()
    if not loop.message:
        f = loop.history[-1] if loop.history else None
        acc = f" · val accuracy {f.val_accuracy:.1%}" if f and f.val_accuracy is not None else ""
        loop.message = f"trained {loop.step} steps in {time.perf_counter() - t_start:.1f} s on {dev}{acc}"
    return TrainResult(model, str(dev), tuple(loop.history), loop.step, time.perf_counter() - t_start,
                       loop.stopped, loop.message, tuple(warnings), tuple(loop.losses))


#: below this many multiply-accumulates per training step (forward, whole batch), one CPU
#: thread is as fast as many and immune to busy machines (benchmarks/bench_train.py)
SMALL_STEP_MACS = 200_000_000


def _threads_for(report, batch_size: int, dev) -> int | None:
    """Threads for training on ``dev``: 1 for tiny models on the CPU unless the user chose
    (OMP_NUM_THREADS / torch.set_num_threads before), else None (leave torch's choice)."""
    import os

    if dev.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return None
    return 1 if report.totals.macs * batch_size < SMALL_STEP_MACS else None


def make_optimizer(params, config: TrainConfig):
    """torch.optim.SGD (plain or with momentum), Adam or AdamW for ``config``, prepared so that using it
    never imports ``torch._dynamo`` (~1.6 s): its methods' lazy ``_disable_dynamo`` wrappers
    are pre-resolved to the plain methods (no compiler is involved in eager training)."""
    import sys

    import torch

    cls = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "adam": torch.optim.Adam,
           "adamw": torch.optim.AdamW}[config.optimizer]
    if "torch._dynamo" not in sys.modules:
        probe = torch._disable_dynamo(lambda: None).__code__
        for klass in (torch.optim.Optimizer, cls):
            for attr in vars(klass).values():
                fn = getattr(attr, "__wrapped__", None)
                if fn is not None and getattr(attr, "__code__", None) is probe:
                    fn.__dynamo_disable = fn
    if config.optimizer == "momentum":
        return cls(params, lr=config.learning_rate, momentum=config.momentum)
    return cls(params, lr=config.learning_rate)


def optimizer_step(opt) -> None:
    """``opt.step()`` without the wrapper that imports ``torch._dynamo`` for a graph break
    (meaningful only under torch.compile): the plain step under ``torch.no_grad()``, the
    same arithmetic (checked in tests/test_train.py)."""
    import sys

    import torch

    if "torch._dynamo" in sys.modules:
        opt.step()
        return
    raw = type(opt).step
    while hasattr(raw, "__wrapped__"):
        raw = raw.__wrapped__
    with torch.no_grad():
        raw(opt)


def _evaluate(model, x, y, loss_fn, chunk: int = 512) -> tuple[float, float]:
    import torch

    model.eval()
    total_loss = correct = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            out = model(x[i:i + chunk])
            total_loss += loss_fn(out, y[i:i + chunk]).item() * out.shape[0]
            correct += (out.argmax(1) == y[i:i + chunk]).sum().item()
    model.train()
    return total_loss / x.shape[0], correct / x.shape[0]
