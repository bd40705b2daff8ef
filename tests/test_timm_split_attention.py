"""timm's SplitAttn (ResNeSt) and SelectiveKernel (SKNet) as layer types
(cnnshape/layers/split_attention.py) against the REAL timm modules.

Generated cases: cnnshape's verdict (valid or the error), output shape, params, and MACs
(every convolution of timm's module, counted by forward hooks) against timm's module run by
torch; the compiled layer loads timm's randomised state_dict strictly (same children names)
and gives its outputs in eval and in training; saved-for-backward bytes against torch's
autograd hooks, on the compiled copy and on timm's module; ``cnnshape sizes`` against forward
passes through a fixed-size consumer; import of timm's modules.
"""

import warnings

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
from .timm_ref import assert_same, attn_module, randomise, timm, timm_verdict

torch.set_num_threads(1)
EXAMPLES = max(15, settings.default.max_examples // 8)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def split_attn(draw, odd: bool = False):
    d: dict = {"type": "SplitAttn"}
    c = draw(st.sampled_from([2, 4, 6, 8, 12, 16]))
    if draw(st.booleans()):
        d["out_channels"] = draw(st.sampled_from([2, 4, 6, 8]))
    for key, values in (("kernel_size", [1, 2, 3, 5] if not odd else [1, 3, 5]), ("stride", [1, 2]),
                        ("padding", [0, 1, 2]), ("dilation", [1, 2]), ("radix", [1, 2, 4]), ("groups", [1, 2]),
                        ("bias", [True]), ("rd_channels", [1, 3, 8]), ("rd_ratio", [0.5, 1.0]),
                        ("rd_divisor", [4, 16]), ("norm_layer", ["BatchNorm2d"]),
                        ("act_layer", ["SiLU", "ReLU6", "Hardswish", "LeakyReLU", "ELU"])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    if odd:
        d.pop("padding", None)
    if draw(st.integers(0, 6)) == 0:
        d["in_channels"] = draw(st.integers(1, 16))
    return c, d


@st.composite
def selective_kernel(draw, odd: bool = False):
    d: dict = {"type": "SelectiveKernel"}
    c = draw(st.sampled_from([2, 3, 4, 6, 8]))
    if draw(st.booleans()):
        d["out_channels"] = draw(st.sampled_from([2, 4, 6, 8]))
    kernels = [3, 5, [3, 5], [3, 5, 7], [3, 3], [5, 3]] + ([] if odd else [4, [3, 4], [3, 1], [1, 3], [3, 2]])
    for key, values in (("kernel_size", kernels), ("stride", [1, 2]), ("dilation", [1, 2]), ("groups", [1, 2, 4]),
                        ("rd_channels", [4, 8]), ("rd_ratio", [0.25, 0.5]), ("rd_divisor", [4, 16]),
                        ("keep_3x3", [False]), ("split_input", [False])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    if draw(st.integers(0, 6)) == 0:
        d["in_channels"] = draw(st.integers(1, 8))
    return c, d


def layer_case(typ: str, odd: bool = False):
    strategy = split_attn(odd) if typ == "SplitAttn" else selective_kernel(odd)
    return st.tuples(strategy, st.integers(1, 9), st.integers(1, 9), st.integers(1, 3))


def _timm_run(d, shape, batch):
    return timm_verdict(attn_module, d, shape, batch, (RuntimeError, AssertionError, ValueError, ZeroDivisionError, IndexError,))


def _conv_macs(module, x) -> int:
    """Sum over every Conv2d of timm's module: out_channels x output positions x
    in_channels/groups x kernel area (the SPEC.md formula on torch's real shapes)."""
    total = []

    def hook(m, inp, out):
        total.append(m.out_channels * out.shape[2] * out.shape[3] * (m.in_channels // m.groups)
                     * m.kernel_size[0] * m.kernel_size[1])

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        module(x[:1])
    for h in handles:
        h.remove()
    return sum(total)


@pytest.mark.parametrize("typ", ["SplitAttn", "SelectiveKernel"])
@SETTINGS
@given(data=st.data())
def test_layer_agrees_with_timm(typ, data):
    (c, d), h, w, batch = data.draw(layer_case(typ))
    shape = [c, h, w]
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    if d.get("in_channels", c) != c:  # stricter than timm on purpose (SK's split may still run)
        assert not report.ok and "expected in_channels" in report.errors[0].message
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
    ours = build(spec)
    assert_same(ours, torch.nn.Sequential(ref), x)
    if batch > 1:  # batch statistics, and the running statistics' update
        assert_same(ours, torch.nn.Sequential(ref), x, train=True)
        assert all(torch.allclose(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))


# ------------------------------------------------------------------ memory
@st.composite
def memory_case(draw):
    typ = draw(st.sampled_from(["SplitAttn", "SelectiveKernel"]))
    (c, d), h, w, batch = draw(layer_case(typ))
    d.pop("in_channels", None)
    layers = []
    if draw(st.booleans()):  # a layer before it: its input is not the batch
        layers.append({"type": "Conv2d", "out_channels": c, "kernel_size": 1,
                       **({"trainable": False} if draw(st.booleans()) else {})})
    if draw(st.integers(0, 3)) == 0:
        d["trainable"] = False
    layers.append(d)
    if draw(st.booleans()):
        layers.append({"type": "Conv2d", "out_channels": 2, "kernel_size": 1})
    return {"input": [c, h, w], "batch": max(batch, 2), "layers": layers}


def _ref_seq(spec):
    mods = []
    x = torch.zeros(2, *spec["input"])
    for d in spec["layers"]:
        m = torch.nn.Conv2d(x.shape[1], d["out_channels"], 1) if d["type"] == "Conv2d" else \
            attn_module(d, list(x.shape[1:]))
        if d.get("trainable") is False:
            m.requires_grad_(False)
        with torch.no_grad():
            x = m.eval()(x)
        mods.append(m)
    return torch.nn.Sequential(*mods)


@SETTINGS
@given(memory_case())
def test_saved_bytes_equal_torch(spec):
    """What autograd keeps (float32) equals the memory model's saved bytes, to the byte, for
    the compiled copy and for timm's own module."""
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    torch.manual_seed(0)
    x = torch.randn(spec["batch"], *spec["input"])
    want = estimate(report).saved_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert want == saved_bytes(build(spec), x)
        assert want == saved_bytes(_ref_seq(spec), x)


# ------------------------------------------------------------------ sizes
@SETTINGS
@given(typ=st.sampled_from(["SplitAttn", "SelectiveKernel"]), data=st.data())
def test_sizes_equal_torch(typ, data):
    """The sizes that work per axis equal the sizes at which timm's module (then a Conv2d
    without padding, whose kernel needs the exact output size) runs, 1..20."""
    (c, d), h, w, _ = data.draw(layer_case(typ, odd=True))
    d.pop("in_channels", None)
    k = [data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))]
    spec = {"input": [c, h + 3, w + 3], "batch": 2,
            "layers": [d, {"type": "Conv2d", "out_channels": 1, "kernel_size": k}]}
    assume(check(spec).ok)
    note(repr(spec))
    rep = sizes(spec)
    assert rep.ok
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        assert members(ax.valid, 20) == brute(spec, ax.dim, range(1, 21)), ax.axis


# ------------------------------------------------------------------ import
def test_timm_modules_import_weight_exactly():
    """``cnnshape import`` reads timm's SplitAttn / SelectiveKernel as one layer each (arguments
    from the children): strict load, equal outputs."""
    timm()
    from timm.layers import SelectiveKernel, SplitAttn

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(
        SplitAttn(16, 16, radix=2, groups=2, stride=2, padding=1, norm_layer=torch.nn.BatchNorm2d),
        SplitAttn(16, 8, radix=1, rd_channels=6, kernel_size=5, dilation=2, padding=3, bias=True),
        SelectiveKernel(8, 16, rd_ratio=1 / 8, rd_divisor=16),
        SelectiveKernel(16, 8, kernel_size=[3, 5, 7], keep_3x3=False, split_input=False, stride=2, groups=2),
        SelectiveKernel(8, 8, dilation=2))
    randomise(ref).eval()
    spec = from_module(ref, input=(16, 20, 21))
    report = check(spec)
    assert report.ok, report.errors
    assert [r.type for r in report.layers] == ["SplitAttn"] * 2 + ["SelectiveKernel"] * 3
    assert_same(build(report.spec), ref, torch.randn(2, 16, 20, 21), atol=1e-4)


def test_export_to_python_and_import_back():
    """``cnnshape export --to python`` of the SAME, attention and mixed-conv types gives a
    self-contained file (their module classes copied in, MixedConv2d's Conv2dSame too) whose
    Net imports back to the same analysis."""
    from cnnshape.analysis import analyze
    from cnnshape.spec import load
    from cnnshape.torch_backend.export import export_python
    from cnnshape.torch_backend.importer import from_module

    spec = load({"input": [8, 13, 14], "batch": 2, "layers": [
        {"type": "Conv2dSame", "out_channels": 8, "kernel_size": 3, "stride": 2},
        {"type": "StdConv2dSame", "out_channels": 8, "kernel_size": 3},
        {"type": "ScaledStdConv2dSame", "out_channels": 8, "kernel_size": 3, "stride": 2, "gamma": 1.5},
        {"type": "MaxPool2dSame", "kernel_size": 3, "stride": 2}, {"type": "AvgPool2dSame", "kernel_size": 2},
        {"type": "SplitAttn", "norm_layer": "BatchNorm2d", "act_layer": "SiLU"},
        {"type": "SelectiveKernel", "out_channels": 16, "kernel_size": [3, 5, 7], "split_input": False},
        {"type": "MixedConv2d", "out_channels": 16, "kernel_size": [3, 5], "stride": 2, "padding": "same",
         "depthwise": True}, {"type": "BlurPool2d", "filt_size": 5, "pad_mode": "constant"},
        {"type": "GlobalContext", "fuse_add": True, "act_layer": "SiLU"}]})
    ns: dict = {"__name__": "exported"}
    exec(compile(export_python(spec), "exported.py", "exec"), ns)  # noqa: S102 - our own generated code
    again = analyze(from_module(ns["Net"](), input=spec.input, batch=spec.batch))

    def rows(r):
        return [(x.path, x.type, tuple(x.input), tuple(x.output), x.params, x.macs)
                for top in r.layers for x in top.walk()]
    assert rows(again) == rows(analyze(spec))


@pytest.mark.parametrize("layers", [
    [{"type": "Conv2dSame", "out_channels": 32, "kernel_size": 3, "stride": 2}, "BatchNorm2d", "ReLU",
     {"type": "Conv2dSame", "out_channels": 32, "kernel_size": 3, "groups": 32, "stride": 2}, "BatchNorm2d",
     {"type": "MaxPool2dSame", "kernel_size": 3, "stride": 2},
     {"type": "ScaledStdConv2dSame", "out_channels": 64, "kernel_size": 3, "stride": 2}, "ReLU"],
    [{"type": "Conv2d", "out_channels": 16, "kernel_size": 1},
     {"type": "SplitAttn", "out_channels": 32, "norm_layer": "BatchNorm2d"},
     {"type": "SelectiveKernel", "out_channels": 32},
     {"type": "MixedConv2d", "out_channels": 32, "kernel_size": [3, 5, 7], "padding": "same", "stride": 2,
      "depthwise": True}],
], ids=["same", "attention"])
def test_peaks_against_the_cpu_allocator(layers):
    """Training-step (adam) and no_grad inference peaks within 10% of the CPU allocator's
    measured peaks (as tests/test_memory.py checks its specs)."""
    from .memory_oracle import measured_peaks

    head = [{"type": "AdaptiveAvgPool2d", "output_size": 1}, "Flatten", {"type": "Linear", "out_features": 10}]
    report = check({"input": [3, 63, 63] if layers[0]["type"] == "Conv2dSame" else [16, 32, 32], "batch": 8,
                    "layers": layers + head})
    assert report.ok
    x = torch.randn(8, *report.spec.input)
    train, infer = measured_peaks(build(report.spec, report=report), x, "adam")
    est = estimate(report, optimizer="adam")
    said = f"{est.cpu_isa}: training {est.training_peak_bytes} / {train}, inference {est.inference_peak_bytes} / {infer}"
    assert abs(est.training_peak_bytes / train - 1) < 0.10, said
    assert abs(est.inference_peak_bytes / infer - 1) < 0.10, said
