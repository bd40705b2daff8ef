"""timm's layers (cnnshape/layers/timm_layers.py, merge.py) against the REAL timm modules.

Generated cases per type: cnnshape's verdict (valid or the failing layer), output shape,
params and MACs against timm's module run by torch; then the compiled layer loads the timm
module's randomised state_dict strictly and gives its outputs (eval, and training where
the module's batch statistics differ). Saved-for-backward bytes against torch's autograd
hooks (float32), sizes against forward passes at every size, receptive field of the
rearrangements against one-hot probes.
"""

import warnings

import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.memory import estimate
from cnnshape.torch_backend.build import build

from .memory_oracle import saved_bytes
from .timm_ref import assert_same, randomise, timm, timm_verdict

torch.set_num_threads(1)
#: a sample in the fast profile, more in the thorough one (profiles: tests/conftest.py)
EXAMPLES = max(12, settings.default.max_examples // 10)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _timm_module(d: dict, shape):
    """timm's own module for layer dict ``d`` on input ``shape`` (channel arguments as
    inferred by cnnshape when omitted)."""
    timm()
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k not in ("type", "name", "trainable")}
    typ = d["type"]
    if typ.endswith("2dSame"):
        from .timm_ref import same_module

        return same_module(d, shape)
    if typ in ("StdConv2d", "ScaledStdConv2d"):
        kw.pop("in_channels", None)
        return _timm_class(typ)(d.get("in_channels", shape[0]), kw.pop("out_channels"), kw.pop("kernel_size"), **kw)
    channels = _CHANNEL_ARG.get(typ)
    if channels is not None:
        key, where = channels
        kw.setdefault(key, where(d, shape))
    return _timm_class(typ)(**kw)


def _timm_class(typ: str):
    import importlib

    module = {"GlobalResponseNorm": "timm.layers.grn", "LearnableAffineBlock": "timm.models.hgnet",
              "Scale": "timm.models.metaformer", "StarReLU": "timm.models.metaformer",
              "SquaredReLU": "timm.models.metaformer", "GammaAct": "timm.models.nfnet"}.get(typ, "timm.layers")
    return getattr(importlib.import_module(module), typ)


def _first(d, shape):
    return shape[0]


def _last(d, shape):
    return shape[-1]


#: type -> (its channel argument, where the channels are) when cnnshape infers it
_CHANNEL_ARG = {
    "LayerScale": ("dim", _last),
    "LayerScale2d": ("dim", lambda d, shape: shape[0] if d.get("use_nchw", True) else shape[-1]),
    "Scale": ("dim", lambda d, shape: shape[0] if d.get("use_nchw", True) else shape[-1]),
    "GlobalResponseNorm": ("dim", lambda d, shape: shape[-1] if d.get("channels_last", True) else shape[0]),
    **{t: ("num_features", _first) for t in ("EvoNorm2dB0", "EvoNorm2dS0", "EvoNorm2dS0a",
                                             "FilterResponseNormTlu2d")},
    "SimpleNorm2d": ("channels", _first), "RmsNorm2d": ("channels", _first),
}


TYPES = ("StdConv2d", "ScaledStdConv2d", "LayerScale", "LayerScale2d", "Scale", "StarReLU", "LearnableAffineBlock",
         "GlobalResponseNorm", "EvoNorm2dB0", "EvoNorm2dS0", "FilterResponseNormTlu2d", "SimpleNorm2d", "SpaceToDepth",
         "GammaAct", "RmsNorm2d", "SquaredReLU", "EvoNorm2dS0a")


def _conv_case(draw, typ, d, c, h, w):
    g = draw(st.sampled_from([1, 1, 2]))
    d.update(out_channels=draw(st.integers(1, 4)) * g, kernel_size=draw(st.sampled_from([1, 2, 3, [1, 3]])))
    if g > 1:
        d["groups"] = g
    for key, values in (("stride", [1, 2, [2, 1]]), ("dilation", [1, 2]), ("padding", [0, 1, [0, 2], "valid"])):
        if draw(st.booleans()):
            d[key] = draw(st.sampled_from(values))
    if draw(st.booleans()):
        d["bias"] = draw(st.booleans())
    if draw(st.booleans()):
        d["eps"] = draw(st.sampled_from([1e-5, 1e-4]))
    if typ == "ScaledStdConv2d" and draw(st.booleans()):
        d.update(gamma=draw(st.sampled_from([1.0, 1.7])), gain_init=draw(st.sampled_from([0.5, 1.0])))
    if draw(st.integers(0, 5)) == 0:
        d["in_channels"] = draw(st.integers(1, 8))
    return [c, h, w]


def _scale_case(draw, typ, d, c, h, w):
    shape = [c, h, w]
    d["init_values" if typ != "Scale" else "init_value"] = draw(st.sampled_from([1e-5, 0.5, 2.0]))
    if typ == "Scale" and draw(st.booleans()):
        d["use_nchw"] = False
    if typ == "LayerScale" and draw(st.booleans()):
        shape = [h, w, c]  # channels last, as after a Permute
    if draw(st.integers(0, 4)) == 0:
        d["dim"] = draw(st.integers(2, 8))
    return shape


def _scalar_affine_case(draw, typ, d, c, h, w):
    d.update(scale_value=draw(st.sampled_from([1.0, 0.8])), bias_value=draw(st.sampled_from([0.0, -0.3])))
    return draw(st.sampled_from([[c, h, w], [c], [c, h]]))


def _grn_case(draw, typ, d, c, h, w):
    shape = [c, h, w]
    if draw(st.booleans()):
        d["channels_last"] = False
    else:
        shape = [h, w, c]
    if draw(st.booleans()):
        d["eps"] = 1e-5
    return shape


def _evo_case(draw, typ, d, c, h, w):
    if draw(st.booleans()):
        d["apply_act"] = draw(st.booleans())
    if typ in ("EvoNorm2dS0", "EvoNorm2dS0a"):
        if draw(st.booleans()):
            d["group_size"] = draw(st.sampled_from([1, 2, 4]))
        else:
            d["groups"] = draw(st.sampled_from([1, 2, 3, 4]))
    if typ == "EvoNorm2dB0" and draw(st.booleans()):
        d["momentum"] = 0.3
    if draw(st.integers(0, 5)) == 0:
        d["num_features"] = draw(st.integers(1, 8))
    return [c, h, w]


def _affine_case(draw, typ, d, c, h, w):
    if typ == "SimpleNorm2d":
        c = max(c, 2)  # one channel: nan by construction (a warning)
    if draw(st.booleans()):
        d["affine"] = draw(st.booleans())
    return [c, h, w]


def _squared_relu_case(draw, typ, d, c, h, w):
    return draw(st.sampled_from([[c, h, w], [c], [c, h]]))


def _gamma_act_case(draw, typ, d, c, h, w):
    d.update(act_type=draw(st.sampled_from(["relu", "silu", "gelu", "sigmoid", "tanh"])),
             gamma=draw(st.sampled_from([1.0, 1.7139])))
    return [c, h, w]


def _space_to_depth_case(draw, typ, d, c, h, w):
    d["block_size"] = 4  # timm asserts 4
    return [c, draw(st.sampled_from([4, 8, 6])), draw(st.sampled_from([4, 8, 5]))]


#: type -> draw(draw, type, layer dict to fill, c, h, w) -> input shape
_CASES = {"StdConv2d": _conv_case, "ScaledStdConv2d": _conv_case, "LayerScale": _scale_case,
          "LayerScale2d": _scale_case, "Scale": _scale_case, "StarReLU": _scalar_affine_case,
          "LearnableAffineBlock": _scalar_affine_case, "GlobalResponseNorm": _grn_case, "EvoNorm2dB0": _evo_case,
          "EvoNorm2dS0": _evo_case, "EvoNorm2dS0a": _evo_case, "FilterResponseNormTlu2d": _evo_case,
          "RmsNorm2d": _affine_case, "SimpleNorm2d": _affine_case, "SquaredReLU": _squared_relu_case,
          "GammaAct": _gamma_act_case, "SpaceToDepth": _space_to_depth_case}


@st.composite
def layer_case(draw, typ: str):
    """(input shape, layer dict, batch): valid or not (channel declarations right or wrong,
    kernels larger than the map, groups that do not divide)."""
    c = draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    d: dict = {"type": typ}
    shape = _CASES[typ](draw, typ, d, c, h, w) if typ in _CASES else [c, h, w]
    batch = draw(st.integers(2, 3))
    return shape, d, batch


def _torch_verdict(d, shape, batch):
    """(timm module or None, output or None): None when torch/timm refuses the layer."""
    return timm_verdict(_timm_module, d, shape, batch, (RuntimeError, AssertionError, ValueError, TypeError, IndexError,))


@pytest.mark.parametrize("typ", TYPES)
@SETTINGS
@given(data=st.data())
def test_timm_layer_agrees_with_timm(typ, data):
    shape, d, batch = data.draw(layer_case(typ))
    spec = {"input": shape, "batch": batch, "layers": [d]}
    note(repr(spec))
    report = check(spec)
    ref, y, x = _torch_verdict(d, shape, batch)
    declared = next((d[k] for k in ("dim", "num_features", "channels") if k in d), None)
    if ref is not None and declared is not None and not report.ok and "expected" in report.errors[0].message:
        # torch broadcast a per-channel vector of 1 over C channels, or of C over a size-1 axis
        # (the output grew): cnnshape refuses a declared size that is not the channel count
        actual = tuple(y.shape[1:])
        assert declared == 1 or actual != tuple(shape), (declared, actual, shape)
        return
    assert report.ok == (ref is not None), [e.message for e in report.errors]
    if ref is None:
        assert report.errors[0].hint
        return
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:])
    assert row.params == sum(p.numel() for p in ref.parameters())
    if typ.endswith("Conv2d"):
        k = ref.kernel_size[0] * ref.kernel_size[1]
        assert row.macs == ref.out_channels * y.shape[2] * y.shape[3] * (ref.in_channels // ref.groups) * k
    else:
        assert row.macs == 0
    ours = build(spec)
    assert_same(ours, torch.nn.Sequential(ref), x)
    if typ in ("EvoNorm2dB0",):  # batch statistics in training, and the running_var update
        assert_same(ours, torch.nn.Sequential(ref), x, train=True)
        assert torch.allclose(ours[0].running_var, ref.running_var)


def test_slice_is_narrow():
    x = torch.randn(2, 6, 5, 4)
    for dim, start, length in ((1, 2, 3), (2, 0, 4), (-1, 1, 3)):
        spec = {"input": [6, 5, 4], "layers": [{"type": "Slice", "dim": dim, "start": start, "length": length}]}
        out = build(spec)(x)
        assert torch.equal(out, x.narrow(dim, start, length))
        assert check(spec).layers[0].output == tuple(out.shape[1:])
    bad = check({"input": [6, 5, 4], "layers": [{"type": "Slice", "start": 4, "length": 3}]})
    assert not bad.ok and "does not fit" in bad.errors[0].message and bad.errors[0].hint
    assert not check({"input": [6, 5, 4], "layers": [{"type": "Slice", "dim": 0, "length": 1}]}).ok


def test_space_to_depth_differs_from_pixel_unshuffle_only_in_channel_order():
    x = torch.randn(2, 3, 8, 4)
    a = build({"input": [3, 8, 4], "layers": [{"type": "SpaceToDepth", "block_size": 4}]})(x)
    b = torch.nn.functional.pixel_unshuffle(x, 4)
    assert a.shape == b.shape and not torch.equal(a, b)
    assert torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)


def members(progressions, upto: int) -> set[int]:
    """The sizes ≤ ``upto`` that ``progressions`` (cnnshape's answer) contain."""
    out: set[int] = set()
    for g in progressions:
        top = upto if g.stop is None else min(g.stop, upto)
        out.update(range(g.start, top + 1, g.step))
    return out


# ------------------------------------------------------------------ memory
@st.composite
def memory_case(draw):
    typ = draw(st.sampled_from(TYPES + ("Slice", "Multiply")))
    shape, d, batch = draw(layer_case(typ)) if typ not in ("Slice", "Multiply") else \
        ([4, 5, 6], {"type": "Slice", "start": 1, "length": 2} if typ == "Slice" else {"type": "Multiply", "value": 0.5},
         2)
    if typ == "SimpleNorm2d" or typ == "EvoNorm2dB0":
        shape = [shape[0], max(shape[1], 2), shape[2]]
    layers = []
    if len(shape) == 3 and draw(st.booleans()):  # a layer before it: its input is not the batch
        layers.append({"type": "Conv2d", "out_channels": shape[0], "kernel_size": 1,
                       **({"trainable": False} if draw(st.booleans()) else {})})
    layer = dict(d)
    if draw(st.integers(0, 3)) == 0:
        layer["trainable"] = False
    layers.append(layer)
    if len(shape) == 3 and draw(st.booleans()) and typ not in ("LayerScale", "GlobalResponseNorm"):
        layers.append({"type": "Conv2d", "out_channels": 2, "kernel_size": 1})
    return {"input": shape, "batch": max(batch, 2), "layers": layers}


@SETTINGS
@given(memory_case())
def test_saved_bytes_equal_torch(spec):
    """What autograd keeps (float32) equals the memory model's saved bytes, to the byte."""
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    torch.manual_seed(0)
    model = build(spec)
    x = torch.randn(spec["batch"], *spec["input"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert estimate(report).saved_bytes == saved_bytes(model, x)


# ------------------------------------------------------------------ sizes / receptive field
SIZE_SPECS = [
    {"input": [3, 16, 16], "layers": [{"type": "StdConv2d", "out_channels": 4, "kernel_size": 3, "stride": 2},
                                      {"type": "SpaceToDepth", "block_size": 4}]},
    {"input": [4, 12, 12], "layers": [{"type": "ScaledStdConv2d", "out_channels": 4, "kernel_size": 4, "stride": 2},
                                      "EvoNorm2dB0", {"type": "EvoNorm2dS0", "groups": 2}, "LayerScale2d"]},
    {"input": [4, 9, 7], "layers": [{"type": "Slice", "dim": 2, "start": 2, "length": 3}, "SimpleNorm2d",
                                    "FilterResponseNormTlu2d", {"type": "GlobalResponseNorm", "channels_last": False}]},
]


def _timm_net(spec):
    """The spec's layers as timm's own modules (Slice as narrow), built at the declared input."""
    mods, shape = [], list(spec["input"])
    x = torch.zeros(1, *shape)
    for d in spec["layers"]:
        d = {"type": d} if isinstance(d, str) else d
        if d["type"] == "Slice":
            m = _Narrow(d.get("dim", 1), d.get("start", 0), d["length"])
        else:
            m = _timm_module(d, list(x.shape[1:])).eval()
        with torch.no_grad():
            x = m(x)
        mods.append(m)
    return torch.nn.Sequential(*mods)


class _Narrow(torch.nn.Module):
    def __init__(self, dim, start, length):
        super().__init__()
        self.args = (dim, start, length)

    def forward(self, x):
        return x.narrow(*self.args)


def _runs(net, shape) -> bool:
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return net(torch.zeros(2, *shape)).numel() > 0
    except (RuntimeError, AssertionError, ValueError, IndexError):
        return False


@pytest.mark.parametrize("spec", SIZE_SPECS, ids=range(len(SIZE_SPECS)))
def test_sizes_equal_torch(spec):
    """The sizes that work per axis equal the sizes at which timm's own modules (built at the
    declared input) run."""
    from cnnshape.sizes import sizes

    rep = sizes(spec)
    assert rep.ok
    net = _timm_net(spec)
    for ax in rep.axes:
        assert ax.valid is not None, ax.unknown
        want = set()
        for n in range(1, 31):
            shape = list(spec["input"])
            shape[ax.dim] = n
            if _runs(net, shape):
                want.add(n)
        assert members(ax.valid, 30) == want, ax.axis


def _region(model, n, unit, c):
    """Input rows whose one-hot slab reaches output row ``unit`` (any channel, centre column)."""
    x = torch.zeros(n, c, n, n)
    for p in range(n):
        x[p, :, p, :] = 1.0
    with torch.no_grad():
        y = model(x)
    hits = (y[:, :, unit, y.shape[-1] // 2] != 0).any(dim=1)
    return [p for p in range(n) if hits[p]]


@pytest.mark.parametrize("layer", [{"type": "SpaceToDepth", "block_size": 4},
                                   {"type": "Slice", "dim": 2, "start": 3, "length": 8}])
def test_rf_against_torch(layer):
    spec = {"input": [1, 16, 16], "layers": [{"type": "Conv2d", "out_channels": 1, "kernel_size": 3, "padding": 1,
                                              "bias": False}, layer]}
    model = build(spec).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    rf = check(spec).layers[-1].receptive_field[0]
    for unit in range(1, 3):
        region = _region(model, 16, unit, 1)
        centre = rf.start + unit * rf.jump
        assert (region[0], region[-1]) == (centre - (rf.size - 1) / 2, centre + (rf.size - 1) / 2), (region, rf)


# ------------------------------------------------------------------ merges
def test_merges_outside_a_graph_are_refused_clearly():
    for t in ("Add", "Mul", "Cat"):
        r = check({"input": [2, 4, 4], "layers": [t]})
        assert not r.ok and "Graph" in r.errors[0].message and r.errors[0].hint


def test_exported_file_is_self_contained():
    """``cnnshape export --to python`` copies the module-level helpers the timm layer classes
    use (StdConv2d's ``_get_padding`` / ``_pair``, EvoNorm2dS0's ``_group_std``, GammaAct's
    ``_GAMMA_ACTS``): the file runs alone and equals the compiled spec."""
    from cnnshape.spec import load
    from cnnshape.torch_backend.export import export_python

    spec = {"input": [4, 8, 8], "batch": 2, "layers": [
        {"type": "StdConv2d", "out_channels": 4, "kernel_size": 3}, {"type": "ScaledStdConv2d", "out_channels": 4,
                                                                    "kernel_size": 3, "stride": 2},
        {"type": "EvoNorm2dS0", "groups": 2}, {"type": "GammaAct", "act_type": "silu", "gamma": 1.5}]}
    ns: dict = {"__name__": "exported"}
    exec(compile(export_python(load(spec)), "exported.py", "exec"), ns)  # noqa: S102 - our own generated code
    net, ours = ns["Net"]().eval(), randomise(build(spec)).eval()
    ns["load_sequential_state"](net, ours.state_dict())
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), ours(x), atol=1e-6)


@pytest.mark.parametrize("typ", ["EvoNorm2dS0", "EvoNorm2dS0a"])
def test_evonorm_s_saved_bytes_every_grouping(typ):
    """EvoNorm-S0 / S0a keep the std expanded to the input's shape as a copy only with several
    groups of several channels (one group, or one channel per group: a view of the std per
    (sample, group)); with or without apply_act, first layer or not, frozen or not: to the byte."""
    import itertools

    for act, first, groups, frozen, c in itertools.product([True, False], [True, False], [1, 2, 4], [False, True],
                                                           [4, 8]):
        d = {"type": typ, "groups": groups, "apply_act": act, **({"trainable": False} if frozen else {})}
        layers = ([] if first else [{"type": "Conv2d", "out_channels": c, "kernel_size": 1}]) + \
            [d, {"type": "Conv2d", "out_channels": 2, "kernel_size": 1}]
        spec = {"input": [c, 3, 5], "batch": 2, "layers": layers}
        report = check(spec)
        assert report.ok
        assert estimate(report).saved_bytes == saved_bytes(build(spec), torch.randn(2, c, 3, 5)), spec
