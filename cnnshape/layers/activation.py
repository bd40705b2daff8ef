"""Activations. Shape: unchanged; no parameters (PReLU: ``num_parameters``).

``GLU`` halves its ``dim``. ``Softmax2d`` needs ``[C, H, W]``.

``Softmax`` / ``LogSoftmax`` take ``dim`` (default 1 = channels/features, as the spec
format fixes it), an index of the batched tensor.
"""


from typing import Any, ClassVar

from ..rules import Case, Rule, fixed, same
from ..formulas import prod as F_prod

from .base import KEEP, MIX, Arg, Inference, Layer, LayerError, Note, Saved, Shape, register


class _Activation(Layer):
    family = "activation"
    pointwise = True
    #: which tensor autograd keeps for the backward: "input" or "output" (torch 2.13)
    keeps: ClassVar[str] = "input"

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)

    def saved(self, shape, out, batch):
        return (Saved(self.keeps),)

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input  # elementwise: the output has the input's strides


class _Inplace(_Activation):
    inplace = Arg("bool", False, "Operate in place.")
    #: in place, torch keeps a copy of the input (a new storage) instead of the result
    inplace_copies: ClassVar[bool] = False

    def saved(self, shape, out, batch):
        if not self.inplace:
            return (Saved(self.keeps),)
        if self.inplace_copies:
            n = batch
            for s in shape:
                n *= s
            return (Saved("new", n),)
        return (Saved("output"),)

    def aliases_input(self, training: bool = True) -> bool:
        return self.inplace


@register
class ReLU(_Inplace):
    """``max(0, x)``."""
    keeps = "output"


@register
class ReLU6(_Inplace):
    """``min(max(0, x), 6)``."""
    inplace_copies = True


@register
class LeakyReLU(_Inplace):
    """``max(0, x) + negative_slope * min(0, x)``."""
    negative_slope = Arg("float", 0.01, "Slope for x < 0.")


@register
class ELU(_Inplace):
    """Exponential linear unit; shape unchanged."""
    alpha = Arg("float", 1.0, "Scale of the negative part.")


@register
class GELU(_Activation):
    """Gaussian error linear unit; shape unchanged."""
    approximate = Arg("choice", "none", "'tanh' for the tanh approximation.", choices=("none", "tanh"))


@register
class SiLU(_Inplace):
    """``x * sigmoid(x)``."""
    inplace_copies = True


@register
class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``."""
    inplace_copies = True


@register
class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``."""
    inplace_copies = True


@register
class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""
    keeps = "output"


@register
class Tanh(_Activation):
    """``tanh(x)``."""
    keeps = "output"


@register
class Identity(_Activation):
    """Returns its input; shape unchanged."""

    def saved(self, shape, out, batch):
        return ()

    def aliases_input(self, training: bool = True) -> bool:
        return True


class _SoftmaxBase(_Activation):
    keeps = "output"
    dim = Arg("int", 1, "Axis of the batched tensor to normalise over (1 = channels/features).")

    def infer(self, shape: Shape, batch: int) -> Inference:
        ndim = len(shape) + 1
        if not -ndim <= self.dim < ndim:
            raise LayerError(
                f"dim out of range: expected {-ndim} ≤ dim ≤ {ndim - 1} for the batched "
                f"{ndim}-d tensor (N, {', '.join(map(str, shape))}), received dim: {self.dim}",
                "use dim: 1 (channels / features)", "dim")
        d = self.dim % ndim
        if d == 0:
            return Inference(shape, notes=(Note(
                f"{self.type} over dim 0 normalises across the batch, mixing samples",
                "use dim: 1", "dim"),))
        return Inference(shape, rf=KEEP if d == 1 else MIX)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"dim": self.dim}


@register
class Softmax(_SoftmaxBase):
    """Softmax over ``dim`` (default 1); shape unchanged."""


@register
class LogSoftmax(_SoftmaxBase):
    """Log-softmax over ``dim`` (default 1); shape unchanged."""


@register
class Mish(_Inplace):
    """``x * tanh(softplus(x))``."""
    inplace_copies = True


@register
class SELU(_Inplace):
    """Scaled exponential linear unit; shape unchanged."""


@register
class CELU(_Inplace):
    """``max(0, x) + min(0, alpha * (exp(x/alpha) - 1))``; alpha ≠ 0."""
    alpha = Arg("float", 1.0, "Scale of the negative part (not 0).")

    def check_args(self, values: dict) -> None:
        if values.get("alpha") == 0:
            raise LayerError("CELU.alpha: alpha cannot be 0 for CELU (it divides by alpha), received 0",
                             "use alpha: 1.0", "alpha", fix={"alpha": None})


@register
class Softplus(_Activation):
    """``log(1 + exp(beta*x)) / beta`` (linear above ``threshold``)."""
    beta = Arg("float", 1.0, "Sharpness.")
    threshold = Arg("float", 20.0, "Above beta*x > threshold the output is x.")


@register
class Hardtanh(_Activation):
    """``clamp(x, min_val, max_val)``; max_val > min_val."""
    min_val = Arg("float", -1.0, "Lower bound.")
    max_val = Arg("float", 1.0, "Upper bound (greater than min_val).")
    inplace = Arg("bool", False, "Operate in place.")

    def saved(self, shape, out, batch):
        """The input; in place a copy of it (a new storage)."""
        return (Saved("new", batch * F_prod(shape)),) if self.inplace else (Saved("input"),)

    def aliases_input(self, training: bool = True) -> bool:
        return self.inplace

    def check_args(self, values: dict) -> None:
        lo, hi = values.get("min_val", -1.0), values.get("max_val", 1.0)
        if hi <= lo:
            raise LayerError(f"Hardtanh: max_val ({hi}) must be greater than min_val ({lo})",
                             "swap them, or widen the range", "max_val")


@register
class PReLU(_Activation):
    """``max(0, x) + a * min(0, x)`` with learned slopes ``a``: one shared (``num_parameters: 1``)
    or one per channel (``num_parameters: C``). Params ``num_parameters``."""
    num_parameters = Arg("int", 1, "1 (one shared slope) or C (one per channel).", ge=1)
    init = Arg("float", 0.25, "Initial slope.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        c = shape[0]
        if self.num_parameters not in (1, c):
            raise LayerError(
                f"PReLU: mismatch of parameter numbers and input channel size: expected num_parameters 1 or "
                f"{c} (the channels of the incoming {list(shape)}), received {self.num_parameters}",
                f"set num_parameters: {c} (per channel) or 1", "num_parameters", fix={"num_parameters": c})
        return Inference(shape, self.num_parameters)

    def explain(self, shape: Shape) -> list[str]:
        return [f"params: {self.num_parameters} learned slope(s)" + (" (one per channel)" if self.num_parameters > 1 else "")]

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed when there is one slope per channel; other sizes pass."""
        return fixed(0, shape[0]) if dim == 0 and self.num_parameters != 1 else same(dim)


@register
class GLU(_Activation):
    """Gated linear unit over ``dim`` (of the batched tensor, default -1): that axis is halved,
    ``a * sigmoid(b)`` of its two halves; it must be even: ``[..., 2*n, ...]`` -> ``[..., n, ...]``."""
    dim = Arg("int", -1, "Axis of the batched tensor to split in halves (default: the last).")

    def infer(self, shape: Shape, batch: int) -> Inference:
        ndim = len(shape) + 1
        if not -ndim <= self.dim < ndim:
            raise LayerError(
                f"dim out of range: expected {-ndim} ≤ dim ≤ {ndim - 1} for the batched {ndim}-d tensor, "
                f"received dim: {self.dim}", "use dim: 1 (channels / features) or -1", "dim")
        d = self.dim % ndim
        if d == 0:
            raise LayerError("GLU over dim 0 halves the batch axis: the model would no longer be batched",
                             "use dim: 1 (channels / features) or -1", "dim")
        n = shape[d - 1]
        if n % 2:
            raise LayerError(f"GLU halving dimension must be even: dim {self.dim} has size {n}",
                             f"make that axis even (e.g. {n + 1} or {n - 1}), or choose another dim", "dim")
        out = shape[:d - 1] + (n // 2,) + shape[d:]
        return Inference(out, rf=KEEP if d == 1 else MIX)

    def explain(self, shape: Shape) -> list[str]:
        return [f"dim {self.dim}: halved"]

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The halved dim must be even."""
        if dim != self.dim % (len(shape) + 1) - 1:
            return same(dim)
        return Rule((Case(1, 0, 2, mod=2, res=0),), dim)


@register
class Softmax2d(_Activation):
    """Softmax over the channels of ``[C, H, W]``; shape unchanged."""
    keeps = "output"

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), "[C, H, W]", "Softmax2d works on 2-d maps: use Softmax(dim=1) otherwise")
        return Inference(shape)
