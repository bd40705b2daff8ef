"""Small torch modules for layer types that torch.nn lacks (torchvision's names).

Plain torch only (no cnnshape imports): ``cnnshape export --to python`` copies the source
of each class a model uses into the exported file, so that file stays self-contained.
A layer class names its module here with ``torch_module = "<ClassName>"``.
"""

import torch
from torch import nn


class Permute(nn.Module):
    """``torch.permute(x, dims)``, as ``torchvision.ops.Permute`` (dims of the batched tensor)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return torch.permute(x, self.dims)


class StochasticDepth(nn.Module):
    """Randomly drops the whole input of a residual branch, as ``torchvision.ops.StochasticDepth``:
    in training, each row (``mode='row'``) or the whole batch (``mode='batch'``) is zeroed with
    probability ``p`` and the survivors are scaled by ``1/(1-p)``; identity in eval."""

    def __init__(self, p, mode):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x):
        if self.p < 0.0 or self.p > 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {self.p}")
        if self.mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {self.mode}")
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``(N, C, H, W)``, as ``torchvision.models.convnext.LayerNorm2d``
    (state_dict keys ``weight``/``bias``)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


# ------------------------------------------------------------------ timm's layers
# Plain copies of timm 1.0's modules (same parameter names and shapes, hence state_dict
# keys; same arithmetic), so a timm model's weights load into the compiled spec strictly.

def _get_padding(kernel_size, stride, dilation):
    """timm's ``get_padding``: ``((stride - 1) + dilation * (kernel_size - 1)) // 2`` per axis."""
    return tuple(((s - 1) + d * (k - 1)) // 2 for k, s, d in zip(kernel_size, stride, dilation))


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class StdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation, as ``timm.layers.StdConv2d`` (BiT): each filter is
    normalised to zero mean and unit variance (``eps`` added) before the convolution;
    ``padding=None`` is timm's default padding ``((stride-1) + dilation*(k-1)) // 2``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, dilation=1, groups=1,
                 bias=False, eps=1e-6):
        if padding is None:
            padding = _get_padding(_pair(kernel_size), _pair(stride), _pair(dilation))
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.eps = eps

    def forward(self, x):
        weight = nn.functional.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                                          training=True, momentum=0., eps=self.eps).reshape_as(self.weight)
        return nn.functional.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ScaledStdConv2d(nn.Conv2d):
    """Conv2d with scaled weight standardisation, as ``timm.layers.ScaledStdConv2d`` (NFNet):
    standardised filters times ``gain * gamma / sqrt(fan_in)`` (``gain``: a learned
    ``[out_channels, 1, 1, 1]`` parameter)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, dilation=1, groups=1,
                 bias=True, gamma=1.0, eps=1e-6, gain_init=1.0):
        if padding is None:
            padding = _get_padding(_pair(kernel_size), _pair(stride), _pair(dilation))
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps = eps
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1, 1), float(gain_init)))

    def forward(self, x):
        weight = nn.functional.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                                          weight=(self.gain * self.scale).view(-1), training=True, momentum=0.,
                                          eps=self.eps).reshape_as(self.weight)
        return nn.functional.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class LayerScale(nn.Module):
    """``x * gamma`` with channels last (``gamma``: ``[dim]``), as ``timm.layers.LayerScale``."""

    def __init__(self, dim, init_values=1e-5, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x):
        return x.mul_(self.gamma) if self.inplace else x * self.gamma


class LayerScale2d(nn.Module):
    """``x * gamma`` per channel of ``(N, C, H, W)`` (``gamma``: ``[dim]``), as ``timm.layers.LayerScale2d``."""

    def __init__(self, dim, init_values=1e-5, inplace=False, flat=True):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(torch.full((dim,) if flat else (dim, 1, 1), float(init_values)))

    def forward(self, x):
        gamma = self.gamma.view(1, -1, 1, 1)
        return x.mul_(gamma) if self.inplace else x * gamma


class Scale(nn.Module):
    """``x * scale`` per channel (``scale``: ``[dim]``, viewed ``[dim, 1, 1]`` with ``use_nchw``),
    as timm's MetaFormer ``Scale`` (PoolFormer, ConvFormer's layer and residual scales)."""

    def __init__(self, dim, init_value=1.0, trainable=True, use_nchw=True):
        super().__init__()
        self.shape = (dim, 1, 1) if use_nchw else (dim,)
        self.scale = nn.Parameter(init_value * torch.ones(dim), requires_grad=trainable)

    def forward(self, x):
        return x * self.scale.view(self.shape)


class SquaredReLU(nn.Module):
    """``relu(x) ** 2``, as timm's MetaFormer ``SquaredReLU``."""

    def __init__(self, inplace=False):
        super().__init__()
        self.relu = nn.ReLU(inplace=inplace)

    def forward(self, x):
        return torch.square(self.relu(x))


class StarReLU(nn.Module):
    """``scale * relu(x) ** 2 + bias`` with scalar parameters ``scale`` and ``bias`` (shape [1]),
    as timm's MetaFormer ``StarReLU`` (ConvFormer, CAFormer)."""

    def __init__(self, scale_value=1.0, bias_value=0.0, scale_learnable=True, bias_learnable=True, inplace=False):
        super().__init__()
        self.inplace = inplace
        self.relu = nn.ReLU(inplace=inplace)
        self.scale = nn.Parameter(scale_value * torch.ones(1), requires_grad=scale_learnable)
        self.bias = nn.Parameter(bias_value * torch.ones(1), requires_grad=bias_learnable)

    def forward(self, x):
        return self.scale * self.relu(x) ** 2 + self.bias


class LearnableAffineBlock(nn.Module):
    """``scale * x + bias`` with scalar parameters (shape [1]), as timm's HGNetV2 ``LearnableAffineBlock``."""

    def __init__(self, scale_value=1.0, bias_value=0.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(scale_value)]))
        self.bias = nn.Parameter(torch.tensor([float(bias_value)]))

    def forward(self, x):
        return self.scale * x + self.bias


class GlobalResponseNorm(nn.Module):
    """Global response normalisation (ConvNeXt-V2), as ``timm.layers.GlobalResponseNorm``:
    ``x + bias + weight * x * n`` with ``n = ||x||_spatial / (mean over channels + eps)``;
    ``channels_last``: the input is ``(N, H, W, C)``, else ``(N, C, H, W)``."""

    def __init__(self, dim, eps=1e-6, channels_last=True):
        super().__init__()
        self.eps = eps
        if channels_last:
            self.spatial_dim, self.channel_dim, self.wb_shape = (1, 2), -1, (1, 1, 1, -1)
        else:
            self.spatial_dim, self.channel_dim, self.wb_shape = (2, 3), 1, (1, -1, 1, 1)
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        x_g = x.norm(p=2, dim=self.spatial_dim, keepdim=True)
        x_n = x_g / (x_g.mean(dim=self.channel_dim, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(self.wb_shape), self.weight.view(self.wb_shape), x * x_n)


def _group_std(x, groups, eps):
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w)
    std = x.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(eps).sqrt().to(x.dtype)
    return std.expand(x.shape).reshape(b, c, h, w)


class EvoNorm2dS0(nn.Module):
    """EvoNorm-S0, as ``timm.layers.EvoNorm2dS0``: ``x * sigmoid(v * x) / group_std(x)`` (with
    ``apply_act``), then ``* weight + bias`` per channel; ``groups`` or ``group_size``."""

    def __init__(self, num_features, groups=32, group_size=None, apply_act=True, eps=1e-5):
        super().__init__()
        self.apply_act = apply_act
        self.groups = num_features // group_size if group_size else groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.v = nn.Parameter(torch.ones(num_features)) if apply_act else None

    def forward(self, x):
        v_shape = (1, -1, 1, 1)
        if self.v is not None:
            v = self.v.view(v_shape).to(x.dtype)
            x = x * (x * v).sigmoid() / _group_std(x, self.groups, self.eps)
        return x * self.weight.view(v_shape).to(x.dtype) + self.bias.view(v_shape).to(x.dtype)


class EvoNorm2dS0a(EvoNorm2dS0):
    """EvoNorm-S0a, as ``timm.layers.EvoNorm2dS0a`` (RegNetZ ``*_evos``): the group std of the
    input, ``x * sigmoid(v * x)`` (with ``apply_act``), divided by that std (always), then
    ``* weight + bias``."""

    def __init__(self, num_features, groups=32, group_size=None, apply_act=True, eps=1e-3):
        super().__init__(num_features, groups, group_size, apply_act, eps)

    def forward(self, x):
        v_shape = (1, -1, 1, 1)
        d = _group_std(x, self.groups, self.eps)
        if self.v is not None:
            v = self.v.view(v_shape).to(x.dtype)
            x = x * (x * v).sigmoid()
        x = x / d
        return x * self.weight.view(v_shape).to(x.dtype) + self.bias.view(v_shape).to(x.dtype)


class EvoNorm2dB0(nn.Module):
    """EvoNorm-B0, as ``timm.layers.EvoNorm2dB0``: ``x / max(sqrt(var + eps), v * x + instance_std(x))``
    (batch variance in training, the ``running_var`` buffer in eval), then ``* weight + bias``."""

    def __init__(self, num_features, apply_act=True, momentum=0.1, eps=1e-3):
        super().__init__()
        self.apply_act = apply_act
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.v = nn.Parameter(torch.ones(num_features)) if apply_act else None
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        v_shape = (1, -1, 1, 1)
        if self.v is not None:
            if self.training:
                var = x.float().var(dim=(0, 2, 3), unbiased=False)
                n = x.numel() / x.shape[1]
                self.running_var.copy_(self.running_var * (1 - self.momentum) + var.detach() * self.momentum * (n / (n - 1)))
            else:
                var = self.running_var
            left = var.add(self.eps).sqrt_().to(x.dtype).view(v_shape).expand_as(x)
            v = self.v.to(x.dtype).view(v_shape)
            std = x.float().var(dim=(2, 3), unbiased=False, keepdim=True).add(self.eps).sqrt().to(x.dtype)
            right = x * v + std.expand(x.shape)
            x = x / left.max(right)
        return x * self.weight.to(x.dtype).view(v_shape) + self.bias.to(x.dtype).view(v_shape)


class FilterResponseNormTlu2d(nn.Module):
    """Filter response normalisation with a thresholded linear unit, as
    ``timm.layers.FilterResponseNormTlu2d``: ``max(x / rms(x) * weight + bias, tau)`` (rms over
    H, W per sample and channel; without ``apply_act`` no ``tau``)."""

    def __init__(self, num_features, apply_act=True, eps=1e-5, rms=True):
        super().__init__()
        self.apply_act = apply_act
        self.rms = rms
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.tau = nn.Parameter(torch.zeros(num_features)) if apply_act else None

    def forward(self, x):
        v_shape = (1, -1, 1, 1)
        inv = x.square().float().mean(dim=(2, 3), keepdim=True).add(self.eps).rsqrt().to(x.dtype)
        x = x * inv.expand(x.shape)
        x = x * self.weight.view(v_shape).to(dtype=x.dtype) + self.bias.view(v_shape).to(dtype=x.dtype)
        return torch.maximum(x, self.tau.reshape(v_shape).to(dtype=x.dtype)) if self.tau is not None else x


class SimpleNorm2d(nn.Module):
    """timm's ``SimpleNorm2d``: ``x / sqrt(var + eps)`` over the channels at each position
    (torch.var's default unbiased estimate, no mean subtracted from x), times ``weight``."""

    def __init__(self, channels, eps=1e-6, affine=True):
        super().__init__()
        self.normalized_shape = (channels,)
        self.eps = eps
        self.elementwise_affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        v = torch.var(x, dim=(-1,), keepdim=True)
        x = x * torch.rsqrt(v + self.eps)
        if self.weight is not None:
            x = x * self.weight
        return x.permute(0, 3, 1, 2)


class SpaceToDepth(nn.Module):
    """``(N, C, H, W) -> (N, C*bs*bs, H/bs, W/bs)`` with the channel order of
    ``timm.layers.SpaceToDepth`` (TResNet): channel ``(i*bs + j)*C + c`` holds ``x[c, bs*h + i, bs*w + j]``
    (PixelUnshuffle orders them ``c*bs*bs + i*bs + j``)."""

    def __init__(self, block_size=4):
        super().__init__()
        self.bs = block_size

    def forward(self, x):
        n, c, h, w = x.size()
        x = x.view(n, c, h // self.bs, self.bs, w // self.bs, self.bs)
        x = x.permute(0, 3, 5, 1, 2, 4).contiguous()
        return x.view(n, c * self.bs * self.bs, h // self.bs, w // self.bs)


class Slice(nn.Module):
    """``x.narrow(dim, start, length)``: a slice along one axis of the batched tensor (a view),
    e.g. channels ``start .. start+length-1`` with ``dim=1``."""

    def __init__(self, dim, start, length):
        super().__init__()
        self.dim, self.start, self.length = dim, start, length

    def forward(self, x):
        return x.narrow(self.dim, self.start, self.length)

    def extra_repr(self):
        return f"dim={self.dim}, start={self.start}, length={self.length}"


_GAMMA_ACTS = {"relu": nn.functional.relu, "silu": nn.functional.silu, "swish": nn.functional.silu,
               "gelu": nn.functional.gelu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class GammaAct(nn.Module):
    """``act(x) * gamma`` (a constant), as timm's NFNet ``GammaAct`` (``act_type``: relu, silu /
    swish, gelu, sigmoid, tanh)."""

    def __init__(self, act_type="relu", gamma=1.0):
        super().__init__()
        self.act_type = act_type
        self.gamma = gamma

    def forward(self, x):
        return _GAMMA_ACTS[self.act_type](x) * self.gamma

    def extra_repr(self):
        return f"act_type={self.act_type!r}, gamma={self.gamma}"


class Multiply(nn.Module):
    """``x * value`` (a constant; no parameters): NFNet's alpha / beta / attn_gain."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x * self.value

    def extra_repr(self):
        return f"value={self.value}"


class RmsNorm2d(nn.Module):
    """timm's ``RmsNorm2d``: ``x / sqrt(mean_C(x²) + eps) * weight`` at each position of ``(N, C, H, W)``."""

    def __init__(self, channels, eps=1e-6, affine=True):
        super().__init__()
        self.normalized_shape = (channels,)
        self.eps = eps
        self.elementwise_affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        v = torch.mean(x.pow(2), dim=1, keepdim=True)
        x = x * torch.rsqrt(v + self.eps)
        if self.weight is not None:
            x = x * self.weight.reshape(1, -1, 1, 1)
        return x


# ------------------------------------------------------------------ TF "SAME" padding (timm's *Same)
# Each pads its input as timm's ``pad_same`` does (the total ``max((ceil(n/s)-1)*s + d*(k-1) + 1 - n, 0)``
# per axis, the odd pixel after), inline so that an exported file needs no helper.

class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from each input's size, as
    ``timm.layers.Conv2dSame`` (F.pad, then a convolution without padding)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    def forward(self, x):
        pads = []
        for n, k, s, d in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        x = nn.functional.pad(x, pads)
        return nn.functional.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.groups)


class StdConv2dSame(nn.Conv2d):
    """``StdConv2d`` with TensorFlow "SAME" padding, as ``timm.layers.StdConv2dSame``: static
    (the convolution's own symmetric padding) when the stride is 1 and ``dilation*(k-1)`` even,
    else F.pad per input size."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=False,
                 eps=1e-6):
        k, s, d = (tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in (kernel_size, stride, dilation))
        static = all(si == 1 and (di * (ki - 1)) % 2 == 0 for ki, si, di in zip(k, s, d))
        padding = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d)) if static else 0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias)
        self.same_pad = not static
        self.eps = eps

    def forward(self, x):
        if self.same_pad:
            pads = []
            for n, k, s, d in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
                total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                pads += [total // 2, total - total // 2]
            x = nn.functional.pad(x, pads)
        weight = nn.functional.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                                          training=True, momentum=0., eps=self.eps).reshape_as(self.weight)
        return nn.functional.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ScaledStdConv2dSame(nn.Conv2d):
    """``ScaledStdConv2d`` with TensorFlow "SAME" padding, as ``timm.layers.ScaledStdConv2dSame``
    (NFNet ``dm_nfnet_*``): static when the stride is 1 and ``dilation*(k-1)`` even, else F.pad."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=True,
                 gamma=1.0, eps=1e-6, gain_init=1.0):
        k, s, d = (tuple(v) if isinstance(v, (list, tuple)) else (v, v) for v in (kernel_size, stride, dilation))
        static = all(si == 1 and (di * (ki - 1)) % 2 == 0 for ki, si, di in zip(k, s, d))
        padding = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d)) if static else 0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.same_pad = not static
        self.eps = eps
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1, 1), float(gain_init)))

    def forward(self, x):
        if self.same_pad:
            pads = []
            for n, k, s, d in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
                total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                pads += [total // 2, total - total // 2]
            x = nn.functional.pad(x, pads)
        weight = nn.functional.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                                          weight=(self.gain * self.scale).view(-1), training=True, momentum=0.,
                                          eps=self.eps).reshape_as(self.weight)
        return nn.functional.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    """MaxPool2d with TensorFlow "SAME" padding (``-inf``), as ``timm.layers.MaxPool2dSame``."""

    def __init__(self, kernel_size, stride=None, dilation=1, ceil_mode=False):
        kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size, kernel_size)
        stride = kernel_size if stride is None else stride
        stride = tuple(stride) if isinstance(stride, (list, tuple)) else (stride, stride)
        dilation = tuple(dilation) if isinstance(dilation, (list, tuple)) else (dilation, dilation)
        super().__init__(kernel_size, stride, (0, 0), dilation, ceil_mode)

    def forward(self, x):
        pads = []
        for n, k, s, d in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], self.dilation[::-1]):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        x = nn.functional.pad(x, pads, value=-float("inf"))
        return nn.functional.max_pool2d(x, self.kernel_size, self.stride, (0, 0), self.dilation, self.ceil_mode)


class AvgPool2dSame(nn.AvgPool2d):
    """AvgPool2d with TensorFlow "SAME" padding (zeros, always counted), as
    ``timm.layers.AvgPool2dSame``."""

    def __init__(self, kernel_size, stride=None, ceil_mode=False, count_include_pad=True):
        kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size, kernel_size)
        stride = kernel_size if stride is None else stride
        stride = tuple(stride) if isinstance(stride, (list, tuple)) else (stride, stride)
        super().__init__(kernel_size, stride, (0, 0), ceil_mode, count_include_pad)

    def forward(self, x):
        pads = []
        for n, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        x = nn.functional.pad(x, pads)
        return nn.functional.avg_pool2d(x, self.kernel_size, self.stride, (0, 0), self.ceil_mode,
                                        self.count_include_pad)


# ------------------------------------------------------------------ split attention (ResNeSt), selective kernel (SKNet)
class SplitAttn(nn.Module):
    """timm's ``SplitAttn`` (ResNeSt's split attention), same children and arithmetic: ``conv``
    (``radix`` splits of ``out_channels``, grouped ``groups * radix``), ``bn0``, ``act0``, a
    global average of the splits' sum, ``fc1``, ``bn1``, ``act1``, ``fc2``, a softmax across the
    splits (sigmoid for radix 1), the splits summed with those weights. ``norm_layer``:
    ``"BatchNorm2d"`` or None (Identity); ``act_layer``: a torch.nn activation's name."""

    def __init__(self, in_channels, out_channels=None, kernel_size=3, stride=1, padding=None, dilation=1, groups=1,
                 bias=False, radix=2, rd_ratio=0.25, rd_channels=None, rd_divisor=8, act_layer="ReLU",
                 norm_layer=None):
        super().__init__()
        out_channels = out_channels or in_channels
        self.radix = radix
        self.cardinality = groups
        mid_chs = out_channels * radix
        if rd_channels is None:  # timm's make_divisible(in_channels * radix * rd_ratio, min_value=32)
            v = in_channels * radix * rd_ratio
            attn_chs = max(32, int(v + rd_divisor / 2) // rd_divisor * rd_divisor)
            attn_chs += rd_divisor if attn_chs < 0.9 * v else 0
        else:
            attn_chs = rd_channels * radix
        padding = kernel_size // 2 if padding is None else padding
        act = getattr(nn, act_layer)
        self.conv = nn.Conv2d(in_channels, mid_chs, kernel_size, stride, padding, dilation, groups=groups * radix,
                              bias=bias)
        self.bn0 = nn.BatchNorm2d(mid_chs) if norm_layer else nn.Identity()
        self.act0 = act(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, attn_chs, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn_chs) if norm_layer else nn.Identity()
        self.act1 = act(inplace=True)
        self.fc2 = nn.Conv2d(attn_chs, mid_chs, 1, groups=groups)

    def forward(self, x):
        x = self.act0(self.bn0(self.conv(x)))
        B, RC, H, W = x.shape
        if self.radix > 1:
            x = x.reshape((B, self.radix, RC // self.radix, H, W))
            x_gap = x.sum(dim=1)
        else:
            x_gap = x
        x_gap = self.act1(self.bn1(self.fc1(x_gap.mean((2, 3), keepdim=True))))
        x_attn = self.fc2(x_gap)
        if self.radix > 1:  # timm's RadixSoftmax
            x_attn = x_attn.view(B, self.cardinality, self.radix, -1).transpose(1, 2)
            x_attn = nn.functional.softmax(x_attn, dim=1).reshape(B, -1)
        else:
            x_attn = torch.sigmoid(x_attn)
        x_attn = x_attn.view(B, -1, 1, 1)
        if self.radix > 1:
            out = (x * x_attn.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1)
        else:
            out = x * x_attn
        return out.contiguous()


class SelectiveKernel(nn.Module):
    """timm's ``SelectiveKernel`` (SKNet), same children and arithmetic: ``paths.i`` (``conv``
    with timm's padding ``((stride-1) + dilation*(k-1)) // 2``, ``bn`` then ReLU), each on its
    share of the input channels (``split_input``) or on all of them; ``attn`` (``fc_reduce``,
    ``bn``, ``act``, ``fc_select``) on the global average of the paths' sum; a softmax across
    the paths weighs them. ``keep_3x3``: every kernel 3x3, a larger one as dilation."""

    def __init__(self, in_channels, out_channels=None, kernel_size=None, stride=1, dilation=1, groups=1,
                 rd_ratio=1. / 16, rd_channels=None, rd_divisor=8, keep_3x3=True, split_input=True):
        from collections import OrderedDict

        super().__init__()
        out_channels = out_channels or in_channels
        kernel_size = kernel_size or [3, 5]
        if not isinstance(kernel_size, list):
            kernel_size = [kernel_size] * 2
        if keep_3x3:
            dilation = [dilation * (k - 1) // 2 for k in kernel_size]
            kernel_size = [3] * len(kernel_size)
        else:
            dilation = [dilation] * len(kernel_size)
        self.num_paths = len(kernel_size)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.split_input = split_input
        path_in = in_channels // self.num_paths if split_input else in_channels
        groups = min(out_channels, groups)
        self.paths = nn.ModuleList([nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(path_in, out_channels, k, stride, ((stride - 1) + d * (k - 1)) // 2, d, groups,
                               bias=False)),
            ("bn", nn.BatchNorm2d(out_channels)), ("act", nn.ReLU(inplace=True))]))
            for k, d in zip(kernel_size, dilation)])
        if not rd_channels:  # timm's make_divisible(out_channels * rd_ratio, divisor=rd_divisor)
            v = out_channels * rd_ratio
            rd_channels = max(rd_divisor, int(v + rd_divisor / 2) // rd_divisor * rd_divisor)
            rd_channels += rd_divisor if rd_channels < 0.9 * v else 0
        self.attn = nn.Sequential(OrderedDict([
            ("fc_reduce", nn.Conv2d(out_channels, rd_channels, 1, bias=False)), ("bn", nn.BatchNorm2d(rd_channels)),
            ("act", nn.ReLU(inplace=True)),
            ("fc_select", nn.Conv2d(rd_channels, out_channels * self.num_paths, 1, bias=False))]))

    def forward(self, x):
        if self.split_input:
            x_split = torch.split(x, self.in_channels // self.num_paths, 1)
            x_paths = [op(x_split[i]) for i, op in enumerate(self.paths)]
        else:
            x_paths = [op(x) for op in self.paths]
        x = torch.stack(x_paths, dim=1)
        a = self.attn(x.sum(1).mean((2, 3), keepdim=True))
        B, C, H, W = a.shape
        a = torch.softmax(a.view(B, self.num_paths, C // self.num_paths, H, W), dim=1)
        return torch.sum(x * a, dim=1)


# ------------------------------------------------------------------ mixed depthwise convolution (MixNet)
class MixedConv2d(nn.ModuleDict):
    """timm's ``MixedConv2d`` (MixNet): the channels split into one group per kernel (the first
    group takes the remainder), each convolved with its own kernel (children ``0``, ``1``, ...),
    the results concatenated. ``padding``: ``""`` timm's ``((stride-1) + dilation*(k-1)) // 2``,
    ``"same"`` TensorFlow's (a ``Conv2dSame`` where it cannot be static), ``"valid"`` none, an int
    (or one per axis) that padding on every group."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding="", dilation=1, depthwise=False,
                 bias=False):
        super().__init__()
        kernel_size = kernel_size if isinstance(kernel_size, list) else [kernel_size]
        n = len(kernel_size)
        in_splits = [in_channels // n] * n
        in_splits[0] += in_channels - sum(in_splits)
        out_splits = [out_channels // n] * n
        out_splits[0] += out_channels - sum(out_splits)
        self.in_channels = sum(in_splits)
        self.out_channels = sum(out_splits)
        for idx, (k, in_ch, out_ch) in enumerate(zip(kernel_size, in_splits, out_splits)):
            groups = in_ch if depthwise else 1
            if padding == "same" and not (stride == 1 and (dilation * (k - 1)) % 2 == 0):
                conv = Conv2dSame(in_ch, out_ch, k, stride, dilation, groups, bias)
            else:
                pad = 0 if padding == "valid" else ((stride - 1) + dilation * (k - 1)) // 2 \
                    if isinstance(padding, str) else tuple(padding) if isinstance(padding, list) else padding
                conv = nn.Conv2d(in_ch, out_ch, k, stride, pad, dilation, groups, bias)
            self.add_module(str(idx), conv)
        self.splits = in_splits

    def forward(self, x):
        x_split = torch.split(x, self.splits, 1)
        return torch.cat([c(x_split[i]) for i, c in enumerate(self.values())], 1)


# ------------------------------------------------------------------ anti-aliased downsampling
class BlurPool2d(nn.Module):
    """timm's ``BlurPool2d``: pad every side by ``((stride-1) + (filt_size-1)) // 2`` (``pad_mode``),
    then a depthwise convolution with the fixed binomial filter (outer product of the
    coefficients ``C(filt_size-1, k) / 2^(filt_size-1)``, a non-persistent buffer ``filt``)."""

    def __init__(self, channels=None, filt_size=3, stride=2, pad_mode="reflect"):
        super().__init__()
        self.channels = channels
        self.filt_size = filt_size
        self.stride = stride
        self.pad_mode = pad_mode
        self.padding = [((stride - 1) + (filt_size - 1)) // 2] * 4
        coeffs = [1.0]
        for _ in range(filt_size - 1):  # a row of Pascal's triangle
            coeffs = [a + b for a, b in zip([0.0] + coeffs, coeffs + [0.0])]
        c = torch.tensor(coeffs, dtype=torch.float32) / (2 ** (filt_size - 1))
        filt = (c[:, None] * c[None, :])[None, None, :, :]
        self.register_buffer("filt", filt.repeat(channels, 1, 1, 1) if channels is not None else filt,
                             persistent=False)

    def forward(self, x):
        x = nn.functional.pad(x, self.padding, mode=self.pad_mode)
        if self.channels is None:
            channels = x.shape[1]
            weight = self.filt.expand(channels, 1, self.filt_size, self.filt_size)
        else:
            channels = self.channels
            weight = self.filt
        return nn.functional.conv2d(x, weight, stride=self.stride, groups=channels)


# ------------------------------------------------------------------ global context attention (GCNet)
class GlobalContext(nn.Module):
    """timm's ``GlobalContext`` (GCNet; gcresnet*, gc_efficientnetv2_rw_t), same children: the
    context is the input averaged with softmax weights from ``conv_attn`` (``use_attn``) or plainly;
    ``mlp_scale`` (fc1, LayerNorm2d ``norm``, ``act``, fc2) then a sigmoid gates the input
    (``fuse_scale``); ``mlp_add``'s output is added (``fuse_add``)."""

    def __init__(self, channels, use_attn=True, fuse_add=False, fuse_scale=True, rd_ratio=1. / 8, rd_channels=None,
                 rd_divisor=1, act_layer="ReLU"):
        from collections import OrderedDict

        super().__init__()
        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1, bias=True) if use_attn else None
        if rd_channels is None:  # timm's make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.)
            rd_channels = max(rd_divisor, int(channels * rd_ratio + rd_divisor / 2) // rd_divisor * rd_divisor)

        def mlp():
            return nn.Sequential(OrderedDict([
                ("fc1", nn.Conv2d(channels, rd_channels, 1)), ("norm", LayerNorm2d(rd_channels, eps=1e-6)),
                ("act", getattr(nn, act_layer)()), ("fc2", nn.Conv2d(rd_channels, channels, 1))]))
        self.mlp_add = mlp() if fuse_add else None
        self.mlp_scale = mlp() if fuse_scale else None

    def forward(self, x):
        B, C, H, W = x.shape
        if self.conv_attn is not None:
            attn = nn.functional.softmax(self.conv_attn(x).reshape(B, 1, H * W), dim=-1).unsqueeze(3)
            context = (x.reshape(B, C, H * W).unsqueeze(1) @ attn).view(B, C, 1, 1)
        else:
            context = x.mean(dim=(2, 3), keepdim=True)
        if self.mlp_scale is not None:
            x = x * torch.sigmoid(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x
