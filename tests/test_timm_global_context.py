"""timm's GlobalContext (GCNet; cnnshape/layers/global_context.py) against the REAL timm module:
verdict, shape, params, MACs (its convolutions, by forward hooks), strict load and equal
outputs (eval and training); saved bytes against torch's autograd hooks (compiled copy and
timm's module); sizes; import."""

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
from .timm_ref import assert_same, randomise, ref_module, timm

torch.set_num_threads(1)
SETTINGS = settings(max_examples=max(20, settings.default.max_examples // 8), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def gc_case(draw):
    d: dict = {"type": "GlobalContext"}
    for key, values in (("use_attn", [False]), ("fuse_add", [True]), ("fuse_scale", [False]),
                        ("rd_ratio", [0.25, 0.5]), ("rd_channels", [1, 3]), ("rd_divisor", [2, 8]),
                        ("act_layer", ["SiLU", "GELU"])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    c = draw(st.integers(1, 16))
    if draw(st.integers(0, 5)) == 0:
        d["channels"] = draw(st.integers(1, 16))
    return [c, draw(st.integers(1, 7)), draw(st.integers(1, 7))], d


@SETTINGS
@given(gc_case(), st.integers(1, 3))
def test_global_context_agrees_with_timm(case, batch):
    shape, d = case
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    if d.get("channels", shape[0]) != shape[0]:  # a declared channel count that is not the input's
        assert not report.ok and "expected channels" in report.errors[0].message
        return
    assert report.ok, report.errors
    ref = randomise(ref_module(d, shape)).eval()
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        y = ref(x)
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:])
    assert row.params == sum(p.numel() for p in ref.parameters())
    assert row.macs == _conv_macs(ref, x)
    ours = build(spec)
    assert_same(ours, torch.nn.Sequential(ref), x)
    assert_same(ours, torch.nn.Sequential(ref), x, train=True)


@SETTINGS
@given(gc_case(), st.booleans())
def test_saved_bytes_equal_torch(case, first):
    shape, d = case
    d.pop("channels", None)
    c = shape[0]
    spec = {"input": shape, "batch": 2,
            "layers": ([] if first else [{"type": "Conv2d", "out_channels": c, "kernel_size": 1}]) + [d]}
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    x = torch.randn(2, *shape)
    ref = [ref_module(d, shape)] if first else [torch.nn.Conv2d(c, c, 1), ref_module(d, shape)]
    want = estimate(report).saved_bytes
    assert want == saved_bytes(build(spec), x)
    assert want == saved_bytes(torch.nn.Sequential(*ref), x)


def test_sizes_pass_through():
    spec = {"input": [8, 6, 5], "layers": [{"type": "GlobalContext"}, {"type": "Conv2d", "out_channels": 1,
                                                                        "kernel_size": 3}]}
    rep = sizes(spec)
    for ax in rep.axes:
        assert members(ax.valid, 12) == brute(spec, ax.dim, range(1, 13))


def test_timm_global_context_imports():
    timm()
    from timm.layers.global_context import GlobalContext

    from cnnshape.torch_backend.importer import from_module

    ref = torch.nn.Sequential(GlobalContext(16), GlobalContext(16, fuse_add=True, fuse_scale=False),
                              GlobalContext(16, use_attn=False, rd_ratio=0.25, act_layer=torch.nn.SiLU))
    randomise(ref).eval()
    spec = from_module(ref, input=(16, 7, 9))
    report = check(spec)
    assert report.ok, report.errors
    assert [r.type for r in report.layers] == ["GlobalContext"] * 3
    assert_same(build(report.spec), ref, torch.randn(2, 16, 7, 9))
