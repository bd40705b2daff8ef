"""The library API a new user meets first, and CLI output made for where it goes."""

import inspect
import os
import pathlib
import subprocess
import sys

import pytest

import cnnshape
from cnnshape.errors import SpecError

from .conftest import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = os.path.join(ROOT, "specs", "lenet5.yaml")


def run_cli(*args, block_torch=False):
    """``cnnshape ARGS`` on an 80-column pipe: in this process, or in a fresh interpreter where
    torch cannot be imported (``block_torch``: the point is what the command imports)."""
    if not block_torch:
        return cli(*args, env={"COLUMNS": "80"}, prog_name="cnnshape")
    code = "import sys, runpy; sys.modules['torch'] = None; "
    code += f"sys.argv = ['cnnshape'] + {list(args)!r}; runpy.run_module('cnnshape', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "80"})


@pytest.mark.parametrize("fn", [cnnshape.analyze, cnnshape.check])
def test_analyze_and_check_accept_what_load_accepts(fn):
    text = pathlib.Path(LENET).read_text()
    for obj in (LENET, pathlib.Path(LENET), text, cnnshape.load(LENET), cnnshape.load(LENET).to_dict()):
        assert fn(obj).output == (10,)
    with pytest.raises(TypeError, match="takes a Spec, a path, YAML text or a dict, not int"):
        fn(3)


def test_analyze_raises_spec_error_check_reports_it():
    broken = "input: [4]\nlayers: [{type: Linear, out_features: 2, bogus: 1}]\n"
    with pytest.raises(SpecError):
        cnnshape.analyze(broken)
    assert "unknown argument 'bogus'" in cnnshape.check(broken).errors[0].message


def test_public_names_documented_and_typed():
    for name in ("load", "analyze", "check", "json_schema", "Spec", "Report", "LayerReport", "Diagnostic",
                 "SpecError", "SpecFileError", "CnnshapeError"):
        obj = getattr(cnnshape, name)
        assert inspect.getdoc(obj), name
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            assert sig.return_annotation is not inspect.Parameter.empty, name
            assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
    assert os.path.exists(os.path.join(ROOT, "cnnshape", "py.typed"))
    assert '"py.typed"' in pathlib.Path(ROOT, "pyproject.toml").read_text()


def test_piped_output_keeps_whole_lines():
    r = run_cli("check", "specs/resnet18.yaml")
    assert r.returncode == 0
    assert "[64, 112, 112]" in r.stdout and "AdaptiveAvgPool2d" in r.stdout
    memory = [line for line in r.stdout.splitlines() if line.startswith("memory at batch")]
    assert len(memory) == 1 and memory[0].rstrip().endswith("B")  # one whole line, ends with a unit


def test_unclosed_bracket_points_where_it_was_opened(tmp_path):
    path = tmp_path / "open.yaml"
    path.write_text("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3\n"
                    "  - ReLU\n  - Flatten\n")
    r = run_cli("check", str(path))
    assert r.returncode == 1
    assert f"{path}:3:5: error: invalid YAML: the flow mapping opened here is never closed" in r.stderr
    assert "at line 6, column 1" in r.stderr


def test_wording():
    r = run_cli("check", "nothere.yaml")
    assert r.returncode == 2 and r.stderr.strip() == "nothere.yaml: error: no such file"
    r = run_cli("check", "specs/broken_fashion_mnist.yaml")
    assert "✗ specs/broken_fashion_mnist.yaml: 1 error\n" in r.stderr
    report = cnnshape.check("input: [1, 8]\nlayers:\n  - {out_features: 3}\n")
    assert report.errors[0].message.startswith("the layer has no type")


@pytest.mark.parametrize("command", ["verify", "export"])
def test_verify_and_export_check_first_without_torch(command):
    r = run_cli(command, "specs/broken_fashion_mnist.yaml", block_torch=True)
    assert r.returncode == 1, r.stderr
    assert "specs/broken_fashion_mnist.yaml:9:20: error: layer 4 (4): Linear expected in_features = 576" in r.stderr
    assert "hint: set in_features: 576" in r.stderr
    r = run_cli(command, "nothere.yaml", block_torch=True)
    assert r.returncode == 2 and "nothere.yaml: error: no such file" in r.stderr


def test_nested_blocks_written_as_block_yaml():
    from cnnshape.yaml_out import dump_spec

    for name in ("resnet_small_32", "resnet18", "mobilenet_v2"):
        spec = cnnshape.load(os.path.join(ROOT, "specs", f"{name}.yaml"))
        text = dump_spec(spec)
        assert "'type'" not in text and "Conv2d(" not in text
        assert "\n    body:\n      - " in text  # a block: one nested layer per line
        assert cnnshape.load(text).to_dict() == spec.to_dict()


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_check_imports_neither_torch_nor_rich(fmt):
    code = ("import sys, runpy, io, contextlib; sys.argv = ['cnnshape', 'check', 'specs/vgg16.yaml', "
            f"'--format', {fmt!r}]\n"
            "try:\n    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        runpy.run_module('cnnshape', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0\n"
            "print(sorted(m for m in ('torch', 'rich', 'difflib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.stdout.strip() == "[]", r.stderr
