"""`cnnshape sizes` without torch: the library API (frozen, JSON-serialisable, nearest),
the CLI (golden, exit codes), `check --input`'s nearby sizes, and the re-inferred sets
against cnnshape's own analysis run at every size. (Equality with torch on every size:
tests/test_sizes_torch.py.)"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.sizes import Progression, members, sizes

from .conftest import ROOT, cli, examples

GOLDEN = os.path.join(ROOT, "tests", "golden", "sizes.json")
SHIPPED = ["alexnet", "broken_fashion_mnist", "convnet_notebook", "edge_filters", "fashion_mnist", "lenet5",
           "m5_audio_1d", "mobilenet_v2", "resnet18", "resnet50", "resnet_small_32", "unet_small", "vgg16", "volume_3d"]


def cnnshape(*args, stdin=None):
    return cli(*args, input=stdin, env={"COLUMNS": "200"})


def test_library_api_is_frozen_and_json_serialisable():
    rep = sizes("specs/lenet5.yaml")
    assert rep.ok and [a.axis for a in rep.axes] == ["H", "W"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.ok = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.axes[0].valid = ()
    doc = json.loads(json.dumps(rep.to_dict(near=30)))
    assert doc["axes"][0]["valid"] == [{"from": 32, "to": 35, "step": 1}]
    assert doc["axes"][0]["near"] == {"n": 30, "below": None, "above": 32}
    assert rep.nearest("H", 40) == (35,) and rep.nearest(1, 33) == (33,)
    assert 33 in rep.axis("W") and 36 not in rep.axis("W")
    assert rep.axis("H").summary == "32 ≤ H ≤ 35"
    assert rep.summary == "32 ≤ H ≤ 35; 32 ≤ W ≤ 35"
    # a Report, a Spec, a dict and YAML text all work
    report = check("specs/lenet5.yaml")
    assert sizes(report) == sizes(report.spec) == rep


def test_progression_text_and_nearest():
    assert Progression(32, None, 32).text("H") == "H multiple of 32"
    assert Progression(4, None, 8).text("H") == "H ∈ {4, 12, 20, ...}"
    assert Progression(28, 31).text("H") == "28 ≤ H ≤ 31"
    assert Progression(7, 7).text("L") == "L = 7"
    assert Progression(8, 40, 8).text("W") == "W ∈ {8, 16, ..., 40}"
    g = Progression(32, None, 32)
    assert (g.at_most(500), g.at_least(500)) == (480, 512)


def test_feature_vector_and_broken_spec():
    rep = sizes({"input": [10], "layers": [{"type": "Linear", "out_features": 2}]})
    assert rep.ok and rep.axes == ()
    bad = sizes("specs/broken_fashion_mnist.yaml")
    assert not bad.ok and bad.errors and bad.to_dict()["errors"]


def test_unknown_layer_is_reported_never_guessed(monkeypatch):
    from cnnshape.layers.activation import ReLU

    monkeypatch.setattr(ReLU, "pointwise", False)
    ax = sizes({"input": [1, 8, 8], "layers": ["ReLU"]}).axis("H")
    assert ax.valid is None and "ReLU" in ax.unknown and "unknown" in ax.summary
    assert ax.to_dict()["valid"] is None


def test_cli_json_golden_and_exit_codes():
    """Every shipped spec in one run (a list, with --near 500); exit 1 for the broken one.
    The sets are checked against torch in tests/test_sizes_torch.py. Refresh with
    CNNSHAPE_UPDATE_GOLDEN=1."""
    r = cnnshape("sizes", *[f"specs/{s}.yaml" for s in SHIPPED], "--format", "json", "--near", "500")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    if os.environ.get("CNNSHAPE_UPDATE_GOLDEN"):
        with open(GOLDEN, "w") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
    with open(GOLDEN) as f:
        assert doc == json.load(f)
    by = {d["file"]: d for d in doc}
    r50 = by["specs/resnet50.yaml"]
    assert r50["ok"] and [a["feature_map"] for a in r50["axes"]] == ["floor((H - 1) / 32) + 1",
                                                                     "floor((W - 1) / 32) + 1"]
    assert not by["specs/broken_fashion_mnist.yaml"]["ok"]
    assert cnnshape("sizes", "specs/lenet5.yaml").returncode == 0
    assert cnnshape("sizes", "no/such/file.yaml").returncode == 2


def test_cli_table():
    r = cnnshape("sizes", "specs/lenet5.yaml", "--near", "40")
    assert r.returncode == 0
    for text in ("32 ≤ H ≤ 35", "near 40", "c5 (Linear) fixes the flattened length", "32 ≤ n ≤ 35"):
        assert text in r.stdout, r.stdout


FIXED_LENET = """input: [1, 32, 32]
layers:
  - {type: Conv2d, out_channels: 6, kernel_size: 5}
  - {type: AvgPool2d, kernel_size: 2}
  - {type: Conv2d, out_channels: 16, kernel_size: 5}
  - {type: AvgPool2d, kernel_size: 2}
  - Flatten
  - {type: Linear, in_features: 400, out_features: 10}
"""


def test_check_input_failure_names_nearby_sizes():
    r = cnnshape("check", "-", "--input", "1,40,32", stdin=FIXED_LENET)
    assert r.returncode == 1 and "sizes that work nearby: H: 35" in r.stderr
    r = cnnshape("check", "-", "--input", "1,40,40", "--format", "json", stdin=FIXED_LENET)
    hint = json.loads(r.stdout)["errors"][0]["hint"]
    assert "sizes that work nearby: H = W: 35" in hint
    r = cnnshape("check", "specs/lenet5.yaml", "--input", "1,8,8")
    assert r.returncode == 1 and "sizes that work nearby: H: 16; W: 16" in r.stderr
    # a passing check computes nothing extra and prints no hint
    r = cnnshape("check", "specs/lenet5.yaml", "--input", "1,40,40")
    assert r.returncode == 0 and "nearby" not in r.stdout + r.stderr


def test_check_and_sizes_do_not_import_torch():
    code = ("import sys, runpy; sys.modules['torch'] = None; sys.argv = ['cnnshape', 'check', "
            "'specs/lenet5.yaml', '--input', '1,8,8']\n"
            "try:\n    runpy.run_module('cnnshape', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "from cnnshape.sizes import sizes; sizes('specs/resnet50.yaml')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "nearby" in r.stderr


# ------------------------------------------- re-inferred sets = cnnshape's analysis per size
def _ok(d) -> bool:
    try:
        return check(d).ok
    except Exception:  # noqa: BLE001 - SpecError: not a spec to compare
        return False


@settings(max_examples=examples(30, 400), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.one_of(st.sampled_from([2, 3, 4]).flatmap(lambda nd: cs.spec_dicts(5, nd)),
                 cs.nested_spec_dicts(3)).filter(_ok))
def test_reinferred_sets_equal_check_input_at_every_size(spec):
    """``sizes(reinfer=True)`` is what ``check --input`` accepts (inferred arguments adapt)."""
    rep = sizes(spec, reinfer=True)
    top = {2: 48, 3: 32, 4: 16}[len(rep.input)]
    for ax in rep.axes:
        if ax.valid is None and "scale_factor" in ax.unknown:  # documented limit: reported, not guessed
            continue
        assert ax.valid is not None, ax.unknown
        want, clean = set(), set()
        for n in range(1, top + 1):
            shape = list(rep.input)
            shape[ax.dim] = n
            report = check(spec, input=shape)
            if report.ok:
                want.add(n)
                # no_drop: sizes at which no pixel is dropped; check warns only about sizeable
                # drops (a quarter of an axis), so every no_drop size is free of such warnings
                if not any(("unused" in w.message or "ignores the last" in w.message)
                           and f"along {ax.axis}" in w.message for w in report.warnings):
                    clean.add(n)
        got = members(ax.valid, top)
        note(f"{ax.axis}: {sorted(got)} vs {sorted(want)}")
        assert got == want
        if "Flatten" not in json.dumps(spec) and "Permute" not in json.dumps(spec):  # axis names change after these
            assert members(ax.no_drop, top) <= clean
