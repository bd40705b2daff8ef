"""Hypothesis strategies for cnnshape specs (public: use them to fuzz your own code).

- ``layer_dicts(family, ndim)``: one layer mapping of a family for an input of ``ndim``
  dims per sample (``[C, H, W]`` has ndim 3);
- ``spec_dicts()``: whole specs across all layer types and ranks, valid or not (about
  half are invalid in some way: that is the point of comparing with torch);
- ``valid_specs()``: specs that ``cnnshape.analyze`` accepts;
- ``invalid_specs()``: ``(spec_dict, index, fragment)`` triples, specs broken in a known
  way at layer ``index`` with ``fragment`` expected in the error message;
- ``block_dicts(ndim)`` / ``nested_spec_dicts()``: blocks (Sequential, Repeat with
  ``first``, Residual with optional shortcut/after, Concat) and specs mixing them with
  plain layers, valid or not (merges whose shapes disagree included).

Specs are plain dicts in the YAML format; ``to_yaml`` prints one for a bug report.

Generated specs avoid the inputs on which torch silently reinterprets the batch axis as
channels (e.g. ``Conv2d`` on ``[C, L]``): cnnshape rejects those on purpose.
"""

from hypothesis import strategies as st

FAMILIES = ("conv", "conv_transpose", "maxpool", "avgpool", "adaptive", "batchnorm", "dropout",
            "activation", "softmax", "flatten", "linear")
RANK_OF_NDIM = {2: 1, 3: 2, 4: 3}


def _axes(rank: int, lo: int, hi: int, allow_list: bool = True):
    ints = st.integers(lo, hi)
    if not allow_list:
        return ints
    return st.one_of(ints, st.lists(ints, min_size=rank, max_size=rank))


@st.composite
def layer_dicts(draw, family: str, ndim: int):
    """One layer mapping of ``family`` for an input with ``ndim`` dims per sample."""
    rank = RANK_OF_NDIM.get(ndim, draw(st.sampled_from([1, 2, 3])))
    d: dict = {}
    if family in ("conv", "conv_transpose"):
        groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
        d["type"] = ("Conv" if family == "conv" else "ConvTranspose") + f"{rank}d"
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
            pad = draw(st.one_of(_axes(rank, 0, 3), st.sampled_from(["same", "valid"])))
            if pad != 0:
                d["padding"] = pad
            mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
            if mode != "zeros":
                d["padding_mode"] = mode
        else:
            if draw(st.booleans()):
                d["padding"] = draw(_axes(rank, 0, 2))
            if draw(st.booleans()):
                d["output_padding"] = draw(_axes(rank, 0, 2))
    elif family in ("maxpool", "avgpool"):
        d["type"] = ("MaxPool" if family == "maxpool" else "AvgPool") + f"{rank}d"
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
    elif family == "adaptive":
        d["type"] = draw(st.sampled_from(["AdaptiveAvgPool", "AdaptiveMaxPool"])) + f"{rank}d"
        if rank > 1 and draw(st.booleans()):
            d["output_size"] = draw(st.lists(st.one_of(st.integers(1, 5), st.none()), min_size=rank, max_size=rank))
        else:
            d["output_size"] = draw(st.integers(1, 5))
    elif family == "batchnorm":
        d["type"] = f"BatchNorm{rank}d" if ndim != 1 else "BatchNorm1d"
        if draw(st.booleans()):
            d["affine"] = draw(st.booleans())
    elif family == "dropout":
        options = ["Dropout"] + ([f"Dropout{rank}d"] if ndim >= 2 else [])
        d["type"] = draw(st.sampled_from(options))
        if draw(st.booleans()):
            d["p"] = draw(st.floats(0, 1.2))
    elif family == "activation":
        d["type"] = draw(st.sampled_from(["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid",
                                          "Tanh", "Identity", "Hardswish", "Hardsigmoid"]))
    elif family == "softmax":
        d["type"] = draw(st.sampled_from(["Softmax", "LogSoftmax"]))
        if draw(st.booleans()):
            d["dim"] = draw(st.integers(1, ndim + 1))
    elif family == "flatten":
        d["type"] = "Flatten"
        total = ndim + 1
        start = draw(st.integers(1, total - 1)) if total > 1 else 1
        if draw(st.booleans()):
            d["start_dim"] = start
        if draw(st.booleans()):
            d["end_dim"] = draw(st.sampled_from([-1, min(start + 1, total - 1), total - 1]))
    elif family == "linear":
        d["type"] = "Linear"
        d["out_features"] = draw(st.integers(1, 12))
        if draw(st.booleans()):
            d["bias"] = draw(st.booleans())
    if family in ("conv", "conv_transpose", "batchnorm", "linear", "maxpool") and draw(st.integers(0, 5)) == 0:
        d["trainable"] = False
    return d


def _next_ndim(d: dict, ndim: int) -> int:
    if d["type"] == "Flatten":
        total = ndim + 1
        s = d.get("start_dim", 1) % total
        e = d.get("end_dim", -1) % total
        return ndim - (e - s) if s <= e else ndim
    return ndim


def _families_for(ndim: int) -> list[str]:
    spatial = ["conv", "conv_transpose", "maxpool", "avgpool", "adaptive", "batchnorm"]
    rest = ["dropout", "activation", "softmax", "flatten", "linear"]
    if ndim >= 2:
        return spatial * 2 + rest
    return ["batchnorm"] + rest


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
        family = draw(st.sampled_from(_families_for(n)))
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
    kind = draw(st.sampled_from(["in_features", "in_channels", "kernel", "groups", "flatten_conv"]))
    c, h = draw(st.integers(1, 4)), draw(st.integers(4, 20))
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


@st.composite
def block_dicts(draw, ndim: int, depth: int = 0):
    """One block (Sequential, Residual, Concat or Repeat) of feature-map layers for an
    input with ``ndim`` dims; valid or not (shapes may not agree where branches merge)."""
    kind = draw(st.sampled_from(["Residual", "Residual", "Concat", "Sequential", "Repeat"]))
    rank = RANK_OF_NDIM[ndim]
    if kind == "Sequential":
        return {"type": "Sequential", "body": draw(_leaves(ndim))}
    if kind == "Concat":
        return {"type": "Concat", "branches": [draw(_leaves(ndim, 1, 2)) for _ in range(draw(st.integers(2, 3)))]}
    if kind == "Residual":
        body = draw(_leaves(ndim))
        if draw(st.booleans()):  # a 'same'-padded conv keeps shapes: the common, valid case
            body = [{"type": f"Conv{rank}d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 3,
                     "padding": "same"}] + [x for x in body if x["type"].startswith(("BatchNorm", "ReLU", "Tanh"))]
        d = {"type": "Residual", "body": body}
        if draw(st.booleans()):
            d["shortcut"] = [{"type": f"Conv{rank}d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 1,
                              "stride": draw(st.integers(1, 2))}]
        if draw(st.booleans()):
            d["after"] = ["ReLU"]
        return d
    inner = draw(block_dicts(ndim, depth + 1)) if depth == 0 and draw(st.booleans()) else None
    if inner is not None and inner["type"] == "Repeat":
        inner = None
    body = [inner] if inner else [{**x, "name": f"l{i}"} for i, x in enumerate(draw(_leaves(ndim, 1, 2)))]
    d = {"type": "Repeat", "n": draw(st.integers(1, 3)), "body": body}
    if inner is None and draw(st.booleans()) and body[0]["type"].startswith("Conv"):
        d["first"] = {"l0": {"stride": 2}}
    return d


@st.composite
def nested_spec_dicts(draw, max_items: int = 4):
    """Specs mixing plain layers and blocks (1-d, 2-d and 3-d feature maps), valid or not;
    sometimes ending in a classifier head."""
    ndim = draw(st.sampled_from([2, 3, 3, 3, 4]))
    shape = draw(input_shapes(ndim))
    items = []
    for _ in range(draw(st.integers(1, max_items))):
        if draw(st.integers(0, 2)):
            items.append(draw(block_dicts(ndim)))
        else:
            items.append(draw(layer_dicts(draw(st.sampled_from(_INNER)), ndim)))
    if draw(st.booleans()):
        items += ["Flatten", {"type": "Linear", "out_features": draw(st.integers(1, 5))}]
    return {"input": shape, "layers": items, **({"batch": 2} if draw(st.booleans()) else {})}
