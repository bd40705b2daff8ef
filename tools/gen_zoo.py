"""Write the zoo: one cnnshape spec per torchvision convolutional classifier.

    PYTHONPATH=. python tools/gen_zoo.py [NAME ...]

Each spec is written from the torchvision model itself (built on the meta device, so no
weights are allocated or downloaded): a per-class converter maps torchvision's modules to
cnnshape layers and blocks, keeping torchvision's child names so that the compiled model's
``state_dict`` keys equal torchvision's. Stages of identical blocks become ``Repeat`` with
``first:`` holding what the first block changes. Input size: the crop size of the model's
default weights (``weights.transforms().crop_size``). The figures in each file's header, in
``cnnshape/zoo/index.json`` and in the README table come from cnnshape's own analysis;
tests/test_zoo.py proves them against torchvision.

Run by hand when torchvision or the spec language changes; never imported by cnnshape.
"""

import json
import os
import re
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "cnnshape", "zoo", "specs")
INDEX = os.path.join(ROOT, "cnnshape", "zoo", "index.json")
README = os.path.join(ROOT, "README.md")

for _n in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
    sys.modules.setdefault(_n, types.ModuleType(_n))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torchvision import models  # noqa: E402

from cnnshape.layers import LAYER_TYPES  # noqa: E402

# ---------------------------------------------------------------------------------------
# what each classifier is (header line) and the torchvision keyword arguments it is built with
FAMILIES = {
    "alexnet": "AlexNet (Krizhevsky et al. 2012)",
    "vgg": "VGG (Simonyan & Zisserman 2014), configuration {cfg}",
    "resnet": "ResNet (He et al. 2016)",
    "resnext": "ResNeXt (Xie et al. 2017): ResNet bottlenecks with grouped 3x3 convolutions",
    "wide_resnet": "Wide ResNet (Zagoruyko & Komodakis 2016): ResNet bottlenecks twice as wide",
    "squeezenet": "SqueezeNet (Iandola et al. 2016): Fire modules (squeeze 1x1, expand 1x1 + 3x3 concatenated)",
    "densenet": "DenseNet (Huang et al. 2017): dense blocks, every layer sees all earlier features",
    "googlenet": "GoogLeNet / Inception v1 (Szegedy et al. 2015), without the auxiliary heads",
    "inception": "Inception v3 (Szegedy et al. 2016), without the auxiliary head",
    "mobilenet_v2": "MobileNetV2 (Sandler et al. 2018): inverted residuals with linear bottlenecks",
    "mobilenet_v3": "MobileNetV3 (Howard et al. 2019): inverted residuals, squeeze-excitation, hard-swish",
    "mnasnet": "MnasNet (Tan et al. 2019): platform-aware searched inverted residuals",
    "shufflenet": "ShuffleNetV2 (Ma et al. 2018): channel split, concatenation and channel shuffle",
    "efficientnet": "EfficientNet (Tan & Le 2019): MBConv blocks with squeeze-excitation and stochastic depth",
    "efficientnet_v2": "EfficientNetV2 (Tan & Le 2021): Fused-MBConv and MBConv blocks",
    "regnet": "RegNet (Radosavovic et al. 2020): stages of X blocks (grouped bottlenecks)",
    "regnet_y": "RegNet (Radosavovic et al. 2020): stages of Y blocks (X blocks with squeeze-excitation)",
    "convnext": "ConvNeXt (Liu et al. 2022): depthwise 7x7, LayerNorm, inverted MLP, layer scale",
}

KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
          "inception_v3": {"aux_logits": False, "init_weights": False}}


def family_of(name: str) -> str:
    for prefix, fam in (("vgg", "vgg"), ("resnext", "resnext"), ("wide_resnet", "wide_resnet"), ("resnet", "resnet"),
                        ("squeezenet", "squeezenet"), ("densenet", "densenet"), ("mobilenet_v3", "mobilenet_v3"),
                        ("mnasnet", "mnasnet"), ("shufflenet", "shufflenet"), ("efficientnet_v2", "efficientnet_v2"),
                        ("efficientnet", "efficientnet"), ("regnet_y", "regnet_y"), ("regnet_x", "regnet"),
                        ("convnext", "convnext"), ("inception", "inception")):
        if name.startswith(prefix):
            return fam
    return name


def classifiers() -> list[str]:
    skip = ("vit_", "swin", "maxvit")
    return sorted(n for n in models.list_models(module=models) if not n.startswith(skip))


def _cpu_block_params():
    """RegNet computes its block widths with torch ops: keep those on the CPU when the model
    is built on the meta device."""
    bp = models.regnet.BlockParams
    orig = bp.from_init_params.__func__
    if getattr(orig, "_cpu", False):
        return

    def from_init_params(cls, *args, **kwargs):
        with torch.device("cpu"):
            return orig(cls, *args, **kwargs)
    from_init_params._cpu = True
    bp.from_init_params = classmethod(from_init_params)


def tv_model(name: str):
    _cpu_block_params()
    with torch.device("meta"):
        return models.get_model(name, weights=None, **KWARGS.get(name, {}))


def crop_size(name: str) -> int:
    (size,) = models.get_model_weights(name).DEFAULT.transforms().crop_size
    return size


def supports(block: str, arg: str | None = None) -> bool:
    """Whether cnnshape here has the block type (and its argument): specs use the richer
    syntax of the cross-helper contract once it exists, an equivalent explicit form before."""
    cls = LAYER_TYPES.get(block)
    return cls is not None and (arg is None or arg in getattr(cls, "ARGS", {}))


# ---------------------------------------------------------------------------------------
# leaf layers: torch module -> spec item (only what differs from torch's defaults)
def _pair(v):
    if isinstance(v, (tuple, list)):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def _g6(x: float) -> float:
    return float(f"{x:.6g}")


def _conv(m, d: dict) -> None:
    d["out_channels"] = m.out_channels
    d["kernel_size"] = _pair(m.kernel_size)
    for k, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
        v = _pair(getattr(m, k))
        if v != default:
            d[k] = v
    if m.groups != 1:
        d["groups"] = m.groups
    if m.bias is None:
        d["bias"] = False
    if m.padding_mode != "zeros":
        d["padding_mode"] = m.padding_mode


def _batchnorm(m, d: dict) -> None:
    if m.eps != 1e-5:
        d["eps"] = _g6(m.eps)
    if m.momentum != 0.1:
        d["momentum"] = _g6(m.momentum)


def _pool(m, d: dict) -> None:
    d["kernel_size"] = _pair(m.kernel_size)
    if _pair(m.stride) != d["kernel_size"]:
        d["stride"] = _pair(m.stride)
    if _pair(m.padding) != 0:
        d["padding"] = _pair(m.padding)
    if getattr(m, "dilation", 1) != 1:
        d["dilation"] = _pair(m.dilation)
    if m.ceil_mode:
        d["ceil_mode"] = True
    if isinstance(m, nn.AvgPool2d) and not m.count_include_pad:
        d["count_include_pad"] = False


def _adaptive(m, d: dict) -> None:
    d["output_size"] = _pair(m.output_size)


def _dropout(m, d: dict) -> None:
    d["p"] = m.p


def _linear(m, d: dict) -> None:
    d["out_features"] = m.out_features
    if m.bias is None:
        d["bias"] = False


def _flatten(m, d: dict) -> None:
    if m.start_dim != 1:
        d["start_dim"] = m.start_dim
    if m.end_dim != -1:
        d["end_dim"] = m.end_dim


def _eps(m, d: dict) -> None:
    if m.eps != 1e-5:
        d["eps"] = _g6(m.eps)


def _layernorm(m, d: dict) -> None:
    d["normalized_shape"] = _pair(list(m.normalized_shape))
    _eps(m, d)


def _permute(m, d: dict) -> None:
    d["dims"] = list(m.dims)


def _stochastic_depth(m, d: dict) -> None:
    d["p"] = m.p
    d["mode"] = m.mode


def _activation(m, d: dict) -> None:
    if isinstance(m, nn.GELU) and m.approximate != "none":
        d["approximate"] = m.approximate


def _named(type_name: str):
    return lambda m: type(m).__name__ == type_name


def _is(*classes):
    return lambda m: isinstance(m, classes)


#: (which modules, what they write), tried in order (torchvision's LayerNorm2d before LayerNorm)
LEAF_READERS = [
    (_is(nn.Conv2d), _conv), (_is(nn.BatchNorm2d), _batchnorm), (_is(nn.MaxPool2d, nn.AvgPool2d), _pool),
    (_is(nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive), (_is(nn.Dropout), _dropout),
    (_is(nn.Linear), _linear), (_is(nn.Flatten), _flatten),
    (_named("LayerNorm2d"), _eps),  # torchvision.models.convnext.LayerNorm2d
    (_is(nn.LayerNorm), _layernorm), (_named("Permute"), _permute), (_named("StochasticDepth"), _stochastic_depth),
    (_is(nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.Identity, nn.GELU), _activation),
]


def leaf(m: nn.Module) -> dict:
    t = type(m).__name__
    d: dict = {"type": t}
    for applies, read in LEAF_READERS:
        if applies(m):
            read(m, d)
            return d
    raise TypeError(f"no converter for {t}")


def named(item, name: str, position: int):
    """``item`` with ``name`` when it differs from its default (its position)."""
    if name == str(position):
        return item
    if isinstance(item, str):
        item = {"type": item}
    if "name" in item:
        return item
    return {"type": item["type"], "name": name, **{k: v for k, v in item.items() if k != "type"}}


def convert(m: nn.Module):
    """One torch module -> one spec item (leaf, or a block built by a converter below)."""
    fn = CONVERTERS.get(type(m).__name__)
    if fn is not None:
        return fn(m)
    if isinstance(m, nn.Sequential):
        return {"type": "Sequential", "body": seq(m)}
    return leaf(m)


def seq(m: nn.Module, *, compress: bool = True) -> list:
    """The children of ``m`` as a list of items, named as in torch."""
    items = [named(convert(c), n, i) for i, (n, c) in enumerate(m.named_children())]
    return items


def as_list(m: nn.Module) -> list:
    """A module's children as a body list (a Sequential's body, or a single block)."""
    return seq(m)


# ---------------------------------------------------------------------------------------
# Repeat: a stage of n identical blocks after a different first one
def _args(d):
    return {k: v for k, v in d.items() if k not in ("type", "name")}


LIST_KEYS = ("body", "shortcut", "after", "gate")


def _leaf_changes(a: dict, b: dict, prefix: str, out: dict) -> bool:
    """Record the argument values of leaf ``a`` that differ from leaf ``b``; False when ``a``
    uses a default the other overrides (not expressible simply)."""
    ch = {}
    for k in list(a) + [k for k in b if k not in a]:  # deterministic order
        if k in ("type", "name"):
            continue
        if k not in a:
            return False
        if a.get(k) != b.get(k):
            ch[k] = a[k]
    if ch:
        out[prefix] = ch
    return True


def _list_changes(a: dict, k: str, va: list, vb: list, prefix: str, out: dict) -> bool:
    """The changes inside the child list ``k`` of block ``a`` (children named by their path)."""
    group = a.get("shortcut_name", "shortcut") if k == "shortcut" else None
    for i, (x, y) in enumerate(zip(va, vb)):
        nm = (x.get("name") if isinstance(x, dict) else None) or str(i + (len(a.get("body") or a.get("branches") or ()) if k == "after" else 0))
        path = ".".join(p for p in (prefix, group, nm) if p)
        if not _diff(x, y, path, out):
            return False
    return True


def _diff(a, b, prefix: str, out: dict) -> bool:
    """Record in ``out`` the changes that turn item ``b`` into item ``a`` ({path: {arg: value}}
    or, at the top, {block argument: value}); False when they differ in structure."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if a.get("type") != b.get("type") or a.get("name") != b.get("name"):
        return False
    if not any(k in a or k in b for k in LIST_KEYS + ("branches",)):
        return _leaf_changes(a, b, prefix, out)
    return _block_changes(a, b, prefix, out)


def _block_changes(a: dict, b: dict, prefix: str, out: dict) -> bool:
    """Record the changes inside block ``a`` against block ``b`` (child lists of equal
    length, a shortcut the first block alone has); False when they differ in structure."""
    for k in list(a) + [k for k in b if k not in a]:  # deterministic order
        if k in ("type", "name"):
            continue
        va, vb = a.get(k), b.get(k)
        if k in LIST_KEYS and isinstance(va, list) and isinstance(vb, list) and len(va) == len(vb):
            if not _list_changes(a, k, va, vb, prefix, out):
                return False
        elif va != vb:
            if prefix == "" and k == "shortcut" and vb is None:
                out["shortcut"] = va
            else:
                return False
    return True


def _child_names(items: list) -> str | None:
    """The ``child_names`` pattern the items' names follow ({index}: 0-based, {number}: 1-based)."""
    names = [x.get("name") if isinstance(x, dict) else None for x in items]
    if all(n is None for n in names):
        return None
    m = re.fullmatch(r"(.*?)(\d+)", names[0] or "")
    if m and all(n == f"{m.group(1)}{i}" for i, n in enumerate(names)):
        return m.group(1) + "{index}"
    if m and all(n == f"{m.group(1)}{i + 1}" for i, n in enumerate(names)):
        return m.group(1) + "{number}"
    return None


def _headed(kind: str, name: str | None, comment: str | None) -> dict:
    out = {"type": kind}
    if name:
        out["name"] = name
    if comment:
        out["#"] = comment
    return out


def _repeat_first(items: list, fmt: str | None) -> dict | None:
    """The ``first:`` changes when blocks 2..n are identical and the first differs only in
    argument values (and maybe a shortcut); None when the stage is no Repeat."""
    strip = [({k: v for k, v in x.items() if k != "name"} if isinstance(x, dict) else x) for x in items]
    rest = strip[1:]
    if not (len(items) >= 2 and (fmt is None or supports("Repeat", "child_names")) and all(r == rest[0] for r in rest)):
        return None
    first: dict = {}
    return first if _diff(strip[0], rest[0], "", first) else None


def stage(items: list, name: str | None = None, comment: str | None = None):
    """Items of one torch Sequential of blocks -> a Repeat when blocks 2..n are identical and
    the first differs only in argument values (and maybe a shortcut); else a Sequential."""
    fmt = _child_names(items)
    first = _repeat_first(items, fmt)
    if first is None:
        out = _headed("Sequential", name, comment)
        out["body"] = items
        return out
    out = _headed("Repeat", name, comment)
    out["n"] = len(items)
    if fmt:
        out["child_names"] = fmt
    if first:
        out["first"] = first
    body = items[1]
    out["body"] = [{k: v for k, v in body.items() if k != "name"} if isinstance(body, dict) else body]
    return out


# ---------------------------------------------------------------------------------------
# converters of torchvision's block classes
def c_resnet_block(m):
    body = []
    body += [named(leaf(m.conv1), "conv1", -1), named(leaf(m.bn1), "bn1", -1), {"type": "ReLU", "name": "relu"},
             named(leaf(m.conv2), "conv2", -1), named(leaf(m.bn2), "bn2", -1)]
    if hasattr(m, "conv3"):
        body += [{"type": "ReLU", "name": "relu2"}, named(leaf(m.conv3), "conv3", -1), named(leaf(m.bn3), "bn3", -1)]
    d = {"type": "Residual", "shortcut_name": "downsample", "body": body}
    if m.downsample is not None:
        d["shortcut"] = seq(m.downsample)
    d["after"] = [{"type": "ReLU", "name": "relu_out"}]
    return d


def c_inverted_residual(m, attr: str, residual: bool):
    inner = {"type": "Sequential", "name": attr, "body": seq(getattr(m, attr))}
    return {"type": "Residual" if residual else "Sequential", "body": [inner]}


def c_regnet_block(m):
    d = {"type": "Residual", "shortcut_name": "proj", "body": [{"type": "Sequential", "name": "f", "body": seq(m.f)}]}
    if m.proj is not None:
        d["shortcut"] = seq(m.proj)
    d["after"] = [{"type": "ReLU", "name": "activation"}]
    return d


def c_se(m):
    """torchvision.ops.SqueezeExcitation -> the short form of the SqueezeExcitation block."""
    d = {"type": "SqueezeExcitation", "squeeze_channels": m.fc1.out_channels}
    if type(m.activation) is not nn.ReLU:
        d["activation"] = type(m.activation).__name__
    if type(m.scale_activation) is not nn.Sigmoid:
        d["scale_activation"] = type(m.scale_activation).__name__
    return d


def c_any_stage(m):
    return stage(seq(m))


def c_basic_conv(m):
    """googlenet / inception_v3 BasicConv2d: conv, bn and a functional ReLU."""
    return {"type": "Sequential", "body": [named(leaf(m.conv), "conv", -1), named(leaf(m.bn), "bn", -1),
                                           {"type": "ReLU", "name": "relu"}]}


def _branch(m) -> list:
    """One Concat branch: a BasicConv2d is its own layers, a Sequential its children."""
    item = convert(m)
    return item["body"] if type(m).__name__ == "BasicConv2d" else seq(m)


def c_googlenet_inception(m):
    outs = [m.branch1.conv.out_channels, m.branch2[1].conv.out_channels, m.branch3[1].conv.out_channels,
            m.branch4[1].conv.out_channels]
    return {"type": "Concat", "#": "1x1 {}, 3x3 {}, 3x3 {} (the paper's 5x5), pool + 1x1 {}".format(*outs),
            "names": ["branch1", "branch2", "branch3", "branch4"],
            "branches": [_branch(m.branch1), _branch(m.branch2), _branch(m.branch3), _branch(m.branch4)]}


def _bc(m, name):
    return named(c_basic_conv(getattr(m, name)), name, -1)


def _avg_pool_branch(m):  # F.avg_pool2d(x, kernel_size=3, stride=1, padding=1), then branch_pool
    return [{"type": "AvgPool2d", "name": "avg_pool", "kernel_size": 3, "stride": 1, "padding": 1},
            _bc(m, "branch_pool")]


def _inline_pair(m, a, b):
    return {"type": "Concat", "inline": True, "flat": True, "branches": [[_bc(m, a)], [_bc(m, b)]]}


def c_inception_v3(m):
    """Inception v3's InceptionA..E: a flat Concat (every layer named on the module itself)."""
    t = type(m).__name__
    if t == "InceptionA":
        br = [[_bc(m, "branch1x1")], [_bc(m, "branch5x5_1"), _bc(m, "branch5x5_2")],
              [_bc(m, "branch3x3dbl_1"), _bc(m, "branch3x3dbl_2"), _bc(m, "branch3x3dbl_3")], _avg_pool_branch(m)]
    elif t == "InceptionB":
        br = [[_bc(m, "branch3x3")], [_bc(m, "branch3x3dbl_1"), _bc(m, "branch3x3dbl_2"), _bc(m, "branch3x3dbl_3")],
              [{"type": "MaxPool2d", "name": "max_pool", "kernel_size": 3, "stride": 2}]]
    elif t == "InceptionC":
        br = [[_bc(m, "branch1x1")], [_bc(m, f"branch7x7_{i}") for i in (1, 2, 3)],
              [_bc(m, f"branch7x7dbl_{i}") for i in (1, 2, 3, 4, 5)], _avg_pool_branch(m)]
    elif t == "InceptionD":
        br = [[_bc(m, "branch3x3_1"), _bc(m, "branch3x3_2")], [_bc(m, f"branch7x7x3_{i}") for i in (1, 2, 3, 4)],
              [{"type": "MaxPool2d", "name": "max_pool", "kernel_size": 3, "stride": 2}]]
    else:  # InceptionE: two nested concatenations
        br = [[_bc(m, "branch1x1")], [_bc(m, "branch3x3_1"), _inline_pair(m, "branch3x3_2a", "branch3x3_2b")],
              [_bc(m, "branch3x3dbl_1"), _bc(m, "branch3x3dbl_2"),
               _inline_pair(m, "branch3x3dbl_3a", "branch3x3dbl_3b")], _avg_pool_branch(m)]
    return {"type": "Concat", "flat": True, "branches": br}


def c_fire(m):
    """SqueezeNet's Fire: squeeze, then expand1x1 and expand3x3 concatenated (an inline Concat:
    their layers are named on the Fire module itself)."""
    return {"type": "Sequential", "#": f"Fire: squeeze to {m.squeeze.out_channels}, expand to "
            f"{m.expand1x1.out_channels} (1x1) + {m.expand3x3.out_channels} (3x3)", "body": [
        named(leaf(m.squeeze), "squeeze", -1), {"type": "ReLU", "name": "squeeze_activation"},
        {"type": "Concat", "inline": True, "flat": True, "branches": [
            [named(leaf(m.expand1x1), "expand1x1", -1), {"type": "ReLU", "name": "expand1x1_activation"}],
            [named(leaf(m.expand3x3), "expand3x3", -1), {"type": "ReLU", "name": "expand3x3_activation"}]]}]}


def c_shuffle_unit(m):
    """ShuffleNetV2's unit: stride 1 splits the channels in two halves (the first passes
    through), stride 2 feeds the input to both branches; then a channel shuffle."""
    d = {"type": "Concat", "names": ["branch1", "branch2"]}
    d["#"] = ("stride 1: the first half of the channels passes through" if m.stride == 1 else
              f"stride {m.stride}: both branches see the input")
    if m.stride == 1:
        d["split"] = True
        d["branches"] = [[], seq(m.branch2)]
    else:
        d["branches"] = [seq(m.branch1), seq(m.branch2)]
    d["after"] = [{"type": "ChannelShuffle", "groups": 2}]
    return d


def c_dense_block(m):
    layers = list(m.children())
    first = layers[0]
    body = [named(leaf(first.norm1), "norm1", -1), {"type": "ReLU", "name": "relu1"},
            named(leaf(first.conv1), "conv1", -1), named(leaf(first.norm2), "norm2", -1),
            {"type": "ReLU", "name": "relu2"}, named(leaf(first.conv2), "conv2", -1)]
    if first.drop_rate > 0:
        body.append({"type": "Dropout", "name": "dropout", "p": first.drop_rate})
    return {"type": "DenseBlock", "#": f"{len(layers)} layers, each adds {first.conv2.out_channels} channels",
            "n": len(layers), "child_names": "denselayer{number}", "body": body}


def c_mbconv(m):
    """MobileNetV3's InvertedResidual and EfficientNet's MBConv / FusedMBConv: a ``block``
    Sequential; a skip connection (after stochastic depth, for EfficientNet) where the shape
    stays the same."""
    body = [{"type": "Sequential", "name": "block", "body": seq(m.block)}]
    if not m.use_res_connect:
        return {"type": "Sequential", "body": body}
    if hasattr(m, "stochastic_depth"):
        body.append(named(leaf(m.stochastic_depth), "stochastic_depth", -1))
    return {"type": "Residual", "body": body}


def c_cnblock(m):
    """ConvNeXt's block: y = x + stochastic_depth(layer_scale * block(x))."""
    scale = float(m.layer_scale.flatten()[0]) if m.layer_scale.device.type != "meta" else 1e-6
    return {"type": "Residual", "layer_scale": scale,
            "body": [{"type": "Sequential", "name": "block", "body": seq(m.block)},
                     named(leaf(m.stochastic_depth), "stochastic_depth", -1)]}


CONVERTERS = {
    "BasicConv2d": c_basic_conv,
    "Inception": c_googlenet_inception,
    "InceptionA": c_inception_v3, "InceptionB": c_inception_v3, "InceptionC": c_inception_v3,
    "InceptionD": c_inception_v3, "InceptionE": c_inception_v3,
    "Fire": c_fire,
    "_DenseBlock": c_dense_block,
    "MBConv": c_mbconv,
    "FusedMBConv": c_mbconv,
    "CNBlock": c_cnblock,
    "BasicBlock": c_resnet_block,
    "Bottleneck": c_resnet_block,
    "InvertedResidual_mobilenetv2": None,
    "_InvertedResidual": lambda m: c_inverted_residual(m, "layers", m.apply_residual),
    "ResBottleneckBlock": c_regnet_block,
    "AnyStage": c_any_stage,
    "SqueezeExcitation": c_se,
}


def c_inverted_residual_any(m):
    mod = type(m).__module__
    if mod.endswith("mobilenetv2"):
        return c_inverted_residual(m, "conv", m.use_res_connect)
    if mod.endswith("mobilenetv3"):
        return c_mbconv(m)
    if mod.endswith("shufflenetv2"):
        return c_shuffle_unit(m)
    raise TypeError(f"no converter for {mod}.InvertedResidual")


CONVERTERS["InvertedResidual"] = c_inverted_residual_any
del CONVERTERS["InvertedResidual_mobilenetv2"]


# ---------------------------------------------------------------------------------------
# whole models: the top-level list (the forward's functional steps become parameter-free layers)
def top(model, parts: list[str], pool_flatten_at: int | None = None) -> list:
    out = []
    for p in parts:
        if p == "flatten":
            out.append({"type": "Flatten", "name": "flatten"})
            continue
        if p == "avgpool1":  # x.mean([2, 3]) / adaptive_avg_pool2d(x, 1) in the forward
            out.append({"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "avgpool"})
            continue
        m = getattr(model, p)
        item = convert(m)
        out.append(named(item, p, -1))
    return out


def resnet_layers(model) -> list:
    items = [named(leaf(model.conv1), "conv1", -1), named(leaf(model.bn1), "bn1", -1),
             {"type": "ReLU", "name": "relu"}, named(leaf(model.maxpool), "maxpool", -1)]
    for i in range(1, 5):
        layer = getattr(model, f"layer{i}")
        blocks = seq(layer)
        b = layer[0]
        width = (b.conv3 if hasattr(b, "conv3") else b.conv2).out_channels
        stride = _pair(b.conv2.stride)
        comment = f"stage {i}: {len(blocks)} blocks, {width} channels" + (f", stride {stride}" if stride != 1 else "")
        items.append(stage(blocks, f"layer{i}", comment))
    items += [named(leaf(model.avgpool), "avgpool", -1), {"type": "Flatten", "name": "flatten"},
              named(leaf(model.fc), "fc", -1)]
    return items


def regnet_layers(model) -> list:
    items = [named(convert(model.stem), "stem", -1)]
    stages = []
    for sname, st in model.trunk_output.named_children():
        blocks = seq(st)
        f = st[0].f
        comment = f"{len(blocks)} block{'s' if len(blocks) > 1 else ''}, {f.c[0].out_channels} channels, groups of {f.b[0].out_channels // f.b[0].groups}"
        s = stage(blocks, comment=comment)
        stages.append(named(s, sname, -1))
    items.append({"type": "Sequential", "name": "trunk_output", "body": stages})
    items += [named(leaf(model.avgpool), "avgpool", -1), {"type": "Flatten", "name": "flatten"},
              named(leaf(model.fc), "fc", -1)]
    return items


def mnasnet_layers(model) -> list:
    body = []
    for _n, c in model.layers.named_children():
        if isinstance(c, nn.Sequential):
            body.append(stage(seq(c)))
        else:
            body.append(convert(c))
    return [{"type": "Sequential", "name": "layers", "body": body},
            {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "mean"},  # x.mean([2, 3])
            {"type": "Flatten", "name": "flatten"},
            {"type": "Sequential", "name": "classifier", "body": seq(model.classifier)}]


def layers_of(name: str, model) -> list:
    fam = family_of(name)
    if fam in ("alexnet", "vgg"):
        return top(model, ["features", "avgpool", "flatten", "classifier"])
    if fam in ("resnet", "resnext", "wide_resnet"):
        return resnet_layers(model)
    if fam in ("regnet", "regnet_y"):
        return regnet_layers(model)
    if fam == "mnasnet":
        return mnasnet_layers(model)
    if fam == "mobilenet_v2":
        return [named(convert(model.features), "features", -1),
                {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "avgpool"},  # adaptive_avg_pool2d(x, (1, 1))
                {"type": "Flatten", "name": "flatten"},
                named(convert(model.classifier), "classifier", -1)]
    if fam == "squeezenet":
        return [named(convert(model.features), "features", -1), named(convert(model.classifier), "classifier", -1),
                {"type": "Flatten", "name": "flatten"}]
    if fam == "densenet":
        return [named(convert(model.features), "features", -1),
                {"type": "ReLU", "name": "relu"},  # F.relu, adaptive_avg_pool2d(1), flatten in the forward
                {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "avgpool"},
                {"type": "Flatten", "name": "flatten"}, named(leaf(model.classifier), "classifier", -1)]
    if fam == "googlenet":
        parts = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
                 "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
                 "inception5a", "inception5b", "avgpool", "flatten", "dropout", "fc"]
        return top(model, parts)
    if fam == "inception":
        parts = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool", "dropout", "flatten", "fc"]
        return top(model, parts)
    if fam == "shufflenet":
        items = [named(convert(model.conv1), "conv1", -1), named(leaf(model.maxpool), "maxpool", -1)]
        for sname in ("stage2", "stage3", "stage4"):
            items.append(named(stage(seq(getattr(model, sname))), sname, -1))
        items += [named(convert(model.conv5), "conv5", -1),
                  {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "mean"},  # x.mean([2, 3])
                  {"type": "Flatten", "name": "flatten"}, named(leaf(model.fc), "fc", -1)]
        return items
    if fam in ("mobilenet_v3", "efficientnet", "efficientnet_v2", "convnext"):
        return [named(convert(model.features), "features", -1), named(leaf(model.avgpool), "avgpool", -1)] + \
            ([] if fam == "convnext" else [{"type": "Flatten", "name": "flatten"}]) + \
            [named(convert(model.classifier), "classifier", -1)]
    raise NotImplementedError(f"{name}: no converter yet")


# ---------------------------------------------------------------------------------------
# YAML text
def scalar(v) -> str:
    from cnnshape.yaml_out import yaml_value

    if isinstance(v, float):
        return repr(v)
    return yaml_value(v)


def flow(d) -> str:
    if isinstance(d, str):
        return d
    if isinstance(d, list):
        return "[" + ", ".join(flow(x) for x in d) + "]"
    if isinstance(d, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in d.items()) + "}"
    return scalar(d)


def is_leafy(items) -> bool:
    return all(isinstance(x, str) or not any(isinstance(v, (list, dict)) and k != "dims" and k != "output_size"
                                             and k != "kernel_size" and k != "stride" and k != "padding"
                                             for k, v in x.items()) for x in items)


def _is_flat(it) -> bool:
    """An item written on one line (no child lists, no first:)."""
    return isinstance(it, str) or all(not (isinstance(v, (list, dict)) and k in LIST_KEYS + ("branches", "first"))
                                      for k, v in it.items())


def _emit_flat(it, pad: str, lines: list) -> None:
    d = it if isinstance(it, str) else {k: v for k, v in it.items() if k != "#"}
    txt = d if isinstance(d, str) else d["type"] if list(d) == ["type"] else flow(d)
    c = it.get("#") if isinstance(it, dict) else None
    lines.append(f"{pad}- {txt}" + (f"  # {c}" if c else ""))


def _emit_branches(v, pad: str, indent: int, lines: list) -> None:
    for b in v:
        if not b:
            lines.append(f"{pad}    - []  # passes its part through unchanged")
            continue
        lines.append(f"{pad}    -")
        emit_items(b, indent + 6, lines)


def _emit_first(v: dict, pad: str, indent: int, lines: list) -> None:
    for path, ch in v.items():
        if isinstance(ch, list):
            lines.append(f"{pad}    {path}:")
            emit_items(ch, indent + 6, lines)
        else:
            lines.append(f"{pad}    {path}: {flow(ch)}")


def _emit_key(k: str, v, lead: str, comment: str, pad: str, indent: int, lines: list) -> None:
    """One key of a block item, its child lists below it."""
    if k in LIST_KEYS and isinstance(v, list):
        if len(v) <= 1 and is_leafy(v) and k != "body":
            lines.append(f"{lead}{k}: {flow(v)}{comment}")
        else:
            lines.append(f"{lead}{k}:{comment}")
            emit_items(v, indent + 4, lines)
    elif k == "branches":
        lines.append(f"{lead}{k}:{comment}")
        _emit_branches(v, pad, indent, lines)
    elif k == "first":
        lines.append(f"{lead}first:{comment}")
        _emit_first(v, pad, indent, lines)
    else:
        lines.append(f"{lead}{k}: {flow(v)}{comment}")


def emit_items(items: list, indent: int, lines: list):
    pad = " " * indent
    for it in items:
        if _is_flat(it):
            _emit_flat(it, pad, lines)
            continue
        keys = [k for k in it if k != "#"]
        for j, k in enumerate(keys):
            lead = f"{pad}- " if j == 0 else f"{pad}  "
            comment = f"  # {it['#']}" if j == 0 and "#" in it else ""
            _emit_key(k, it[k], lead, comment, pad, indent, lines)


def spec_text(name: str, size: int, layers: list, header: list[str], description: str) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"name: {name}", f"description: {json.dumps(description)}", f"input: [3, {size}, {size}]", "layers:"]
    emit_items(layers, 2, lines)
    return "\n".join(lines) + "\n"


def describe(name: str) -> str:
    fam = family_of(name)
    text = FAMILIES.get(fam, name)
    if fam == "vgg":
        cfg = {"11": "A", "13": "B", "16": "D", "19": "E"}[re.search(r"\d+", name).group()]
        text = text.format(cfg=cfg) + (", with batch normalisation" if name.endswith("_bn") else "")
    return text


def generate(name: str) -> dict:
    from cnnshape.analysis import analyze
    from cnnshape.spec import load

    model = tv_model(name)
    size = crop_size(name)
    layers = layers_of(name, model)
    weights = models.get_model_weights(name).DEFAULT
    desc = f"{describe(name)}; torchvision.models.{name} at {size}x{size} (1000 ImageNet classes)"
    text = spec_text(name, size, layers, [], desc)
    report = analyze(load(text))
    if not report.ok:
        raise SystemExit(f"{name}: the generated spec does not check: {report.errors[0].message}")
    t = report.totals
    header = [f"{name}: {describe(name)}.",
              f"Source: torchvision.models.{name} (torchvision 0.28.0), the same module tree: state_dict keys",
              f"equal torchvision's, so {type(weights).__name__}.{weights.name} load with strict=True.",
              f"Input {size}x{size}: the crop size of those weights. {t.params:,} params, {t.macs:,} MACs.",
              "Generated by tools/gen_zoo.py (do not edit by hand; copy it: cnnshape zoo "
              f"{name} -o my.yaml)."]
    if name in ("googlenet", "inception_v3"):
        header.insert(1, "Without the auxiliary classifier(s) (aux_logits=False) and with transform_input=False.")
    text = spec_text(name, size, layers, header, desc)
    with open(os.path.join(OUT, f"{name}.yaml"), "w") as f:
        f.write(text)
    return {"name": name, "kind": "classifier", "input": [3, size, size], "params": t.params,
            "trainable_params": t.trainable_params, "macs": t.macs, "description": describe(name)}


def readme_table(entries) -> str:
    """The README's zoo table (tests/test_zoo.py checks it against the index)."""
    rows = ["| spec | input | params | MACs | what |", "|---|---|---:|---:|---|"]
    for e in entries:
        what = e["description"].split(";")[0].split(":")[0]
        rows.append(f"| `{e['name']}` | {'x'.join(map(str, e['input']))} | {e['params']:,} | {e['macs']:,} | {what} |")
    return "\n".join(rows)


def write_readme_table(entries):
    start, end = "<!-- zoo table: written by tools/gen_zoo.py -->", "<!-- /zoo table -->"
    with open(README) as f:
        text = f.read()
    a, b = text.index(start) + len(start), text.index(end)
    with open(README, "w") as f:
        f.write(text[:a] + "\n" + readme_table(entries) + "\n" + text[b:])


def main(argv):
    from cnnshape.errors import SpecError

    os.makedirs(OUT, exist_ok=True)
    index = {}
    wanted = argv or classifiers()
    failed = []
    for name in wanted:
        try:
            index[name] = generate(name)
            print(f"{name}: {index[name]['params']:,} params, {index[name]['macs']:,} MACs")
        except (NotImplementedError, TypeError, SystemExit, SpecError) as exc:
            failed.append(name)
            print(f"{name}: not generated: {exc}")
    from cnnshape.zoo import refresh_index

    write_readme_table(refresh_index())
    if failed:
        print(f"{len(failed)} not generated: {' '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
