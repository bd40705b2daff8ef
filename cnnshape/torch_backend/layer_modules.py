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
