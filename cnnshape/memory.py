"""Memory to the byte: saved-for-backward tensors, training and inference peaks, max batch.

No torch: the engine replays an analysed :class:`~cnnshape.analysis.Report` as a program
of storages. Each layer class says what autograd keeps for its backward
(:meth:`Layer.saved`: its input, its output, or storages of its own such as pooling indices,
dropout masks, BatchNorm statistics, padded copies) and whether its output shares the
input's storage (:meth:`Layer.aliases_input`: views, in-place ops); each block class says
how its children connect (:meth:`Block.memory`). Storages are reference counted, so:

- ``saved_bytes`` counts every distinct storage once (a ReLU's output that the next conv
  keeps as its input is one storage; a Flatten view is its input's storage), never the
  network input (the caller's batch) nor parameters/buffers, and nothing where no gradient
  flows (before the first layer with trainable parameters). This is exactly what
  ``torch.autograd.graph.saved_tensors_hooks`` observes (tests/test_memory.py).
- the peaks replay the forward (and a simplified backward) with each storage freed when
  its last holder lets go; see docs/memory.md for the model and its measured error.
"""

from dataclasses import dataclass, field
from typing import Any

from .cpu_isa import resolve as resolve_isa
from .formulas import prod
from .units import binary_bytes as nbytes_text
from .units import SAVED_DTYPE_BYTES
from .units import parse_bytes  # noqa: F401  (part of this module's API: the memory limit parser)

#: bytes per element of the spec dtypes and of the extra dtypes layers save
DTYPE_BYTES = SAVED_DTYPE_BYTES

#: optimizer -> state tensors per parameter, as ``cnnshape train`` builds it
#: (sgd: plain SGD; momentum: SGD with a momentum buffer; adam/adamw: exp_avg, exp_avg_sq)
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
#: temporaries of one parameter's size that the single-tensor (CPU) optimizer step allocates
#: (Adam: sqrt(exp_avg_sq) and its quotient by the bias correction)
OPTIMIZER_TEMPS = {"sgd": 0, "momentum": 0, "adam": 2, "adamw": 2}
OPTIMIZERS = tuple(OPTIMIZER_STATE)


class _Value:
    """A handle on a storage flowing between layers (holds one reference); ``contig``:
    the tensor is contiguous (a Permute's view is not)."""

    __slots__ = ("contig", "grad", "sid")

    def __init__(self, sid: int, grad: bool, contig: bool = True):
        self.sid, self.grad, self.contig = sid, grad, contig


class Tracer:
    """Replays a report as storages: allocations, references, the saved set and the peak."""

    def __init__(self, batch: int, dtype: str, training: bool, isa: str = "avx2"):
        self.batch, self.dtype, self.training, self.isa = batch, dtype, training, isa
        self.item = DTYPE_BYTES[dtype]
        self.size: dict[int, int] = {}   # sid -> bytes
        self.refs: dict[int, int] = {}   # sid -> live references
        self.live = 0
        self.peak = 0
        self.saved: dict[int, int] = {}  # sid -> bytes, the saved-for-backward set
        self.per_row: dict[str, int] = {}
        #: backward program: (path, input bytes, output + workspace bytes, saved sids,
        #: grad-param bytes, gradient bytes a block holds meanwhile)
        self.ops: list[tuple[str, int, int, tuple[int, ...], int, int]] = []
        self.held = 0
        self._next = 0

    # -- storages ---------------------------------------------------------------------
    def alloc(self, nbytes: int) -> int:
        sid = self._next
        self._next += 1
        self.size[sid] = nbytes
        self.refs[sid] = 1
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        return sid

    def ref(self, sid: int) -> None:
        self.refs[sid] += 1

    def unref(self, sid: int) -> None:
        self.refs[sid] -= 1
        if self.refs[sid] == 0:
            self.live -= self.size[sid]

    def new(self, shape, grad: bool) -> _Value:
        """A fresh storage for a batched tensor of per-sample ``shape``."""
        return _Value(self.alloc(self.batch * prod(shape) * self.item), grad)

    def share(self, v: _Value) -> _Value:
        """A second handle on ``v``'s storage (a block feeding two paths)."""
        self.ref(v.sid)
        return _Value(v.sid, v.grad, v.contig)

    def release(self, v: _Value) -> None:
        self.unref(v.sid)

    def keep(self, path: str, sid: int) -> None:
        """Autograd keeps ``sid`` for the backward (sid 0 = the network input: not counted)."""
        self.ref(sid)
        self._count(path, sid)

    def _count(self, path: str, sid: int) -> None:
        if sid != 0 and sid not in self.saved:
            self.saved[sid] = self.size[sid]
            self.per_row[path] = self.per_row.get(path, 0) + self.size[sid]

    # -- the program ------------------------------------------------------------------
    def leaf(self, row, v: _Value) -> _Value:
        layer = row.layer
        grad = v.grad or row.trainable_params > 0
        # a view of a strided tensor that cannot be viewed (Flatten of a permuted map) copies
        alias = layer.aliases_input(self.training) and (v.contig or not layer.flattens)
        contig = layer.contiguous_output(v.contig)
        out = _Value(v.sid, grad, contig) if alias else self.new(row.output, grad)
        out.contig = contig
        saved = self._saved_of(row, v, grad)
        ws_f, ws_b = layer.workspace(row.input, row.output, self.batch, self.item, bool(saved), v.grad,
                                     isa=self.isa)
        self.peak = max(self.peak, self.live + ws_f)
        kept = [self._keep_saved(row, v, out, s) for s in saved]
        if not alias:
            self.release(v)
        if self.training and grad:  # a backward runs through this layer
            in_b = self.batch * prod(row.input) * self.item if v.grad else 0
            out_b = self.batch * prod(row.output) * self.item if grad else 0
            self.ops.append((row.path, in_b, out_b + ws_b, tuple(kept), row.trainable_params * self.item,
                             self.held))
        return out

    def _saved_of(self, row, v: _Value, grad: bool) -> list:
        """What the layer of ``row`` saves for the backward in this run (nothing when no
        backward runs through it)."""
        if not (self.training and grad):
            return []
        needed = {"any": grad, "input": v.grad, "params": row.trainable_params > 0}
        return [s for s in row.layer.saved(row.input, row.output, self.batch) if needed[s.when]]

    def _keep_saved(self, row, v: _Value, out: _Value, s) -> int:
        """Keep the saved tensor ``s`` of ``row`` (input ``v``, output ``out``): its storage id."""
        if s.what == "input" and (v.contig or not row.layer.needs_contiguous):
            sid = v.sid
        elif s.what == "output":
            sid = out.sid
        else:  # a storage of its own (or a contiguous copy of a strided input)
            numel = s.numel if s.what == "new" else self.batch * prod(row.input)
            sid = self.alloc(numel * (DTYPE_BYTES[s.dtype] if s.dtype else self.item))
            self._count(row.path, sid)  # alloc's reference is autograd's
            return sid
        self.keep(row.path, sid)
        return sid

    def run(self, row, v: _Value) -> _Value:
        """Run one analysed row (a leaf layer, a block or a nested sequence)."""
        if row.children:
            return row.layer.memory(row, self, v)  # a block or a nested sequence (NESTED)
        return self.leaf(row, v)

    def hold(self, row, on: bool, shape=None) -> None:
        """In the backward, the gradient of ``row``'s output (or of a tensor of per-sample
        ``shape``) stays alive while the layers run between ``hold(row, True)`` and
        ``hold(row, False)`` (a merge's other paths)."""
        self.held += (1 if on else -1) * self.batch * prod(row.output if shape is None else shape) * self.item

    def seq(self, rows, v: _Value) -> _Value:
        for row in rows:
            v = self.run(row, v)
        return v

    def merge(self, row, values: list[_Value], keeps: tuple[int, ...] = (), shape=None,
              grad: bool = False) -> _Value:
        """A block's merge (add, cat, multiply) of ``values`` into a new storage of ``shape``
        (default: ``row``'s output); ``keeps`` = indices of the operands autograd keeps (when
        the result needs a gradient); ``grad``: a parameter of the block takes part."""
        grad = grad or any(v.grad for v in values)
        out = self.new(row.output if shape is None else shape, grad)
        if self.training and grad:
            for i in keeps:
                self.keep(row.path, values[i].sid)
            self.ops.append((row.path, 0, 0, tuple(values[i].sid for i in keeps), 0, self.held))
        for v in values:
            self.release(v)
        return out


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory of one spec at ``batch`` (bytes); ``to_dict()`` is SPEC.md section 5's object."""

    batch: int
    dtype: str
    optimizer: str
    saved_bytes: int
    training_peak_bytes: int
    inference_peak_bytes: int
    param_bytes: int
    grad_bytes: int
    optimizer_bytes: int
    input_bytes: int
    #: saved bytes per layer path (the first layer keeping each storage owns it)
    per_layer: dict[str, int] = field(default_factory=dict, compare=False)
    max_batch: dict[str, int] | None = None
    #: the CPU kind the peaks are modelled for (cnnshape.cpu_isa)
    cpu_isa: str = "avx2"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "batch": self.batch, "dtype": self.dtype, "cpu_isa": self.cpu_isa,
            "training": {"optimizer": self.optimizer, "saved_bytes": self.saved_bytes,
                         "peak_bytes": self.training_peak_bytes,
                         "parts": {"params": self.param_bytes, "grads": self.grad_bytes,
                                   "optimizer_state": self.optimizer_bytes, "input": self.input_bytes,
                                   "saved": self.saved_bytes}},
            "inference": {"peak_bytes": self.inference_peak_bytes},
        }
        if self.max_batch is not None:
            out["max_batch"] = dict(self.max_batch)
        return out


def _trace(report, batch: int, training: bool, isa: str) -> Tracer:
    spec = report.spec
    t = Tracer(batch, spec.dtype, training, isa)
    x = t.new(spec.input, False)  # sid 0: the caller's batch
    t.ref(x.sid)                  # the caller holds it through the whole step
    out = t.seq(report.layers, x)
    t.release(out)
    return t


def _backward_peak(t: Tracer) -> int:
    """Peak of a replayed backward (grads set to None before it, as ``cnnshape train``
    does): saved storages are freed as the layers that keep them are passed; parameter
    gradients accumulate; at each layer its output's and input's gradients are live."""
    holders: dict[int, int] = {}
    for *_, kept, _, _ in t.ops:
        for sid in kept:
            holders[sid] = holders.get(sid, 0) + 1
    saved = sum(t.saved.values())
    grads = peak = 0
    for _, in_b, out_b, kept, gp, held in reversed(t.ops):
        grads += gp
        peak = max(peak, saved + grads + in_b + out_b + held)
        for sid in kept:
            holders[sid] -= 1
            if holders[sid] == 0 and sid in t.saved:
                saved -= t.saved[sid]
    return peak


def estimate(report, *, optimizer: str = "adam", batch: int | None = None,
             memory_limit: int | None = None, cpu_isa: str | None = None) -> MemoryEstimate:
    """Saved-for-backward bytes and the training/inference peaks of ``report``'s spec at
    ``batch`` (default: the spec's). ``memory_limit`` (bytes) adds ``max_batch``.
    ``cpu_isa``: the CPU kind the peaks are for ("avx2", "avx512", "default"; None or
    "auto": this machine's, :func:`cnnshape.cpu_isa.detect`); saved bytes do not depend on it."""
    isa = resolve_isa(cpu_isa)
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    spec = report.spec
    batch = spec.batch if batch is None else batch
    item = DTYPE_BYTES[spec.dtype]
    params = report.totals.params * item
    trainable = report.totals.trainable_params * item
    state = OPTIMIZER_STATE[optimizer] * trainable
    biggest = max((r.trainable_params for r in _leaves(report.layers)), default=0) * item
    x_bytes = batch * prod(spec.input) * item
    tr = _trace(report, batch, True, isa)
    saved = sum(tr.saved.values())
    # train order: forward (last step's grads still allocated), zero_grad(set_to_none),
    # backward, step; the forward replay's peak already includes the input batch
    forward = trainable + tr.peak
    backward = _backward_peak(tr) + x_bytes
    step = trainable + OPTIMIZER_TEMPS[optimizer] * biggest + x_bytes
    training = params + state + max(forward, backward, step)
    inf = _trace(report, batch, False, isa)
    inference = params + inf.peak
    est = MemoryEstimate(batch, spec.dtype, optimizer, saved, training, inference, params, trainable, state,
                         x_bytes, dict(tr.per_row), cpu_isa=isa)
    if memory_limit is not None:
        seen = {batch: est}  # estimates both searches share (each has both peaks)
        est = MemoryEstimate(**{**est.__dict__, "max_batch": {
            "limit_bytes": memory_limit,
            "training": max_batch(report, memory_limit, optimizer=optimizer, training=True, cpu_isa=isa,
                                  _seen=seen),
            "inference": max_batch(report, memory_limit, optimizer=optimizer, training=False, cpu_isa=isa,
                                   _seen=seen)}})
    return est


def _leaves(rows):
    for r in rows:
        if r.children:
            yield from _leaves(r.children)
        else:
            yield r


def max_batch(report, limit_bytes: int, *, optimizer: str = "adam", training: bool = True,
              cpu_isa: str | None = None, _seen: dict | None = None) -> int:
    """The largest batch whose training (or inference) peak fits in ``limit_bytes``;
    0 when not even batch 1 fits. The peak grows with the batch (activations in proportion
    to it), so the search interpolates: first on the line through the peaks at batch 2 and
    3 (batch 1 may take other kernels), then between the closest batches known to fit and
    not to fit, checking the neighbour of each guess and bisecting every other step (never
    worse than a binary search). A handful of estimates, not ~80: each replays the whole
    network. ``_seen``: estimates by batch, shared with the other search."""
    isa = resolve_isa(cpu_isa)
    seen = {} if _seen is None else _seen

    def peak(b: int) -> int:
        if b not in seen:
            seen[b] = estimate(report, optimizer=optimizer, batch=b, cpu_isa=isa)
        e = seen[b]
        return e.training_peak_bytes if training else e.inference_peak_bytes

    def fits(b: int) -> bool:
        return peak(b) <= limit_bytes

    top = 1 << 40
    if not fits(1):
        return 0
    if not fits(2):
        return 1
    lo = 3 if fits(3) else 2
    if lo == 2:
        return 2
    slope = peak(3) - peak(2)
    if slope <= 0:
        hi = None
    else:
        guess = min(max(4, 3 + (limit_bytes - peak(3)) // slope), top)
        if fits(guess):
            lo, hi = guess, None
        else:
            hi = guess
    while hi is None:  # above every batch tried: double until one does not fit
        if lo >= top:
            return top
        nxt = min(2 * lo, top)
        if fits(nxt):
            lo = nxt
        else:
            hi = nxt
    interpolate = True
    while hi - lo > 1:
        if interpolate and peak(hi) > peak(lo):
            m = lo + (limit_bytes - peak(lo)) * (hi - lo) // (peak(hi) - peak(lo))
            m = min(max(m, lo + 1), hi - 1)
            if fits(m):  # the boundary is usually right there: look at the neighbour
                lo = m
                if m + 1 < hi:
                    lo, hi = (m + 1, hi) if fits(m + 1) else (m, m + 1)
            else:
                hi = m
                if m - 1 > lo and fits(m - 1):
                    lo = m - 1
        else:
            m = (lo + hi) // 2
            lo, hi = (m, hi) if fits(m) else (lo, m)
        interpolate = not interpolate
    return lo


def saved_per_path(est: MemoryEstimate) -> dict[str, int]:
    """Every row's share of ``saved_bytes`` by module path: what its own layer and the layers
    inside it keep first (a block's share sums its layers'). Each layer's bytes are added to
    its path's prefixes: linear in the layers times their depth."""
    out: dict[str, int] = {}
    for path, nbytes in est.per_layer.items():
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            prefix = ".".join(parts[:k])
            out[prefix] = out.get(prefix, 0) + nbytes
    return out


def add_to_json(doc: dict, report, *, optimizer: str = "adam", memory_limit: int | None = None,
                cpu_isa: str | None = None) -> dict:
    """Add SPEC.md section 5's ``memory`` object and per-row ``saved_bytes`` to a report's
    JSON ``doc`` (``report.to_dict()``); nothing when the report has errors."""
    if not report.ok:
        return doc
    est = estimate(report, optimizer=optimizer, memory_limit=memory_limit, cpu_isa=cpu_isa)
    saved = saved_per_path(est)

    def rows(docs, reports):
        for d, r in zip(docs, reports):
            d["saved_bytes"] = saved.get(r.path, 0)
            if r.children and "children" in d:
                rows(d["children"], r.children)

    rows(doc["layers"], report.layers)
    doc["memory"] = est.to_dict()
    return doc


#: how ``check`` names each CPU kind
ISA_TEXT = {"avx2": "with oneDNN on AVX2", "avx512": "with oneDNN on AVX-512", "default": "of a CPU without AVX2"}


def summary_lines(report, *, optimizer: str = "adam", memory_limit: int | None = None,
                  cpu_isa: str | None = None) -> list[str]:
    """The human memory lines of ``check``'s table footer."""
    est = estimate(report, optimizer=optimizer, memory_limit=memory_limit, cpu_isa=cpu_isa)
    b = nbytes_text
    lines = [
        (f"memory at batch {est.batch} ({est.dtype}): training peak ≈ {b(est.training_peak_bytes)} with "
         f"{optimizer} (params {b(est.param_bytes)}, grads {b(est.grad_bytes)}, optimizer state "
         f"{b(est.optimizer_bytes)}, saved for backward {b(est.saved_bytes)}); inference peak ≈ "
         f"{b(est.inference_peak_bytes)}"),
        (f"peaks are modelled on the CPU allocator {ISA_TEXT[est.cpu_isa]} (--cpu-isa); CUDA's caching "
         "allocator and cuDNN workspaces differ (no CUDA measurement yet)"),
    ]
    if est.max_batch is not None:
        m = est.max_batch
        lines.append(f"largest batch within {b(m['limit_bytes'])}: training {m['training']:,} ({optimizer}), "
                     f"inference {m['inference']:,}")
    return lines
