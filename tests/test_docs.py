"""docs/spec.md is the user's format reference: current with the layer classes, and the
place README, `cnnshape --help` and the JSON Schema point at."""

import importlib.util
import json
import math
import os
import re

import pytest

from cnnshape.analysis import check
from cnnshape.layers import LAYER_TYPES

from .conftest import cli

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


#: sample arguments for checking a docstring's per-axis ``out = ...`` formula against the
#: analysis (itself proven against torch in tests/test_oracle.py)
_SAMPLE = {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "output_padding": 1,
           "output_size": 3, "norm_type": 2, "scale_factor": 2, "value": 0.5, "groups": 1}
_NAMES = {"floor": math.floor, "ceil": math.ceil}


def _out_formula(doc: str) -> str | None:
    """The first per-axis formula ``out = <expr>`` of a docstring (``L_out = ...`` too)."""
    m = re.search(r"``(?:out|[A-Z]_out) = ([^`]+)``", doc)
    return m.group(1) if m else None


def _stated_rule(name: str, cls):
    """(``out = ...`` formula, "unchanged" rule, ``Shape ... as ``X`` `` match) of a layer's
    docstring; fails the test when it states no shape rule at all."""
    doc = " ".join((cls.__doc__ or "").split())
    assert "module docstring" not in doc, name
    formula = _out_formula(doc)
    arrow = re.search(r"``\[[^`]*\]`` -> ``\[[^`]*\]``", doc)
    unchanged = "unchanged" in doc or (cls.family == "activation" and re.search(r"``[^`]*\bx\b[^`]*``", doc))
    block = "Shape:" in doc or (cls.family == "block" and re.search(r"\bShape\b", doc))
    same_as = re.search(r"Shape[^.;]* as ``(\w+)``", doc)  # "Shape ... as ``Conv2d``"
    assert formula or arrow or unchanged or block or same_as, f"{name}: no shape rule in its docstring: {doc!r}"
    return formula, unchanged, same_as


def _same_shape_as(name: str, other: str, rank: int, args: dict) -> None:
    """The referenced layer's rule, at the same arguments."""
    spec = {"input": [32] + [11] * rank, "layers": [{"type": name, **args}]}
    ref = {**spec, "layers": [{"type": other, **{k: v for k, v in args.items() if k in LAYER_TYPES[other].ARGS}}]}
    assert check(spec).output == check(ref).output, f"{name}: shape differs from {other}'s"


def _sample_report(name: str, cls, rank: int, args: dict):
    """(spec, report, size) at the first sample size the layer accepts (block sizes, divisibility)."""
    if "padding" in args and cls.ARGS["padding"].doc.startswith("An int (every side)"):  # pad layers
        args["padding"] = 2
    if "output_padding" in args:
        args["output_padding"] = 1  # < stride
    for size in (11, 12, 16):
        spec = {"input": [32] + [size] * rank, "layers": [{"type": name, **args}]}
        report = check(spec)
        if report.ok:
            break
    assert report.ok, (name, report.errors)
    return spec, report, size


def _formula_holds(name: str, formula: str, args: dict, size: int, rank: int, out) -> None:
    expr = formula.split(" or ")[0] if " or " in formula else formula
    env = {**_NAMES, "in": size, "pad_before": args.get("padding", 0), "pad_after": args.get("padding", 0),
           **{k: v for k, v in args.items() if isinstance(v, int)}}
    want = eval(re.sub(r"\bin\b", "in_", expr), {"__builtins__": {}}, {**env, "in_": size, "L": size})  # noqa: S307
    assert out[1:] == (int(want),) * rank, f"{name}: ``out = {formula}`` gives {want}, the analysis {out}"


def _layer_rule_checked(name: str, cls) -> bool:
    """Check one layer's stated shape rule; True when it was evaluated (not only stated)."""
    formula, unchanged, same_as = _stated_rule(name, cls)
    rank = getattr(cls, "rank", None)
    if rank is None or not isinstance(rank, int):
        return False
    args = {k: v for k, v in _SAMPLE.items() if k in cls.ARGS}
    if same_as and not formula:
        _same_shape_as(name, same_as.group(1), rank, args)
        return True
    spec, report, size = _sample_report(name, cls, rank, args)
    if unchanged and not formula:
        assert report.output == tuple(spec["input"]), name
        return True
    if formula is None:
        return False
    _formula_holds(name, formula, args, size, rank, report.output)
    return True


def test_every_layer_docstring_states_its_shape():
    """Each layer's docstring states its shape rule, and the rule is true: ``[in] -> [out]``
    with a per-axis ``out = ...`` formula (evaluated here at sample arguments and compared
    with the analysis), "shape unchanged" or an element-wise formula in ``x`` (checked to
    keep the shape), or a block's "Shape: ..." sentence."""
    checked = sum(_layer_rule_checked(name, cls) for name, cls in LAYER_TYPES.items())
    assert checked >= 40

def test_everything_points_at_docs_spec_md():
    run = lambda *a: cli(*a).stdout  # noqa: E731
    assert "docs/spec.md" in run("--help")
    assert "docs/spec.md" in json.loads(run("schema"))["description"]
    for path in ("README.md", "docs/spec-extensions.md"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        assert "spec.md" in text and "shared/SPEC.md" not in text, path


def test_readme_examples_are_the_real_output():
    """Every ``$ cnnshape ...`` example of README.md and docs/memory.md is what the command
    prints today, run as on a fresh clone (tools/gen_readme_examples.py regenerates them)."""
    from cnnshape import cpu_isa

    if cpu_isa.native() == "default":
        pytest.skip("the examples' memory peaks are an AVX2 CPU's; this CPU cannot run oneDNN's AVX2 kernels")
    spec = importlib.util.spec_from_file_location("gen_readme_examples",
                                                  os.path.join(ROOT, "tools", "gen_readme_examples.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name in gen.FILES:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        assert gen.BLOCK.search(text), name
        assert gen.render(text) == text, f"{name}: an example is stale: run python tools/gen_readme_examples.py"
