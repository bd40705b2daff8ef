"""timm's MixedConv2d (MixNet; cnnshape/layers/mixed_conv.py) against the REAL timm module.

Generated cases: cnnshape's verdict, output shape, params and MACs (every child
convolution, counted by forward hooks) against timm's module run by torch; the compiled
layer loads timm's randomised state_dict strictly and gives its outputs; saved-for-backward
bytes against torch's autograd hooks (compiled copy and timm's module); ``cnnshape sizes``
against forward passes through a fixed-size consumer; import of timm's module.
"""


import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.memory import estimate
from cnnshape.sizes import sizes
from cnnshape.torch_backend.build import build

from .memory_oracle import saved_bytes
from .sizes_oracle import brute, members
from .test_timm_split_attention import _conv_macs
from .timm_ref import assert_same, randomise, ref_module, timm, timm_verdict

torch.set_num_threads(1)
EXAMPLES = max(20, settings.default.max_examples // 8)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mixed_conv(draw, odd: bool = False):
    c = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 9]))
    kernels = [3, [3, 5], [3, 5, 7], [3, 5, 7, 9], [5, 3]] + ([] if odd else [1, [1, 3], [3, 4], [2, 2]])
    d: dict = {"type": "MixedConv2d", "kernel_size": draw(st.sampled_from(kernels))}
    depthwise = draw(st.booleans())
    d["out_channels"] = c * draw(st.sampled_from([1, 2])) if depthwise and draw(st.integers(0, 4)) else \
        draw(st.integers(1, 9))
    if depthwise:
        d["depthwise"] = True
    for key, values in (("stride", [1, 2]), ("padding", ["same", "valid", 1, [0, 2]]), ("dilation", [1, 2]), ("bias", [True])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    if odd and d.get("padding") not in (None, "same"):
        del d["padding"]
    if draw(st.integers(0, 6)) == 0:
        d["in_channels"] = draw(st.integers(1, 9))
    return c, d


def _timm_run(d, shape, batch):
    return timm_verdict(ref_module, d, shape, batch, (RuntimeError, AssertionError, ValueError, ZeroDivisionError, IndexError,))


@SETTINGS
@given(mixed_conv(), st.integers(1, 10), st.integers(1, 10), st.integers(1, 3))
def test_mixed_conv_agrees_with_timm(case, h, w, batch):
    c, d = case
    shape = [c, h, w]
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    if d.get("in_channels", c) != c:  # stricter than timm on purpose
        assert not report.ok and "expected in_channels" in report.errors[0].message
        return
    groups = len(d["kernel_size"]) if isinstance(d["kernel_size"], list) else 1
    if min(c, d["out_channels"]) < groups:  # stricter on purpose: torch convolves a group of 0 channels
        assert not report.ok and "no channels" in report.errors[0].message
        return
    ref, y, x = _timm_run(d, shape, batch)
    assert report.ok == (ref is not None), [e.message for e in report.errors]
    if ref is None:
        assert report.errors[0].hint
        return
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:])
    assert row.params == sum(p.numel() for p in ref.parameters())
    assert row.macs == _conv_macs(ref, x)
    assert_same(build(spec), torch.nn.Sequential(ref), x)


@st.composite
def memory_case(draw):
    c, d = draw(mixed_conv())
    d.pop("in_channels", None)
    layers = []
    if draw(st.booleans()):
        layers.append({"type": "Conv2d", "out_channels": c, "kernel_size": 1,
                       **({"trainable": False} if draw(st.booleans()) else {})})
    if draw(st.integers(0, 3)) == 0:
        d["trainable"] = False
    layers.append(d)
    return {"input": [c, draw(st.integers(1, 9)), draw(st.integers(1, 9))], "batch": 2, "layers": layers}


@SETTINGS
@given(memory_case())
def test_saved_bytes_equal_torch(spec):
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    x = torch.randn(spec["batch"], *spec["input"])
    mods, y = [], torch.zeros(1, *spec["input"])
    for d in spec["layers"]:
        m = torch.nn.Conv2d(y.shape[1], d["out_channels"], 1) if d["type"] == "Conv2d" else \
            ref_module(d, list(y.shape[1:]))
        if d.get("trainable") is False:
            m.requires_grad_(False)
        with torch.no_grad():
            y = m(y)
        mods.append(m)
    want = estimate(report).saved_bytes
    assert want == saved_bytes(build(spec), x)
    assert want == saved_bytes(torch.nn.Sequential(*mods), x)


@SETTINGS
@given(mixed_conv(odd=True), st.integers(4, 10), st.integers(4, 10), st.lists(st.integers(1, 3), min_size=2,
                                                                              max_size=2))
def test_sizes_equal_torch(case, h, w, k):
    c, d = case
    d.pop("in_channels", None)
    spec = {"input": [c, h, w], "layers": [d, {"type": "Conv2d", "out_channels": 1, "kernel_size": k}]}
    assume(check(spec).ok)
    note(repr(spec))
    rep = sizes(spec)
    assert rep.ok
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        assert members(ax.valid, 20) == brute(spec, ax.dim, range(1, 21)), ax.axis


def test_timm_mixed_conv_imports_weight_exactly():
    """``cnnshape import`` reads timm's MixedConv2d as one layer (SAME children included)."""
    timm()
    from timm.layers.mixed_conv2d import MixedConv2d

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(MixedConv2d(12, 12, [3, 5, 7], stride=2, padding="same", depthwise=True),
                              MixedConv2d(12, 10, [1, 1], bias=True), MixedConv2d(10, 10, [3, 5], dilation=2),
                              MixedConv2d(10, 6, 3, padding="valid"), MixedConv2d(6, 6, [3, 3], padding=2))
    randomise(ref).eval()
    for size in (19, 24):
        spec = from_module(ref, input=(12, size, size))
        report = check(spec)
        assert report.ok, report.errors
        assert [r.type for r in report.layers] == ["MixedConv2d"] * 5
        assert_same(build(report.spec), ref, torch.randn(2, 12, size, size))
        assert report.spec.layers[-1].padding == 2
