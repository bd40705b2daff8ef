"""Pure edit operations, history and round-trip saving (no Textual)."""

import os
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnshape import design as D
from cnnshape.analysis import check
from cnnshape.layers import LAYER_TYPES
from cnnshape.roundtrip import ChangedOnDisk, DesignFile

from .conftest import SPECS

FM = os.path.join(SPECS, "fashion_mnist.yaml")


@pytest.fixture
def fm(tmp_path):
    p = tmp_path / "fm.yaml"
    shutil.copy(FM, p)
    return p


def test_kernel_change_breaks_linear_and_fix_repairs_it(fm):
    f = DesignFile.open(fm)
    d = D.set_args(f.original, 0, {"kernel_size": 5})
    ev = D.evaluate(d)
    assert [r.status for r in ev.rows] == ["ok", "ok", "ok", "ok", "error", "ok", "ok"]  # analysed on, as check does
    assert ev.rows[3].report.output == (576,)
    err = ev.errors[0]
    assert err.index == 4 and "576" in err.message and err.fix == {"in_features": 576}
    fixed = D.apply_fix(d, err)
    assert D.evaluate(fixed).ok
    assert fixed.items[4].data == {"type": "Linear", "in_features": 576, "out_features": 64}


def test_rank_mismatch_fix_changes_type():
    d = D.Design.from_data({"input": [3, 8, 8], "layers": ["BatchNorm1d"]})
    err = D.evaluate(d).errors[0]
    assert err.fix == {"type": "BatchNorm2d"}
    assert D.evaluate(D.apply_fix(d, err)).ok


def test_edits_and_errors():
    d = D.Design.from_data({"input": [1, 28, 28], "layers": ["ReLU", {"type": "Linear", "out_features": 3, "name": "fc"}]})
    d2 = D.insert(d, 0, "Conv2d")
    assert d2.items[0].data == {"type": "Conv2d", "out_channels": 16, "kernel_size": 3}
    assert D.evaluate(d2).ok
    d3 = D.duplicate(d2, 2)
    assert d3.names()[2:] == ["fc", "fc_2"]
    assert D.move(d3, 0, 1).items[1].type == "Conv2d"
    with pytest.raises(D.EditError, match="already first"):
        D.move(d3, 0, -1)
    with pytest.raises(D.EditError, match="did you mean 'Conv2d'"):
        D.insert(d, 0, "conv2d")
    with pytest.raises(D.EditError, match="no layer 9"):
        D.delete(d, 9)
    assert D.rename(d3, 0, "conv1").names()[0] == "conv1"
    assert D.rename(D.rename(d3, 0, "conv1"), 0, None).items[0].data == d3.items[0].data
    assert D.set_args(d3, 0, {"kernel_size": D.UNSET}).items[0].values == {"out_channels": 16}
    top = D.set_top(d, "batch", 8)
    assert top.get("batch") == 8 and [k for k, _ in top.top] == ["input", "batch"]


def test_invalid_values_are_kept_and_shown():
    d = D.Design.from_data({"input": [1, 28, 28], "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, "ReLU"]})
    bad = D.set_args(d, 0, {"kernel_size": "five"})
    ev = D.evaluate(bad)
    assert [r.status for r in ev.rows] == ["error", "unreached"]
    assert "kernel_size" in ev.errors[0].message
    assert bad.items[0].values["kernel_size"] == "five"  # not lost, not refused
    worse = D.set_top(bad, "input", [0])
    ev = D.evaluate(worse)
    assert ev.report is None and any(e.index is None for e in ev.errors)


def test_history_undo_redo():
    d = D.Design.from_data({"input": [4], "layers": [{"type": "Linear", "out_features": 2}]})
    h = D.History(d)
    h.apply("a", D.insert, 0, "ReLU")
    h.apply("b", D.set_args, 1, {"out_features": 3})
    assert h.undo() == "b" and h.current.items[1].values["out_features"] == 2
    assert h.undo() == "a" and h.current == d
    with pytest.raises(D.EditError):
        h.undo()
    assert h.redo() == "a"
    h.apply("c", D.delete, 0)  # a new edit clears the redo stack
    assert not h.can_redo


def test_parse_and_format_values():
    assert D.parse_value("3") == 3 and D.parse_value("[3, 5]") == [3, 5]
    assert D.parse_value("same") == "same" and D.parse_value("true") is True
    assert D.parse_value("") is D.UNSET and D.parse_value("0.5") == 0.5
    assert D.parse_value("[3, ") == "[3,"  # unparsable text is kept as text (then shown invalid)
    for v in (3, [3, 5], "same", True, None, 0.25, "yes"):
        assert D.parse_value(D.format_value(v)) == v


# ------------------------------------------------------------------ round trip
def test_untouched_save_is_byte_identical(tmp_path):
    for name in sorted(os.listdir(SPECS)):
        p = tmp_path / name
        shutil.copy(os.path.join(SPECS, name), p)
        f = DesignFile.open(p)
        assert f.render(f.original) == p.read_text(), name


def test_save_keeps_comments_and_style(fm):
    f = DesignFile.open(fm)
    d = D.set_args(f.original, 0, {"kernel_size": 5})
    d = D.apply_fix(d, D.evaluate(d).errors[0])
    d = D.move(d, 1, 1)               # ReLU after MaxPool
    d = D.insert(d, 7, "Softmax")
    f.save(d)
    text = fm.read_text()
    assert text.startswith("# The Fashion-MNIST CNN")
    assert "input: [1, 28, 28]   # one grayscale 28x28 image" in text
    assert "  - {type: Conv2d, in_channels: 1, out_channels: 4, kernel_size: 5}   # 28 x 28 --> 26 x 26 x 4" in text
    assert "  - {type: Linear, in_features: 576, out_features: 64}                 # 13*13*4 = 676" in text
    # the moved MaxPool kept its comment, the ReLU moved without stealing it
    lines = text.splitlines()
    i = lines.index("  - {type: MaxPool2d, kernel_size: 2}                                  # 13 x 13 x 4")
    assert lines[i + 1] == "  - ReLU"
    assert lines[-1] == "  - Softmax"
    again = check(str(fm))
    assert again.ok and [lr.type for lr in again.layers][-1] == "Softmax"
    assert DesignFile.open(fm).original.data() == d.data()


def test_block_style_layers_edit(tmp_path):
    p = tmp_path / "edges.yaml"
    shutil.copy(os.path.join(SPECS, "edge_filters.yaml"), p)
    f = DesignFile.open(p)
    d = D.set_args(f.original, 0, {"bias": True, "trainable": D.UNSET})
    f.save(d)
    text = p.read_text()
    assert "    bias: true\n" in text and "trainable" not in text
    assert "# horizontal edges" in text and "# general edges" in text
    assert DesignFile.open(p).original.data() == d.data()


def test_clobber_protection(fm, tmp_path):
    f = DesignFile.open(fm)
    d = D.set_top(f.original, "batch", 8)
    fm.write_text(fm.read_text() + "# edited elsewhere\n")
    with pytest.raises(ChangedOnDisk):
        f.save(d)
    assert fm.read_text().endswith("# edited elsewhere\n")  # untouched
    other = tmp_path / "other.yaml"
    f.save(d, path=other)
    assert "batch: 8" in other.read_text()
    with pytest.raises(ChangedOnDisk):  # save-as never replaces an existing file silently
        DesignFile.open(fm).save(d, path=other)
    f2 = DesignFile.open(fm)
    f2.save(D.set_top(f2.original, "batch", 4), force=True)
    assert "batch: 4" in fm.read_text() and "# edited elsewhere" in fm.read_text()


def test_open_errors_and_new(tmp_path):
    from cnnshape.errors import SpecFileError

    f = DesignFile.open(tmp_path / "new.yaml")
    assert f.is_new and D.evaluate(f.original).ok
    f.save(f.original)
    assert check(str(tmp_path / "new.yaml")).ok
    for text, match in (("{ not yaml: [", "invalid YAML"), ("- a\n- b\n", "not a cnnshape spec"),
                        ("", "empty"), ("layers: 3\ninput: [1]\n", "must be a list")):
        p = tmp_path / "bad.yaml"
        p.write_text(text)
        with pytest.raises(SpecFileError, match=match):
            DesignFile.open(p)
    with pytest.raises(SpecFileError, match="is a folder"):
        DesignFile.open(tmp_path)
    with pytest.raises(SpecFileError, match="does not exist"):
        DesignFile.open(tmp_path / "no" / "such.yaml")


# ------------------------------------------------------------- random edit walks
OPS = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 20), st.sampled_from(sorted(LAYER_TYPES))),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("duplicate"), st.integers(0, 20)),
    st.tuples(st.just("move"), st.integers(0, 20), st.sampled_from([-1, 1])),
    st.tuples(st.just("set"), st.integers(0, 20), st.sampled_from(
        ["kernel_size", "stride", "padding", "out_channels", "out_features", "in_features", "bogus"]),
        st.one_of(st.integers(-2, 9), st.just("same"), st.lists(st.integers(0, 5), max_size=3))),
    st.tuples(st.just("rename"), st.integers(0, 20), st.sampled_from(["a", "b", "to", "", "x.y"])),
)


@given(st.lists(OPS, max_size=12))
def test_random_edit_walks_never_crash_and_undo_restores(ops):
    f = DesignFile.open(FM)
    h = D.History(f.original)
    applied = 0
    for op in ops:
        kind, *args = op
        fn = {"insert": D.insert, "delete": D.delete, "duplicate": D.duplicate, "move": D.move,
              "set": lambda d, i, k, v: D.set_args(d, i, {k: v}), "rename": D.rename}[kind]
        try:
            before = h.current
            h.apply(kind, fn, *args)
            applied += h.current != before
        except D.EditError:
            pass
        ev = D.evaluate(h.current)  # never raises, one row per item
        assert len(ev.rows) == len(h.current.items)
        f.render(h.current)  # always renderable
    for _ in range(applied):
        h.undo()
    assert h.current == f.original


@pytest.mark.parametrize("text", [
    "input: [1, 8, 8]\nlayers:\n- type: Conv2d   # no offset\n  out_channels: 4\n  kernel_size: 3\n- ReLU\n",
    "input: [1, 8, 8]\nlayers:\n    - type: Residual\n      body:\n          - {type: Conv2d, out_channels: 1, kernel_size: 3, padding: 1}\n"
    "          - ReLU   # keep\n    - Flatten\n",
    "input: [1, 8, 8]\nlayers:\n  - type: Residual\n    body:\n      - {type: Conv2d, out_channels: 1, kernel_size: 3, padding: 1}\n"
    "      - ReLU   # keep\n  - Flatten\n",
])
def test_one_edit_changes_one_line_whatever_the_indentation(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    f = DesignFile.open(p)
    path = (0,) if f.original.items[0].type == "Conv2d" else (0, "body", 0)
    f.save(D.set_args(f.original, path, {"out_channels": 7 if path == (0,) else 1, "kernel_size": 5,
                                           "padding": 2} if path != (0,) else {"out_channels": 7}))
    before, after = text.splitlines(), p.read_text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(changed) == 1, changed


def test_nested_edits_keep_block_layout_and_comments(tmp_path):
    p = tmp_path / "r18.yaml"
    shutil.copy(os.path.join(SPECS, "resnet18.yaml"), p)
    f = DesignFile.open(p)
    d = D.set_args(f.original, (5, "first", "shortcut", 0), {"stride": 1})
    d = D.insert(d, (4, "body", 0, "body", 2), "Dropout2d")
    f.save(d)
    before, after = open(os.path.join(SPECS, "resnet18.yaml")).read().splitlines(), p.read_text().splitlines()
    assert len(after) == len(before) + 1
    assert [ln for ln in after if ln not in before] == [
        "          - Dropout2d",
        "        - {type: Conv2d, out_channels: 128, kernel_size: 1, stride: 1, bias: false}"]
    assert DesignFile.open(p).original.data() == d.data()


# --------------------------------------------------- studio logic (issue 15, no Textual)
RESNET18 = os.path.join(SPECS, "resnet18.yaml")


def _tree(d):
    from cnnshape.tui.view import tree_nodes

    ev = D.evaluate(d)
    return ev, tree_nodes(d, ev, set(), everything=True)


def _path_of(nodes):
    def path_of(dg):
        return next((n.path for n in nodes if n.path[0] == dg.index and n.label == dg.name), (dg.index,))
    return path_of


def test_first_copy_of_a_repeat_shows_and_edits_its_override():
    d = DesignFile.open(RESNET18).original
    _, nodes = _tree(d)
    conv = next(n for n in nodes if n.label == "layer2.0.conv1")
    assert conv.first == ((5,), "conv1")
    assert conv.report.layer.stride == 2 and conv.report.output[1:] == (28, 28)   # what was analysed...
    assert D.first_copy_override(D.get_data(d, (5,)), "conv1") == {"stride": 2}   # ...and shown
    # an overridden argument is edited in first:, the others in the body (every copy)
    d2 = D.edit_first_copy(d, conv.path, (5,), "conv1", {"stride": 1, "out_channels": 128, "kernel_size": 3})
    assert D.get_data(d2, (5,))["first"]["conv1"] == {"stride": 1}
    assert D.get_data(d2, conv.path) == D.get_data(d, conv.path)
    d3 = D.edit_first_copy(d, conv.path, (5,), "conv1", {"stride": D.UNSET})
    assert "conv1" not in D.get_data(d3, (5,))["first"] and D.evaluate(d3).errors   # shortcut no longer fits
    # copies 2..n are listed, collapsed, with their own reports
    copies = [n for n in nodes if n.copy]
    assert [n.label for n in copies] == ["layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert all(n.report is not None and n.report.path == n.label and not n.is_block for n in copies)
    layer2 = next(n for n in nodes if n.label == "layer2")
    assert layer2.inside == 2                                       # rows shown when opened: copy .0 and .1


def test_breaking_a_skip_connection_from_inside_is_shown_on_the_layer_and_f_repairs_it():
    from cnnshape.tui.view import details_markup, preview_markup

    d = DesignFile.open(RESNET18).original
    _, nodes = _tree(d)
    conv = next(n for n in nodes if n.label == "layer2.0.conv1")
    broken = D.edit_first_copy(d, conv.path, (5,), "conv1", {"kernel_size": 5})
    ev, nodes = _tree(broken)
    assert [e.name for e in ev.errors] == ["layer2.0"]
    own, around = D.diagnostics_of(ev, 5, conv.label, conv.depth)
    assert not own and around[0].name == "layer2.0"
    assert "Residual add needs equal shapes" in preview_markup(broken, conv.path, conv.label)
    me = next(n for n in nodes if n.path == conv.path and not n.copy)
    assert "Residual add needs equal shapes" in details_markup(broken, ev, me)
    fix = D.choose_fix(broken, ev, conv.path, conv.label, conv.depth, _path_of(nodes))
    assert fix is not None and fix.path == conv.path and fix.changes == {"padding": 2}
    assert D.evaluate(D.set_args(broken, fix.path, fix.changes)).ok


def test_f_applies_did_you_mean_fixes():
    d = D.Design.from_data({"input": [1, 28, 28], "layers": [
        {"type": "Conv2d", "out_channel": 4, "kernel_size": 3}, "Relu", "Flatten", {"type": "Linear", "out_features": 3}]})
    for _ in range(3):
        ev, nodes = _tree(d)
        if ev.ok:
            break
        bad = next(n for n in nodes if n.status == "error")
        fix = D.choose_fix(d, ev, bad.path, bad.label, bad.depth, _path_of(nodes))
        assert fix is not None, [e.message for e in ev.errors]
        d = D.set_args(d, fix.path, fix.changes)
    assert D.evaluate(d).ok
    assert d.items[0].values == {"kernel_size": 3, "out_channels": 4} and d.items[1].data == "ReLU"
    relu = D.set_args(d, 1, {"type": "Relu"})
    assert D.suggestion(relu, D.evaluate(relu).errors[0], (1,)) == ("type", "Relu", "ReLU")


def test_a_fix_is_read_from_the_data_never_from_the_message_text():
    from cnnshape.errors import Diagnostic

    d = D.Design.from_data({"input": [1, 28, 28], "layers": [
        {"type": "Conv2d", "out_channel": 4, "kernel_size": 3}, "ReLU"]})
    words = Diagnostic("unknown layer type 'Relu' (did you mean 'ReLU'?)", index=1, name="1")
    assert D.suggestion(d, words, (1,)) is None and D.fix_of(d, words, (1,)) is None   # ReLU is fine
    arg = Diagnostic("anything at all", index=0, name="0", key="out_channel")
    assert D.suggestion(d, arg, (0,)) == ("argument", "out_channel", "out_channels")
    assert D.fix_of(d, arg, (0,)) == {"out_channel": D.UNSET, "out_channels": 4}
    assert D.closest("batchnrm2d", D.LAYER_TYPES) == "BatchNorm2d" and D.closest("zzzzzz", D.LAYER_TYPES) is None


def test_keep_size_changes():
    assert D.keep_size_changes({"type": "Conv2d", "out_channels": 4, "kernel_size": 5}) == [{"padding": 2}]
    assert D.keep_size_changes({"type": "Conv2d", "out_channels": 4, "kernel_size": [3, 5], "dilation": 2}) \
        == [{"padding": [2, 4]}]
    assert D.keep_size_changes({"type": "Conv2d", "out_channels": 4, "kernel_size": 4}) == []   # even: no such padding
    assert D.keep_size_changes("ReLU") == []


def test_values_are_shown_as_yaml_flow():
    v = {"conv1": {"stride": 2}, "shortcut": [{"type": "Conv2d", "out_channels": 8}, "ReLU"]}
    text = D.format_value(v)
    assert text == "{conv1: {stride: 2}, shortcut: [{type: Conv2d, out_channels: 8}, ReLU]}"
    assert D.parse_value(text) == v


def test_table_columns_give_way_but_mark_shape_and_type_stay():
    from cnnshape.tui.view import COLUMNS, input_cells, node_cells, visible_columns

    d = DesignFile.open(RESNET18).original
    ev, nodes = _tree(d)
    rows = [input_cells(d, ev)] + [node_cells(n) for n in nodes]
    assert [k for k, _ in visible_columns(rows, 500)] == [k for k, _ in COLUMNS]
    for width in (20, 40, 60, 80, 100):
        keys = [k for k, _ in visible_columns(rows, width)]
        assert keys[:1] == ["mark"] and {"output", "name", "type"} <= set(keys)
        if "params" in keys or "macs" in keys:            # params and MACs give way first
            assert "index" in keys and "rf" in keys


def test_docstrings_render_without_rest_markup():
    from cnnshape.tui.view import doc_markup

    text = doc_markup(LAYER_TYPES["Conv2d"].__doc__)
    assert "``" not in text and "[b]" in text
    assert all(line == line.strip() for line in text.splitlines())


def test_readme_key_table_is_generated_from_the_bindings():
    from rich.console import Console

    from cnnshape.tui.keys import KEYS, bindings, help_table, readme_table

    with open(os.path.join(os.path.dirname(SPECS), "README.md")) as f:
        readme = f.read()
    assert readme_table() in readme, "README key table differs: paste cnnshape.tui.keys.readme_table()"
    actions = {b.action for b in bindings()} | {b.action.removeprefix("screen.") for b in bindings(True)}
    assert actions == {k.action for k in KEYS}
    import io

    console = Console(width=400, record=True, file=io.StringIO())
    console.print(help_table())
    shown = console.export_text()
    assert all(k.help in shown for k in KEYS)
