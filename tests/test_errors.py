"""Every error class: located, with what was expected, what was received, and a fix.

Each case is also run through torch (tests/oracle.py) to prove torch rejects it too."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnshape import strategies as cs
from cnnshape.analysis import check
from cnnshape.errors import SpecError, SpecFileError
from cnnshape.spec import load

from .oracle import run

C = "{type: Conv2d, out_channels: 4, kernel_size: 3}"

# (yaml, layer index, fragments of the message, fragment of the hint)
SHAPE_ERRORS = [
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, in_channels: 3, out_channels: 4, kernel_size: 3}",
     0, ["in_channels = 1", "received in_channels: 3"], "set in_channels: 1"),
    ("input: [1, 28, 28]\nlayers:\n  - " + C + "\n  - Flatten\n  - {type: Linear, in_features: 784, out_features: 10}",
     2, ["in_features = 2704", "received in_features: 784"], "set in_features: 2704"),
    ("input: [1, 5, 5]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 7}",
     0, ["kernel_size ≤ 5", "received 7"], "reduce kernel_size to ≤ 5 along H or add padding ≥ 1"),
    ("input: [1, 5, 5]\nlayers:\n  - {type: MaxPool2d, kernel_size: 6}",
     0, ["output size too small along H"], "reduce kernel_size to ≤ 5"),
    ("input: [1, 8, 8]\nlayers:\n  - {type: MaxPool2d, kernel_size: 3, padding: 2}",
     0, ["padding ≤ 1", "received 2"], "reduce padding to ≤ 1"),
    ("input: [1, 8, 8]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: same}",
     0, ["padding='same' is not supported for strided convolutions"], "stride: 1"),
    ("input: [1, 4, 4]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 4, padding_mode: reflect}",
     0, ["reflect padding must be smaller than the input"], "reduce padding to ≤ 3"),
    ("input: [1, 4, 4]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: 5, padding_mode: circular}",
     0, ["circular padding wraps around more than once"], "reduce padding to ≤ 4"),
    ("input: [3, 8, 8]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3, groups: 2}",
     0, ["in_channels must be divisible by groups", "3 % 2 = 1"], "groups in [1]"),
    ("input: [2, 8, 8]\nlayers:\n  - {type: ConvTranspose2d, out_channels: 2, kernel_size: 3, stride: 2, output_padding: 2}",
     0, ["output_padding must be smaller than either stride or dilation"], "output_padding ≤ 1"),
    ("input: [1, 28, 28]\nlayers:\n  - Flatten\n  - " + C,
     1, ["Conv2d expects input [C, H, W]", "received [784]"], "feature map"),
    ("input: [1, 100]\nlayers:\n  - " + C,
     0, ["Conv2d expects input [C, H, W]", "received [1, 100]"], "use Conv1d"),
    ("input: [1, 8, 8]\nlayers:\n  - {type: MaxPool2d, kernel_size: 2, return_indices: true}\n  - ReLU",
     0, ["returns (values, indices)"], "return_indices: false"),
    ("input: [4, 8, 8]\nlayers:\n  - {type: BatchNorm2d, num_features: 3}",
     0, ["num_features = 4"], "set num_features: 4"),
    ("input: [4, 8, 8]\nlayers:\n  - {type: Softmax, dim: 4}",
     0, ["dim out of range"], "dim: 1"),
    ("input: [4, 8, 8]\nlayers:\n  - {type: Flatten, start_dim: 3, end_dim: 1}",
     0, ["start_dim cannot come after end_dim"], "start_dim: 1"),
    ("input: [1, 2, 2, 2]\nlayers:\n  - {type: AvgPool3d, kernel_size: 3, padding: 1}",
     0, ["input smaller than the kernel"], "kernel_size to ≤ 2"),
    ("input: [1, 5]\nlayers:\n  - {type: ConvTranspose1d, out_channels: 1, kernel_size: 1, padding: 3}",
     0, ["output size too small"], "reduce padding"),
]


@pytest.mark.parametrize("text,index,fragments,hint", SHAPE_ERRORS)
def test_shape_errors(text, index, fragments, hint):
    report = check(text)
    assert not report.ok
    err = report.errors[0]
    assert err.index == index and err.line == 3 + index and err.column == 5
    for fragment in fragments:
        assert fragment in err.message
    assert hint in err.hint


@pytest.mark.parametrize("text,index,fragments,hint", SHAPE_ERRORS)
def test_torch_rejects_the_same_layer(text, index, fragments, hint):
    from cnnshape.yaml_io import parse

    data, _ = parse(text)
    assert run(data).fail_index == index


SCHEMA_ERRORS = [
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2D, out_channels: 4, kernel_size: 3}",
     "unknown layer type 'Conv2D' (did you mean 'Conv2d'?)", 3, "type"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel: 3}",
     "unknown argument 'kernel' for Conv2d (did you mean 'kernel_size'?)", 3, "kernel"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4}",
     "missing the required argument 'kernel_size'", 3, None),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: [3, 3, 3]}",
     "list of 2 ints (H, W)", 3, "kernel_size"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 0, kernel_size: 3}",
     "expected out_channels ≥ 1, received 0", 3, "out_channels"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Dropout, p: 1.5}", "expected p ≤ 1.0, received 1.5", 3, "p"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: AvgPool2d, kernel_size: 2, divisor_override: 0}",
     "divisor must be not zero", 3, "divisor_override"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3, padding: sam}",
     "(did you mean 'same'?)", 3, "padding"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: '3'}",
     "expected an int or a list of ints, received a string '3'", 3, "kernel_size"),
    ("input: [1, 28, 28]\nlayers:\n  - ReLU\n  - {type: ReLU, name: '0'}", "duplicate layer name '0'", 4, "name"),
    ("input: [1, 28, 28]\nlayers:\n  - {type: ReLU, name: forward}", "clashes with the nn.Sequential attribute",
     3, "name"),
    ("input: [1, 28, 28]\nlayers:\n  - {Conv2d: {out_channels: 4}}", "the layer has no type (write {type: Conv2d",
     3, None),
    ("input: [1, 28, 28]\nlayer:\n  - ReLU", "unknown top-level key 'layer' (did you mean 'layers'?)", 2, "layer"),
    ("input: [1, 28, -28]\nlayers: [ReLU]", "input must be a list of 1 to 4 positive ints", 1, "input"),
    ("input: [1, 28, 28]\ndtype: float8\nlayers: [ReLU]", "unknown dtype 'float8'", 2, "dtype"),
    ("input: [1, 28, 28]\nlayers: []", "layers must be a non-empty list", 2, "layers"),
    ("layers: [ReLU]", "the spec has no input shape", 1, None),
    ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 2, kernel_size: 3, weight: [[1, 2], [3]]}",
     "not rectangular", 3, "weight"),
]


@pytest.mark.parametrize("text,fragment,line,key", SCHEMA_ERRORS)
def test_schema_errors(text, fragment, line, key):
    with pytest.raises(SpecError) as info:
        load(text)
    d = info.value.diagnostics[0]
    assert fragment in d.message, d.message
    assert d.key == key
    source_line = text.splitlines()[line - 1]
    if key:  # the key's own position
        assert (d.key_line, d.key_column) == (line, source_line.index(key + ":") + 1)
    else:  # the layer (or the document) position
        assert d.line == line and d.column in (1, 5)


def test_weight_shape_is_checked():
    text = ("input: [2, 8, 8]\nlayers:\n  - {type: Conv2d, out_channels: 1, kernel_size: 3, "
            "weight: [[[0, 1, 0], [1, 1, 1], [0, 1, 0]]]}")
    err = check(text).errors[0]
    assert "expected [1, 2, 3, 3]" in err.message and "received [1, 3, 3]" in err.message


YAML_ERRORS = [
    ("input: [1, 28\nlayers: [ReLU]", "invalid YAML"),
    ("input: [1]\ninput: [2]\nlayers: [ReLU]", "duplicate key 'input'"),
    ("a: !!python/object/apply:os.system ['echo hi']", "unsupported YAML tag"),
    ("input: !!binary aGVsbG8=\nlayers: [ReLU]", "unsupported YAML value"),
    ("input: 2020-01-01\nlayers: [ReLU]", "unsupported YAML value"),
    ("input: [1]\nlayers:\n\t- ReLU", "invalid YAML"),
    ("- 1\n- 2", "a spec is a mapping"),
    ("", "the spec is empty"),
]


@pytest.mark.parametrize("text,fragment", YAML_ERRORS)
def test_yaml_errors(text, fragment):
    with pytest.raises(SpecError) as info:
        load(text)
    d = info.value.diagnostics[0]
    assert fragment in d.message and d.line is not None


def test_billion_laughs_fails_fast():
    import time

    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    t = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load("\n".join(lines) + "\ninput: [1]\nlayers: [ReLU]\n")
    assert time.perf_counter() - t < 5
    assert "billion laughs" in info.value.diagnostics[0].message


def test_file_errors(tmp_path):
    with pytest.raises(SpecFileError, match="no such file"):
        load(tmp_path / "nope.yaml")
    with pytest.raises(SpecFileError, match="directory"):
        load(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (9 * 1024 * 1024))
    with pytest.raises(SpecFileError, match="limit"):
        load(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="not UTF-8"):
        load(binary)


def test_reserved_names_equal_torch():
    from torch import nn

    from cnnshape.spec import RESERVED_NAMES

    public = {n for n in dir(nn.Sequential()) if not n.startswith("_")}
    assert RESERVED_NAMES == public


def test_warnings():
    text = ("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 4, padding: same}\n"
            "  - {type: MaxPool2d, kernel_size: 3}\n  - {type: Linear, out_features: 5}\n")
    report = check(text)
    assert report.ok
    messages = " | ".join(w.message for w in report.warnings)
    assert "pads asymmetrically" in messages
    assert "ignores the last" not in messages  # 1 of 28 rows: floor pooling by design, no warning
    assert "Linear is applied to the last axis" in messages
    lossy = check("input: [1, 5, 5]\nlayers:\n  - {type: MaxPool2d, kernel_size: 3}\n")
    assert "ignores the last 2 of 5 input positions along H, 2 of 5 input positions along W" in \
        lossy.warnings[0].message
    bn = check("input: [4]\nlayers: [BatchNorm1d]")
    assert "more than 1 value per channel" in bn.warnings[0].message


text_chars = st.characters(blacklist_categories=("Cs",))


@given(st.text(text_chars, max_size=200))
def test_loader_never_tracebacks_on_garbage(text):
    try:
        load(text if "\n" in text or ":" in text else text + "\n")
    except (SpecError, SpecFileError) as exc:
        assert str(exc)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 40) | st.floats(allow_nan=False)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(st.dictionaries(st.sampled_from(["input", "layers", "batch", "dtype", "name", "inputs"]), json_values))
def test_loader_never_tracebacks_on_random_documents(doc):
    try:
        check(doc)
    except SpecError as exc:
        assert exc.diagnostics


@given(cs.spec_dicts().flatmap(lambda d: st.tuples(st.just(d), st.integers(0, len(d["layers"]) - 1),
                                                   st.sampled_from(["kernal", "typo", "out_chanels"]))))
def test_random_unknown_keys_are_located(args):
    spec, i, key = args
    layer = spec["layers"][i]
    layer[key] = 1
    try:
        diagnostics = check(spec).errors
    except SpecError as exc:
        diagnostics = exc.diagnostics
    assert any(d.index == i and d.key == key and "unknown argument" in d.message for d in diagnostics)


@given(cs.invalid_specs())
def test_invalid_strategy_errors(args):
    spec, index, fragment = args
    report = check(spec)
    assert report.errors[0].index == index and fragment in report.errors[0].message
    assert run(spec).fail_index == index
