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
from cnnshape.sizes import sizes

from .sizes_oracle import brute, members

THOROUGH = os.environ.get("CNNSHAPE_HYPOTHESIS") == "thorough"
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
        assert ax.valid is not None, ax.unknown
        got = members(ax.valid, top)
        want = brute(spec, ax.dim, range(1, top + 1))
        note(f"axis {ax.axis}: sizes {sorted(got)}\n torch {sorted(want)}")
        assert got == want, (ax.axis, sorted(got ^ want))
        assert ax.declared in ax, "the declared size works"
        assert members(ax.no_drop, top) <= got


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


@st.composite
def merge_specs(draw):
    """Residual / Concat blocks whose branches resize differently (stride-2 body vs pooled
    shortcut, up/down sampling), nested in a Sequential, sometimes with a Flatten+Linear
    head; the declared input is one at which the branches agree."""
    rank = draw(st.sampled_from([1, 2, 2, 3]))
    items = []
    for _ in range(draw(st.integers(1, 2))):
        a = [draw(_window(rank)) for _ in range(draw(st.integers(1, 2)))]
        b = [draw(_window(rank)) for _ in range(draw(st.integers(0, 2)))]
        if draw(st.booleans()):
            for x in a + b:  # a residual adds: equal channels
                if "out_channels" in x:
                    x["out_channels"] = 2
            block = {"type": "Residual", "body": a}
            if b:
                block["shortcut"] = b
        else:
            block = {"type": "Concat", "branches": [a, b or [{"type": f"MaxPool{rank}d", "kernel_size": 1}]]}
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
