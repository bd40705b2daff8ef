"""Checkpoints: state_dict + the spec + metrics in one file (``torch.save``).

The file is a plain dict of tensors and builtins, so ``torch.load(path, weights_only=True)``
reads it without cnnshape: ``ckpt["state_dict"]`` has the keys of the compiled
``nn.Sequential`` and loads into the exported plain-PyTorch model with the
``load_sequential_state`` helper that ``cnnshape export --to python`` writes.
"""

import os
from dataclasses import dataclass

from ..errors import CnnshapeError
from ..spec import Spec, from_data, load

FORMAT = "cnnshape-checkpoint"
VERSION = 1


class CheckpointError(CnnshapeError):
    """Unreadable checkpoint, or one whose spec does not match."""


@dataclass(frozen=True)
class Checkpoint:
    model: object
    spec: Spec
    metrics: dict
    classes: tuple[str, ...]
    data: str | None
    path: str


def save_checkpoint(path, model, spec: Spec, *, metrics: dict | None = None, classes=(), data: str | None = None):
    """Write the model's weights with the spec (atomically: temp file + rename)."""
    import io

    import torch

    from ..atomic import write_atomic

    path = os.fspath(path)
    payload = {
        "format": FORMAT, "version": VERSION,
        "spec": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": metrics or {}, "classes": list(classes), "data": data,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())
    return path


def _first_difference(a, b, where="spec") -> str | None:
    if type(a) is not type(b):
        return f"{where}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{where}.{k}: {'missing' if k not in a else repr(a[k])} vs {'missing' if k not in b else repr(b[k])}"
            d = _first_difference(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def _read_payload(path: str) -> dict:
    """The checkpoint file's contents, checked to be a cnnshape checkpoint with a spec and weights."""
    import torch

    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file (pickle, zip, runtime)
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnshape checkpoint (no '{FORMAT}' marker); "
                              "a plain state_dict loads with model.load_state_dict(torch.load(path))")
    missing = [k for k in ("spec", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: a cnnshape checkpoint without {' and '.join(missing)}; train again")
    if not isinstance(payload["spec"], dict):
        raise CheckpointError(f"{path}: the stored spec is not a mapping; train again")
    if not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path}: the stored weights are not a state_dict; train again")
    return payload


def _same_architecture(path: str, spec, saved: Spec) -> None:
    """CheckpointError when ``spec`` (Spec/path/text/dict) is not the architecture the
    checkpoint was trained for (name, description and batch do not count)."""
    if not isinstance(spec, Spec):
        spec = load(spec) if not isinstance(spec, dict) else from_data(spec)
    a, b = spec.to_dict(), saved.to_dict()
    for k in ("name", "description", "batch"):  # not part of the architecture
        a.pop(k, None)
        b.pop(k, None)
    diff = _first_difference(b, a)
    if diff:
        raise CheckpointError(f"{path} was trained for a different spec: {diff.replace('spec', 'checkpoint', 1)} "
                              "(checkpoint vs given spec)\n  fix: use the spec it was trained with "
                              "(it is stored in the checkpoint), or train again")


def _model_of(path: str, saved: Spec, state_dict, device):
    """The stored spec built and loaded with the stored weights, in eval mode."""
    from .build import BuildError, build

    try:
        model = build(saved, device=device, dtype="float32")
    except BuildError as exc:
        raise CheckpointError(f"{path}: the stored spec cannot be built ({exc})") from None
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored spec ({exc})") from None
    model.eval()
    return model


def load_checkpoint(path, spec=None, *, device="cpu") -> Checkpoint:
    """Restore a model from a checkpoint; with ``spec`` (Spec/path/text/dict) refuse a
    checkpoint trained for a different architecture."""
    from ..errors import SpecError

    path = os.fspath(path)
    payload = _read_payload(path)
    classes, metrics = payload.get("classes", ()), payload.get("metrics", {})
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{path}: 'classes' must be a list of names; train again")
    if not isinstance(metrics, dict):
        metrics = {}
    try:
        saved = load(payload["spec"])
    except SpecError as exc:
        raise CheckpointError(f"{path}: the stored spec is invalid ({exc}); train again") from None
    if spec is not None:
        _same_architecture(path, spec, saved)
    model = _model_of(path, saved, payload["state_dict"], device)
    data = payload.get("data")
    return Checkpoint(model, saved, metrics, tuple(classes), data if isinstance(data, str) else None, path)
