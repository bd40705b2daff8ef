"""docs/spec.md is the user's format reference: current with the layer classes, and the
place README, `cnnshape --help` and the JSON Schema point at."""

import importlib.util
import json
import os
import subprocess
import sys

from cnnshape.layers import LAYER_TYPES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _generator():
    spec = importlib.util.spec_from_file_location("gen_spec_doc", os.path.join(ROOT, "tools", "gen_spec_doc.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layer_reference_is_current():
    gen = _generator()
    with open(gen.DOC, encoding="utf-8") as f:
        text = f.read()
    assert gen.render(text) == text, "docs/spec.md is stale: run python tools/gen_spec_doc.py"
    for name, cls in LAYER_TYPES.items():
        assert f"#### `{name}`" in text
        for key in cls.ARGS:
            if key not in ("name", "trainable"):
                assert f"| `{key}` |" in text


def test_every_layer_docstring_states_its_shape():
    for name, cls in LAYER_TYPES.items():
        doc = cls.__doc__ or ""
        assert "module docstring" not in doc, name
        assert any(w in doc for w in ("->", "Shape", "shape", "``")), name


def test_everything_points_at_docs_spec_md():
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = lambda *a: subprocess.run([sys.executable, "-m", "cnnshape", *a], capture_output=True, text=True,  # noqa: E731
                                    cwd=ROOT, env=env).stdout
    assert "docs/spec.md" in run("--help")
    assert "docs/spec.md" in json.loads(run("schema"))["description"]
    for path in ("README.md", "docs/spec-extensions.md"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        assert "spec.md" in text and "shared/SPEC.md" not in text, path
