"""diff (#16): layer-by-layer architecture diffs; CI budgets and output formats on check."""

import copy
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.errors import SpecError
from cnnshape.diff import ADDED, CHANGED, REMOVED, diff, to_markdown, to_text
from cnnshape.gates import Budgets, check_budgets, parse_quantity
from cnnshape.strategies import nested_spec_dicts, spec_dicts, to_yaml

from .conftest import SPECS, cli, examples

RESNET18 = os.path.join(SPECS, "resnet18.yaml")
#: examples per property: a few dozen in the README's test run, thousands when thorough
EXAMPLES = examples(60, 2000)


def _resnet34_text():
    import re

    text = open(RESNET18).read()
    ns = iter([3, 4, 6, 3])
    return re.sub(r"n: 2", lambda m: f"n: {next(ns)}", text)


@settings(max_examples=EXAMPLES)
@given(st.one_of(spec_dicts(), nested_spec_dicts()))
def test_a_spec_equals_itself_however_it_is_written(d):
    """Formatting never counts: the dict, its YAML text and the same text with comments
    and block style are the same architecture."""
    try:
        a = check(to_yaml(d))
    except SpecError:
        return  # nothing analysable to compare
    text = "# a comment\n" + to_yaml(d)
    r = diff(a, text)
    assert r.same, to_text(r)
    assert all(row.status == "same" for row in r.rows)


def _one_more(d, data):
    """(analysis of ``d``, of ``d`` with one integer argument of one layer raised by one, that
    spec, the layer's index, the argument); None when either does not load or nothing can change."""
    try:
        a = check(to_yaml(d))
    except SpecError:
        return None
    candidates = [(i, k) for i, x in enumerate(d["layers"]) if isinstance(x, dict)
                  for k, v in x.items() if isinstance(v, int) and not isinstance(v, bool) and k != "type"]
    if not candidates:
        return None
    i, k = data.draw(st.sampled_from(candidates))
    e = copy.deepcopy(d)
    e["layers"][i][k] += 1
    try:
        b = check(to_yaml(e))
    except SpecError:
        return None
    return a, b, e, i, k


def _total(rep, key):
    """A total of ``rep``; for a spec with errors, over the layers before its first error only."""
    if rep.ok:
        return getattr(rep.totals, key)
    first = min((x.index for x in rep.errors if x.index is not None), default=0)
    return sum(getattr(row, key) for row in rep.layers[:first])


def _errors_reported(r, rep, side: int) -> None:
    """The erroneous layer of ``rep`` is reported as the error, later ones not analysed."""
    first = min((x.index for x in rep.errors if x.index is not None), default=None)
    if first is None or first >= len(rep.spec.names):  # (a layer that failed to load has no name)
        return
    status = {x.path: x.status for x in r.rows}
    assert status[rep.spec.names[first]] in ("error", "same")
    assert all(status[n] in ("not analysed", "error", "same") for n in rep.spec.names[first + 1:])
    assert all(x.output[side] is None for x in r.rows if x.path in rep.spec.names[first:])


def _analysed(rep, i: int) -> bool:
    """Layer ``i`` was reached before any error (later rows are on assumed shapes: not compared)."""
    return len(rep.layers) > i and not any(x.index is not None and x.index <= i for x in rep.errors)


@settings(max_examples=EXAMPLES)
@given(spec_dicts(), st.data())
def test_totals_and_changed_rows_follow_the_analysis(d, data):
    """Changing one argument of one layer: the totals' deltas are the two analyses'
    differences, and that layer is reported changed with exactly that argument."""
    pair = _one_more(d, data)
    if pair is None:
        return
    a, b, e, i, k = pair
    r = diff(a, b)
    for key in ("params", "trainable_params", "macs"):
        ta, tb = _total(a, key), _total(b, key)
        assert r.totals[key]["a"] == ta and r.totals[key]["b"] == tb
        assert r.totals[key].get("delta") == (tb - ta if a.ok and b.ok else None)
    paths = {x.path for x in r.rows}  # nothing dropped: every top-level layer of both specs has a row
    assert set(a.spec.names) <= paths and set(b.spec.names) <= paths
    for rep, side in ((a, 0), (b, 1)):
        _errors_reported(r, rep, side)
    if _analysed(a, i) and _analysed(b, i):
        row = next(x for x in r.rows if x.path == a.layers[i].path)
        assert row.status == CHANGED and row.args[k] == (d["layers"][i][k], e["layers"][i][k])
    assert not r.same


def test_resnet18_vs_resnet34(tmp_path):
    b = tmp_path / "resnet34.yaml"
    b.write_text(_resnet34_text())
    r = diff(RESNET18, str(b))
    assert not r.same
    added = [x.path for x in r.rows if x.status == ADDED]
    assert added == ["layer1.2", "layer1.2.conv1", "layer1.2.bn1", "layer1.2.relu", "layer1.2.conv2",
                     "layer1.2.bn2", "layer1.2.relu_out"] + [p for p in added if not p.startswith("layer1")]
    assert {p for p in added if p.count(".") == 1} == {"layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3",
                                                       "layer3.4", "layer3.5", "layer4.2"}
    assert r.totals["params"]["b"] == 21_797_672  # torchvision's resnet34 (checked in the zoo tests)
    assert {x.path: x.args for x in r.rows if x.args} == {"layer1": {"n": (2, 3)}, "layer2": {"n": (2, 4)},
                                                         "layer3": {"n": (2, 6)}, "layer4": {"n": (2, 3)}}
    text = "\n".join(to_text(r))
    assert "+   layer3.5: added Residual" in text and "layer3.5.conv1" not in text  # children implied
    md = to_markdown(r)
    assert "| params | 11,689,512 | 21,797,672 | +10,108,160 | +86.5% |" in md


def test_removed_and_unanalysed_rows(tmp_path):
    a = {"input": [1, 8, 8], "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, "ReLU",
                                        "Flatten", {"type": "Linear", "out_features": 10}]}
    b = copy.deepcopy(a)
    del b["layers"][1]
    r = diff(a, b)
    assert [(x.path, x.status) for x in r.changes if x.status in (ADDED, REMOVED)] == [("3", REMOVED)]
    broken = copy.deepcopy(a)
    broken["layers"][3]["in_features"] = 5
    r = diff(a, broken)
    assert [(x.path, x.status) for x in r.changes] == [("3", "error")]
    assert "the error in B" in "\n".join(to_text(r))


def test_a_broken_spec_is_diffed_truthfully():
    """Issue 20 item 4: the erroneous row is the error, later rows are not analysed,
    nothing is dropped, totals cover the analysed layers only (and say so)."""
    r = diff(os.path.join(SPECS, "fashion_mnist.yaml"), os.path.join(SPECS, "broken_fashion_mnist.yaml"))
    status = {x.path: x.status for x in r.rows}
    assert status["4"] == "error" and status["5"] == "not analysed" and status["6"] == "not analysed"
    assert status["logits"] == REMOVED
    assert {"0", "1", "2", "3"} <= {x.path for x in r.changes if x.status == CHANGED}
    # B's layers 0-3 by hand: Conv2d 1->4 k5 = 4*25+4 = 104 params, 4*24*24*25 = 57,600 MACs
    assert r.totals["params"] == {"a": 44_018, "b": 104}
    assert r.totals["macs"] == {"a": 68_240, "b": 57_600}
    text = "\n".join(to_text(r))
    assert "✗ 4: the error in B (line 9)" in text and "? 6: not analysed in B" in text
    assert "B's totals cover layers 0–3 only" in text
    doc = r.to_dict()
    assert [x["path"] for x in doc["layers"] if x["status"] != "changed"] == ["4", "5", "6", "logits"]
    assert doc["counts"]["error"] == 1 and doc["counts"]["not analysed"] == 2
    md = to_markdown(r)
    assert "| `6` | not analysed |" in md and "B's totals cover layers 0–3 only" in md


def test_diff_is_linear_in_the_layers():
    """Issue 23 item 3: 10,000 added layers diff in about a second (was ~12 s)."""
    import time

    a = open(os.path.join(SPECS, "fashion_mnist.yaml")).read()
    b = a.rstrip() + "\n" + "  - ReLU\n" * 9_990
    ra, rb = check(a), check(b)
    start = time.process_time()
    r = diff(ra, rb)
    lines = to_text(r)
    to_markdown(r)
    assert time.process_time() - start < 3.0
    assert r.counts()[ADDED] == 9_990 and len(lines) < 10_020


def test_diff_cli_exit_codes_and_formats(tmp_path):
    same = tmp_path / "same.yaml"
    same.write_text("# reformatted\n" + open(RESNET18).read().replace("{type: ReLU, name: relu}", "{name: relu, type: ReLU}"))
    assert cli("diff", RESNET18, str(same)).returncode == 0
    b = tmp_path / "resnet34.yaml"
    b.write_text(_resnet34_text())
    r = cli("diff", RESNET18, str(b), "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["totals"]["params"] == {"a": 11689512, "b": 21797672, "delta": 10108160, "pct": 86.47}
    assert doc["counts"]["added"] == 8
    md = cli("diff", RESNET18, str(b), "--format", "markdown")
    assert md.returncode == 1 and md.stdout.startswith("### cnnshape diff")
    missing = cli("diff", RESNET18, str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


@pytest.mark.parametrize("text,value", [("5M", 5_000_000), ("1.5G", 1_500_000_000), ("8GiB", 8 * 2**30),
                                        ("512MB", 512_000_000), ("1e9", 10**9), ("100", 100), ("2 KiB", 2048),
                                        ("3k", 3000)])
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "five", "5X", "1e400", "-3M"])
def test_parse_quantity_refuses(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_budgets_name_the_cost():
    report = check(RESNET18)
    errs = check_budgets(report, Budgets(max_params=5_000_000, max_macs=10**9, min_rf=1000, output=(10,)))
    msgs = [e.message for e in errs]
    assert msgs[0] == "budget exceeded: 11.7 M params > 5 M (--max-params)"
    assert "layer4 (8.39 M, line" in errs[0].hint
    assert msgs[1].startswith("budget exceeded: 1.81 G MACs per sample > 1 G")
    assert any("receptive field" in m for m in msgs) and any("output [1000] != [10]" in m for m in msgs)
    assert all(e.line == 6 for e in errs)  # the layers: key
    assert check_budgets(report, Budgets(max_params=12_000_000, max_macs=2 * 10**9)) == []


def test_check_budget_flags_and_ci_formats():
    over = cli("check", RESNET18, "--max-params", "5M")
    assert over.returncode == 1 and "budget exceeded: 11.7 M params > 5 M" in over.stderr
    assert cli("check", RESNET18, "--max-params", "12M", "--max-macs", "2G").returncode == 0
    bad = cli("check", RESNET18, "--max-params", "lots")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    gh = cli("check", RESNET18, os.path.join(SPECS, "broken_fashion_mnist.yaml"), "--max-params", "5M",
             "--format", "github")
    assert gh.returncode == 1
    lines = gh.stdout.splitlines()
    assert lines[0].startswith("::error file=") and "line=6,col=1" in lines[0] and "budget exceeded" in lines[0]
    assert any(line.startswith("::error file=") and "broken_fashion_mnist.yaml,line=9,col=20" in line
               for line in lines)
    md = cli("check", os.path.join(SPECS, "fashion_mnist.yaml"), "--format", "markdown")
    assert md.returncode == 0 and "| 0 | `0` | Conv2d |" in md.stdout
