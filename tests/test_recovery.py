"""Every independent error in one run: the analysis recovers where the consequence of an
error is known (a wrong declared in_channels/in_features/num_features; a misspelled type
with a "did you mean") and stops where the shape is truly unknown. Checked against torch:
the rows after a recovered error are torch's shapes for the corrected spec."""

import copy
import json

from hypothesis import given, note

from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.layers import LAYER_TYPES
from cnnshape.errors import SpecError

from .conftest import cli
from .oracle import run

def inferred(d) -> dict:
    """{argument: what it restates} of the layer dict ``d``'s arguments that are inferred when
    omitted (cnnshape's one declaration: ``Arg(inferred_from=...)``)."""
    cls = LAYER_TYPES.get(d.get("type")) if isinstance(d, dict) else None
    return {} if cls is None else {k: a.inferred_from for k, a in cls.ARGS.items()
                                   if a.inferred_from and not a.required}

CIFAR = """\
input: [3, 32, 32]
layers:
  - {type: Conv2d, in_channels: 1, out_channels: 16, kernel_size: 3}
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - Flatten
  - {type: Linear, in_features: 1000, out_features: 64}
  - ReLU
  - {type: Linear, in_features: 32, out_features: 10}
"""


def test_cifar_net_needs_one_run():
    report = check(CIFAR)
    assert [(e.index, e.key, e.after_error) for e in report.errors] == [
        (0, "in_channels", False), (4, "in_features", True), (6, "in_features", True)]
    assert "3600" in report.errors[1].message and "64" in report.errors[2].message
    assert [lr.output for lr in report.layers][-1] == (10,)
    doc = report.to_dict()
    assert "after_error" not in doc["errors"][0] and doc["errors"][1]["after_error"] is True


def test_table_marks_later_errors(tmp_path):
    path = tmp_path / "cifar.yaml"
    path.write_text(CIFAR)
    r = cli("check", str(path))
    assert r.returncode == 1
    assert r.stderr.count("(found after an earlier error)") == 2 and "3 errors" in r.stderr
    r = cli("check", str(path), "--format", "json")
    assert [e.get("after_error", False) for e in json.loads(r.stdout)["errors"]] == [False, True, True]


def test_misspelled_type_reads_as_the_suggestion():
    text = ("input: [3, 16, 16]\nlayers:\n  - {type: Conv2, out_channels: 8, kernel_size: 3}\n  - Relu\n"
            "  - {type: BatchNorm2d, num_features: 3}\n")
    report = check(text)
    assert [(e.index, "did you mean" in e.message, e.after_error) for e in report.errors] == [
        (0, True, False), (1, True, False), (2, False, True)]
    assert [lr.type for lr in report.layers] == ["Conv2d", "ReLU", "BatchNorm2d"]


def test_stops_where_the_shape_is_unknown():
    text = ("input: [3, 8, 8]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 12}\n"
            "  - {type: Linear, in_features: 7, out_features: 2}\n  - {type: Blah, x: 1}\n  - ReLU\n")
    report = check(text)
    # the kernel error leaves the shape unknown: nothing after it is analysed; the type
    # without a suggestion is still reported (schema errors are independent of shapes)
    assert [e.index for e in report.errors] == [0, 2]
    assert report.layers == ()


def _corrected(spec: dict) -> dict:
    fixed = copy.deepcopy(spec)
    for d in fixed["layers"]:
        for key in inferred(d):
            d.pop(key, None)
    return fixed


@given(cs.spec_dicts())
def test_recovered_rows_are_torchs_rows_of_the_corrected_spec(spec):
    """Errors at every wrong declaration before torch's failure, plus the failure; the rows
    in between are what torch computes once the declarations are removed."""
    note("spec:\n" + cs.to_yaml(spec))
    try:
        report = check(spec)
    except SpecError:
        return
    torch_run = run(_corrected(spec))
    stop = torch_run.fail_index if torch_run.fail_index is not None else len(spec["layers"])
    expected = set()
    for i, d in enumerate(spec["layers"][:stop]):
        incoming = tuple(spec["input"]) if i == 0 else torch_run.shapes[i - 1]
        for key, what in inferred(d).items():
            if key in d:
                actual = incoming[-1] if what == "features" else incoming[0]
                if d[key] != actual:
                    expected.add(i)
    if torch_run.fail_index is not None:
        expected.add(torch_run.fail_index)
    # (schema errors after torch's failure are independent of shapes and reported too)
    assert {e.index for e in report.errors if e.index <= stop} == expected
    restated = {k for cls in LAYER_TYPES.values() for k in cls.RESTATED}
    assert all(e.after_error for e in report.errors if e.key in restated and e.index > report.errors[0].index)
    for lr, shape in zip(report.layers, torch_run.shapes):
        assert lr.output == shape, f"layer {lr.index} ({lr.type})"


def test_every_restating_argument_recovers():
    """GroupNorm's num_channels, LayerNorm's normalized_shape and LayerNorm2d's recover like
    BatchNorm's num_features: reported, and the rows after them are torch's rows of the
    corrected spec."""
    spec = {"input": [4, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 6, "kernel_size": 3},
        {"type": "GroupNorm", "num_groups": 2, "num_channels": 4},
        {"type": "LayerNorm", "normalized_shape": [5, 5]},
        {"type": "LayerNorm2d", "normalized_shape": 3},
        {"type": "BatchNorm2d", "num_features": 2},
        {"type": "Conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 3},
        "Flatten",
        {"type": "Linear", "in_features": 7, "out_features": 3},
    ]}
    report = check(cs.to_yaml(spec))  # YAML text: the errors point at their keys
    assert [(e.index, e.key, e.after_error) for e in report.errors] == [
        (1, "num_channels", False), (2, "normalized_shape", True), (3, "normalized_shape", True),
        (4, "num_features", True), (5, "in_channels", True), (7, "in_features", True)]
    assert [e.fix for e in report.errors] == [{"num_channels": 6}, {"normalized_shape": [6, 6]},
                                              {"normalized_shape": 6}, {"num_features": 6},
                                              {"in_channels": 6}, {"in_features": 32}]
    corrected = copy.deepcopy(spec)
    for e in report.errors:
        corrected["layers"][e.index].update(e.fix)
    torch_run = run(corrected)
    assert torch_run.fail_index is None, torch_run.fail_message
    assert [lr.output for lr in report.layers] == torch_run.shapes
    assert check(corrected).ok
