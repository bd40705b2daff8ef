"""Memory figures (cnnshape.memory) against torch: saved-for-backward bytes to the byte."""

import glob
import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from cnnshape import cpu_isa
from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.layers import LAYER_TYPES
from cnnshape.memory import estimate, max_batch, parse_bytes
from cnnshape.torch_backend.build import build

from .conftest import ROOT, SPECS, cli
from .memory_oracle import saved_bytes, saved_storages

torch.set_num_threads(1)
INPLACE = {t for t, cls in LAYER_TYPES.items() if "inplace" in cls.ARGS}


def _measured(report, dtype=None):
    torch.manual_seed(0)
    model = build(report.spec, report=report)
    x = torch.randn(report.spec.batch, *report.spec.input, dtype=getattr(torch, report.spec.dtype))
    try:
        return saved_bytes(model, x)
    except (RuntimeError, NotImplementedError, ValueError) as exc:
        # avg_pool3d has no bfloat16 CPU kernel; normalisation of one value per channel in
        # training (the analysis warns about it)
        assume("not implemented for" not in str(exc) and "Expected more than 1" not in str(exc))
        raise


def _vary(draw, items):
    """Turn on in-place / freeze layers at random, recursing into blocks."""
    out = []
    for d in items:
        if isinstance(d, str):
            d = {"type": d}
        d = dict(d)
        for key in ("body", "shortcut", "after"):
            if isinstance(d.get(key), list):
                d[key] = _vary(draw, d[key])
        if isinstance(d.get("branches"), list):
            d["branches"] = [_vary(draw, b) for b in d["branches"]]
        if d["type"] in INPLACE and draw(st.booleans()):
            d["inplace"] = True
        if d["type"] not in ("Repeat",) and draw(st.integers(0, 6)) == 0:
            d["trainable"] = False
        out.append(d)
    return out


@st.composite
def memory_specs(draw, nested: bool):
    d = draw(cs.nested_spec_dicts() if nested else cs.spec_dicts())
    d = {**d, "layers": _vary(draw, d["layers"]),
         "dtype": draw(st.sampled_from(["float32", "float32", "float64", "bfloat16"])),
         "batch": draw(st.integers(2, 3))}  # BatchNorm trains on 2+ values per channel
    return d


def _new_layer(draw, shape):
    """One of the newer layer types (norms, resampling, padding, alpha dropout, stochastic
    depth, views) fitting ``shape`` (a [C, H, W] map or what became of it)."""
    c, rank = shape[0], len(shape) - 1
    divisors = [g for g in range(1, c + 1) if c % g == 0]
    options = [
        {"type": "LayerNorm", "normalized_shape": list(shape[-draw(st.integers(1, len(shape))):]),
         "elementwise_affine": draw(st.booleans())},
        {"type": "Permute", "dims": [0, *draw(st.permutations(range(1, len(shape) + 1)))]},
        {"type": draw(st.sampled_from(["AlphaDropout", "FeatureAlphaDropout"])),
         "p": draw(st.sampled_from([0.0, 0.3, 1.0])), "inplace": draw(st.booleans())},
        {"type": "StochasticDepth", "p": draw(st.sampled_from([0.0, 0.4, 1.0])),
         "mode": draw(st.sampled_from(["row", "batch"]))},
        {"type": "Unflatten", "dim": len(shape), "unflattened_size": [1, shape[-1]]},
        {"type": "Linear", "out_features": draw(st.integers(1, 4))},
        {"type": draw(st.sampled_from(["GELU", "ReLU", "Sigmoid", "SiLU"]))},
        "Flatten",
    ]
    if rank == 2:
        h, w = shape[1:]
        options += [
            {"type": "GroupNorm", "num_groups": draw(st.sampled_from(divisors)), "affine": draw(st.booleans())},
            {"type": "LayerNorm2d"},
            {"type": "InstanceNorm2d", "affine": draw(st.booleans()), "track_running_stats": draw(st.booleans())},
            {"type": "LocalResponseNorm", "size": draw(st.integers(1, 4))},
            {"type": "Upsample", "scale_factor": 2, "mode": draw(st.sampled_from(["nearest", "bilinear"]))},
            {"type": "ChannelShuffle", "groups": draw(st.sampled_from(divisors))},
            {"type": draw(st.sampled_from(["ZeroPad2d", "ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"])),
             "padding": 1},
            {"type": "Conv2d", "out_channels": draw(st.integers(1, 4)), "kernel_size": 1},
        ]
        if h % 2 == 0 and w % 2 == 0:
            options.append({"type": "PixelUnshuffle", "downscale_factor": 2})
        if c % 4 == 0:
            options.append({"type": "PixelShuffle", "upscale_factor": 2})
    return draw(st.sampled_from(options))


@st.composite
def new_layer_specs(draw):
    """Specs chaining the newer layer types (each step kept only if the spec stays valid)."""
    spec = {"input": [draw(st.sampled_from([2, 4])), draw(st.integers(2, 6)), draw(st.integers(2, 6))],
            "batch": draw(st.integers(2, 3)), "dtype": draw(st.sampled_from(["float32", "float64", "bfloat16"])),
            "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 1,
                        "trainable": draw(st.booleans())}]}
    shape = check(spec).output
    for _ in range(draw(st.integers(1, 5))):
        layer = _new_layer(draw, shape)
        trial = {**spec, "layers": spec["layers"] + [layer]}
        try:
            report = check(trial)
        except Exception:  # noqa: BLE001, S112 - SpecError: try another layer
            continue
        if report.ok and not report.warnings:
            spec, shape = trial, report.output
    return spec


def _check_saved(d):
    try:
        report = check(d)
    except Exception:  # noqa: BLE001 - SpecError: nothing to compare
        assume(False)
    assume(report.ok)
    note(cs.to_yaml(d))
    est = estimate(report)
    assert est.saved_bytes == _measured(report)
    assert sum(est.per_layer.values()) == est.saved_bytes


@settings(max_examples=40)
@given(memory_specs(nested=False))
def test_saved_bytes_equal_torch_on_generated_flat_specs(d):
    _check_saved(d)


@settings(max_examples=40)
@given(memory_specs(nested=True))
def test_saved_bytes_equal_torch_on_generated_nested_specs(d):
    _check_saved(d)


@settings(max_examples=40)
@given(new_layer_specs())
def test_saved_bytes_equal_torch_on_the_newer_layer_types(d):
    _check_saved(d)


def _conv(draw, c, k=3):
    return {"type": "Conv2d", "out_channels": c, "kernel_size": k, "padding": k // 2,
            "trainable": draw(st.integers(0, 4)) > 0}


@st.composite
def new_block_specs(draw):
    """Specs with the newer blocks: SqueezeExcitation (short and long form), Residual with
    layer_scale, Concat with split / flat / after / empty branches, DenseBlock."""
    c = draw(st.sampled_from([2, 4]))
    items = [_conv(draw, c, 1)]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["se", "se_gate", "scale", "split", "flat", "dense"]))
        act = draw(st.sampled_from(["ReLU", "GELU", {"type": "ReLU", "inplace": True}]))
        if kind == "se":
            items.append({"type": "SqueezeExcitation", "squeeze_channels": draw(st.integers(1, 3))})
        elif kind == "se_gate":
            items.append({"type": "SqueezeExcitation", "gate": [
                {"type": "AdaptiveAvgPool2d", "output_size": 1}, _conv(draw, c, 1), "Sigmoid"]})
        elif kind == "scale":
            # (no trainable: false here: the compiled Residual keeps layer_scale trainable)
            items.append({"type": "Residual", "body": [_conv(draw, c), act], "layer_scale": 1e-6})
        elif kind == "split":
            items.append({"type": "Concat", "split": True, "branches": [[], [_conv(draw, c // 2), act]],
                          "after": [{"type": "ChannelShuffle", "groups": 2}]})
        elif kind == "flat":
            items.append({"type": "Concat", "flat": True, "branches": [
                [{**_conv(draw, 1, 1), "name": f"a{len(items)}"}],
                [{**_conv(draw, c - 1), "name": f"b{len(items)}"}, {**act, "name": f"r{len(items)}"}
                 if isinstance(act, dict) else {"type": act, "name": f"r{len(items)}"}]]})
        else:
            items.append({"type": "DenseBlock", "n": draw(st.integers(1, 3)),
                          "body": [{"type": "BatchNorm2d"}, act, _conv(draw, 2)]})
            items.append(_conv(draw, c, 1))
    if draw(st.booleans()):
        items += [{"type": "AdaptiveAvgPool2d", "output_size": 1}, "Flatten", {"type": "Linear", "out_features": 3}]
    return {"input": [c, draw(st.integers(3, 6)), draw(st.integers(3, 6))], "batch": draw(st.integers(2, 3)),
            "dtype": draw(st.sampled_from(["float32", "float64", "bfloat16"])), "layers": items}


@settings(max_examples=30)
@given(new_block_specs())
def test_saved_bytes_equal_torch_on_the_newer_blocks(d):
    _check_saved(d)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(SPECS, "*.yaml"))), ids=os.path.basename)
def test_saved_bytes_equal_torch_on_every_shipped_spec(path):
    report = check(path)
    if not report.ok:
        pytest.skip("invalid on purpose")
    if report.totals.macs * report.spec.batch > 2e9:  # big models: batch 1 keeps the test fast
        report = check(path, batch=1)
    assert estimate(report).saved_bytes == _measured(report)


def test_shared_storages_count_once():
    """ReLU keeps its output; the next conv keeps the same storage as its input; Flatten's
    view and Linear's input are that storage again: three holders, one storage."""
    report = check({"input": [1, 6, 6], "batch": 2, "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, "ReLU", "Flatten",
        {"type": "Linear", "out_features": 3}]})
    model = build(report.spec, report=report)
    storages = saved_storages(model, torch.randn(2, 1, 6, 6))
    assert list(storages.values()) == [2 * 2 * 4 * 4 * 4]
    assert estimate(report).saved_bytes == 256


def test_nothing_saved_before_the_first_trainable_layer():
    frozen = {"input": [1, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "trainable": False}, "ReLU",
        {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}]}
    report = check(frozen)
    # only the last conv keeps its input (the pooled [2, 3, 3] map), 4 bytes each
    assert estimate(report).saved_bytes == 2 * 3 * 3 * 4 == _measured(report)


def test_peaks_grow_with_batch_and_max_batch_is_the_largest_fit():
    report = check(os.path.join(SPECS, "fashion_mnist.yaml"))
    small, big = estimate(report, batch=8), estimate(report, batch=64)
    assert small.training_peak_bytes < big.training_peak_bytes
    assert small.inference_peak_bytes < big.inference_peak_bytes < big.training_peak_bytes
    limit = big.training_peak_bytes
    n = max_batch(report, limit, optimizer="adam")
    assert n >= 64
    assert estimate(report, batch=n).training_peak_bytes <= limit < estimate(report, batch=n + 1).training_peak_bytes
    assert max_batch(report, 10) == 0
    # optimizer state: adam keeps two buffers per parameter, momentum one, sgd none
    opt = {o: estimate(report, optimizer=o).optimizer_bytes for o in ("sgd", "momentum", "adam", "adamw")}
    p = report.totals.trainable_params * 4
    assert opt == {"sgd": 0, "momentum": p, "adam": 2 * p, "adamw": 2 * p}


def test_parse_bytes():
    assert parse_bytes("8GiB") == 8 * 2**30
    assert parse_bytes("12GB") == 12 * 10**9
    assert parse_bytes("512 MiB") == 512 * 2**20
    assert parse_bytes("1000") == 1000
    for bad in ("", "lots", "-1GB", "3 parsecs"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def _cli(*args):
    return cli(*args, env={"COLUMNS": "200"})


def test_check_answers_the_largest_batch_without_torch():
    r = _cli("check", "specs/resnet18.yaml", "--memory-limit", "12GiB", "--optimizer", "adam", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    report = check(os.path.join(SPECS, "resnet18.yaml"))
    want = max_batch(report, 12 * 2**30, optimizer="adam")
    assert doc["memory"]["max_batch"] == {"limit_bytes": 12 * 2**30, "training": want,
                                          "inference": max_batch(report, 12 * 2**30, training=False)}
    assert doc["memory"]["training"]["saved_bytes"] == sum(row["saved_bytes"] for row in doc["layers"])
    table = _cli("check", "specs/resnet18.yaml", "--memory-limit", "12GiB")
    assert f"training {want:,} (adam)" in table.stdout and "x2 with gradients" not in table.stdout
    probe = ("import sys, runpy; sys.argv = ['cnnshape', 'check', 'specs/resnet18.yaml', '--memory-limit', '8GiB'];\n"
             "try:\n    runpy.run_module('cnnshape', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "assert 'torch' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", probe], check=False, cwd=ROOT, capture_output=True).returncode == 0


def test_bad_memory_limit_is_a_usage_error():
    r = _cli("check", "specs/lenet5.yaml", "--memory-limit", "lots")
    assert r.returncode == 2 and "8GiB" in r.stderr


@pytest.mark.parametrize("after", [
    [{"type": "Linear", "out_features": 3}],                   # reshape of a strided map: a copy is kept
    ["Flatten", {"type": "Linear", "out_features": 3}],        # Flatten cannot view it: a new storage
    ["GELU", {"type": "Linear", "out_features": 3}],           # elementwise keeps the strides
    [{"type": "LayerNorm", "normalized_shape": [4]}, {"type": "Permute", "dims": [0, 3, 1, 2]},
     {"type": "Conv2d", "out_channels": 2, "kernel_size": 1}],  # ConvNeXt-style channels-last round trip
])
def test_strided_views_after_permute(after):
    d = {"input": [4, 5, 6], "batch": 2, "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 1},
                                                     {"type": "Permute", "dims": [0, 2, 3, 1]}, *after]}
    report = check(d)
    assert report.ok
    assert estimate(report).saved_bytes == _measured(report)


@pytest.mark.parametrize("path, batch", [("fashion_mnist.yaml", 16), ("resnet_small_32.yaml", 8),
                                         ("m5_audio_1d.yaml", 4)])
def test_peaks_against_the_cpu_allocator(path, batch):
    """Training-step (adam) and no_grad inference peaks within 10% of the CPU allocator's
    measured peaks, estimated for the CPU kind this run's oneDNN uses (detected from the CPU
    flags and ONEDNN_MAX_CPU_ISA, as oneDNN does; CI runs this on AVX2 and AVX-512 machines,
    and ``ONEDNN_MAX_CPU_ISA=AVX2`` runs the AVX2 model on an AVX-512 machine)."""
    from .memory_oracle import measured_peaks

    report = check(os.path.join(SPECS, path), batch=batch)
    model = build(report.spec, report=report)
    x = torch.randn(batch, *report.spec.input)
    train, infer = measured_peaks(model, x, "adam")
    est = estimate(report, optimizer="adam")
    assert est.cpu_isa == cpu_isa.detect()
    said = f"{est.cpu_isa}: training {est.training_peak_bytes} / {train}, inference {est.inference_peak_bytes} / {infer}"
    assert abs(est.training_peak_bytes / train - 1) < 0.10, said
    assert abs(est.inference_peak_bytes / infer - 1) < 0.10, said


def test_detected_cpu_kind_is_torchs():
    """Without overrides, the CPU kind read from the CPU flags (no torch) is torch's own
    ``get_cpu_capability()``; ONEDNN_MAX_CPU_ISA caps it as oneDNN does."""
    if any(os.environ.get(v) for v in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")):
        pytest.skip("the CPU kind is overridden in this environment")
    assert cpu_isa.native() == torch.backends.cpu.get_cpu_capability().lower()
    probe = "from cnnshape import cpu_isa; print(cpu_isa.detect())"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": ROOT}
    capped = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env)
    assert capped.stdout.strip() == min(cpu_isa.native(), "avx2", key=cpu_isa.ISAS.index)


def test_cpu_kind_parsing():
    assert cpu_isa._from_flags({"fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}) == "avx512"
    assert cpu_isa._from_flags({"fma", "avx2", "avx512f"}) == "avx2"  # no avx512_core: oneDNN uses AVX2
    assert cpu_isa._from_flags({"sse4_1", "avx"}) == "default"
    assert [cpu_isa.env_cap(v) for v in ("AVX512_CORE_VNNI", "avx10_1_512", "AVX2", "AVX2_VNNI", "SSE41",
                                         "ALL", "", None)] == \
        ["avx512", "avx512", "avx2", "avx2", "default", None, None, None]
    assert cpu_isa.resolve("avx2") == "avx2" and cpu_isa.resolve(None) == cpu_isa.detect()
    with pytest.raises(ValueError, match="avx512"):
        cpu_isa.resolve("neon")


def test_the_cpu_kind_changes_only_the_convolution_temporaries():
    """Hand arithmetic: Fashion-MNIST's first conv (1 -> 4 channels, 26x26 output) computes
    into a blocked copy of its output whose channels oneDNN pads to 8 (AVX2) or 16
    (AVX-512): the inference peaks differ by that copy's growth, batch x 8 x 26 x 26 x 4 B;
    saved bytes do not depend on the CPU."""
    report = check(os.path.join(SPECS, "fashion_mnist.yaml"), batch=16)
    e2, e5 = estimate(report, cpu_isa="avx2"), estimate(report, cpu_isa="avx512")
    assert (e2.cpu_isa, e5.cpu_isa) == ("avx2", "avx512")
    assert e5.inference_peak_bytes - e2.inference_peak_bytes == 16 * (16 - 8) * 26 * 26 * 4
    assert e2.saved_bytes == e5.saved_bytes == estimate(report, cpu_isa="default").saved_bytes
    assert e5.to_dict()["cpu_isa"] == "avx512"
    r = _cli("check", "specs/fashion_mnist.yaml", "--cpu-isa", "avx2", "--format", "json")
    assert json.loads(r.stdout)["memory"]["cpu_isa"] == "avx2"
    r = _cli("check", "specs/fashion_mnist.yaml", "--cpu-isa", "avx512")
    assert "oneDNN on AVX-512 (--cpu-isa)" in r.stdout and "CUDA" in r.stdout
    r = _cli("diff", "specs/fashion_mnist.yaml", "specs/lenet5.yaml", "--cpu-isa", "avx2", "--format", "json")
    totals = json.loads(r.stdout)["totals"]
    peak = next(v for k, v in totals.items() if "inference" in k)
    assert peak["a"] == estimate(check(os.path.join(SPECS, "fashion_mnist.yaml")), cpu_isa="avx2").inference_peak_bytes
