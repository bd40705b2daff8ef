"""torch as the oracle: build each layer of a spec dict *independently of cnnshape*
(torch.nn classes constructed from the dict, in_* taken from torch's real tensor) and run
it forward, recording what torch does."""

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnshape.layers import LAYER_TYPES

#: what torch's real tensor ``x`` (batch first) gives an argument that cnnshape infers; which
#: arguments are inferred is cnnshape's one declaration (``Arg(inferred_from=...)``), the
#: values come from torch
FROM_TENSOR = {
    "channels": lambda x: x.shape[1] if x.dim() > 1 else 0,
    "features": lambda x: x.shape[-1],
}


@dataclass
class TorchRun:
    shapes: list = field(default_factory=list)       # output shape per layer (batch excluded)
    params: list = field(default_factory=list)
    trainable: list = field(default_factory=list)
    macs: list = field(default_factory=list)          # SPEC.md formula on torch's real shapes
    fail_index: int | None = None
    fail_message: str = ""
    modules: list = field(default_factory=list)


def torch_kwargs(d: dict, x: torch.Tensor) -> dict:
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()
          if k not in ("type", "name", "trainable", "weight")}
    t = d["type"]
    cls = LAYER_TYPES.get(t)
    for key, arg in (cls.ARGS.items() if cls is not None else ()):
        if arg.inferred_from in FROM_TENSOR:
            kw.setdefault(key, FROM_TENSOR[arg.inferred_from](x))
    if t in ("Softmax", "LogSoftmax"):
        kw.setdefault("dim", 1)
    return kw


def _torchvision():
    """torchvision's model code without its compiled ops (they do not load on the CPU build)."""
    import sys
    import types

    for n in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(n, types.ModuleType(n))
    import torchvision.models.convnext
    import torchvision.ops

    return torchvision


def module_class(type_name: str):
    """The torch class of a layer type: torch.nn's, or torchvision's for the types torch.nn
    lacks (Permute, StochasticDepth, LayerNorm2d), never cnnshape's own copies."""
    if hasattr(nn, type_name):
        return getattr(nn, type_name)
    tv = _torchvision()
    if type_name == "LayerNorm2d":
        return tv.models.convnext.LayerNorm2d
    return getattr(tv.ops, type_name)


def macs_of(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return (module.in_channels * int(torch.tensor(x.shape[2:]).prod()) * (module.out_channels // module.groups)
                * int(torch.tensor(module.kernel_size).prod()))
    if isinstance(module, nn.modules.conv._ConvNd):
        return (module.out_channels * int(torch.tensor(y.shape[2:]).prod()) * (module.in_channels // module.groups)
                * int(torch.tensor(module.kernel_size).prod()))
    if isinstance(module, nn.Linear):
        return int(torch.tensor(y.shape[1:]).prod()) * module.in_features
    return 0


def run(spec: dict) -> TorchRun:
    batch = spec.get("batch", 1)
    torch.manual_seed(0)
    x = torch.randn(batch, *spec["input"])
    out = TorchRun()
    for i, raw in enumerate(spec["layers"]):
        d = {"type": raw} if isinstance(raw, str) else raw
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = module_class(d["type"])(**torch_kwargs(d, x))
                if d.get("trainable") is False:
                    for p in module.parameters():
                        p.requires_grad_(False)
                module.eval()
                with torch.no_grad():
                    y = module(x)
        except Exception as exc:  # noqa: BLE001 - recording torch's refusal is the point
            out.fail_index, out.fail_message = i, f"{type(exc).__name__}: {exc}"
            return out
        if isinstance(y, tuple):  # return_indices: the next layer would receive a tuple
            if i < len(spec["layers"]) - 1:
                out.fail_index, out.fail_message = i, "returns a tuple inside the chain"
                return out
            y = y[0]
        if y.numel() == 0:
            # torch returns an empty tensor on some backends and raises on others (e.g.
            # ConvTranspose with output size 0): cnnshape reports a zero-size output as an error
            out.fail_index, out.fail_message = i, f"empty output {tuple(y.shape)}"
            return out
        out.modules.append(module)
        out.shapes.append(tuple(y.shape[1:]))
        out.params.append(sum(p.numel() for p in module.parameters()))
        out.trainable.append(sum(p.numel() for p in module.parameters() if p.requires_grad))
        out.macs.append(macs_of(module, x, y))
        x = y
    return out


# ------------------------------------------------------------------- nested specs
class Fail(Exception):
    pass


def _leaf(d, x):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = module_class(d["type"])(**torch_kwargs(d, x))
            module.eval()
            with torch.no_grad():
                y = module(x)
    except Exception as exc:  # noqa: BLE001 - torch's refusal is the point
        raise Fail(f"{d['type']}: {type(exc).__name__}: {exc}") from None
    if isinstance(y, tuple):
        raise Fail("returns a tuple inside the chain")
    if y.numel() == 0:
        raise Fail(f"empty output {tuple(y.shape)}")
    return y, sum(p.numel() for p in module.parameters()), macs_of(module, x, y)
