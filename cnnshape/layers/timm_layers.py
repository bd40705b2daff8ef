"""timm's layers that torch.nn lacks (timm 1.0 names, arguments and parameter names).

Each compiles to a plain-torch copy in :mod:`cnnshape.torch_backend.layer_modules` with
timm's parameter names (``gamma``, ``scale``, ``gain``, ``weight``/``bias``/``v``/``tau``),
so a timm model's ``state_dict`` loads strictly into the compiled spec; tests compare each
with the real timm module (tests/test_timm_layers.py).

- scales: ``LayerScale`` (channels last) / ``LayerScale2d`` (``gamma: [C]``), MetaFormer's
  ``Scale`` (``scale: [C]``), ``StarReLU`` and ``LearnableAffineBlock`` (scalar ``scale`` and
  ``bias``, shape [1]);
- weight-standardised convolutions ``StdConv2d`` (BiT) and ``ScaledStdConv2d`` (NFNet,
  ``gain: [C_out, 1, 1, 1]``): shape, params and MACs of ``Conv2d``;
- norms that divide by a statistic: ``GlobalResponseNorm`` (ConvNeXt-V2 GRN),
  ``EvoNorm2dB0``, ``EvoNorm2dS0``, ``FilterResponseNormTlu2d``, ``SimpleNorm2d``;
- rearrangements: ``SpaceToDepth`` (TResNet's channel order), ``Slice`` (a view of one axis).

Receptive field: the scales and norms keep it (per-sample statistics are reported as the
local path, as for every norm, see docs/zoo-layer-types.md); ``SpaceToDepth`` is a window of
``block_size`` with that stride; ``Slice`` along channels keeps it, along a spatial axis
shifts its start.
"""

from typing import Any, ClassVar

from .. import formulas as F
from .base import INPUT_LAYOUT, KEEP, Arg, Inference, Layer, LayerError, Note, Saved, Shape, register, shape_str
from .conv import Conv2d, check_channels


def _n(batch: int, shape) -> int:
    return batch * F.prod(shape)


class _Timm(Layer):
    """A timm leaf: elementwise in its input's layout unless it says otherwise."""

    family = "timm"

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input  # elementwise: the output has the input's strides


class _ChannelParam(_Timm):
    """A per-channel parameter vector of length ``dim`` (inferred when omitted) along the
    channel axis ``axis`` of the sample (0: channels first, -1: channels last)."""

    axis: ClassVar[int] = 0
    min_ndim: ClassVar[int] = 1

    def channel_axis(self) -> int:
        return self.axis

    def _check_dim(self, shape: Shape) -> int:
        if len(shape) < self.min_ndim:
            raise LayerError(f"{self.type} expects at least {self.min_ndim} dims per sample, received "
                             f"{shape_str(shape)}", "put it on a feature map (before Flatten)")
        c = shape[self.channel_axis()]
        if self.dim is not None and self.dim != c:
            where = "last axis" if self.channel_axis() == -1 else "channels"
            raise LayerError(f"{self.type} expected dim = {c} (the {where} of the incoming {shape_str(shape)}), "
                             f"received dim: {self.dim}", f"set dim: {c}, or remove dim to have it inferred",
                             "dim", fix={"dim": c})
        return c

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"dim": shape[self.channel_axis()], **{k: v for k, v in self.args().items() if k != "dim"}}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The channel axis is fixed at dim; other sizes pass."""
        from ..rules import fixed, same

        c = self.channel_axis() % len(shape)
        return fixed(dim, shape[dim], inferred=self.dim is None) if dim == c else same(dim)


# ------------------------------------------------------------------ layer scale
@register
class LayerScale(_ChannelParam):
    """timm's ``LayerScale``: ``x * gamma`` over the last axis (channels last, e.g. after a
    ``Permute`` to ``[H, W, C]``); ``gamma: [dim]``. Shape unchanged; params ``dim``."""

    torch_module = "LayerScale"
    axis = -1
    dim = Arg("int", None, "Size of the last axis (channels last); inferred when omitted.", ge=1, nullable=True)
    init_values = Arg("float", 1e-5, "Initial value of every gamma.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape, self._check_dim(shape))

    def saved(self, shape, out, batch):
        """``x * gamma`` keeps x for gamma's gradient (gamma itself is a parameter)."""
        return (Saved("input", when="params"),)


@register
class LayerScale2d(_ChannelParam):
    """timm's ``LayerScale2d``: ``x * gamma`` per channel of ``[C, H, W]``; ``gamma: [dim]``.
    Shape unchanged; params ``dim``."""

    torch_module = "LayerScale2d"
    rank = 2
    dim = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True)
    init_values = Arg("float", 1e-5, "Initial value of every gamma.")
    flat = Arg("bool", True, "gamma stored as [dim] (timm.layers.LayerScale2d); false: as [dim, 1, 1] "
               "(FastViT's own LayerScale2d).")

    @classmethod
    def values_from_torch(cls, module) -> dict:
        gamma = getattr(module, "gamma", None)
        return {"flat": gamma.dim() == 1} if gamma is not None else {}

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        return Inference(shape, self._check_dim(shape))

    def saved(self, shape, out, batch):
        return (Saved("input", when="params"),)


@register
class Scale(_ChannelParam):
    """timm MetaFormer's ``Scale`` (PoolFormer, ConvFormer): ``x * scale`` per channel;
    ``scale: [dim]`` viewed ``[dim, 1, 1]`` (``use_nchw``, input ``[C, H, W]``) or over the last
    axis. Shape unchanged; params ``dim`` (frozen with ``trainable_scale: false``)."""

    torch_module = "Scale"
    dim = Arg("int", None, "Channels; inferred from the input when omitted.", ge=1, nullable=True)
    init_value = Arg("float", 1.0, "Initial value of every scale.")
    use_nchw = Arg("bool", True, "Channels first ([C, H, W]); false: the last axis.")

    def channel_axis(self) -> int:
        return 0 if self.use_nchw else -1

    def infer(self, shape: Shape, batch: int) -> Inference:
        if self.use_nchw:
            self.expect_rank(shape, (3,), INPUT_LAYOUT[2], "use_nchw: true scales [C, H, W]; set use_nchw: false "
                             "to scale the last axis")
        return Inference(shape, self._check_dim(shape))

    def saved(self, shape, out, batch):
        return (Saved("input", when="params"),)


class _ScalarAffine(_Timm):
    """Scalar parameters ``scale`` and ``bias`` (shape [1] each)."""

    pointwise = True
    scale_value = Arg("float", 1.0, "Initial scale.")
    bias_value = Arg("float", 0.0, "Initial bias.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape, 2)


@register
class StarReLU(_ScalarAffine):
    """timm MetaFormer's ``StarReLU``: ``scale * relu(x)**2 + bias`` (scalar ``scale``, ``bias``;
    child ``relu`` has no parameters). Shape unchanged; params 2."""

    torch_module = "StarReLU"

    def saved(self, shape, out, batch):
        """relu's output (for the input's gradient) and its square (for scale's)."""
        n = _n(batch, shape)
        return (Saved("new", n, when="input"), Saved("new", n, when="params"))


@register
class SquaredReLU(_Timm):
    """timm MetaFormer's ``SquaredReLU`` (CAFormer / ConvFormer heads): ``relu(x) ** 2`` (child
    ``relu`` has no parameters). Shape unchanged; no parameters."""

    torch_module = "SquaredReLU"
    pointwise = True
    inplace = Arg("bool", False, "Let the relu overwrite its input.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)

    def saved(self, shape, out, batch):
        """relu's output (relu's and the square's backward both read it)."""
        return (Saved("new", _n(batch, shape)),)


@register
class LearnableAffineBlock(_ScalarAffine):
    """timm HGNetV2's ``LearnableAffineBlock``: ``scale * x + bias`` (scalar ``scale``, ``bias``).
    Shape unchanged; params 2."""

    torch_module = "LearnableAffineBlock"

    def saved(self, shape, out, batch):
        return (Saved("input", when="params"),)


@register
class GammaAct(_Timm):
    """timm NFNet's ``GammaAct``: ``act(x) * gamma`` with a constant gamma (``act_type``: relu,
    silu / swish, gelu, sigmoid, tanh). Shape unchanged; no parameters."""

    torch_module = "GammaAct"
    pointwise = True
    act_type = Arg("choice", "relu", "The activation.", choices=("relu", "silu", "swish", "gelu", "sigmoid", "tanh"))
    gamma = Arg("float", 1.0, "Constant factor of the activation's output.")

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """timm keeps the activation as a function (``act_fn``), not its name."""
        name = getattr(getattr(module, "act_fn", None), "__name__", None)
        return {"act_type": name} if name in cls.ARGS["act_type"].choices else {}

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)

    def saved(self, shape, out, batch):
        """The activation keeps its input (silu, gelu) or its own output (relu, sigmoid, tanh:
        a tensor before the product, not the layer's output); the product by a constant keeps
        nothing."""
        if self.act_type in ("silu", "swish", "gelu"):
            return (Saved("input"),)
        return (Saved("new", _n(batch, shape)),)


@register
class Multiply(_Timm):
    """``x * value``, a constant factor (no parameters): NFNet's alpha / beta / attn_gain.
    Shape unchanged."""

    torch_module = "Multiply"
    pointwise = True
    value = Arg("float", doc="The constant factor.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"value": self.value}


# ------------------------------------------------------------------ weight-standardised convs
def _drop_args(cls, *keys):
    for k in keys:
        cls.ARGS.pop(k, None)
    return cls


class _StdConv(Conv2d):
    """Conv2d whose filters are standardised (per output channel: zero mean, unit variance,
    ``eps`` added to the variance) before the convolution; timm's default padding."""

    family = "timm"
    torch_order = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                   "groups", "bias", "eps")
    padding_mode = "zeros"  # not an argument of timm's class
    weight = None
    padding = Arg("axes", None, "Zero-padding per side; null (timm's default): ((stride-1) + dilation*(kernel_size-1))"
                  " // 2 per axis; 'same' (stride 1) or 'valid'.", ge=0, words=("same", "valid"), nullable=True)
    eps = Arg("float", 1e-6, "Added to each filter's variance.", ge=0)

    def resolved_padding(self) -> tuple[tuple[int, int], ...]:
        if self.padding is None:
            pads = [((s - 1) + d * (k - 1)) // 2 for k, s, d in
                    zip(self._axes("kernel_size"), self._axes("stride"), self._axes("dilation"))]
            return tuple((p, p) for p in pads)
        return super().resolved_padding()

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        kw = {"in_channels": shape[0], "out_channels": self.out_channels, "kernel_size": self.kernel_size,
              **{k: v for k, v in self.args().items() if k != "in_channels"}}
        return {k: tuple(kw[k]) if isinstance(kw[k], list) else kw[k] for k in self.torch_order if k in kw}

    def infer(self, shape: Shape, batch: int) -> Inference:
        inf = super().infer(shape, batch)
        fan_in = (shape[0] // self.groups) * F.prod(self._axes("kernel_size"))
        if fan_in == 1:
            raise LayerError(f"{self.type} standardises each filter over its in_channels/groups x kernel values: "
                             f"{shape[0]}/{self.groups} x {self.kernel_size} = 1 value, and torch's batch_norm "
                             "refuses one value per channel (even in eval)",
                             "use a kernel larger than 1x1, more input channels per group, or a plain Conv2d",
                             "kernel_size")
        return inf

    def weight_numel(self, c_in: int) -> int:
        return self.out_channels * (c_in // self.groups) * F.prod(self._axes("kernel_size"))

    def saved(self, shape, out, batch):
        """Conv2d's, plus the standardised weight (a new tensor) and the per-filter mean and
        inverse std of batch_norm (only for the weight's gradient)."""
        c = self.out_channels
        return super().saved(shape, out, batch) + (Saved("new", self.weight_numel(shape[0])),
                                                   Saved("new", c, when="params"), Saved("new", c, when="params"))

    def explain(self, shape: Shape) -> list[str]:
        return super().explain(shape) + [f"each of the {self.out_channels} filters standardised (eps {self.eps:g})"]


@register
class StdConv2d(_StdConv):
    """timm's ``StdConv2d`` (BiT, ResNetV2): a Conv2d with weight standardisation; ``bias``
    defaults to false. Input ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis
    ``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)`` (params and
    MACs as ``Conv2d``); ``padding: null`` is timm's ``((stride-1) + dilation*(kernel_size-1)) // 2``."""

    torch_module = "StdConv2d"
    bias = Arg("bool", False, "Add a learnable bias.")


@register
class ScaledStdConv2d(_StdConv):
    """timm's ``ScaledStdConv2d`` (NFNet, NF-ResNet): standardised filters scaled by
    ``gain * gamma / sqrt(fan_in)``; parameter ``gain: [C_out, 1, 1, 1]``. Input ``[C_in, H, W]``
    -> ``[C_out, H_out, W_out]``, per axis ``out = floor((in + 2*padding - dilation*(kernel_size-1)
    - 1)/stride + 1)`` (MACs as ``Conv2d``); params ``Conv2d``'s + ``C_out``."""

    torch_module = "ScaledStdConv2d"
    torch_order = _StdConv.torch_order[:-1] + ("gamma", "eps", "gain_init")
    bias = Arg("bool", True, "Add a learnable bias.")
    gamma = Arg("float", 1.0, "Constant factor of the scale gamma / sqrt(fan_in).")
    gain_init = Arg("float", 1.0, "Initial value of gain.")

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """timm keeps ``gamma`` only inside ``scale = gamma / sqrt(fan_in)``: the shortest
        gamma whose scale is that float exactly."""
        scale = getattr(module, "scale", None)
        weight = getattr(module, "weight", None)
        if not isinstance(scale, float) or weight is None:
            return {}
        import math

        fan_in = weight[0].numel()
        g = scale * fan_in ** 0.5
        lo = hi = g
        near = [g]
        for _ in range(4):  # a few floats either side: gamma * fan_in**-0.5 rounds
            lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
            near += [lo, hi]
        candidates = [float(f"{g:.{digits}g}") for digits in range(6, 18)] + near
        exact = [c for c in candidates if c * fan_in ** -0.5 == scale]
        return {"gamma": exact[0] if exact else g}

    def infer(self, shape: Shape, batch: int) -> Inference:
        inf = super().infer(shape, batch)
        return Inference(inf.output, inf.params + self.out_channels, inf.macs, inf.rf, inf.notes)

    def saved(self, shape, out, batch):
        """StdConv2d's plus ``gain * scale`` (batch_norm's weight)."""
        return super().saved(shape, out, batch) + (Saved("new", self.out_channels, when="params"),)


_drop_args(StdConv2d, "padding_mode", "weight")
_drop_args(ScaledStdConv2d, "padding_mode", "weight")


# ------------------------------------------------------------------ norms dividing by a statistic
class _Norm2d(_Timm):
    """A norm over ``[C, H, W]`` with per-channel parameters (``num_features`` inferred)."""

    rank = 2
    num_features = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                       inferred_from="channels")

    def _channels(self, shape: Shape) -> int:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        check_channels(self, self.num_features, shape[0], "num_features", shape)
        return shape[0]

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"num_features": shape[0], **{k: v for k, v in self.args().items() if k != "num_features"}}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; spatial sizes pass."""
        from ..rules import fixed, same

        return fixed(0, shape[0], inferred=self.num_features is None) if dim == 0 else same(dim)


@register
class GlobalResponseNorm(_ChannelParam):
    """timm's ``GlobalResponseNorm`` (GRN, ConvNeXt-V2): ``x + bias + weight * x * n``, ``n`` =
    the L2 norm over the spatial axes divided by its mean over channels (+ eps). Input
    ``[H, W, C]`` (``channels_last``, after a Permute; timm's MLP default) or ``[C, H, W]``;
    shape unchanged; params ``2*dim`` (``weight``, ``bias``)."""

    torch_module = "GlobalResponseNorm"
    dim = Arg("int", None, "Channels; inferred from the input when omitted.", ge=1, nullable=True)
    eps = Arg("float", 1e-6, "Added to the mean norm.", ge=0)
    channels_last = Arg("bool", True, "Input [H, W, C] (true) or [C, H, W] (false).")

    def channel_axis(self) -> int:
        return -1 if self.channels_last else 0

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """timm's GRN keeps the layout as ``channel_dim`` (-1 channels last, 1 channels first)."""
        dim = getattr(module, "channel_dim", None)
        return {} if dim is None else {"channels_last": dim == -1}

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), "[H, W, C]" if self.channels_last else "[C, H, W]")
        return Inference(shape, 2 * self._check_dim(shape))

    def saved(self, shape, out, batch):
        """For the input's gradient: the input (norm, product), the norms and the normalised
        norms per (sample, channel), the divisor per sample; for weight's: ``x * n``."""
        c = shape[self.channel_axis()]
        return (Saved("input", when="input"), Saved("new", batch * c, when="input"),
                Saved("new", batch * c, when="input"), Saved("new", batch, when="input"),
                Saved("new", _n(batch, shape), when="params"))

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input


@register
class EvoNorm2dB0(_Norm2d):
    """timm's ``EvoNorm2dB0``: ``x / max(sqrt(var_batch + eps), v * x + instance_std(x))`` per
    channel (the ``running_var`` buffer in eval), then ``* weight + bias``; without
    ``apply_act`` only the affine. ``[C, H, W]``, shape unchanged; params ``3*C`` (``2*C`` without apply_act)."""

    torch_module = "EvoNorm2dB0"
    apply_act = Arg("bool", True, "The normalising non-linearity (parameter v).")
    momentum = Arg("float", 0.1, "running_var momentum.")
    eps = Arg("float", 1e-3, "Added to the variances.", ge=0)

    def infer(self, shape: Shape, batch: int) -> Inference:
        c = self._channels(shape)
        notes = ()
        if self.apply_act and batch * F.prod(shape[1:]) == 1:
            notes = (Note(f"EvoNorm2dB0 in training divides by n - 1 = 0 (batch {batch} x {F.prod(shape[1:])} "
                          "position(s) per channel): its running_var becomes inf (eval works)",
                          "set batch: 2 or more in the spec, or normalise a larger map"),)
        return Inference(shape, (3 if self.apply_act else 2) * c, 0, KEEP, notes)

    def saved(self, shape, out, batch):
        """Training (float32): input, the batch std per channel, ``v*x + std``, the max and the
        quotient (for weight's gradient); the instance std for the input's."""
        if not self.apply_act:
            return (Saved("input", when="params"),)
        n = _n(batch, shape)
        return (Saved("input"), Saved("new", shape[0]), Saved("new", n), Saved("new", n),
                Saved("new", batch * shape[0], when="input"), Saved("new", n, when="params"))


@register
class EvoNorm2dS0(_Norm2d):
    """timm's ``EvoNorm2dS0``: ``x * sigmoid(v * x) / group_std(x)`` (with ``apply_act``), then
    ``* weight + bias``. Channels divisible by ``groups`` (or by ``group_size``, which sets
    groups = C / group_size). ``[C, H, W]``, shape unchanged; params ``3*C`` (``2*C`` without apply_act)."""

    torch_module = "EvoNorm2dS0"
    groups = Arg("int", 32, "Groups of the std (ignored when group_size is set).", ge=1)
    group_size = Arg("int", None, "Channels per group (sets groups = C / group_size).", ge=1, nullable=True)
    apply_act = Arg("bool", True, "The non-linearity x * sigmoid(v * x) and the division.")
    eps = Arg("float", 1e-5, "Added to the group variance.", ge=0)

    def n_groups(self, c: int) -> int:
        return c // self.group_size if self.group_size else self.groups

    def infer(self, shape: Shape, batch: int) -> Inference:
        c = self._channels(shape)
        if self.group_size and c % self.group_size:
            raise LayerError(f"EvoNorm2dS0: {c} channels are not divisible by group_size {self.group_size}",
                             "use a group_size that divides the channels", "group_size")
        if self.apply_act and not self.group_size and c % self.groups:
            raise LayerError(f"EvoNorm2dS0: {c} channels are not divisible by groups {self.groups}",
                             "use groups that divide the channels, or set group_size", "groups")
        return Inference(shape, (3 if self.apply_act else 2) * c)

    def saved(self, shape, out, batch):
        """(float32) input, sigmoid's output, the divisor, the quotient (for weight's
        gradient); for the input's: the numerator and the std per (sample, group)."""
        if not self.apply_act:
            return (Saved("input", when="params"),)
        return (Saved("input"), Saved("new", _n(batch, shape))) + self._divided(shape, batch)

    def _divided(self, shape, batch) -> tuple[Saved, ...]:
        """What ``numerator / group_std`` keeps: the numerator (for the input's gradient), the
        quotient (for weight's), and the divisor: the std expanded to the input's shape is a
        copy when there are several groups of several channels; otherwise the expansion is a
        view of the std per (sample, group), which is then kept once (measured)."""
        n, g = _n(batch, shape), self.n_groups(shape[0])
        std = batch * g
        divisor = (Saved("new", n), Saved("new", std, when="input")) if 1 < g < shape[0] else (Saved("new", std),)
        return divisor + (Saved("new", n, when="input"), Saved("new", n, when="params"))

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        from ..rules import fixed, same

        return fixed(0, shape[0]) if dim == 0 else same(dim)


@register
class EvoNorm2dS0a(EvoNorm2dS0):
    """timm's ``EvoNorm2dS0a`` (RegNetZ ``*_evos``): the group std of the input; ``x * sigmoid(v * x)``
    (with ``apply_act``); divided by that std (also without apply_act, unlike S0); then
    ``* weight + bias``. ``[C, H, W]``, shape unchanged; C divisible by the groups; params ``3*C``
    (``2*C`` without apply_act)."""

    torch_module = "EvoNorm2dS0a"
    eps = Arg("float", 1e-3, "Added to the group variance.", ge=0)

    def infer(self, shape: Shape, batch: int) -> Inference:
        inf = super().infer(shape, batch)
        if not self.apply_act and not self.group_size and shape[0] % self.groups:
            raise LayerError(f"EvoNorm2dS0a: {shape[0]} channels are not divisible by groups {self.groups} (its "
                             "group std is taken even without apply_act)",
                             "use groups that divide the channels, or set group_size", "groups")
        return inf

    def saved(self, shape, out, batch):
        """As EvoNorm2dS0 with apply_act (measured); without it the divisor (and the input, for
        the std's gradient) only for the input's gradient, the quotient for weight's."""
        if self.apply_act:
            return super().saved(shape, out, batch)
        divisor = tuple(Saved(d.what, d.numel, d.dtype, "input") for d in self._divided(shape, batch)[:-2])
        return (Saved("input", when="input"),) + divisor + (Saved("new", _n(batch, shape), when="params"),)


@register
class FilterResponseNormTlu2d(_Norm2d):
    """timm's ``FilterResponseNormTlu2d`` (FRN + TLU): ``max(x / rms(x) * weight + bias, tau)``,
    rms per sample and channel over H, W (+ eps); without ``apply_act`` no ``tau``.
    ``[C, H, W]``, shape unchanged; params ``3*C`` (``2*C``)."""

    torch_module = "FilterResponseNormTlu2d"
    apply_act = Arg("bool", True, "The thresholded linear unit (parameter tau).")
    eps = Arg("float", 1e-5, "Added to the mean square.", ge=0)
    rms = Arg("bool", True, "Kept for timm's signature (the norm is always the rms).")

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape, (3 if self.apply_act else 2) * self._channels(shape))

    def saved(self, shape, out, batch):
        """(float32) for the input's gradient: the input and the inverse rms per (sample,
        channel); for weight's: ``x / rms``; the TLU keeps its input."""
        n = _n(batch, shape)
        return (Saved("input", when="input"), Saved("new", batch * shape[0], when="input"),
                Saved("new", n, when="params")) + ((Saved("new", n),) if self.apply_act else ())


@register
class SimpleNorm2d(_Timm):
    """timm's ``SimpleNorm2d``: at each position ``x / sqrt(var_C(x) + eps) * weight``, var over
    the channels with torch.var's default (unbiased) estimate, nothing subtracted from x.
    ``[C, H, W]``, shape unchanged (C ≥ 2: the unbiased variance of one value is nan); params ``C`` with affine."""

    torch_module = "SimpleNorm2d"
    rank = 2
    channels = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True)
    eps = Arg("float", 1e-6, "Added to the variance.", ge=0)
    affine = Arg("bool", True, "Learnable per-channel weight.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        check_channels(self, self.channels, shape[0], "channels", shape)
        notes = () if shape[0] > 1 else (Note("SimpleNorm2d over 1 channel: the unbiased variance of one value is "
                                              "nan, so every output is nan", "normalise 2 or more channels"),)
        return Inference(shape, shape[0] if self.affine else 0, 0, KEEP, notes)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"channels": shape[0], **{k: v for k, v in self.args().items() if k != "channels"}}

    def saved(self, shape, out, batch):
        """For the input's gradient: the input and the inverse std per position; for weight's:
        the normalised map."""
        return (Saved("input", when="input"), Saved("new", _n(batch, shape[1:]), when="input"),
                Saved("new", _n(batch, shape), when="params"))

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return False  # permuted back to channels first: a strided view

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        from ..rules import fixed, same

        return fixed(0, shape[0], inferred=self.channels is None) if dim == 0 and self.affine else same(dim)


@register
class RmsNorm2d(SimpleNorm2d):
    """timm's ``RmsNorm2d`` (ConvNeXt ``*_rms``): at each position ``x / sqrt(mean_C(x²) + eps) *
    weight``. ``[C, H, W]``; shape unchanged; params ``C`` with affine."""

    torch_module = "RmsNorm2d"

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        check_channels(self, self.channels, shape[0], "channels", shape)
        return Inference(shape, shape[0] if self.affine else 0)

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input


# ------------------------------------------------------------------ rearrangements
@register
class SpaceToDepth(_Timm):
    """timm's ``SpaceToDepth`` (TResNet stem): ``[C, H, W]`` -> ``[C*bs*bs, H/bs, W/bs]`` (H and
    W divisible by bs) with channel ``(i*bs + j)*C + c`` = ``x[c, bs*h + i, bs*w + j]``
    (``PixelUnshuffle`` orders the same values ``c*bs*bs + i*bs + j``). No parameters."""

    torch_module = "SpaceToDepth"
    block_size = Arg("int", 4, "Spatial reduction factor bs (timm asserts 4; any bs ≥ 1 computes).", ge=1)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        r = self.block_size
        bad = [f"{ax} = {n}" for ax, n in zip("HW", shape[1:]) if n % r]
        if bad:
            raise LayerError(f"SpaceToDepth needs H and W divisible by block_size {r}: {', '.join(bad)}",
                             f"make the incoming H and W multiples of {r}", "block_size")
        return Inference((shape[0] * r * r, shape[1] // r, shape[2] // r), 0, 0, ((r, r, 0), (r, r, 0)))

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return True

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        from ..rules import Case, Rule, affine

        r = self.block_size
        if dim == 0:
            return affine(0, r * r)
        return Rule((Case(1, 0, r, mod=r, res=0),), dim)

    def explain(self, shape: Shape) -> list[str]:
        r = self.block_size
        return [f"C: {shape[0]} * {r}² = {shape[0] * r * r}"] + [f"{ax}: {n} / {r} = {n // r}"
                                                                for ax, n in zip("HW", shape[1:])]


@register
class Slice(_Timm):
    """A slice of one axis: ``x.narrow(dim, start, length)`` (a view; ``dim`` of the batched
    tensor, 1 = channels), e.g. the channel splits of Res2Net / CSP / GhostNet. Output: that
    axis becomes ``length`` (``[C, H, W]`` -> ``[length, H, W]`` for ``dim: 1``); ``start + length``
    must fit the axis."""

    torch_module = "Slice"
    dim = Arg("int", 1, "Axis of the batched tensor (1: channels; not 0, the batch).")
    start = Arg("int", 0, "First index kept.", ge=0)
    length = Arg("int", doc="How many indices are kept.", ge=1)

    def _axis(self, shape: Shape) -> int:
        ndim = len(shape) + 1
        if not -ndim <= self.dim < ndim or self.dim % ndim == 0:
            raise LayerError(f"Slice dim must be an axis of the sample: 1 ≤ dim ≤ {ndim - 1} (or negative), "
                             f"received dim: {self.dim}", "use dim: 1 for channels", "dim")
        return self.dim % ndim - 1

    def infer(self, shape: Shape, batch: int) -> Inference:
        a = self._axis(shape)
        if self.start + self.length > shape[a]:
            raise LayerError(f"Slice {self.start}:{self.start + self.length} does not fit the axis of size {shape[a]} "
                             f"(input {shape_str(shape)})",
                             f"use start + length ≤ {shape[a]}", "length", fix=None)
        out = list(shape)
        out[a] = self.length
        if a == 0 or len(shape) < 2:
            rf = KEEP
        else:
            rf = tuple((1, 1, -self.start if i == a - 1 else 0) for i in range(len(shape) - 1))
        return Inference(tuple(out), 0, 0, rf if a != 0 else KEEP)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"dim": self.dim, "start": self.start, "length": self.length}

    def aliases_input(self, training: bool = True) -> bool:
        return True

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return False

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The sliced axis: any size ≥ start + length gives length; others pass."""
        from ..rules import Case, Rule, same

        if dim == self._axis(shape):
            return Rule((Case(0, self.length, 1, self.start + self.length),), dim)
        return same(dim)

    def explain(self, shape: Shape) -> list[str]:
        return [f"keep indices {self.start} .. {self.start + self.length - 1} of axis {self.dim}"]

