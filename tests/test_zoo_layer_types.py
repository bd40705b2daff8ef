"""The layer types added for the torchvision zoo against real torch (torch wins).

Generated specs per family (each new type), compared layer by layer with torch.nn (and
torchvision for Permute / StochasticDepth / LayerNorm2d, never cnnshape's own copies):
validity (first failing layer), shapes, params, MACs. Plus table-driven edge cases whose
expected verdicts were taken from torch 2.13 (tests re-run torch on every one of them).
"""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnshape import strategies as cs
from cnnshape.analysis import check

from .conftest import PROFILE, examples
from .oracle import run
from .test_torch_oracle import compare, errors_of

NEW = ("groupnorm", "layernorm", "instancenorm", "lrn", "upsample", "pixelshuffle", "channelshuffle", "pad",
       "unflatten", "permute", "prelu", "glu", "activation2", "lppool", "dropout2")


@st.composite
def family_specs(draw, family):
    """A short spec: an optional conv/pool prefix, the new layer, and sometimes more layers."""
    ndim = draw(st.sampled_from([1, 2, 3, 3, 4]) if family not in cs.MAP_FAMILIES else st.sampled_from([2, 3, 3, 4]))
    shape = draw(cs.input_shapes(ndim))
    layers = []
    if ndim >= 2 and draw(st.booleans()):
        layers.append(draw(cs.layer_dicts(draw(st.sampled_from(["conv", "maxpool"])), ndim)))
    layers.append(draw(cs.layer_dicts(family, ndim)))
    n = cs._next_ndim(layers[-1], ndim)
    if draw(st.booleans()):
        fams = cs._families_for(n, permuted=layers[-1]["type"] == "Permute")
        layers.append(draw(cs.layer_dicts(draw(st.sampled_from(fams)), n)))
    spec = {"input": shape, "layers": layers}
    if draw(st.booleans()):
        spec["batch"] = draw(st.integers(1, 3))
    return spec


@pytest.mark.parametrize("family", NEW)
@settings(max_examples=examples(30, 500))
@given(data=st.data())
def test_new_family_agrees_with_torch(family, data):
    compare(data.draw(family_specs(family)))


# ------------------------------------------------------------------ table-driven edges
# (input, layer): torch's verdict is recomputed by the oracle; the fragment must be in
# cnnshape's message when torch refuses.
EDGES = [
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 1.5}, None),                       # floor(5*1.5)=7
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 0.3}, None),                       # floor -> 1, 2
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 0.1}, "too small"),
    ([3, 5, 7], {"type": "Upsample", "scale_factor": [2.0, 2.0, 2.0]}, "spatial axes"),
    ([3, 5, 7], {"type": "Upsample", "size": [4, 4, 4]}, "spatial axes"),
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 2, "mode": "linear"}, "expects input [C, L]"),
    ([3, 5], {"type": "Upsample", "scale_factor": 2, "mode": "bicubic"}, "expects input [C, H, W]"),
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 2, "mode": "trilinear"}, "expects input [C, D, H, W]"),
    ([3, 5, 7], {"type": "Upsample", "scale_factor": 2, "mode": "bilinear", "align_corners": True}, None),
    ([3, 5, 7], {"type": "UpsamplingBilinear2d", "size": [3, 9]}, None),
    ([3, 5], {"type": "UpsamplingBilinear2d", "scale_factor": 2}, "expects input [C, H, W]"),
    ([3, 5], {"type": "UpsamplingNearest2d", "scale_factor": 2}, None),
    ([8, 3, 3], {"type": "PixelShuffle", "upscale_factor": 2}, None),
    ([6, 3, 3], {"type": "PixelShuffle", "upscale_factor": 2}, "divisible"),
    ([3, 4, 6], {"type": "PixelUnshuffle", "downscale_factor": 2}, None),
    ([3, 5, 6], {"type": "PixelUnshuffle", "downscale_factor": 2}, "divisible"),
    ([4, 3, 3], {"type": "ChannelShuffle", "groups": 3}, "divisible"),
    ([4], {"type": "ChannelShuffle", "groups": 2}, "expects input"),
    ([3, 5], {"type": "ReflectionPad1d", "padding": 5}, "smaller than the input"),
    ([3, 5], {"type": "ReflectionPad1d", "padding": 4}, None),
    ([3, 5], {"type": "CircularPad1d", "padding": 5}, None),
    ([3, 5], {"type": "CircularPad1d", "padding": 6}, "more than once"),
    ([3, 5], {"type": "ReplicationPad1d", "padding": 9}, None),
    ([3, 5, 6], {"type": "ZeroPad2d", "padding": -3}, "crops more"),
    ([3, 5, 6], {"type": "ZeroPad2d", "padding": [0, 0, -3, -2]}, "too small"),
    ([3, 5, 6], {"type": "ReflectionPad2d", "padding": [-1, 0, 1, 2]}, None),
    ([3, 4, 5, 6], {"type": "ZeroPad2d", "padding": 1}, None),                        # pads H, W of a 3-d map
    ([3, 4, 5, 6], {"type": "ReflectionPad2d", "padding": 1}, "expects input"),
    ([3, 4, 5, 6], {"type": "CircularPad1d", "padding": 1}, "expects input"),
    ([3, 4, 5, 6], {"type": "ConstantPad3d", "padding": [0, 1, 0, 1, 1, 0], "value": 2.0}, None),
    ([4], {"type": "Unflatten", "dim": 1, "unflattened_size": [2, -1]}, None),
    ([4], {"type": "Unflatten", "dim": 1, "unflattened_size": [3, 2]}, "multiply"),
    ([4], {"type": "Unflatten", "dim": 1, "unflattened_size": [3, -1]}, "divisible"),
    ([4], {"type": "Unflatten", "dim": 1, "unflattened_size": [-1, -1]}, "only one"),
    ([3, 4], {"type": "Unflatten", "dim": 3, "unflattened_size": [2, 2]}, "out of range"),
    ([3, 4], {"type": "Unflatten", "dim": -1, "unflattened_size": [2, 2]}, None),
    ([3, 4, 5], {"type": "Permute", "dims": [0, 2, 3, 1]}, None),
    ([3, 4, 5], {"type": "Permute", "dims": [0, 2, 1]}, "number of dims"),
    ([3, 4, 5], {"type": "Permute", "dims": [0, 2, 2, 1]}, "permutation"),
    ([3, 4, 5], {"type": "LayerNorm", "normalized_shape": [4, 5]}, None),
    ([3, 4, 5], {"type": "LayerNorm", "normalized_shape": [5, 4]}, "end with"),
    ([3, 4, 5], {"type": "LayerNorm", "normalized_shape": 5, "bias": False}, None),
    ([3, 4, 5], {"type": "LayerNorm2d"}, None),
    ([3, 4], {"type": "LayerNorm2d"}, "expects input"),
    ([4, 3, 3], {"type": "GroupNorm", "num_groups": 3}, "divisible"),
    ([4, 3, 3], {"type": "GroupNorm", "num_groups": 2, "num_channels": 6}, "num_channels"),
    ([4, 1], {"type": "GroupNorm", "num_groups": 4}, "more than 1 value"),
    ([4, 5], {"type": "InstanceNorm1d"}, None),
    ([4, 5, 5, 5], {"type": "InstanceNorm1d"}, "expects input"),
    ([4, 5, 5], {"type": "InstanceNorm2d", "num_features": 3}, None),                 # torch only warns
    ([4, 5, 5], {"type": "InstanceNorm2d", "num_features": 3, "affine": True}, "num_features"),
    ([4, 5, 5], {"type": "InstanceNorm2d", "num_features": 3, "track_running_stats": True}, "num_features"),
    ([4, 1, 1], {"type": "InstanceNorm2d"}, "more than 1 spatial"),
    ([4, 1, 1], {"type": "InstanceNorm2d", "track_running_stats": True}, None),
    ([4], {"type": "LocalResponseNorm", "size": 2}, "expects input"),
    ([4, 3, 5, 5], {"type": "LocalResponseNorm", "size": 9}, None),
    ([4, 5, 5], {"type": "PReLU", "num_parameters": 3}, "num_parameters"),
    ([4], {"type": "PReLU", "num_parameters": 4}, None),
    ([4], {"type": "Hardtanh", "min_val": 1.0, "max_val": 1.0}, "greater than"),
    ([4], {"type": "CELU", "alpha": 0}, "cannot be 0"),
    ([4, 5], {"type": "GLU"}, "even"),
    ([4, 6], {"type": "GLU", "dim": 1}, None),
    ([4, 5, 5, 5], {"type": "Softmax2d"}, "expects input"),
    ([4, 7, 7], {"type": "LPPool2d", "norm_type": 2, "kernel_size": 9}, "too small"),
    ([4, 2, 4], {"type": "LPPool2d", "norm_type": 2, "kernel_size": 3, "stride": 2, "ceil_mode": True}, None),
    ([4, 2, 4, 4], {"type": "LPPool3d", "norm_type": 2, "kernel_size": 3, "stride": 2, "ceil_mode": True},
     "smaller than the kernel"),
    ([4, 7, 7], {"type": "LPPool2d", "norm_type": 0, "kernel_size": 3}, "cannot be 0"),
    ([4, 7], {"type": "LPPool1d", "norm_type": 2, "kernel_size": [3]}, "expected an int"),
    ([4, 7, 7], {"type": "Softmax2d"}, None),
    ([4], {"type": "FeatureAlphaDropout", "p": 0.2}, None),
    ([4, 3, 3], {"type": "StochasticDepth", "p": 0.2, "mode": "row"}, None),
]


@pytest.mark.parametrize("shape,layer,fragment", EDGES, ids=[f"{e[1]['type']}-{i}" for i, e in enumerate(EDGES)])
def test_edge_cases(shape, layer, fragment):
    spec = {"input": shape, "layers": [layer], "batch": 2 if layer["type"] != "GroupNorm" else 1}
    torch_run = run(spec)
    report, first, errors = errors_of(spec)
    assert (torch_run.fail_index is None) == (fragment is None), f"torch: {torch_run.fail_message}"
    assert first == torch_run.fail_index, [d.message for d in errors]
    if report is not None and report.ok:
        lr = report.layers[0]
        assert (lr.output, lr.params, lr.macs) == (torch_run.shapes[0], torch_run.params[0], torch_run.macs[0])
    if fragment is not None:
        assert fragment in errors[0].message, errors[0].message
        assert errors[0].hint


# ------------------------------------------------------------------ receptive field
def _rf(layers, shape):
    report = check({"input": shape, "layers": layers})
    assert report.ok, report.errors
    return report.layers[-1].receptive_field


def test_rf_padding_shifts_start():
    rf = _rf([{"type": "ZeroPad2d", "padding": [1, 2, 3, 4]}, {"type": "Conv2d", "out_channels": 1, "kernel_size": 3}],
             [1, 8, 8])
    assert [(a.size, a.jump, a.start) for a in rf] == [(3, 1, -2.0), (3, 1, 0.0)]


def test_rf_upsample_divides_jump_or_is_undefined():
    down = {"type": "Conv2d", "out_channels": 1, "kernel_size": 2, "stride": 2}
    rf = _rf([down, {"type": "Upsample", "scale_factor": 2}], [1, 8, 8])
    assert [(a.size, a.jump, a.start) for a in rf] == [(3, 1, 0.0)] * 2
    assert _rf([{"type": "Upsample", "scale_factor": 2}], [1, 8, 8]) is None          # jump 1/2: undefined
    assert _rf([down, {"type": "Upsample", "scale_factor": 1.5}], [1, 8, 8]) is None  # fractional factor
    rf = _rf([down, {"type": "Upsample", "scale_factor": 2, "mode": "bilinear"}], [1, 8, 8])
    assert [(a.size, a.jump) for a in rf] == [(5, 1)] * 2


def test_rf_pixel_shuffle_and_unshuffle():
    rf = _rf([{"type": "PixelUnshuffle", "downscale_factor": 2}], [1, 8, 8])
    assert [(a.size, a.jump, a.start) for a in rf] == [(2, 2, 0.5)] * 2
    rf = _rf([{"type": "PixelUnshuffle", "downscale_factor": 2}, {"type": "PixelShuffle", "upscale_factor": 2}],
             [1, 8, 8])
    assert [(a.size, a.jump, a.start) for a in rf] == [(3, 1, 0.0)] * 2


def test_rf_lppool_is_a_window_and_permute_mixes():
    rf = _rf([{"type": "LPPool2d", "norm_type": 2, "kernel_size": 3, "stride": 2}], [1, 9, 9])
    assert [(a.size, a.jump, a.start) for a in rf] == [(3, 2, 1.0)] * 2
    assert _rf([{"type": "Permute", "dims": [0, 2, 3, 1]}], [1, 9, 9]) is None
    assert _rf([{"type": "Permute", "dims": [0, 1, 2, 3]}, "GroupNorm" if False else "Mish"], [1, 9, 9]) is not None


def _measured(model, n, unit):
    """Input positions whose one-hot slab along H reaches output unit ``unit`` (centre of W)."""
    x = torch.zeros(n, 1, n, n)
    for p in range(n):
        x[p, 0, p, :] = 1.0
    with torch.no_grad():
        y = model(x)
    hits = y[:, 0, unit, y.shape[-1] // 2] != 0
    return [p for p in range(n) if hits[p]]


@pytest.mark.parametrize("up", [{"type": "Upsample", "scale_factor": 2},
                                {"type": "Upsample", "scale_factor": 3},
                                {"type": "Upsample", "scale_factor": 2, "mode": "bilinear"},
                                {"type": "Upsample", "scale_factor": 2, "mode": "bicubic"},
                                {"type": "PixelShuffle", "upscale_factor": 2},
                                {"type": "ReplicationPad2d", "padding": 2}])
def test_rf_against_torch(up):
    """One output unit away from the borders: its measured input region is the reported one
    (size is an upper bound for bilinear: units between two samples may read fewer pixels)."""
    from torch import nn

    from cnnshape.torch_backend.build import build

    stride = 3 if up.get("scale_factor") == 3 else 2
    layers = [{"type": "Conv2d", "out_channels": 4 if up["type"] == "PixelShuffle" else 1, "kernel_size": 3,
               "stride": stride, "bias": False}, up]
    spec = {"input": [1, 16, 16], "layers": layers}
    model = build(spec).eval()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    rf = check(spec).layers[-1].receptive_field[0]
    for unit in range(4, 9):
        region = _measured(model, 16, unit)
        centre = rf.start + unit * rf.jump
        lo, hi = centre - (rf.size - 1) / 2, centre + (rf.size - 1) / 2
        assert region and lo <= region[0] and region[-1] <= hi, (region, rf)
        if up["type"] == "ReplicationPad2d":  # upsampling: size is a covering bound
            assert (region[0], region[-1]) == (lo, hi)
    assert isinstance(model[1], nn.Module)


# ------------------------------------------------------------------ torchvision's extras
def test_extras_behave_like_torchvision():
    """Compiled Permute / StochasticDepth / LayerNorm2d (cnnshape's layer_modules) against
    torchvision's own classes: same state_dict keys, same outputs (StochasticDepth in training
    too, from the same random state)."""
    from .oracle import _torchvision

    tv = _torchvision()
    from cnnshape.torch_backend.build import build

    spec = {"input": [8, 5, 6], "batch": 4, "layers": [
        {"type": "LayerNorm2d", "eps": 1e-6}, {"type": "Permute", "dims": [0, 2, 3, 1]},
        {"type": "LayerNorm", "normalized_shape": 8}, {"type": "Permute", "dims": [0, 3, 1, 2]},
        {"type": "StochasticDepth", "p": 0.5, "mode": "row"}]}
    model = build(spec)
    ref = torch.nn.Sequential(tv.models.convnext.LayerNorm2d(8, eps=1e-6), tv.ops.Permute([0, 2, 3, 1]),
                              torch.nn.LayerNorm(8), tv.ops.Permute([0, 3, 1, 2]),
                              tv.ops.StochasticDepth(0.5, "row"))
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ref.load_state_dict({k: torch.randn_like(v) for k, v in model.state_dict().items()})
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(4, 8, 5, 6)
    for train in (False, True):
        model.train(train)
        ref.train(train)
        torch.manual_seed(3)
        y = model(x)
        torch.manual_seed(3)
        assert torch.equal(y, ref(x))
    for mode in ("row", "batch"):
        for p in (0.0, 1.0, 0.3):
            torch.manual_seed(5)
            ours = build({"input": [3, 2, 2], "batch": 6,
                          "layers": [{"type": "StochasticDepth", "p": p, "mode": mode}]}).train()(x[:6, :3, :2, :2])
            torch.manual_seed(5)
            assert torch.equal(ours, tv.ops.stochastic_depth(x[:6, :3, :2, :2], p, mode, True))


def test_export_copies_the_extra_modules():
    """Exported code defines Permute / StochasticDepth / LayerNorm2d itself (no cnnshape, no
    torchvision) and gives the compiled model's outputs."""
    from cnnshape.torch_backend.build import build
    from cnnshape.torch_backend.export import export_python

    spec = {"input": [4, 6, 6], "layers": [
        "LayerNorm2d", {"type": "Permute", "dims": [0, 2, 3, 1]}, {"type": "Permute", "dims": [0, 3, 1, 2]},
        {"type": "StochasticDepth", "p": 0.1, "mode": "batch"}, {"type": "ZeroPad2d", "padding": [1, 0, 2, 0]},
        {"type": "Upsample", "scale_factor": 2, "mode": "bilinear"}, {"type": "GroupNorm", "num_groups": 2},
        {"type": "PReLU", "num_parameters": 4}, "Flatten", {"type": "Unflatten", "dim": 1, "unflattened_size": [4, -1]}]}
    src = export_python(spec)
    imports = [line for line in src.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "cnnshape" in line or "torchvision" in line], imports
    ns: dict = {}
    exec(compile(src, "exported.py", "exec"), ns)
    net = ns["Net"]().eval()
    model = build(spec).eval()
    ns["load_sequential_state"](net, model.state_dict())
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


# torch runs these, but reads the batch axis as channels or moves / pads / merges the batch
# axis: cnnshape refuses them on purpose, with a hint to the layer that fits
REFUSED = [
    ([3, 5], {"type": "ZeroPad2d", "padding": 1}, "channel axis"),
    ([3, 5, 6], {"type": "ZeroPad3d", "padding": 1}, "channel axis"),
    ([3, 5, 6], {"type": "ReflectionPad3d", "padding": 1}, "channel axis"),
    ([5], {"type": "ZeroPad2d", "padding": 1}, "batch axis"),
    ([3, 5], {"type": "InstanceNorm2d"}, "expects input [C, H, W]"),
    ([3], {"type": "InstanceNorm1d"}, "expects input [C, L]"),
    ([3, 5], {"type": "LPPool2d", "norm_type": 2, "kernel_size": 2}, "expects input [C, H, W]"),
    ([3, 5], {"type": "Softmax2d"}, "expects input [C, H, W]"),
    ([3, 4], {"type": "LayerNorm", "normalized_shape": [2, 3, 4]}, "batch axis"),
    ([3, 4], {"type": "Permute", "dims": [1, 0, 2]}, "batch axis"),
    ([3, 4], {"type": "Unflatten", "dim": 0, "unflattened_size": [1, 2]}, "batch axis"),
    ([3, 4], {"type": "GLU", "dim": 0}, "batch axis"),
    ([3, 8, 4, 4], {"type": "PixelShuffle", "upscale_factor": 2}, "expects input [C, H, W]"),
]


@pytest.mark.parametrize("shape,layer,fragment", REFUSED, ids=[f"{e[1]['type']}-{i}" for i, e in enumerate(REFUSED)])
def test_refused_on_purpose(shape, layer, fragment):
    spec = {"input": shape, "layers": [layer], "batch": 2}
    assert run(spec).fail_index is None  # torch runs it
    report = check(spec)
    assert not report.ok and fragment in report.errors[0].message and report.errors[0].hint


def test_every_new_type_has_a_shape_docstring_and_explains_itself():
    """Each new class states its rule in its docstring; layers whose shape or params depend on
    arguments explain them with numbers."""
    from cnnshape.layers import LAYER_TYPES

    new = [t for t in LAYER_TYPES if t.startswith(("GroupNorm", "LayerNorm", "InstanceNorm", "LocalResponse",
                                                   "Upsampl", "Pixel", "ChannelShuffle", "Unflatten", "Permute",
                                                   "PReLU", "GLU", "LPPool")) or "Pad" in t]
    assert len(new) >= 30
    for t in new:
        cls = LAYER_TYPES[t]
        assert cls.__doc__ and len(cls.__doc__) > 20, t
    shapes = {"Upsample": ([3, 4, 4], {"scale_factor": 2}), "PixelShuffle": ([4, 2, 2], {"upscale_factor": 2}),
              "ZeroPad2d": ([3, 4, 4], {"padding": 1}), "LPPool2d": ([3, 4, 4], {"norm_type": 2, "kernel_size": 2}),
              "GroupNorm": ([4, 2, 2], {"num_groups": 2}), "PReLU": ([4, 2, 2], {"num_parameters": 4})}
    for t, (shape, args) in shapes.items():
        lines = LAYER_TYPES[t](**args).explain(tuple(shape))
        assert lines and any(ch.isdigit() for ch in lines[0]), (t, lines)


def test_padding_grid_agrees_with_torch():
    """Every (before, after) pair in a grid, negative (cropping) values included, for each
    padding mode: torch's verdict and output size (its circular padding with negative values
    accepts an irregular set of pairs, which also depends on whether the copies are dense in
    memory, i.e. on batch x channels == 1: cnnshape replays it)."""
    import itertools

    thorough = PROFILE != "fast"
    for kind, channels in (("Zero", 1), ("Reflection", 1), ("Replication", 1), ("Circular", 1), ("Circular", 2)):
        if thorough:
            sizes, pads = range(1, 8), range(-8, 9)
        else:  # circular's irregular rule on a wider grid
            sizes, pads = ((1, 2, 3), range(-4, 5)) if kind == "Circular" else ((1, 3), range(-3, 4))
        for n in sizes:
            for a, b in itertools.product(pads, repeat=2):
                spec = {"input": [channels, n], "layers": [{"type": f"{kind}Pad1d", "padding": [a, b]}]}
                torch_run = run(spec)
                report, first, errors = errors_of(spec)
                assert first == torch_run.fail_index, (spec, torch_run.fail_message, [e.message for e in errors])
                if first is None:
                    assert report.layers[0].output == torch_run.shapes[0], spec
