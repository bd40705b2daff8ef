"""`cnnshape sizes` equals brute force with torch on every size: generated specs (flat and
nested, 1-d/2-d/3-d, every argument kind) and the classic traps.

Each example compiles the model at its declared input and runs it forward at every size
1..N of one axis (the others as declared); the analytic set must be exactly the sizes
that ran. N is small in the default (fast) profile; CNNSHAPE_HYPOTHESIS=thorough runs
more examples and larger N.
"""

import os

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.sizes import members, sizes

from .conftest import PROFILE
from .sizes_oracle import brute, brute_square

THOROUGH = PROFILE == "thorough"
N = {2: 96 if THOROUGH else 48, 3: 64 if THOROUGH else 32, 4: 24 if THOROUGH else 14}
EXAMPLES = 400 if THOROUGH else 25


def _valid(d) -> bool:
    try:
        return check(d).ok
    except Exception:  # noqa: BLE001 - SpecError: not a spec we can compare
        return False


def assert_exact(spec):
    rep = sizes(spec)
    assert rep.ok
    ndim = len(rep.input)
    top = N[ndim]
    for ax in rep.axes:
        if ax.valid is None and "scale_factor" in ax.unknown:  # documented limit: reported, not guessed
            continue
        assert ax.valid is not None, ax.unknown
        got = members(ax.valid, top)
        want = brute(spec, ax.dim, range(1, top + 1))
        note(f"axis {ax.axis}: sizes {sorted(got)}\n torch {sorted(want)}")
        assert got == want, (ax.axis, sorted(got ^ want))
        assert ax.declared in ax, "the declared size works"
        assert members(ax.no_drop, top) <= got
    if rep.coupled and rep.square is not None:  # all spatial axes = n together
        want = brute_square(spec, range(1, top + 1))
        assert members(rep.square, top) == want, sorted(members(rep.square, top) ^ want)


# ------------------------------------------------------------------ generated specs
@st.composite
def _window(draw, rank: int):
    """A conv / pool / transposed conv with any argument kind, for merge branches."""
    kind = draw(st.sampled_from(["conv", "conv", "pool", "pool", "convT", "adaptive"]))
    k = draw(st.integers(1, 4))
    if kind == "conv":
        d = {"type": f"Conv{rank}d", "out_channels": 2, "kernel_size": k, "stride": draw(st.integers(1, 3)),
             "dilation": draw(st.integers(1, 2))}
        mode = draw(st.sampled_from(["zeros", "reflect", "circular", "replicate"]))
        pad = draw(st.sampled_from([0, 1, 2, "same"]))
        if pad == "same":
            d["stride"] = 1
        d["padding"] = pad
        if mode != "zeros":
            d["padding_mode"] = mode
        return d
    if kind == "pool":
        p = draw(st.integers(0, k // 2))
        return {"type": draw(st.sampled_from(["MaxPool", "AvgPool"])) + f"{rank}d", "kernel_size": k,
                "stride": draw(st.integers(1, 3)), "padding": p, "ceil_mode": draw(st.booleans())}
    if kind == "convT":
        s = draw(st.integers(1, 3))
        return {"type": f"ConvTranspose{rank}d", "out_channels": 2, "kernel_size": k, "stride": s,
                "padding": draw(st.integers(0, 2)), "output_padding": draw(st.integers(0, s - 1))}
    return {"type": f"AdaptiveAvgPool{rank}d", "output_size": draw(st.integers(1, 4))}


def _residual(draw, rank, a, b) -> dict:
    for x in a + b:  # a residual adds: equal channels
        if "out_channels" in x:
            x["out_channels"] = 2
    block = {"type": "Residual", "body": a}
    if b:
        block["shortcut"] = b
    return block


def _concat(draw, rank, a, b) -> dict:
    block = {"type": "Concat", "branches": [a, b or [{"type": f"MaxPool{rank}d", "kernel_size": 1}]]}
    if draw(st.booleans()):  # flat / split (an empty branch passes its chunk) / after
        block["flat"] = True
        for j, x in enumerate(a + b):
            x["name"] = f"l{j}"
    elif draw(st.booleans()):
        block = {"type": "Concat", "split": True, "branches": [[], a]}
    if draw(st.booleans()):
        block["after"] = [{"type": "ChannelShuffle", "groups": 1}, draw(_window(rank))]
    return block


def _squeeze(draw, rank, a, b) -> dict:
    gate = [x for x in a if x["type"].startswith(("Conv", "Max", "Avg", "Adaptive"))]
    for x in gate:
        if "out_channels" in x:
            x["out_channels"] = 2
    block = {"type": "SqueezeExcitation", "gate": gate + [{"type": "Sigmoid"}]}
    if draw(st.booleans()):
        block = {"type": "SqueezeExcitation", "squeeze_channels": 1}
    return block


def _dense(draw, rank, a, b) -> dict:
    body = [x for x in a if not x["type"].startswith(("Adaptive", "ConvTranspose"))] or [
        {"type": f"Conv{rank}d", "out_channels": 1, "kernel_size": 3, "padding": 1}]
    return {"type": "DenseBlock", "n": draw(st.integers(1, 3)), "body": body}


def _merge_block(draw, rank) -> dict:
    """One Residual, Concat, SqueezeExcitation or DenseBlock over windowed layers (a, b)."""
    a = [draw(_window(rank)) for _ in range(draw(st.integers(1, 2)))]
    b = [draw(_window(rank)) for _ in range(draw(st.integers(0, 2)))]
    for kind in (_residual, _concat, _squeeze):  # each drawn with a coin flip, in this order
        if draw(st.booleans()):
            return kind(draw, rank, a, b)
    return _dense(draw, rank, a, b)


@st.composite
def merge_specs(draw):
    """Residual / Concat blocks whose branches resize differently (stride-2 body vs pooled
    shortcut, up/down sampling), nested in a Sequential, sometimes with a Flatten+Linear
    head; the declared input is one at which the branches agree."""
    rank = draw(st.sampled_from([1, 2, 2, 3]))
    items = []
    for _ in range(draw(st.integers(1, 2))):
        block = _merge_block(draw, rank)
        items.append({"type": "Sequential", "body": [block]} if draw(st.booleans()) else block)
    if draw(st.booleans()):
        items += ["Flatten", {"type": "Linear", "out_features": 3}]
    top = {1: 40, 2: 24, 3: 10}[rank]
    candidates = list(range(1, top + 1))
    first = draw(st.sampled_from(candidates))
    for n in candidates[first - 1:] + candidates[:first - 1]:
        spec = {"input": [2] + [n] + [draw(st.integers(3, 6)) for _ in range(rank - 1)], "layers": items}
        if _valid(spec):
            return spec
    spec = {"input": [2] + [first] * rank, "layers": items}
    return spec


SLOW = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SLOW
@given(st.sampled_from([2, 3, 3, 4]).flatmap(lambda nd: cs.spec_dicts(5, nd)).filter(_valid))
def test_flat_specs_equal_torch_on_every_size(spec):
    assert_exact(spec)


@SLOW
@given(cs.nested_spec_dicts(max_items=3).filter(_valid))
def test_nested_specs_equal_torch_on_every_size(spec):
    assert_exact(spec)


@SLOW
@given(merge_specs().filter(_valid))
def test_merges_equal_torch_on_every_size(spec):
    assert_exact(spec)


# ------------------------------------------------------------------ the classic traps
def _conv(c, k=3, **kw):
    return {"type": "Conv2d", "out_channels": c, "kernel_size": k, **kw}


def _unet(depth: int, n: int) -> dict:
    """A small U-Net: 'same' convs, MaxPool2d(2) down, ConvTranspose2d(2, 2) up, skip
    concatenations (needs H, W divisible by 2**depth)."""
    inner = [_conv(2, padding=1)]
    for _ in range(depth):
        inner = [{"type": "Concat", "branches": [
            [{"type": "Identity"}],
            [{"type": "MaxPool2d", "kernel_size": 2}, *inner,
             {"type": "ConvTranspose2d", "out_channels": 2, "kernel_size": 2, "stride": 2}]]},
            _conv(2, padding=1)]
    return {"input": [1, n, n], "layers": [_conv(2, padding=1), *inner]}


TRAPS = {
    # U-Net depth 3: H divisible by 8
    "unet3": (_unet(3, 32), "H", [{"from": 8, "to": None, "step": 8}]),
    # YOLO / Darknet-style: five MaxPool2d(2) stages, a residual at each scale: H >= 32
    # works, the grid is floor(H/32), no pixel is dropped only for multiples of 32
    "yolo": ({"input": [1, 64, 64], "layers": [
        _conv(2, padding=1),
        *[x for _ in range(5) for x in (
            {"type": "MaxPool2d", "kernel_size": 2},
            {"type": "Residual", "body": [_conv(2, 1), _conv(2, padding=1)]})],
        _conv(3, 1)]}, "H", [{"from": 32, "to": None, "step": 1}]),
    # strided convs instead (3x3, stride 2, padding 1): every size works, grid ceil(H/32)
    "strided": ({"input": [1, 64, 64], "layers": [
        *[x for _ in range(5) for x in (
            _conv(2, stride=2, padding=1),
            {"type": "Residual", "body": [_conv(2, 1), _conv(2, padding=1)]})]]},
        "H", [{"from": 1, "to": None, "step": 1}]),
    # LeNet-5: Linear(400) fixed: 32..35 only
    "lenet": ("specs/lenet5.yaml", "H", [{"from": 32, "to": 35, "step": 1}]),
    # stride-2 body vs MaxPool2d(2) shortcut: even sizes only
    "parity": ({"input": [2, 16, 16], "layers": [{"type": "Residual",
                                                 "body": [_conv(2, stride=2, padding=1)],
                                                 "shortcut": [{"type": "MaxPool2d", "kernel_size": 2}]}]},
               "H", [{"from": 2, "to": None, "step": 2}]),
    # reflect padding 3 needs input > 3
    "reflect": ({"input": [1, 16, 16], "layers": [_conv(1, 7, padding=3, padding_mode="reflect")]},
                "H", [{"from": 4, "to": None, "step": 1}]),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_classic_traps(name):
    spec, axis, want = TRAPS[name]
    rep = sizes(spec)
    ax = rep.axis(axis)
    assert [g.to_dict() for g in ax.valid] == want, ax.summary
    top = 80
    assert members(ax.valid, top) == brute(spec, ax.dim, range(1, top + 1))


def test_yolo_grid_and_no_drop():
    ax = sizes(TRAPS["yolo"][0]).axis("H")
    assert ax.output == "floor(H / 32)"
    assert [g.to_dict() for g in ax.no_drop] == [{"from": 32, "to": None, "step": 32}]
    assert ax.nearest(500) == (500,)
    assert ax.summary == "H ≥ 32"
    assert sizes(TRAPS["strided"][0]).axis("W").output == "floor((W - 1) / 32) + 1"


def test_unet_nearest_and_square_lenet_coupling():
    ax = sizes(_unet(3, 32)).axis("W")
    assert ax.nearest(100) == (96, 104)
    rep = sizes("specs/lenet5.yaml")
    assert rep.coupled and "c5" in rep.coupled
    assert [g.to_dict() for g in rep.square] == [{"from": 32, "to": 35, "step": 1}]


# ------------------------------------------------------------------ the newer layer types
@st.composite
def _new_layer(draw, rank: int, channels: int):
    kind = draw(st.sampled_from(["pad", "pad", "upsample", "upsample", "norm", "shuffle", "misc"]))
    if kind == "pad":
        mode = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication", "Circular"]))
        pad = draw(st.one_of(st.integers(0, 3), st.lists(st.integers(-1, 3), min_size=2 * rank, max_size=2 * rank)))
        d = {"type": f"{mode}Pad{rank}d", "padding": pad}
        if mode == "Constant":
            d["value"] = 0.5
        return d
    if kind == "upsample":
        if draw(st.booleans()):
            return {"type": "Upsample", "size": draw(st.integers(1, 9))}
        mode = draw(st.sampled_from(["nearest", "area", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]]))
        return {"type": "Upsample", "scale_factor": draw(st.sampled_from([2, 3, 0.5, 1.5, 2.5, 0.75])), "mode": mode}
    if kind == "norm":
        return draw(st.sampled_from([
            {"type": "GroupNorm", "num_groups": 1},
            {"type": f"InstanceNorm{rank}d"},
            {"type": f"InstanceNorm{rank}d", "track_running_stats": True},
            {"type": "LocalResponseNorm", "size": 2},
            *([{"type": "LayerNorm2d"}] if rank == 2 else []),
        ]))
    if kind == "shuffle" and rank == 2:
        r = draw(st.integers(1, 3))
        if draw(st.booleans()):
            return {"type": "PixelUnshuffle", "downscale_factor": r}
        return {"type": "Conv2d", "out_channels": r * r, "kernel_size": 1}
    if kind == "shuffle":
        return {"type": "ChannelShuffle", "groups": 1}
    return draw(st.sampled_from([{"type": "StochasticDepth", "p": 0.5, "mode": "row"},
                                 {"type": "Identity"}]))


@st.composite
def new_layer_specs(draw):
    rank = draw(st.sampled_from([1, 2, 2, 3]))
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        layers.append(draw(_new_layer(rank, 2)) if draw(st.integers(0, 2)) else draw(_window(rank)))
    if rank == 2 and draw(st.booleans()):
        layers += [{"type": "Conv2d", "out_channels": 4, "kernel_size": 1}, {"type": "PixelShuffle", "upscale_factor": 2}]
    if draw(st.booleans()):
        layers += [{"type": "LayerNorm", "normalized_shape": 0}]  # placeholder: fixed last axis
    top = {1: 40, 2: 20, 3: 8}[rank]
    for _ in range(6):
        spec = {"input": [2] + [draw(st.integers(2, top)) for _ in range(rank)], "layers": layers}
        if layers[-1]["type"] == "LayerNorm":
            rep = check({**spec, "layers": layers[:-1]}) if _valid({**spec, "layers": layers[:-1]}) else None
            if rep is None:
                continue
            layers = layers[:-1] + [{"type": "LayerNorm", "normalized_shape": rep.output[-1]}]
            spec["layers"] = layers
        if _valid(spec):
            return spec
    return spec


@SLOW
@given(new_layer_specs().filter(_valid))
def test_new_layer_types_equal_torch_on_every_size(spec):
    assert_exact(spec)


# ------------------------------------------------------------------ the shipped specs' golden sets
SMALL = ["convnet_notebook", "edge_filters", "fashion_mnist", "lenet5", "m5_audio_1d", "unet_small", "volume_3d"]
BIG = ["alexnet", "mobilenet_v2", "resnet18", "resnet50", "resnet_small_32", "vgg16"]


@pytest.mark.parametrize("name", SMALL + (BIG if THOROUGH else []))
def test_golden_sets_of_shipped_specs_equal_torch(name):
    """tests/golden/sizes.json, checked against torch at the sizes around every boundary of
    every set (and 1..16), on each axis."""
    import json

    from .sizes_oracle import as_progression

    with open(os.path.join(os.path.dirname(__file__), "golden", "sizes.json")) as f:
        doc = {d["file"]: d for d in json.load(f)}[f"specs/{name}.yaml"]
    cap = 256 if name in ("convnet_notebook", "edge_filters", "fashion_mnist", "lenet5") else 72
    for ax in doc["axes"]:
        valid = [as_progression(g) for g in ax["valid"]]
        probe = set(range(1, 17)) | set(range(ax["declared"] - 2, ax["declared"] + 3))
        for g in valid:
            probe |= set(range(g.start - 2, g.start + 3))
            if g.stop is not None:
                probe |= set(range(g.stop - 2, g.stop + 3))
        probe = sorted(n for n in probe if 1 <= n and (n <= cap or n == ax["declared"] or name == "m5_audio_1d"))
        want = brute(f"specs/{name}.yaml", ax["dim"], probe)
        got = {n for n in probe if any(n in g for g in valid)}
        assert got == want, (ax["axis"], sorted(got ^ want))


def test_cnnshape_is_stricter_than_torch_only_where_torch_broadcasts():
    """The oracle treats merges as torch does: a Residual whose stride-2 body and pooled
    shortcut disagree at H = 3 ([1, 2] + [1, 1]) runs in torch by broadcasting; cnnshape
    requires equal shapes and refuses it. Every other size: both agree (tests above)."""
    from .sizes_oracle import outcomes

    spec, axis, _ = TRAPS["parity"]
    ax = sizes(spec).axis(axis)
    seen = outcomes(spec, ax.dim, range(1, 41))
    assert seen[3] == "broadcast" and seen[2] == seen[4] == "ran" and seen[5] == "failed"
    assert members(ax.valid, 40) == {n for n, o in seen.items() if o == "ran"}
    assert {n for n, o in seen.items() if o == "broadcast"} == {3}
    gate = {"input": [4, 8, 8], "layers": [{"type": "SqueezeExcitation", "gate": [
        {"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Conv2d", "out_channels": 1, "kernel_size": 1},
        "Sigmoid"]}]}  # one value per sample: torch scales with it, cnnshape wants [C, 1, 1]
    with pytest.raises(AssertionError, match="broadcast"):
        outcomes(gate, 1, [8])
    assert not check(gate).ok
