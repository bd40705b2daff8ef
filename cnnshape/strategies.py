"""Hypothesis strategies for cnnshape specs (public: use them to fuzz your own code).

- ``layer_dicts(family, ndim)``: one layer mapping of a family for an input of ``ndim``
  dims per sample (``[C, H, W]`` has ndim 3);
- ``spec_dicts()``: whole specs across all layer types and ranks, valid or not (about
  half are invalid in some way: that is the point of comparing with torch);
- ``valid_specs()``: specs that ``cnnshape.analyze`` accepts;
- ``invalid_specs()``: ``(spec_dict, index, fragment)`` triples, specs broken in a known
  way at layer ``index`` with ``fragment`` expected in the error message;
- ``block_dicts(ndim)`` / ``nested_spec_dicts()``: blocks (Sequential, Repeat, Residual,
  Concat; with ``every_block=True`` also SqueezeExcitation, DenseBlock, inline blocks and
  every block option) and specs mixing them with plain layers, valid or not (merges whose
  shapes disagree included).

Specs are plain dicts in the YAML format; ``to_yaml`` prints one for a bug report.

Generated specs avoid the inputs on which torch silently reinterprets the batch axis as
channels (e.g. ``Conv2d`` on ``[C, L]``): cnnshape rejects those on purpose.
"""

from hypothesis import strategies as st

FAMILIES = ("conv", "conv_transpose", "maxpool", "avgpool", "adaptive", "batchnorm", "dropout",
            "activation", "softmax", "flatten", "linear",
            # families of the layer types added with the torchvision zoo
            "groupnorm", "layernorm", "instancenorm", "lrn", "upsample", "pixelshuffle", "channelshuffle",
            "pad", "unflatten", "permute", "prelu", "glu", "activation2", "lppool", "dropout2")
#: the families above that need a feature map ([C, *spatial]); the others take any rank
MAP_FAMILIES = ("instancenorm", "lrn", "upsample", "pixelshuffle", "channelshuffle", "pad", "lppool")
RANK_OF_NDIM = {2: 1, 3: 2, 4: 3}


def _axes(rank: int, lo: int, hi: int, allow_list: bool = True):
    ints = st.integers(lo, hi)
    if not allow_list:
        return ints
    return st.one_of(ints, st.lists(ints, min_size=rank, max_size=rank))


def _conv(draw, family: str, ndim: int, rank: int) -> dict:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    d = {"type": ("Conv" if family == "conv" else "ConvTranspose") + f"{rank}d"}
    d["out_channels"] = draw(st.integers(1, 4)) * (groups if draw(st.booleans()) else 1)
    d["kernel_size"] = draw(_axes(rank, 1, 4))
    if draw(st.booleans()):
        d["stride"] = draw(_axes(rank, 1, 3))
    if draw(st.booleans()):
        d["dilation"] = draw(_axes(rank, 1, 3))
    if groups != 1:
        d["groups"] = groups
    if draw(st.booleans()):
        d["bias"] = draw(st.booleans())
    if family == "conv":
        _conv_padding(draw, d, rank)
    else:
        if draw(st.booleans()):
            d["padding"] = draw(_axes(rank, 0, 2))
        if draw(st.booleans()):
            d["output_padding"] = draw(_axes(rank, 0, 2))
    return d


def _conv_padding(draw, d: dict, rank: int) -> None:
    pad = draw(st.one_of(_axes(rank, 0, 3), st.sampled_from(["same", "valid"])))
    if pad != 0:
        d["padding"] = pad
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if mode != "zeros":
        d["padding_mode"] = mode


def _pool(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": ("MaxPool" if family == "maxpool" else "AvgPool") + f"{rank}d"}
    d["kernel_size"] = draw(_axes(rank, 1, 4))
    if draw(st.booleans()):
        d["stride"] = draw(_axes(rank, 1, 3))
    if draw(st.booleans()):
        d["padding"] = draw(_axes(rank, 0, 2))
    if draw(st.booleans()):
        d["ceil_mode"] = True
    if family == "maxpool" and draw(st.booleans()):
        d["dilation"] = draw(_axes(rank, 1, 2))
    if family == "avgpool":
        if draw(st.booleans()):
            d["count_include_pad"] = False
        if rank > 1 and draw(st.integers(0, 4)) == 0:
            d["divisor_override"] = draw(st.integers(1, 5))
    return d


def _adaptive(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": draw(st.sampled_from(["AdaptiveAvgPool", "AdaptiveMaxPool"])) + f"{rank}d"}
    if rank > 1 and draw(st.booleans()):
        d["output_size"] = draw(st.lists(st.one_of(st.integers(1, 5), st.none()), min_size=rank, max_size=rank))
    else:
        d["output_size"] = draw(st.integers(1, 5))
    return d


def _batchnorm(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": f"BatchNorm{rank}d" if ndim != 1 else "BatchNorm1d"}
    if draw(st.booleans()):
        d["affine"] = draw(st.booleans())
    return d


def _dropout(draw, family: str, ndim: int, rank: int) -> dict:
    options = ["Dropout"] + ([f"Dropout{rank}d"] if ndim >= 2 else [])
    d = {"type": draw(st.sampled_from(options))}
    if draw(st.booleans()):
        d["p"] = draw(st.floats(0, 1.2))
    return d


def _activation(draw, family: str, ndim: int, rank: int) -> dict:
    return {"type": draw(st.sampled_from(["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid",
                                          "Tanh", "Identity", "Hardswish", "Hardsigmoid"]))}


def _softmax(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": draw(st.sampled_from(["Softmax", "LogSoftmax"]))}
    if draw(st.booleans()):
        d["dim"] = draw(st.integers(1, ndim + 1))
    return d


def _flatten(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": "Flatten"}
    total = ndim + 1
    start = draw(st.integers(1, total - 1)) if total > 1 else 1
    if draw(st.booleans()):
        d["start_dim"] = start
    if draw(st.booleans()):
        d["end_dim"] = draw(st.sampled_from([-1, min(start + 1, total - 1), total - 1]))
    return d


def _linear(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": "Linear", "out_features": draw(st.integers(1, 12))}
    if draw(st.booleans()):
        d["bias"] = draw(st.booleans())
    return d


#: family -> a function (draw, family, ndim, rank) -> one layer mapping (the zoo families
#: are drawn by _zoo_family_dicts)
_CORE_FAMILIES = {"conv": _conv, "conv_transpose": _conv, "maxpool": _pool, "avgpool": _pool,
                  "adaptive": _adaptive, "batchnorm": _batchnorm, "dropout": _dropout, "activation": _activation,
                  "softmax": _softmax, "flatten": _flatten, "linear": _linear}
#: families whose layers sometimes get ``trainable: False``
_FREEZABLE = ("conv", "conv_transpose", "batchnorm", "linear", "maxpool", "groupnorm", "layernorm", "prelu")


@st.composite
def layer_dicts(draw, family: str, ndim: int):
    """One layer mapping of ``family`` for an input with ``ndim`` dims per sample."""
    rank = RANK_OF_NDIM.get(ndim, draw(st.sampled_from([1, 2, 3])))
    if family in _CORE_FAMILIES:
        d = _CORE_FAMILIES[family](draw, family, ndim, rank)
    else:
        d = draw(_zoo_family_dicts(family, ndim, rank))
    if family in _FREEZABLE and draw(st.integers(0, 5)) == 0:
        d["trainable"] = False
    return d


def _groupnorm(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": "GroupNorm", "num_groups": draw(st.sampled_from([1, 1, 2, 3, 4]))}
    for key in ("affine", "bias"):
        if draw(st.integers(0, 3)) == 0:
            d[key] = draw(st.booleans())
    return d


def _layernorm(draw, family: str, ndim: int, rank: int) -> dict:
    if ndim == 3 and draw(st.booleans()):
        d = {"type": "LayerNorm2d"}
    else:
        k = draw(st.integers(1, ndim))
        d = {"type": "LayerNorm", "normalized_shape": draw(st.one_of(
            st.lists(st.integers(1, 8), min_size=k, max_size=k), st.integers(1, 8)))}
    for key in ("elementwise_affine", "bias"):
        if draw(st.integers(0, 3)) == 0:
            d[key] = draw(st.booleans())
    return d


def _instancenorm(draw, family: str, ndim: int, rank: int) -> dict:
    # InstanceNorm{r}d on an input one rank lower is torch's unbatched form: not generated
    r = draw(st.sampled_from([rank, rank, 1, 2, 3]).filter(lambda r: r == ndim - 1 or r < ndim - 1))
    d = {"type": f"InstanceNorm{r}d"}
    for key in ("affine", "track_running_stats"):
        if draw(st.booleans()):
            d[key] = draw(st.booleans())
    return d


def _lrn(draw, family: str, ndim: int, rank: int) -> dict:
    return {"type": "LocalResponseNorm", "size": draw(st.integers(1, 5))}


_UPSAMPLE_MODES = {1: ["nearest", "linear", "area", "nearest-exact"], 2: ["nearest", "bilinear", "bicubic", "area"],
                   3: ["nearest", "trilinear", "area", "nearest-exact"]}


def _upsample(draw, family: str, ndim: int, rank: int) -> dict:
    kind = draw(st.sampled_from(["Upsample", "Upsample", "Upsample", "UpsamplingNearest2d",
                                 "UpsamplingBilinear2d"]))
    d = {"type": kind}
    if kind == "Upsample" and draw(st.booleans()):
        d["mode"] = draw(st.sampled_from(_UPSAMPLE_MODES[rank] + ["bilinear"]))
    if draw(st.booleans()):
        d["size"] = draw(st.one_of(st.integers(1, 12), st.lists(st.integers(1, 12), min_size=rank, max_size=rank)))
    else:
        d["scale_factor"] = draw(st.one_of(st.sampled_from([2, 2, 3, 0.5, 1.5, 0.3]),
                                           st.lists(st.sampled_from([1, 2, 0.5, 1.7]), min_size=rank,
                                                    max_size=rank)))
        if kind == "Upsample" and draw(st.integers(0, 4)) == 0:
            d["recompute_scale_factor"] = True
    if kind == "Upsample" and d.get("mode") in ("linear", "bilinear", "bicubic", "trilinear") \
            and draw(st.booleans()):
        d["align_corners"] = draw(st.booleans())
    return d


def _pixelshuffle(draw, family: str, ndim: int, rank: int) -> dict:
    if ndim not in (1, 3):  # other ranks: torch moves axes around
        return _channelshuffle(draw, family, ndim, rank)
    d = {"type": draw(st.sampled_from(["PixelShuffle", "PixelUnshuffle"]))}
    d["upscale_factor" if d["type"] == "PixelShuffle" else "downscale_factor"] = draw(st.integers(1, 3))
    return d


def _channelshuffle(draw, family: str, ndim: int, rank: int) -> dict:
    return {"type": "ChannelShuffle", "groups": draw(st.integers(1, 4))}


def _pad(draw, family: str, ndim: int, rank: int) -> dict:
    kind = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
    # constant padding works on any higher rank; the other modes need exactly [C, *rank axes]
    r = draw(st.integers(1, rank)) if kind in ("Zero", "Constant") else rank
    d = {"type": f"{kind}Pad{r}d"}
    d["padding"] = draw(st.one_of(st.integers(-1, 4),
                                  st.lists(st.integers(-3, 5), min_size=2 * r, max_size=2 * r)))
    if kind == "Constant":
        d["value"] = draw(st.sampled_from([0, 1.5, -2]))
    return d


def _unflatten(draw, family: str, ndim: int, rank: int) -> dict:
    room = 4 - ndim  # keep ndim <= 4
    dim = draw(st.integers(1, ndim))
    n = draw(st.integers(1, 1 + min(room, 2)))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    if draw(st.booleans()):
        sizes[draw(st.integers(0, n - 1))] = -1
    return {"type": "Unflatten", "dim": draw(st.sampled_from([dim, dim - ndim - 1])), "unflattened_size": sizes}


def _permute(draw, family: str, ndim: int, rank: int) -> dict:
    rest = draw(st.permutations(list(range(1, ndim + 1))))
    return {"type": "Permute", "dims": [0] + list(rest)}


def _prelu(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": "PReLU"}
    if draw(st.booleans()):
        d["num_parameters"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        d["init"] = draw(st.sampled_from([0.1, 0.25, -0.5]))
    return d


def _glu(draw, family: str, ndim: int, rank: int) -> dict:
    d = {"type": "GLU"}
    if draw(st.booleans()):
        d["dim"] = draw(st.sampled_from([1, -1, ndim]))
    return d


def _activation2(draw, family: str, ndim: int, rank: int) -> dict:
    t = draw(st.sampled_from(["Mish", "SELU", "CELU", "Softplus", "Hardtanh", "Softmax2d"]))
    d = {"type": t}
    if t == "CELU" and draw(st.booleans()):
        d["alpha"] = draw(st.sampled_from([0.5, 2.0, 0]))
    if t == "Softplus" and draw(st.booleans()):
        d["beta"] = draw(st.sampled_from([0.5, 2.0]))
    if t == "Hardtanh" and draw(st.booleans()):
        d["min_val"], d["max_val"] = draw(st.sampled_from([(-2.0, 2.0), (0.0, 6.0), (1.0, -1.0)]))
    if t == "Softmax2d" and ndim == 2:
        d = {"type": "Mish"}  # [C, L]: torch's unbatched form, not generated
    return d


def _lppool(draw, family: str, ndim: int, rank: int) -> dict:
    # LPPool{r}d on an input one rank lower is torch's unbatched form: not generated
    r = draw(st.sampled_from([rank, rank, 1, 2, 3]).filter(lambda r: r != ndim))
    d = {"type": f"LPPool{r}d", "norm_type": draw(st.sampled_from([1, 2, 2, 3.5, 0])),
         "kernel_size": draw(_axes(r, 1, 4))}
    if draw(st.booleans()):
        d["stride"] = draw(_axes(r, 1, 3))
    if draw(st.booleans()):
        d["ceil_mode"] = True
    return d


def _dropout2(draw, family: str, ndim: int, rank: int) -> dict:
    t = draw(st.sampled_from(["AlphaDropout", "FeatureAlphaDropout", "StochasticDepth"]))
    d = {"type": t, "p": draw(st.floats(0, 1.0))}
    if t == "StochasticDepth":
        d["mode"] = draw(st.sampled_from(["row", "batch"]))
    return d


#: the families added with the torchvision zoo, each a function (draw, family, ndim, rank)
_ZOO_FAMILIES = {"groupnorm": _groupnorm, "layernorm": _layernorm, "instancenorm": _instancenorm, "lrn": _lrn,
                 "upsample": _upsample, "pixelshuffle": _pixelshuffle, "channelshuffle": _channelshuffle,
                 "pad": _pad, "unflatten": _unflatten, "permute": _permute, "prelu": _prelu, "glu": _glu,
                 "activation2": _activation2, "lppool": _lppool, "dropout2": _dropout2}


@st.composite
def _zoo_family_dicts(draw, family: str, ndim: int, rank: int):
    """Layers of the zoo families. Valid or not, but never an input on which torch reads the
    batch axis as channels or pads/moves the batch axis (cnnshape refuses those on purpose)."""
    drawer = _ZOO_FAMILIES.get(family)
    return drawer(draw, family, ndim, rank) if drawer is not None else {}


def _next_ndim(d: dict, ndim: int) -> int:
    if d["type"] == "Unflatten":
        return ndim + len(d["unflattened_size"]) - 1
    if d["type"] == "Flatten":
        total = ndim + 1
        s = d.get("start_dim", 1) % total
        e = d.get("end_dim", -1) % total
        return ndim - (e - s) if s <= e else ndim
    return ndim


def _families_for(ndim: int, permuted: bool = False) -> list[str]:
    """Families to draw for an ``ndim`` input. After a Permute, no LocalResponseNorm on maps of
    3+ spatial axes: torch's LRN views such inputs and fails on a permuted (non-contiguous)
    one, which cnnshape, tracking shapes and not memory layout, does not predict."""
    if permuted and ndim >= 4:
        return [f for f in _families_for(ndim) if f != "lrn"]
    spatial = ["conv", "conv_transpose", "maxpool", "avgpool", "adaptive", "batchnorm"]
    rest = ["dropout", "activation", "softmax", "flatten", "linear"]
    new_any = ["groupnorm", "layernorm", "unflatten", "permute", "prelu", "glu", "activation2", "dropout2"]
    if ndim >= 2:
        return spatial * 4 + rest * 2 + list(MAP_FAMILIES) + new_any
    return ["batchnorm"] * 2 + rest * 2 + new_any


@st.composite
def input_shapes(draw, ndim: int | None = None):
    """``[F]``, ``[C, L]``, ``[C, H, W]`` or ``[C, D, H, W]`` with small sizes."""
    ndim = draw(st.sampled_from([1, 2, 3, 3, 4])) if ndim is None else ndim
    size = {1: (1, 24), 2: (1, 40), 3: (1, 18), 4: (1, 8)}[ndim]
    c = draw(st.integers(1, 4))
    if ndim == 1:
        return [draw(st.integers(*size))]
    return [c] + [draw(st.integers(*size)) for _ in range(ndim - 1)]


@st.composite
def spec_dicts(draw, max_layers: int = 6, ndim: int | None = None):
    """A whole spec (valid or not) across all layer families."""
    shape = draw(input_shapes(ndim))
    n = len(shape)
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        family = draw(st.sampled_from(_families_for(n, permuted=any(x["type"] == "Permute" for x in layers))))
        d = draw(layer_dicts(family, n))
        # sometimes declare an inferred size (right or wrong)
        if d["type"].startswith(("Conv", "BatchNorm", "Linear")) and draw(st.integers(0, 4)) == 0:
            key = {"C": "in_channels", "B": "num_features", "L": "in_features"}[d["type"][0]]
            d[key] = draw(st.integers(1, 6))
        layers.append(d)
        n = _next_ndim(d, n)
    spec = {"input": shape, "layers": layers}
    if draw(st.booleans()):
        spec["batch"] = draw(st.integers(1, 3))
    return spec


def valid_specs(max_layers: int = 6, ndim: int | None = None):
    """Specs the calculator accepts."""
    from .analysis import check
    from .errors import SpecError

    def ok(d):
        try:
            return check(d).ok
        except SpecError:  # not valid; any other exception is an analyser bug and must surface
            return False

    return spec_dicts(max_layers, ndim).filter(ok)


@st.composite
def invalid_specs(draw):
    """``(spec, index, fragment)``: a spec broken at layer ``index`` in a known way."""
    kind = draw(st.sampled_from(["in_features", "in_channels", "kernel", "groups", "flatten_conv",
                                 "num_groups", "pixel_shuffle", "reflection_pad", "layernorm"]))
    c, h = draw(st.integers(1, 4)), draw(st.integers(4, 20))
    if kind == "num_groups":
        g = draw(st.integers(2, 5))
        ch = draw(st.integers(1, 12).filter(lambda v: v % g))
        return {"input": [c, h, h], "layers": [{"type": "Conv2d", "out_channels": ch, "kernel_size": 1},
                                                {"type": "GroupNorm", "num_groups": g}]}, 1, "divisible by num_groups"
    if kind == "pixel_shuffle":
        r = draw(st.integers(2, 3))
        ch = draw(st.integers(1, 12).filter(lambda v: v % (r * r)))
        return {"input": [ch, h, h], "layers": ["ReLU", {"type": "PixelShuffle", "upscale_factor": r}]}, 1, "divisible"
    if kind == "reflection_pad":
        return {"input": [c, h], "layers": [{"type": "ReflectionPad1d", "padding": draw(st.integers(h, h + 3))}]}, 0, \
            "smaller than the input"
    if kind == "layernorm":
        wrong = draw(st.integers(1, 30).filter(lambda v: v != h))
        return {"input": [c, h, h], "layers": [{"type": "LayerNorm", "normalized_shape": [wrong]}]}, 0, "end with"
    if kind == "in_features":
        wrong = draw(st.integers(1, 500).filter(lambda v: v != 4 * (h - 2) ** 2))
        spec = {"input": [c, h, h], "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
                                                "Flatten", {"type": "Linear", "in_features": wrong, "out_features": 3}]}
        return spec, 2, "in_features"
    if kind == "in_channels":
        wrong = draw(st.integers(1, 8).filter(lambda v: v != c))
        return {"input": [c, h, h], "layers": [{"type": "Conv2d", "in_channels": wrong, "out_channels": 2,
                                                 "kernel_size": 1}]}, 0, "in_channels"
    if kind == "kernel":
        k = draw(st.integers(h + 1, h + 6))
        return {"input": [c, h, h], "layers": ["ReLU", {"type": "Conv2d", "out_channels": 2, "kernel_size": k}]}, 1, \
            "kernel"
    if kind == "groups":
        return {"input": [3, h, h], "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 1,
                                                 "groups": 2}]}, 0, "divisible by groups"
    return {"input": [c, h, h], "layers": ["Flatten", {"type": "Conv1d", "out_channels": 2, "kernel_size": 1}]}, 1, \
        "expects input"


def to_yaml(spec: dict) -> str:
    """A spec dict as YAML text (one flow mapping per layer), for bug reports."""
    from .yaml_out import dump_data

    return dump_data(spec)


# ------------------------------------------------------------------- nested specs
_INNER = ("conv", "conv", "maxpool", "avgpool", "batchnorm", "activation", "dropout")


@st.composite
def _leaves(draw, ndim: int, lo: int = 1, hi: int = 3):
    return [draw(layer_dicts(draw(st.sampled_from(_INNER)), ndim)) for _ in range(draw(st.integers(lo, hi)))]


def _named(layers, prefix: str) -> list:
    return [{**(x if isinstance(x, dict) else {"type": x}), "name": f"{prefix}{j}"} for j, x in enumerate(layers)]


def _sequential_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    return {"type": "Sequential", "body": draw(_leaves(ndim))}


def _inline_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    branches = [_named(draw(_leaves(ndim, 1, 2)), f"b{i}_") for i in range(draw(st.integers(2, 3)))]
    return {"type": "Sequential", "body": [{**draw(layer_dicts("conv", ndim)), "name": "head"},
                                           {"type": "Concat", "inline": True, "flat": True,
                                            "branches": branches}]}


def _concat_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    k = draw(st.integers(2, 3))
    d = {"type": "Concat", "branches": [draw(_leaves(ndim, 1, 2)) for _ in range(k)]}
    if not every_block:
        return d
    if draw(st.booleans()):
        d["split"] = True
    if draw(st.booleans()):
        d["branches"][0] = []
    if draw(st.booleans()):
        d["flat"] = True
        d["branches"] = [_named(b, f"b{i}_") for i, b in enumerate(d["branches"])]
    elif draw(st.booleans()):
        d["names"] = [f"branch{i + 1}" for i in range(k)]
    if draw(st.booleans()):
        d["after"] = ["ReLU"]
    return d


def _squeeze_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    rank = RANK_OF_NDIM[ndim]
    if draw(st.booleans()):
        d = {"type": "SqueezeExcitation", "squeeze_channels": draw(st.integers(1, 4))}
        if draw(st.booleans()):
            d["activation"] = draw(st.sampled_from(["ReLU", "SiLU"]))
        if draw(st.booleans()):
            d["scale_activation"] = draw(st.sampled_from(["Sigmoid", "Hardsigmoid"]))
        return d
    return {"type": "SqueezeExcitation", "gate": [
        {"type": f"AdaptiveAvgPool{rank}d", "output_size": 1},
        {"type": f"Conv{rank}d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 1}, "Sigmoid"]}


def _dense_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    rank = RANK_OF_NDIM[ndim]
    body = [f"BatchNorm{rank}d", "ReLU", same] if draw(st.booleans()) else draw(_leaves(ndim, 1, 2))
    d = {"type": "DenseBlock", "n": draw(st.integers(1, 3)), "body": body}
    if draw(st.booleans()):
        d["child_names"] = "layer{number}"
    return d


def _residual_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    rank = RANK_OF_NDIM[ndim]
    body = draw(_leaves(ndim))
    if draw(st.booleans()):  # a 'same'-padded conv keeps shapes: the common, valid case
        body = [{**same, "padding": "same"}] + [x for x in body if x["type"].startswith(("BatchNorm", "ReLU",
                                                                                           "Tanh"))]
    d = {"type": "Residual", "body": body}
    if draw(st.booleans()):
        d["shortcut"] = [{"type": f"Conv{rank}d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 1,
                          "stride": draw(st.integers(1, 2))}]
    if draw(st.booleans()):
        d["after"] = ["ReLU"]
    if every_block and draw(st.integers(0, 3)) == 0:
        d["layer_scale"] = draw(st.sampled_from([1e-6, 0.5, 1.0]))
    return d


def _repeat_block(draw, ndim: int, same: dict, depth: int, every_block: bool) -> dict:
    inner = draw(block_dicts(ndim, depth + 1, every_block)) if depth == 0 and draw(st.booleans()) else None
    if inner is not None and inner["type"] == "Repeat":
        inner = None
    body = [inner] if inner else [{**x, "name": f"l{i}"} for i, x in enumerate(draw(_leaves(ndim, 1, 2)))]
    d = {"type": "Repeat", "n": draw(st.integers(1, 3)), "body": body}
    if inner is None and draw(st.booleans()) and body[0]["type"].startswith("Conv"):
        d["first"] = {"l0": {"stride": 2}}
    if every_block and draw(st.integers(0, 3)) == 0:
        d["child_names"] = "blk{number}"
    return d


#: block kind -> a function (draw, ndim, same, depth, every_block) -> one block mapping;
#: ``same`` is a shape-keeping convolution
_BLOCK_KINDS = {"Sequential": _sequential_block, "Inline": _inline_block, "Concat": _concat_block,
                "SqueezeExcitation": _squeeze_block, "DenseBlock": _dense_block, "Residual": _residual_block,
                "Repeat": _repeat_block}


@st.composite
def block_dicts(draw, ndim: int, depth: int = 0, every_block: bool = False):
    """One block (Sequential, Repeat with ``first``/``child_names``, Residual with optional
    shortcut/after/layer_scale, Concat with names/flat/split/after and empty branches,
    SqueezeExcitation short and long, DenseBlock, an inline Concat inside a Sequential) of
    feature-map layers for an input with ``ndim`` dims; valid or not (shapes may not agree
    where branches merge)."""
    kinds = ["Residual", "Residual", "Concat", "Sequential", "Repeat"]
    if every_block:
        kinds += ["Concat", "SqueezeExcitation", "DenseBlock", "Inline"]
    kind = draw(st.sampled_from(kinds))
    rank = RANK_OF_NDIM[ndim]
    same = {"type": f"Conv{rank}d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 3, "padding": 1}
    return _BLOCK_KINDS[kind](draw, ndim, same, depth, every_block)


@st.composite
def nested_spec_dicts(draw, max_items: int = 4, every_block: bool = False):
    """Specs mixing plain layers and blocks (1-d, 2-d and 3-d feature maps), valid or not;
    sometimes ending in a classifier head. ``every_block``: also SqueezeExcitation, DenseBlock
    and the block options (inline, Concat names/flat/split/after, layer_scale, child_names);
    default: Sequential, Repeat, Residual, Concat."""
    ndim = draw(st.sampled_from([2, 3, 3, 3, 4]))
    shape = draw(input_shapes(ndim))
    items = []
    for _ in range(draw(st.integers(1, max_items))):
        if draw(st.integers(0, 2)):
            items.append(draw(block_dicts(ndim, every_block=every_block)))
        else:
            items.append(draw(layer_dicts(draw(st.sampled_from(_INNER)), ndim)))
    if draw(st.booleans()):
        items += ["Flatten", {"type": "Linear", "out_features": draw(st.integers(1, 5))}]
    return {"input": shape, "layers": items, **({"batch": 2} if draw(st.booleans()) else {})}
