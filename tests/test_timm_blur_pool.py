"""timm's BlurPool2d (cnnshape/layers/blur_pool.py) against the REAL timm module: verdict,
shape, MACs (the depthwise filter on torch's output shape), equal outputs; saved bytes
against torch's autograd hooks; ``cnnshape sizes`` against forward passes; the receptive
field against one-hot probes; import."""

import warnings

import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.memory import estimate
from cnnshape.sizes import sizes
from cnnshape.torch_backend.build import build

from .memory_oracle import saved_bytes
from .sizes_oracle import brute, members
from .timm_ref import assert_same, ref_module, timm

torch.set_num_threads(1)
EXAMPLES = max(20, settings.default.max_examples // 8)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def blur(draw):
    d: dict = {"type": "BlurPool2d"}
    for key, values in (("filt_size", [2, 3, 4, 5]), ("stride", [1, 2, 3]),
                        ("pad_mode", ["constant", "replicate", "circular"])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    c = draw(st.integers(1, 4))
    if draw(st.integers(0, 5)) == 0:
        d["channels"] = draw(st.integers(1, 4))
    return [c, draw(st.integers(1, 9)), draw(st.integers(1, 9))], d


@SETTINGS
@given(blur(), st.integers(1, 3))
def test_blur_pool_agrees_with_timm(case, batch):
    shape, d = case
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    x = torch.randn(batch, *shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ref_module(d, shape).eval()
            with torch.no_grad():
                y = ref(x)
    except (RuntimeError, ValueError, AssertionError) as exc:
        note(f"timm refuses: {exc}")
        ref = None
    assert report.ok == (ref is not None), [e.message for e in report.errors]
    if ref is None:
        assert report.errors[0].hint
        return
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:]) and row.params == 0
    assert row.macs == y.shape[1] * y.shape[2] * y.shape[3] * ref.filt_size ** 2
    assert_same(build(spec), torch.nn.Sequential(ref), x)


@SETTINGS
@given(blur(), st.booleans())
def test_saved_bytes_equal_torch(case, first):
    shape, d = case
    d.pop("channels", None)
    layers = ([] if first else [{"type": "Conv2d", "out_channels": shape[0], "kernel_size": 1}]) + [d]
    spec = {"input": shape, "batch": 2, "layers": layers}
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    x = torch.randn(2, *shape)
    assert estimate(report).saved_bytes == saved_bytes(build(spec), x)


@SETTINGS
@given(blur(), st.lists(st.integers(1, 3), min_size=2, max_size=2))
def test_sizes_equal_torch(case, k):
    shape, d = case
    d.pop("channels", None)
    spec = {"input": [shape[0], shape[1] + 4, shape[2] + 4],
            "layers": [d, {"type": "Conv2d", "out_channels": 1, "kernel_size": k}]}
    assume(check(spec).ok)
    note(repr(spec))
    rep = sizes(spec)
    assert rep.ok
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        assert members(ax.valid, 20) == brute(spec, ax.dim, range(1, 21)), ax.axis


@SETTINGS
@given(st.integers(2, 5), st.integers(1, 3), st.integers(6, 12))
def test_rf_against_torch(filt, stride, n):
    """The input rows one output row sees (one-hot row probes, constant zero padding) are
    the receptive field's, clipped to the input."""
    spec = {"input": [1, n, n], "layers": [{"type": "BlurPool2d", "filt_size": filt, "stride": stride,
                                            "pad_mode": "constant"}]}
    rf = check(spec).layers[0].receptive_field[0]
    x = torch.zeros(n, 1, n, n)
    for p in range(n):
        x[p, :, p, :] = 1.0
    with torch.no_grad():
        y = build(spec)(x)
    for unit in range(y.shape[2]):
        hits = {p for p in range(n) if (y[p, :, unit, :] != 0).any()}
        lo = rf.start + unit * rf.jump - (rf.size - 1) / 2
        assert hits == {int(lo) + j for j in range(filt) if 0 <= int(lo) + j < n}, (unit, hits, rf)


def test_timm_blur_pool_imports():
    timm()
    from timm.layers import BlurPool2d

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), BlurPool2d(8), BlurPool2d(None, 5, 1, "constant"))
    spec = from_module(ref.eval(), input=(3, 17, 16))
    report = check(spec)
    assert report.ok, report.errors
    assert [r.type for r in report.layers] == ["Conv2d", "BlurPool2d", "BlurPool2d"]
    assert_same(build(report.spec), ref, torch.randn(2, 3, 17, 16))
