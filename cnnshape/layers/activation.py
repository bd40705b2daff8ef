"""Activations. Shape: unchanged; no parameters.

``Softmax`` / ``LogSoftmax`` take ``dim`` (default 1 = channels/features, as the spec
format fixes it), an index of the batched tensor.
"""


from typing import Any

from .base import KEEP, MIX, Arg, Inference, Layer, LayerError, Note, Shape, register


class _Activation(Layer):
    family = "activation"

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)


class _Inplace(_Activation):
    inplace = Arg("bool", False, "Operate in place.")


@register
class ReLU(_Inplace):
    """``max(0, x)``."""


@register
class ReLU6(_Inplace):
    """``min(max(0, x), 6)``."""


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


@register
class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6``."""


@register
class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6``."""


@register
class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""


@register
class Tanh(_Activation):
    """``tanh(x)``."""


@register
class Identity(_Activation):
    """Returns its input; shape unchanged."""


class _SoftmaxBase(_Activation):
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
    """Softmax over ``dim`` (default 1)."""


@register
class LogSoftmax(_SoftmaxBase):
    """Log-softmax over ``dim`` (default 1)."""
