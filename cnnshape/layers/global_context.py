"""timm's ``GlobalContext`` (GCNet attention: gcresnet*, gcresnext*, gc_efficientnetv2_rw_t): a
self-contained module with fixed children, so one layer type with timm's arguments."""

from typing import Any

from .. import formulas as F
from ..rules import fixed, same
from .base import INPUT_LAYOUT, Arg, Inference, Layer, Saved, Shape, register
from .conv import check_channels


@register
class GlobalContext(Layer):
    """timm's ``GlobalContext`` (children ``conv_attn``, ``mlp_scale`` / ``mlp_add`` = ``fc1``, ``norm``
    (LayerNorm2d), ``act``, ``fc2``): a context vector per sample (the input averaged with softmax
    weights from ``conv_attn``, or plainly without ``use_attn``) goes through each MLP (width
    ``rd_channels``, else ``channels * rd_ratio`` rounded to ``rd_divisor``); ``fuse_scale`` multiplies
    the input by its sigmoid, ``fuse_add`` adds it. ``[C, H, W]``, shape unchanged. Params: conv_attn
    ``C + 1``, each MLP ``2*C*rd + 3*rd + C``; MACs the 1x1 convolutions'. Receptive field: the local
    path (the context is a global per-channel scale / shift, as for SqueezeExcitation)."""

    family = "timm"
    rank = 2
    torch_module = "GlobalContext"
    channels = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                   inferred_from="channels")
    use_attn = Arg("bool", True, "Softmax-weighted context from a 1x1 conv (false: the plain mean).")
    fuse_add = Arg("bool", False, "Add mlp_add's output (timm's 'gca').")
    fuse_scale = Arg("bool", True, "Multiply by sigmoid(mlp_scale's output).")
    rd_ratio = Arg("float", 1. / 8, "MLP width per channel (without rd_channels).", ge=0)
    rd_channels = Arg("int", None, "MLP width.", ge=1, nullable=True)
    rd_divisor = Arg("int", 1, "The MLP width is a multiple of it (without rd_channels).", ge=1)
    act_layer = Arg("choice", "ReLU", "The MLPs' activation.", choices=("ReLU", "SiLU", "GELU"))

    @classmethod
    def values_from_torch(cls, module) -> dict:
        mlp = module.mlp_scale if module.mlp_scale is not None else module.mlp_add
        out = {"use_attn": module.conv_attn is not None, "fuse_add": module.mlp_add is not None,
               "fuse_scale": module.mlp_scale is not None}
        if mlp is not None:
            out.update(rd_channels=mlp.fc1.out_channels, act_layer=type(mlp.act).__name__)
        return out

    def width(self, c: int) -> int:
        if self.rd_channels is not None:
            return self.rd_channels
        d = self.rd_divisor
        return max(d, int(c * self.rd_ratio + d / 2) // d * d)

    def mlps(self) -> int:
        return int(self.fuse_add) + int(self.fuse_scale)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        c = shape[0]
        check_channels(self, self.channels, c, "channels", shape)
        rd = self.width(c)
        hw = F.prod(shape[1:])
        params = (c + 1 if self.use_attn else 0) + self.mlps() * (2 * c * rd + 3 * rd + c)
        macs = (c * hw if self.use_attn else 0) + self.mlps() * 2 * c * rd
        return Inference(shape, params, macs)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"channels": shape[0], **{k: v for k, v in self.args().items() if k != "channels"}}

    def saved(self, shape, out, batch):
        """Measured on timm's module (training): the input (conv_attn, the weighted sum, the
        product with fuse_scale); the softmax weights; the context (fc1's input, when an MLP reads it); per MLP the LayerNorm's
        input and statistics, and the activation's output (its input too for SiLU / GELU);
        the sigmoid gate."""
        c, rd = shape[0], self.width(shape[0])
        s = [Saved("input")] if self.use_attn or self.fuse_scale else []
        if self.mlps():
            s.append(Saved("new", batch * c))
        if self.use_attn:
            s.append(Saved("new", batch * F.prod(shape[1:])))
        for _ in range(self.mlps()):
            s += [Saved("new", batch * rd), Saved("new", batch), Saved("new", batch), Saved("new", batch * rd)]
            if self.act_layer != "ReLU":
                s.append(Saved("new", batch * rd))
        if self.fuse_scale:
            s.append(Saved("new", batch * c))
        return tuple(s)

    def aliases_input(self, training: bool = True) -> bool:
        """Without fuse_scale and fuse_add the module returns its input itself."""
        return not self.mlps()

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; spatial sizes pass."""
        return fixed(0, shape[0], inferred=self.channels is None) if dim == 0 else same(dim)
