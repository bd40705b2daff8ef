"""draw (#16): deterministic, readable pictures; pydantic types embedding a spec."""

import glob
import io
import json
import os
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.draw import figure, to_png, to_svg
from cnnshape.errors import SpecError
from cnnshape.strategies import nested_spec_dicts, spec_dicts

from .conftest import SPECS, cli, examples

EXAMPLES = examples(40, 1000)
ALL = sorted(glob.glob(os.path.join(SPECS, "*.yaml")))


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [el.text for el in root.iter() if el.tag.endswith("text") and el.text]


@pytest.mark.parametrize("path", ALL, ids=os.path.basename)
def test_every_spec_draws_with_its_shapes(path):
    report = check(path)
    svg = to_svg(figure(report))
    texts = _texts(svg)
    # every map the figure shows is labelled with its shape; the last one is the output
    if report.ok:
        out = "x".join(map(str, report.output))
        assert out in texts, (out, texts)
    assert "x".join(map(str, report.spec.input)) in texts
    assert svg == to_svg(figure(check(path)))  # deterministic


@settings(max_examples=EXAMPLES)
@given(st.one_of(spec_dicts(), nested_spec_dicts()), st.integers(1, 3))
def test_any_spec_draws(d, depth):
    """Whatever the analysis accepts (or the part before an error) draws, as SVG that
    parses and as a PNG of the figure's size."""
    try:
        report = check(d)
    except SpecError:
        return
    scene = figure(report, depth)
    ET.fromstring(to_svg(scene))
    from PIL import Image

    img = Image.open(io.BytesIO(to_png(scene, scale=1)))
    assert img.size == (int(-(-scene.width // 1)), int(-(-scene.height // 1)))


def test_depth_expands_blocks():
    report = check(os.path.join(SPECS, "resnet18.yaml"))
    shallow, deep = _texts(to_svg(figure(report, 1))), _texts(to_svg(figure(report, 3)))
    assert "layer2: Repeat x2 (Residual)" in shallow and "conv1" in shallow  # the stem conv
    assert "0: Residual" not in shallow
    assert "0: Residual" in deep and "downsample.0" in deep and "identity" in deep
    assert deep.count("+") >= 8  # one add per residual block


def test_draw_cli(tmp_path):
    spec = os.path.join(SPECS, "lenet5.yaml")
    for ext in ("svg", "png"):
        out = tmp_path / f"net.{ext}"
        r = cli("draw", spec, "-o", str(out))
        assert r.returncode == 0, r.stderr
        first = out.read_bytes()
        cli("draw", spec, "-o", str(out)).check_returncode()
        assert out.read_bytes() == first
    bad = cli("draw", spec, "-o", str(tmp_path / "x.gif"))
    assert bad.returncode == 2 and "svg or .png" in bad.stderr
    broken = cli("draw", os.path.join(SPECS, "broken_fashion_mnist.yaml"), "-o", str(tmp_path / "b.svg"))
    assert broken.returncode == 1 and (tmp_path / "b.svg").exists() and "Traceback" not in broken.stderr


# ----------------------------------------------------------------------------- pydantic
pydantic = pytest.importorskip("pydantic")


def _config_model():
    from pydantic import BaseModel

    import cnnshape.pydantic as cp

    class TrainConfig(BaseModel):
        model: cp.Spec
        lr: float = 1e-3

    return TrainConfig


@settings(max_examples=EXAMPLES)
@given(st.one_of(spec_dicts(), nested_spec_dicts()))
def test_pydantic_accepts_exactly_what_check_accepts(d):
    from pydantic import ValidationError

    TrainConfig = _config_model()
    try:
        report = check(d)
        errors = list(report.errors)
    except SpecError as exc:
        report, errors = None, exc.diagnostics
    try:
        cfg = TrainConfig(model=d)
    except ValidationError as exc:
        assert errors, exc
        got = [e for e in exc.errors() if e["loc"][0] == "model"]
        assert [e["ctx"]["message"].split(" (line")[0].split("; hint:")[0] for e in got] == [x.message for x in errors]
        assert all(e["type"] == "cnnshape" for e in got)
    else:
        assert not errors
        assert cfg.model.report.output == report.output
        assert TrainConfig.model_validate_json(cfg.model_dump_json()).model.spec == cfg.model.spec


def test_pydantic_errors_are_located():
    from pydantic import ValidationError

    TrainConfig = _config_model()
    with pytest.raises(ValidationError) as info:
        TrainConfig(model=os.path.join(SPECS, "broken_fashion_mnist.yaml"))
    (e,) = info.value.errors()
    assert e["loc"] == ("model", "layers", 4, "in_features")
    assert e["ctx"]["line"] == 9 and "set in_features: 576" in e["ctx"]["hint"]
    assert "(line 9, column 20)" in e["msg"]


def test_pydantic_schema_is_cnnshapes():
    import jsonschema
    from pydantic import TypeAdapter

    import cnnshape.pydantic as cp
    from cnnshape.schema import json_schema

    own = json_schema()
    alone = TypeAdapter(cp.Spec).json_schema()
    assert json.loads(json.dumps(alone).replace(cp.SCHEMA_ID + "#/", "#/")) == own
    embedded = _config_model().model_json_schema()
    assert embedded["properties"]["model"] == alone
    v = jsonschema.Draft202012Validator(embedded)
    good = {"model": {"input": [1, 28, 28], "layers": ["Flatten", {"type": "Linear", "out_features": 10}]}}
    assert not list(v.iter_errors(good))
    assert list(v.iter_errors({"model": {"input": [1, 28, 28], "layers": [{"type": "Linear"}]}}))


@settings(max_examples=EXAMPLES)
@given(st.sampled_from(sorted(__import__("cnnshape.layers", fromlist=["LAYER_TYPES"]).LAYER_TYPES)), st.data())
def test_layer_models_agree_with_the_layer_classes(type_name, data):
    """The generated pydantic model of a layer accepts the same argument values as the
    layer class (values drawn per declared kind, valid or not)."""
    from pydantic import ValidationError

    import cnnshape.pydantic as cp
    from cnnshape.layers import LAYER_TYPES

    cls = LAYER_TYPES[type_name]
    if cls.is_block:
        return
    values = {}
    for key, arg in cls.ARGS.items():
        if key in ("name", "trainable") or arg.kind not in ("int", "float", "bool", "str", "choice"):
            continue
        if arg.required or data.draw(st.booleans()):
            if arg.kind == "int":
                values[key] = data.draw(st.integers(-2, 5))
            elif arg.kind == "float":
                values[key] = data.draw(st.floats(-1, 2, allow_nan=False))
            elif arg.kind == "bool":
                values[key] = data.draw(st.booleans())
            elif arg.kind == "choice":
                values[key] = data.draw(st.sampled_from(list(arg.choices) + ["nope"]))
            else:
                values[key] = data.draw(st.text(max_size=3))
    if any(a.required and a.kind not in ("int", "float", "bool", "str", "choice") for a in cls.ARGS.values()):
        return
    # per-argument validation (cross-argument checks such as Hardtanh's min < max are
    # cnnshape's own check_args, which the field models do not repeat)
    ours = True
    for key, value in values.items():
        try:
            cls.ARGS[key].validate(value, cls.rank)
        except ValueError:
            ours = False
    try:
        cp.LAYER_MODELS[type_name](**values)
        theirs = True
    except ValidationError:
        theirs = False
    assert ours == theirs, (values, ours, theirs)
