"""The analytic calculator: ``analyze(spec) -> Report`` (no torch).

Walks the layers once, asking each layer for its :class:`~cnnshape.layers.Inference`,
and composes receptive fields, parameter and MAC totals and memory. A layer that raises
:class:`~cnnshape.layers.LayerError` ends the walk: the report holds every layer before
it and the located error.
"""

from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic
from .formulas import RFAxis, prod
from .layers import Layer, LayerError, Note
from .layers.base import KEEP, MIX, Shape, shape_str
from .spec import Spec


@dataclass(frozen=True, slots=True)
class LayerReport:
    """One analysed layer (shapes per sample, batch excluded)."""

    index: int
    name: str
    type: str
    input: Shape
    output: Shape
    params: int
    trainable_params: int
    macs: int
    receptive_field: tuple[RFAxis, ...] | None
    layer: Layer = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        rf = self.receptive_field
        return {
            "index": self.index, "name": self.name, "type": self.type,
            "input": list(self.input), "output": list(self.output),
            "params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
            "receptive_field": None if rf is None else {
                "size": [a.size for a in rf], "jump": [a.jump for a in rf],
                "start": [float(a.start) for a in rf]},
        }


@dataclass(frozen=True, slots=True)
class Totals:
    params: int
    trainable_params: int
    macs: int
    param_bytes: int
    input_bytes: int
    activation_bytes: int

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "frozen_params": self.frozen_params, "param_bytes": self.param_bytes,
                "input_bytes": self.input_bytes, "activation_bytes": self.activation_bytes}


@dataclass(frozen=True)
class Report:
    """The result of :func:`analyze`; ``to_dict()`` is the JSON of SPEC.md section 3."""

    spec: Spec
    layers: tuple[LayerReport, ...]
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]
    totals: Totals

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def output(self) -> Shape | None:
        if not self.ok:
            return None
        return self.layers[-1].output if self.layers else self.spec.input

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "input": list(self.spec.input),
            "batch": self.spec.batch,
            "output": None if self.output is None else list(self.output),
            "layers": [lr.to_dict() for lr in self.layers],
            "totals": self.totals.to_dict(),
            "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
            "dtype": self.spec.dtype,
        }


def _initial_rf(shape: Shape) -> tuple[RFAxis, ...] | None:
    if len(shape) < 2:
        return None
    return tuple(RFAxis(1, 1, 0.0) for _ in shape[1:])


def _located(spec: Spec, index: int, name: str, note, severity: str) -> Diagnostic:
    line, col = spec.position("layers", index)
    key = note.key
    kl, kc = spec.source.positions.exact("layers", index, key) if key and spec.source else (None, None)
    if key and kl is None:
        key = None  # the argument was not written: point at the layer only
    return Diagnostic(note.message, note.hint, index=index, name=name, line=line, column=col,
                      key=key, key_line=kl, key_column=kc, severity=severity,
                      fix=getattr(note, "fix", None))


def analyze(spec: Spec, extra_errors: tuple[Diagnostic, ...] = ()) -> Report:
    """Analyse ``spec`` layer by layer without torch.

    ``extra_errors`` (e.g. schema errors of the layers after a valid prefix) are appended
    to the report's errors.
    """
    shape: Shape = tuple(spec.input)
    rf = _initial_rf(shape)
    batch = spec.batch
    names = spec.names
    reports: list[LayerReport] = []
    warnings: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    params = trainable = macs = act_elems = 0
    size_bound = False  # a Flatten merged spatial axes whose size depends on the input
    adaptive = False
    last = len(spec.layers) - 1
    for i, layer in enumerate(spec.layers):
        try:
            inf = layer.infer(shape, batch)
            if layer.returns_tuple() and i < last:
                raise LayerError(
                    f"{layer.type} with return_indices: true returns (values, indices); the next "
                    f"layer ({spec.layers[i + 1].type}) would receive a tuple",
                    "set return_indices: false (indices are only usable on the last layer)",
                    "return_indices")
        except LayerError as exc:
            errors.append(_located(spec, i, names[i], exc, "error"))
            break
        notes = list(inf.notes)
        if layer.fixes_size:
            adaptive = True
        if layer.flattens and inf.rf == MIX and not adaptive:
            size_bound = True
        if size_bound and getattr(layer, "in_features", None) is not None:
            notes.append(Note(
                f"in_features: {layer.in_features} only fits input {shape_str(spec.input)}: another "
                "input size changes the flattened length",
                "remove in_features (it is inferred), or add an adaptive pooling layer before Flatten",
                "in_features"))
            size_bound = False
        for note in notes:
            warnings.append(_located(spec, i, names[i], note, "warning"))
        # receptive field
        rule = inf.rf
        if rf is not None:
            if rule == MIX:
                rf = None
            elif rule != KEEP:
                if len(rule) != len(rf):
                    rf = None
                else:
                    rf = tuple(a.window(*w) for a, w in zip(rf, rule))
        p = inf.params
        t = p if layer.trainable else 0
        params += p
        trainable += t
        macs += inf.macs
        act_elems += prod(inf.output)
        reports.append(LayerReport(i, names[i], layer.type, shape, inf.output, p, t, inf.macs, rf, layer))
        shape = inf.output
    errors.extend(extra_errors)
    item = spec.itemsize
    totals = Totals(params, trainable, macs, params * item, prod(spec.input) * batch * item,
                    act_elems * batch * item)
    return Report(spec, tuple(reports), tuple(errors), tuple(warnings), totals)


def check(obj, *, input=None, batch=None) -> Report:
    """Load and analyse in one call; schema errors become report errors (never raises
    SpecError, except when nothing of the spec could be read)."""
    from .errors import SpecError
    from .spec import load

    try:
        spec = load(obj, input=input, batch=batch)
    except SpecError as exc:
        if exc.partial is None:
            raise
        return analyze(exc.partial, tuple(exc.diagnostics))
    return analyze(spec)
