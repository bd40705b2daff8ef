"""Receptive field size/jump/start against an empirical measurement in torch.

For conv/pool/ReLU chains with all-ones weights and zero bias, output unit u is non-zero
for a one-hot slab input at position p exactly when p lies in u's receptive field. We
measure the region of an interior unit along each axis and compare it with the analysis.
"""

import torch
from hypothesis import assume, given, note
from hypothesis import strategies as st
from torch import nn

from cnnshape import strategies as cs
from cnnshape.analysis import check


@st.composite
def conv_pool_chains(draw):
    rank = draw(st.sampled_from([1, 2]))
    size = 40 if rank == 1 else 24
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "maxpool", "avgpool", "relu"]))
        if kind == "relu":
            layers.append("ReLU")
            continue
        d = {"type": {"conv": "Conv", "maxpool": "MaxPool", "avgpool": "AvgPool"}[kind] + f"{rank}d",
             "kernel_size": draw(st.integers(1, 4)), "stride": draw(st.integers(1, 2))}
        if kind == "conv":
            d["out_channels"] = 1
            d["dilation"] = draw(st.integers(1, 2))
            d["padding"] = draw(st.integers(0, 2))
        else:
            d["padding"] = draw(st.integers(0, d["kernel_size"] // 2))
            if kind == "maxpool":
                d["dilation"] = draw(st.integers(1, 2))
        layers.append(d)
    return {"input": [1] + [size] * rank, "layers": layers}


def measured_region(model, spec, axis, unit):
    """Input indices p along ``axis`` whose one-hot slab reaches output ``unit`` (centre of the other axes)."""
    shape = spec["input"]
    n = shape[1 + axis]
    x = torch.zeros(n, *shape)
    for p in range(n):
        sl = [p, slice(None)] + [slice(None)] * (len(shape) - 1)
        sl[2 + axis] = p
        x[tuple(sl)] = 1.0
    with torch.no_grad():
        y = model(x)
    centre = [s // 2 for s in y.shape[2:]]
    centre[axis] = unit
    hits = y[(slice(None), 0, *centre)] != 0
    return [p for p in range(n) if hits[p]]


@given(conv_pool_chains())
def test_receptive_field_matches_torch(spec):
    note(cs.to_yaml(spec))
    report = check(spec)
    assume(report.ok)
    rf = report.layers[-1].receptive_field
    model = nn.Sequential()
    for lr in report.layers:
        module = getattr(nn, lr.type)(**lr.layer.torch_kwargs(lr.input))
        if hasattr(module, "weight") and module.weight is not None:
            with torch.no_grad():
                module.weight.fill_(1.0)
                module.bias.zero_()
        model.append(module)
    model.eval()
    out_spatial = report.layers[-1].output[1:]
    for axis, a in enumerate(rf):
        for unit in range(out_spatial[axis]):
            lo = a.start + unit * a.jump - (a.size - 1) / 2
            hi = a.start + unit * a.jump + (a.size - 1) / 2
            if lo < 0 or hi > spec["input"][1 + axis] - 1:
                continue  # clipped by the border: not comparable
            region = measured_region(model, spec, axis, unit)
            note(f"axis {axis} unit {unit}: analysed [{lo}, {hi}], measured {region}")
            # dilation leaves holes inside the region; its extent is what RF size means
            assert region and region[0] == lo and region[-1] == hi
            break
