"""timm's anti-aliasing ``BlurPool2d`` (cnnshape/layers/blur_pool.py) against the REAL timm module.

Generated cases (filter sizes 2..6, strides 1..3, every pad mode, sizes from 1 up, channels
written or inferred): cnnshape's verdict (valid, or the error torch raises), output shape,
params (0) and MACs (a depthwise convolution's, counted on torch's real output shape)
against timm's module run by torch; the compiled layer has timm's state_dict keys (none:
``filt`` is non-persistent), loads it strictly and gives its outputs; saved-for-backward
bytes against torch's autograd hooks, on the compiled copy and on timm's module;
``cnnshape sizes`` against forward passes at every size; the receptive field against
one-hot probes; import of timm's module as one leaf with its arguments read back.
"""


import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.memory import estimate
from cnnshape.sizes import sizes
from cnnshape.torch_backend.build import build

from .memory_oracle import saved_bytes
from .sizes_oracle import brute, members
from .timm_ref import assert_same, ref_module, timm, timm_verdict

torch.set_num_threads(1)
EXAMPLES = max(20, settings.default.max_examples // 8)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def blur_pool(draw):
    """(channels of the input, layer dict)."""
    d: dict = {"type": "BlurPool2d"}
    c = draw(st.integers(1, 6))
    for key, values in (("filt_size", [2, 3, 4, 5, 6]), ("stride", [1, 2, 3]),
                        ("pad_mode", ["reflect", "constant", "replicate", "circular"])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    if draw(st.booleans()):
        d["channels"] = c if draw(st.integers(0, 5)) else draw(st.integers(1, 6))
    return c, d


def _timm_run(d, shape, batch):
    return timm_verdict(ref_module, d, shape, batch, (RuntimeError, ValueError, NotImplementedError,), random=False)


@SETTINGS
@given(blur_pool(), st.integers(1, 9), st.integers(1, 9), st.integers(1, 3))
def test_blur_pool_agrees_with_timm(case, h, w, batch):
    c, d = case
    shape = [c, h, w]
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    ref, y, x = _timm_run(d, shape, batch)
    assert report.ok == (ref is not None), [e.message for e in report.errors]
    if ref is None:
        assert report.errors[0].hint
        return
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:])
    assert row.params == 0 == sum(p.numel() for p in ref.parameters())
    k = ref.filt_size
    assert row.macs == y.shape[1] * y.shape[2] * y.shape[3] * k * k  # depthwise: 1 input channel per output
    ours = build(spec)
    assert list(ours.state_dict()) == list(torch.nn.Sequential(ref).state_dict()) == []
    assert_same(ours, torch.nn.Sequential(ref), x)
    assert_same(ours, torch.nn.Sequential(ref), x, train=True)


def test_filter_is_timms():
    """The buffer (non-persistent, not in the state_dict) holds timm's binomial filter."""
    timm()
    from timm.layers.blur_pool import BlurPool2d

    for k in (2, 3, 4, 5, 7):
        ours = build({"input": [3, 16, 16], "layers": [{"type": "BlurPool2d", "filt_size": k}]})[0]
        ref = BlurPool2d(3, filt_size=k)
        assert torch.equal(ours.filt, ref.filt)
        assert ours.padding == ref.padding
        assert "filt" not in ours.state_dict() and "filt" not in ref.state_dict()


def test_reflect_error_is_clear():
    """Reflect padding on a too-small map: the error names the layer's padding, the size
    received and the smallest that works (torch raises 'Padding size should be less than
    the corresponding input dimension')."""
    spec = {"input": [4, 1, 8], "layers": [{"type": "BlurPool2d", "filt_size": 5}]}
    report = check(spec)
    assert not report.ok
    err = report.errors[0]
    assert "reflect" in err.message and "H ≥ 3" in err.message and "received 1" in err.message
    assert "replicate" in err.hint
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        ref_module(spec["layers"][0], spec["input"])(torch.randn(1, 4, 1, 8))
    assert check({**spec, "layers": [{**spec["layers"][0], "pad_mode": "constant"}]}).ok


# ------------------------------------------------------------------ memory
@st.composite
def memory_case(draw):
    c, d = draw(blur_pool())
    d.pop("channels", None)
    d["pad_mode"] = draw(st.sampled_from(["reflect", "constant", "replicate", "circular"]))  # what is kept
    layers = []
    if draw(st.integers(0, 3)):  # a layer before it: its input is not the batch (it needs a gradient)
        layers.append({"type": "Conv2d", "out_channels": c, "kernel_size": 1,
                       **({"trainable": False} if draw(st.integers(0, 3)) == 0 else {})})
    layers.append(d)
    if draw(st.booleans()):
        layers.append({"type": "Conv2d", "out_channels": 2, "kernel_size": 1})
    return {"input": [c, draw(st.integers(1, 9)), draw(st.integers(1, 9))], "batch": draw(st.integers(1, 3)),
            "layers": layers}


@SETTINGS
@given(memory_case())
def test_saved_bytes_equal_torch(spec):
    """What autograd keeps (float32) equals the memory model's saved bytes, to the byte, for
    the compiled copy and for timm's own module."""
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


# ------------------------------------------------------------------ sizes
@SETTINGS
@given(blur_pool(), st.integers(2, 10), st.integers(2, 10), st.lists(st.integers(1, 3), min_size=2, max_size=2))
def test_sizes_equal_torch(case, h, w, k):
    """The sizes that work per axis equal the sizes at which timm's module runs (1..20),
    through a fixed-size consumer."""
    c, d = case
    d.pop("channels", None)
    spec = {"input": [c, h, w], "layers": [d, {"type": "Conv2d", "out_channels": 1, "kernel_size": k}]}
    assume(check(spec).ok)
    note(repr(spec))
    rep = sizes(spec)
    assert rep.ok
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        assert members(ax.valid, 20) == brute(spec, ax.dim, range(1, 21)), ax.axis


# ------------------------------------------------------------------ receptive field
@SETTINGS
@given(n=st.integers(6, 13), k=st.integers(2, 6), s=st.integers(1, 3))
def test_rf_against_torch(n, k, s):
    """The input rows one output row sees (a one-hot row probe; constant padding, so the
    padding adds nothing) are the receptive field's, clipped to the input."""
    spec = {"input": [1, n, n], "layers": [{"type": "BlurPool2d", "filt_size": k, "stride": s,
                                            "pad_mode": "constant"}]}
    model = build(spec).eval()
    rf = check(spec).layers[-1].receptive_field[0]
    x = torch.zeros(n, 1, n, n)
    for p in range(n):
        x[p, :, p, :] = 1.0
    with torch.no_grad():
        y = model(x)
    assert rf.size == k
    for unit in range(y.shape[2]):
        hits = [p for p in range(n) if (y[p, :, unit, :] != 0).any()]
        lo = rf.start + unit * rf.jump - (rf.size - 1) / 2
        assert lo == int(lo)
        assert set(hits) == {t for t in range(int(lo), int(lo) + k) if 0 <= t < n}, (unit, hits, rf)


# ------------------------------------------------------------------ import
def test_timm_blur_pool_imports():
    """``cnnshape import`` reads timm's BlurPool2d as one leaf, its filt_size, stride and
    pad_mode read back from the module (channels where timm's module keeps them); equal outputs."""
    timm()
    from timm.layers.blur_pool import BlurPool2d

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(BlurPool2d(6), torch.nn.Conv2d(6, 8, 1), BlurPool2d(8, filt_size=5, stride=1),
                              BlurPool2d(None, filt_size=4, stride=3, pad_mode="constant"),
                              BlurPool2d(8, filt_size=2, pad_mode="replicate")).eval()
    spec = from_module(ref, input=(6, 23, 23))
    layers = [layer.to_item() for layer in spec.layers]
    assert layers[0] == {"type": "BlurPool2d", "channels": 6}
    assert layers[2] == {"type": "BlurPool2d", "channels": 8, "filt_size": 5, "stride": 1}
    assert layers[3] == {"type": "BlurPool2d", "filt_size": 4, "stride": 3, "pad_mode": "constant"}
    assert layers[4] == {"type": "BlurPool2d", "channels": 8, "filt_size": 2, "pad_mode": "replicate"}
    report = check(spec)
    assert report.ok, report.errors
    assert_same(build(report.spec), ref, torch.randn(2, 6, 23, 23))
