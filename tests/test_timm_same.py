"""TensorFlow "SAME" padding (cnnshape/layers/same_padding.py) against the REAL timm modules.

Generated cases per type (odd and even sizes, kernels shorter and longer than the stride,
dilation, groups, ceil_mode): cnnshape's verdict, output shape, params and MACs against
timm's module run by torch; the compiled layer loads timm's randomised state_dict strictly
and gives its outputs; saved-for-backward bytes against torch's autograd hooks (on the
compiled copy and on timm's own modules: equal); ``cnnshape sizes`` against forward passes
of timm's modules at every size (a fixed-size consumer after the SAME layer makes the exact
output size matter); the receptive field (whose alignment depends on the input size)
against one-hot probes.
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
from .timm_ref import assert_same, randomise, same_module, timm, timm_verdict

torch.set_num_threads(1)
EXAMPLES = max(12, settings.default.max_examples // 10)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPES = ("Conv2dSame", "StdConv2dSame", "ScaledStdConv2dSame", "MaxPool2dSame", "AvgPool2dSame")


@st.composite
def layer_case(draw, typ: str):
    """(input shape, layer dict, batch)."""
    c = draw(st.sampled_from([1, 2, 3, 4]))
    shape = [c, draw(st.integers(1, 11)), draw(st.integers(1, 11))]
    d: dict = {"type": typ, "kernel_size": draw(st.sampled_from([1, 2, 3, 4, 5, [1, 3], [3, 2]]))}
    if draw(st.integers(0, 4)) or typ.endswith("Pool2dSame"):
        d["stride"] = draw(st.sampled_from([1, 2, 3, [2, 1], [1, 3]]))
    if typ != "AvgPool2dSame" and draw(st.booleans()):
        d["dilation"] = draw(st.sampled_from([1, 2, [2, 1]]))
    if typ.endswith("Pool2dSame"):
        if draw(st.booleans()):
            d["ceil_mode"] = True
        if typ == "AvgPool2dSame" and draw(st.booleans()):
            d["count_include_pad"] = False
    else:
        g = draw(st.sampled_from([1, 1, 2]))
        d["out_channels"] = draw(st.integers(1, 3)) * g
        if g > 1:
            d["groups"] = g
        if draw(st.booleans()):
            d["bias"] = draw(st.booleans())
        if typ != "Conv2dSame" and draw(st.booleans()):
            d["eps"] = 1e-4
        if typ == "ScaledStdConv2dSame" and draw(st.booleans()):
            d.update(gamma=1.7139588594436646, gain_init=0.5)
        if draw(st.integers(0, 5)) == 0:
            d["in_channels"] = draw(st.integers(1, 4))
    return shape, d, draw(st.integers(1, 3))


def _timm_run(d, shape, batch):
    return timm_verdict(same_module, d, shape, batch, (RuntimeError, AssertionError, ValueError,))


@pytest.mark.parametrize("typ", TYPES)
@SETTINGS
@given(data=st.data())
def test_same_layer_agrees_with_timm(typ, data):
    shape, d, batch = data.draw(layer_case(typ))
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
    assert row.params == sum(p.numel() for p in ref.parameters())
    if typ.endswith("Pool2dSame"):
        assert row.macs == 0
    else:
        k = ref.kernel_size[0] * ref.kernel_size[1]
        assert row.macs == ref.out_channels * y.shape[2] * y.shape[3] * (ref.in_channels // ref.groups) * k
    # SAME: ceil(in / stride) on every axis, whatever the kernel (pools with ceil_mode may add one)
    stride = ref.stride if isinstance(ref.stride, tuple) else (ref.stride,) * 2
    if not d.get("ceil_mode"):
        assert row.output[1:] == tuple(-(-n // s) for n, s in zip(shape[1:], stride))
    ours = build(spec)
    assert_same(ours, torch.nn.Sequential(ref), x)


# ------------------------------------------------------------------ memory
@st.composite
def memory_case(draw):
    typ = draw(st.sampled_from(TYPES))
    shape, d, batch = draw(layer_case(typ))
    d.pop("in_channels", None)
    layers = []
    if draw(st.booleans()):  # a layer before it: its input is not the batch
        layers.append({"type": "Conv2d", "out_channels": shape[0], "kernel_size": 1,
                       **({"trainable": False} if draw(st.booleans()) else {})})
    if draw(st.integers(0, 3)) == 0:
        d["trainable"] = False
    layers.append(d)
    if draw(st.booleans()):
        layers.append({"type": "Conv2d", "out_channels": 2, "kernel_size": 1})
    return {"input": shape, "batch": max(batch, 2), "layers": layers}


def _timm_seq(spec):
    """The spec's layers as torch / timm modules (Conv2d from torch), frozen as the spec says."""
    mods = []
    x = torch.zeros(1, *spec["input"])
    for d in spec["layers"]:
        if d["type"] == "Conv2d":
            m = torch.nn.Conv2d(x.shape[1], d["out_channels"], d["kernel_size"])
        else:
            m = same_module(d, list(x.shape[1:]))
        if d.get("trainable") is False:
            m.requires_grad_(False)
        with torch.no_grad():
            x = m(x)
        mods.append(m)
    return torch.nn.Sequential(*mods)


@SETTINGS
@given(memory_case())
def test_saved_bytes_equal_torch(spec):
    """What autograd keeps (float32) equals the memory model's saved bytes, to the byte, for
    the compiled copy and for timm's own modules."""
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    torch.manual_seed(0)
    x = torch.randn(spec["batch"], *spec["input"])
    want = estimate(report).saved_bytes
    assert want == saved_bytes(build(spec), x)
    assert want == saved_bytes(_timm_seq(spec), x)


# ------------------------------------------------------------------ sizes
@st.composite
def size_case(draw):
    """A SAME layer (or two), then a fixed-size consumer: a Conv2d without padding whose kernel
    needs the exact output size."""
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        _, d, _ = draw(layer_case(draw(st.sampled_from(TYPES))))
        d.pop("in_channels", None)
        layers.append(d)
    layers.append({"type": "Conv2d", "out_channels": 1, "kernel_size": [draw(st.integers(1, 4)),
                                                                      draw(st.integers(1, 4))]})
    shape = [2, draw(st.integers(4, 12)), draw(st.integers(4, 12))]
    return {"input": shape, "layers": layers}


@SETTINGS
@given(size_case())
def test_sizes_equal_torch(spec):
    """The sizes that work per axis equal the sizes at which timm's modules run (1..24)."""
    assume(check(spec).ok)
    note(repr(spec))
    rep = sizes(spec)
    assert rep.ok
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        assert members(ax.valid, 24) == brute(spec, ax.dim, range(1, 25)), ax.axis


# ------------------------------------------------------------------ receptive field
@SETTINGS
@given(typ=st.sampled_from(("Conv2dSame", "MaxPool2dSame", "AvgPool2dSame")), n=st.integers(5, 13),
       k=st.integers(1, 5), s=st.integers(1, 3), dil=st.sampled_from([1, 2]))
def test_rf_against_torch(typ, n, k, s, dil):
    """The input rows one output row sees (a one-hot row probe through all-ones weights)
    are the receptive field's, clipped to the input: its alignment is the SAME padding at
    this input size."""
    layer = {"type": typ, "kernel_size": k, "stride": s}
    if typ == "Conv2dSame":
        layer.update(out_channels=1, bias=False)
    if typ != "AvgPool2dSame":
        layer["dilation"] = dil
    spec = {"input": [1, n, n], "layers": [layer]}
    model = build(spec).eval()
    if typ == "Conv2dSame":
        with torch.no_grad():
            model[0].weight.fill_(1.0)
    rf = check(spec).layers[-1].receptive_field[0]
    x = torch.zeros(n, 1, n, n)
    for p in range(n):
        x[p, :, p, :] = 1.0
    with torch.no_grad():
        y = model(x)
    dil = dil if typ != "AvgPool2dSame" else 1
    assert rf.size == dil * (k - 1) + 1
    for unit in range(y.shape[2]):
        hits = [p for p in range(n) if (y[p, :, unit, :] != 0).any()]
        centre = rf.start + unit * rf.jump
        lo = centre - (rf.size - 1) / 2
        assert lo == int(lo)
        taps = {int(lo) + j * dil for j in range(k)}
        assert set(hits) == {t for t in taps if 0 <= t < n}, (unit, hits, rf)


# ------------------------------------------------------------------ import
def test_timm_same_modules_import_weight_exactly():
    """``cnnshape import`` of timm's own SAME modules (a leaf each, arguments read from the
    module, ScaledStdConv2dSame's gamma from its scale): strict load, equal outputs, at an
    odd and an even size (the padding differs)."""
    timm()
    from timm.layers import Conv2dSame, ScaledStdConv2dSame, StdConv2dSame
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(Conv2dSame(3, 8, 3, 2, bias=False), torch.nn.BatchNorm2d(8),
                              MaxPool2dSame(3, 2), ScaledStdConv2dSame(8, 8, [3, 2], 2, gamma=1.7139588594436646),
                              StdConv2dSame(8, 4, 3, 1, eps=1e-8), AvgPool2dSame(2, 2))
    randomise(ref).eval()
    for size in (29, 32):
        spec = from_module(ref, input=(3, size, size))
        report = check(spec)
        assert report.ok, report.errors
        assert [r.type for r in report.layers] == ["Conv2dSame", "BatchNorm2d", "MaxPool2dSame",
                                                  "ScaledStdConv2dSame", "StdConv2dSame", "AvgPool2dSame"]
        assert_same(build(report.spec), ref, torch.randn(2, 3, size, size))
