"""The calculator against real torch forward passes, on generated specs (torch wins).

Failures print the spec as YAML: save it and run `cnnshape check` on it to reproduce.
"""

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.errors import SpecError

from .oracle import run


def errors_of(spec_dict):
    """(report or None, first error index or None) for a spec dict (schema errors included)."""
    try:
        report = check(spec_dict)
    except SpecError as exc:
        return None, min(d.index for d in exc.diagnostics if d.index is not None), exc.diagnostics
    first = report.errors[0].index if report.errors else None
    return report, first, report.errors


def compare(spec_dict):
    note("spec:\n" + cs.to_yaml(spec_dict))
    report, first_error, errors = errors_of(spec_dict)
    torch_run = run(spec_dict)
    note(f"torch: fail at {torch_run.fail_index}: {torch_run.fail_message}")
    note(f"cnnshape errors: {[(d.index, d.message) for d in errors]}")
    assert first_error == torch_run.fail_index, "cnnshape and torch disagree on validity"
    if report is None:
        return
    for lr, shape, params, trainable, macs in zip(report.layers, torch_run.shapes, torch_run.params,
                                                  torch_run.trainable, torch_run.macs):
        assert lr.output == shape, f"layer {lr.index} ({lr.type}) shape"
        assert lr.params == params, f"layer {lr.index} ({lr.type}) params"
        assert lr.trainable_params == trainable, f"layer {lr.index} ({lr.type}) trainable params"
        assert lr.macs == macs, f"layer {lr.index} ({lr.type}) MACs"


@given(cs.spec_dicts())
def test_generated_specs_agree_with_torch(spec_dict):
    compare(spec_dict)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@given(data=st.data())
def test_generated_specs_per_rank(ndim, data):
    """Each input rank on its own ([F], [C, L], [C, H, W], [C, D, H, W])."""
    compare(data.draw(cs.spec_dicts(max_layers=4, ndim=ndim)))
