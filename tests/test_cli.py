"""`cnnshape check` / `schema` as a user runs them: exit codes, JSON contract, golden
output, compiler-style diagnostics, and no torch import."""

import glob
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SPECS, cli

GOLDEN = os.path.join(ROOT, "tests", "golden")
SPEC_FILES = sorted(glob.glob(os.path.join(SPECS, "*.yaml")))


def cnnshape(*args, stdin=None):
    return cli(*args, input=stdin, env={"COLUMNS": "200"})


@pytest.mark.parametrize("path", SPEC_FILES, ids=os.path.basename)
def test_check_json_golden(path):
    """The JSON report of every shipped spec equals the stored golden file (figures in the
    golden files are proved against torch by test_specs.py). Refresh with
    CNNSHAPE_UPDATE_GOLDEN=1 after an intended change."""
    # memory peaks depend on the CPU kind (cnnshape.cpu_isa): the golden files are an AVX2 CPU's
    r = cnnshape("check", os.path.relpath(path, ROOT), "--format", "json", "--cpu-isa", "avx2")
    doc = json.loads(r.stdout)
    golden = os.path.join(GOLDEN, os.path.basename(path).replace(".yaml", ".json"))
    if os.environ.get("CNNSHAPE_UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(golden, "w") as f:
            json.dump(doc, f, indent=1)
    with open(golden) as f:
        assert doc == json.load(f)
    assert r.returncode == (1 if "broken" in path else 0)


def test_json_follows_spec_md():
    r = cnnshape("check", "specs/fashion_mnist.yaml", "--format", "json")
    doc = json.loads(r.stdout)
    assert {"ok", "input", "batch", "output", "layers", "totals", "errors"} <= set(doc)
    assert doc["ok"] is True and doc["input"] == [1, 28, 28] and doc["output"] == [10]
    first = doc["layers"][0]
    assert first == {"index": 0, "name": "0", "type": "Conv2d", "input": [1, 28, 28], "output": [4, 26, 26],
                     "params": 40, "trainable_params": 40, "macs": 24336,
                     "receptive_field": {"size": [3, 3], "jump": [1, 1], "start": [1.0, 1.0]},
                     "saved_bytes": 0}  # it keeps only the caller's input (SPEC.md section 5)
    assert doc["totals"]["params"] == 44018 and doc["totals"]["macs"] == 68240
    assert doc["layers"][3]["receptive_field"] is None  # after Flatten


def test_json_error_shape():
    r = cnnshape("check", "specs/broken_fashion_mnist.yaml", "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["output"] is None
    # the error's consequence is known (Linear -> [64]): the walk goes on past it
    assert [lr["index"] for lr in doc["layers"]] == [0, 1, 2, 3, 4, 5, 6]
    (err,) = doc["errors"]
    assert "after_error" not in err
    assert (err["index"], err["name"], err["line"], err["column"]) == (4, "4", 9, 5)
    assert "576" in err["message"] and "set in_features: 576" in err["hint"]


def test_table_and_diagnostic():
    r = cnnshape("check", "specs/broken_fashion_mnist.yaml")
    assert r.returncode == 1
    assert "[4, 24, 24]" in r.stdout
    assert "specs/broken_fashion_mnist.yaml:9:20: error:" in r.stderr
    assert "^~~~~~~~~~~" in r.stderr and "hint: set in_features: 576" in r.stderr
    ok = cnnshape("check", "specs/vgg16.yaml")
    assert ok.returncode == 0 and "138,357,544" in ok.stdout and "valid" in ok.stdout


def test_several_files_exit_codes(tmp_path):
    r = cnnshape("check", "specs/lenet5.yaml", "specs/broken_fashion_mnist.yaml", "--format", "json")
    docs = json.loads(r.stdout)
    assert r.returncode == 1 and [d["ok"] for d in docs] == [True, False]
    assert docs[0]["file"] == "specs/lenet5.yaml"
    r = cnnshape("check", "specs/lenet5.yaml", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "no such file" in r.stderr
    assert cnnshape("check", "specs/lenet5.yaml", "--batch", "0").returncode == 2
    assert cnnshape("check").returncode == 2


def test_input_and_batch_overrides():
    r = cnnshape("check", "specs/vgg16.yaml", "--input", "3,64,64", "--batch", "8", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["input"] == [3, 64, 64] and doc["batch"] == 8 and doc["output"] == [1000]
    r = cnnshape("check", "specs/fashion_mnist.yaml", "--input", "1,32,32", "--format", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["errors"][0]["index"] == 4


def test_check_reads_stdin():
    r = cnnshape("check", "-", stdin="input: [3]\nlayers: [{type: Linear, out_features: 2}]\n")
    assert r.returncode == 0, r.stderr


def test_check_does_not_import_torch():
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            "sys.argv = ['cnnshape', 'check', 'specs/vgg16.yaml', 'specs/m5_audio_1d.yaml', '--format', 'json']; "
            "runpy.run_module('cnnshape', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    code = ("import sys, cnnshape; cnnshape.analyze(cnnshape.load('specs/alexnet.yaml')); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "False"


def test_schema_command_validates_shipped_specs():
    r = cnnshape("schema")
    schema = json.loads(r.stdout)
    assert schema["properties"]["layers"]["items"] == {"$ref": "#/$defs/layer"}
    assert len(schema["$defs"]["layer"]["oneOf"]) > 40
    jsonschema = pytest.importorskip("jsonschema")
    from cnnshape.yaml_io import parse
    for path in SPEC_FILES:
        with open(path) as f:
            data, _ = parse(f.read())
        jsonschema.validate(data, schema)
