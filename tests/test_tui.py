"""The design studio driven with real key presses (Textual Pilot)."""

import asyncio
import io
import os
import re
import shutil

import pytest
from rich.console import Console

from cnnshape.analysis import check
from cnnshape.roundtrip import DesignFile
from cnnshape.tui import recovery
from cnnshape.tui.app import DesignApp
from cnnshape.tui.screens import (
    ChoiceScreen,
    ErrorScreen,
    FormScreen,
    PaletteScreen,
    PromptScreen,
    TextScreen,
)

from .conftest import SPECS

SIZE = (150, 45)


def copy_spec(tmp_path, name: str):
    p = tmp_path / name
    shutil.copy(os.path.join(SPECS, name), p)
    return p


@pytest.fixture
def fm(tmp_path):
    return copy_spec(tmp_path, "fashion_mnist.yaml")


def run(app, script):
    async def main():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await script(pilot)
    asyncio.run(main())


def screen_text(app) -> str:
    """Everything the details/problems/status panes show, as plain text."""
    parts = []
    for sel in ("#details", "#status", "#totals"):
        w = app.studio.query_one(sel)
        parts.append(str(w.render()))
    return "\n".join(parts)


async def set_field(pilot, key, text):
    w = pilot.app.screen.query_one(f"#f-{key}")
    w.focus()
    await pilot.pause()
    await pilot.press("ctrl+u", *list(text) if text else [])
    await pilot.pause()


def test_done_when_flow_kernel_fix_undo_redo_save(fm):
    app = DesignApp(fm)

    async def script(pilot):
        table = app.studio.query_one("#layers")
        assert app.studio.evaluation.ok
        await pilot.press("down")                       # layer 0: Conv2d
        assert app.studio.selected == 0
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, FormScreen)
        await set_field(pilot, "kernel_size", "5")
        preview = str(app.screen.query_one("#form-preview").render())
        assert "[4, 24, 24]" in preview and "576" in preview  # live preview before applying
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, FormScreen)
        ev = app.studio.evaluation
        assert [r.status for r in ev.rows] == ["ok", "ok", "ok", "ok", "error", "ok", "ok"]  # analysed on, as check does
        assert ev.rows[3].report.output == (576,)
        assert str(table.get_row_at(4)[3]) == "[576]"   # the Flatten row of the table
        assert "in_features = 576" in str(app.studio.query_one("#problems").get_option_at_index(0).prompt)
        await pilot.press("f")                          # apply the fix
        await pilot.pause()
        assert app.studio.evaluation.ok
        assert app.studio.design.items[4].values["in_features"] == 576
        await pilot.press("ctrl+z")
        assert not app.studio.evaluation.ok
        await pilot.press("ctrl+z")
        assert app.studio.design == app.studio.file.original
        await pilot.press("ctrl+y", "ctrl+y")
        assert app.studio.evaluation.ok and app.studio.dirty
        assert "●" in app.title
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not app.studio.dirty and "saved" in screen_text(app)

    run(app, script)
    text = fm.read_text()
    assert "kernel_size: 5}   # 28 x 28 --> 26 x 26 x 4" in text
    assert "in_features: 576, out_features: 64}                 # 13*13*4 = 676" in text
    assert text.startswith("# The Fashion-MNIST CNN")
    assert check(str(fm)).ok


def test_insert_delete_duplicate_move_rename_keys(fm):
    app = DesignApp(fm)

    async def script(pilot):
        n = len(app.studio.design.items)
        await pilot.press("down", "a")                  # add after layer 0
        await pilot.pause()
        assert isinstance(app.screen, PaletteScreen)
        await pilot.press(*"batchnorm2d", "enter")
        await pilot.pause()
        assert app.studio.design.items[1].type == "BatchNorm2d" and app.studio.selected == 1
        assert app.studio.evaluation.ok
        await pilot.press("y")                          # duplicate
        assert [it.type for it in app.studio.design.items[1:3]] == ["BatchNorm2d", "BatchNorm2d"]
        assert app.studio.selected == 2                        # the copy is selected
        await pilot.press("d")                          # delete the copy
        assert len(app.studio.design.items) == n + 1 and app.studio.selected == 2
        await pilot.press("up", "J")                          # move BatchNorm down (after ReLU)
        assert [it.type for it in app.studio.design.items[1:3]] == ["ReLU", "BatchNorm2d"] and app.studio.selected == 2
        await pilot.press("K")
        assert app.studio.design.items[1].type == "BatchNorm2d"
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"bn1", "enter")
        await pilot.pause()
        assert app.studio.design.names()[1] == "bn1"
        await pilot.press("i")                          # insert before, then cancel
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.studio.design.items) == n + 1
        # input row: change the input shape; everything re-analyses
        await pilot.press("up", "up", "up", "e")
        await pilot.pause()
        assert app.studio.selected is None and isinstance(app.screen, FormScreen)
        await set_field(pilot, "input", "[1, 32, 32]")
        await set_field(pilot, "batch", "8")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.studio.design.get("input") == [1, 32, 32] and app.studio.design.get("batch") == 8
        assert not app.studio.evaluation.ok                    # in_features: 676 no longer fits
        assert app.studio.evaluation.errors[0].fix == {"in_features": 900}
        for _ in range(8):
            await pilot.press("ctrl+z")
        assert app.studio.design == app.studio.file.original

    run(app, script)


def test_invalid_value_is_shown_not_lost(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "e")
        await pilot.pause()
        await set_field(pilot, "kernel_size", "[3, ")
        assert "kernel_size" in str(app.screen.query_one("#form-preview").render())
        await pilot.press("enter")
        await pilot.pause()
        assert app.studio.evaluation.rows[0].status == "error"
        assert app.studio.design.items[0].values["kernel_size"] == "[3,"
        assert "error" in str(app.studio.query_one("#status").render())
        await pilot.press("e")                          # the form reopens with the bad text
        await pilot.pause()
        await set_field(pilot, "kernel_size", "3")
        await pilot.press("enter")
        await pilot.pause()
        assert app.studio.evaluation.ok

    run(app, script)


def test_clobber_protection_offers_choices(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "d")
        fm.write_text(fm.read_text() + "# changed by someone else\n")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert fm.read_text().endswith("# changed by someone else\n")
        await pilot.press("r")                          # reload: their version
        await pilot.pause()
        assert not app.studio.dirty and len(app.studio.design.items) == 7

    run(app, script)
    assert fm.read_text().endswith("# changed by someone else\n")


def test_clobber_overwrite(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "d")
        fm.write_text("# changed\n" + fm.read_text())
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert not app.studio.dirty

    run(app, script)
    assert len(DesignFile.open(fm).original.items) == 6


def test_quit_prompts_when_unsaved(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "d", "q")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("c")                          # cancel: still here, still modified
        await pilot.pause()
        assert app.studio.dirty and app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("s")                          # save and quit
        await pilot.pause()

    run(app, script)
    assert len(DesignFile.open(fm).original.items) == 6


def test_error_spec_opens_on_the_right_layer(tmp_path):
    p = copy_spec(tmp_path, "broken_fashion_mnist.yaml")
    app = DesignApp(p)

    async def script(pilot):
        ev = app.studio.evaluation
        assert not ev.ok
        bad = ev.errors[0].index
        assert ev.rows[bad].status == "error"
        assert app.studio.selected == bad                      # opens on the broken layer
        await pilot.press("up", "up")
        app.studio.query_one("#problems").focus()
        await pilot.press("enter")                      # jump to the problem's layer
        await pilot.pause()
        assert app.studio.selected == bad
        assert "error" in str(app.studio.query_one("#details").render())

    run(app, script)


@pytest.mark.parametrize("text", ["{ not: yaml: [", "- just\n- a list\n", "\x00\x01binary"])
def test_non_spec_file_shows_error_screen(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    app = DesignApp(p)

    async def script(pilot):
        assert isinstance(app.screen, ErrorScreen)
        assert "bad.yaml" in str(app.screen.query_one("#error-message").render())
        await pilot.press("q")

    run(app, script)
    assert app.return_code == 2


def test_missing_path_starts_new_design(tmp_path):
    p = tmp_path / "new.yaml"
    app = DesignApp(p)

    async def script(pilot):
        assert isinstance(app.screen, ChoiceScreen) and "does not exist" in str(app.screen.message)
        await pilot.press("n")
        await pilot.pause()
        assert app.studio.evaluation.ok and "new design" in screen_text(app)
        await pilot.press("ctrl+s")
        await pilot.pause()

    run(app, script)
    assert check(str(p)).ok


def test_yaml_view_help_and_palette_commands(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        assert "# one grayscale 28x28 image" in app.screen.query_one("#text-view").text
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        await pilot.press("escape")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.studio)]
        assert {"Edit layer", "Add layer", "Undo", "Save", "Apply fix"} <= set(titles)

    run(app, script)


def test_studio_does_not_import_torch(fm):
    import subprocess
    import sys

    code = ("import asyncio, sys\nfrom cnnshape.tui.app import DesignApp\n"
            "async def main():\n    app = DesignApp(sys.argv[1])\n"
            "    async with app.run_test() as pilot:\n        await pilot.press('down', 'e')\n"
            "        await pilot.pause()\n"
            "asyncio.run(main())\nassert 'torch' not in sys.modules, 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code, str(fm)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ------------------------------------------------------------------- training
async def _wait(pilot, cond, timeout=60.0):
    import time

    t = time.monotonic()
    while not cond():
        if time.monotonic() - t > timeout:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.05)


async def open_train(pilot, **fields):
    """Press t, check the train panel opened, fill its fields (``epochs="4"`` -> #t-epochs)."""
    from cnnshape.tui.train_screen import TrainScreen

    await pilot.press("t")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    for key, value in fields.items():
        screen.query_one(f"#t-{key}").value = value
    return screen


async def train_to_end(pilot, screen, timeout=60.0):
    await pilot.press("ctrl+r")
    # started (a small net on digits may already have finished: 104 steps take ~1.5 s)
    assert screen.running or screen.result is not None, str(screen.query_one("#t-log").render())
    await _wait(pilot, lambda: not screen.running, timeout=timeout)
    assert screen.result is not None, str(screen.query_one("#t-log").render())
    return screen.result


def test_train_panel_trains_plots_and_shows_maps(fm):
    from cnnshape.tui.maps_screen import MapsScreen

    app = DesignApp(fm)

    async def script(pilot):
        screen = await open_train(pilot, epochs="4")
        await _wait(pilot, lambda: "cpu" in str(screen.query_one("#t-devices").render()))
        assert "cuda" in str(screen.query_one("#t-devices").render())  # listed, available or not
        r = await train_to_end(pilot, screen)
        assert r.stopped is None and r.final.val_accuracy > 0.5      # digits: chance 0.1
        assert len(screen.losses) >= 5 and screen.val                 # the live plots got points
        assert screen.losses[-1] < screen.losses[0]
        assert "ms/step" in str(screen.query_one("#t-stats").render())
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MapsScreen)
        await app.workers.wait_for_complete()
        await _wait(pilot, lambda: app.screen.drawn is not None)
        assert app.screen.drawn == ("0", "after", (4, 26, 26))
        assert "after training" in str(app.screen.query_one("#m-info").render())
        await pilot.press("b")
        assert "initial weights" in str(app.screen.query_one("#m-info").render())
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is app.studio

    run(app, script)


def test_train_panel_stop_and_lock(fm):
    from cnnshape.tui.train_screen import TrainScreen

    app = DesignApp(fm)

    async def script(pilot):
        n = len(app.studio.design.items)
        screen = await open_train(pilot, epochs="500")
        await pilot.press("ctrl+r")
        await _wait(pilot, lambda: len(screen.losses) >= 2)
        await pilot.press("escape", "d")        # cannot leave, cannot edit the design underneath
        await pilot.pause()
        assert app.screen is screen and len(app.studio.design.items) == n and screen.running
        await pilot.press("ctrl+x")
        await app.workers.wait_for_complete()
        await _wait(pilot, lambda: screen.result is not None)
        assert screen.result.stopped == "cancelled" and screen.result.steps < 500 * 26
        assert not screen.running
        bar = screen.query_one("#t-progress")
        assert bar.progress == screen.result.steps                  # the bar shows where it stopped
        assert f"stopped (cancelled) at step {screen.result.steps}/" in str(screen.query_one("#t-stats").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TrainScreen)

    run(app, script)


def test_train_refused_for_a_broken_design(tmp_path):
    p = copy_spec(tmp_path, "broken_fashion_mnist.yaml")
    app = DesignApp(p)

    async def script(pilot):
        await pilot.press("t")
        await pilot.pause()
        assert app.screen is app.studio
        assert "fix the errors first" in screen_text(app)

    run(app, script)


# --------------------------------------------------------------------- blocks
def test_blocks_tree_expand_edit_nested_and_repeat_count(tmp_path):
    p = copy_spec(tmp_path, "resnet_small_32.yaml")
    app = DesignApp(p)

    async def script(pilot):
        labels = [n.label for n in app.studio.nodes]
        assert "layer2" in labels and "layer2.conv1" not in labels      # collapsed by default
        row = labels.index("layer2") + 1
        app.studio.query_one("#layers").move_cursor(row=row)
        await pilot.press("right")                                       # open the block
        labels = [n.label for n in app.studio.nodes]
        assert "layer2.conv1" in labels and "layer2.shortcut.0" in labels
        await pilot.press("down")                                        # layer2.conv1
        assert app.studio.selected_node.label == "layer2.conv1"
        assert app.studio.selected_path == (4, "body", 0)
        await pilot.press("e")
        await pilot.pause()
        await set_field(pilot, "stride", "1")                            # breaks the skip connection
        await pilot.press("enter")
        await pilot.pause()
        err = app.studio.evaluation.errors[0]
        assert err.name == "layer2" and "Residual add needs equal shapes" in err.message
        node = next(n for n in app.studio.nodes if n.label == "layer2")
        assert node.status == "error"
        await pilot.press("ctrl+z")
        assert app.studio.evaluation.ok
        # insert a nested layer after conv1, then delete it again
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"dropout2d", "enter")
        await pilot.pause()
        assert app.studio.selected_path == (4, "body", 1) and app.studio.selected_node.type == "Dropout2d"
        assert app.studio.evaluation.ok
        await pilot.press("d")
        assert app.studio.design == app.studio.file.original
        # collapse back with left from a child
        await pilot.press("left")
        assert app.studio.selected_node.label == "layer2" and not app.studio.selected_node.expanded
        # add a Repeat block at the end of the top level and edit its count
        app.studio.query_one("#layers").move_cursor(row=len(app.studio.nodes))
        await pilot.press("i")
        await pilot.pause()
        await pilot.press(*"repeat", "enter")
        await pilot.pause()
        assert app.studio.selected_node.type == "Repeat" and app.studio.evaluation.ok
        await pilot.press("e")
        await pilot.pause()
        await set_field(pilot, "n", "3")
        await pilot.press("enter")
        await pilot.pause()
        assert app.studio.selected_node.note == "×3"
        assert len(app.studio.selected_node.report.children) == 3
        await pilot.press("ctrl+s")
        await pilot.pause()

    run(app, script)
    text = p.read_text()
    assert "type: Repeat" in text and "n: 3" in text
    assert "# stage 2: 32 channels, 16x16: stride 2 and a projection" in text   # comments kept
    assert check(str(p)).ok


def test_tree_labels_are_the_module_paths_of_the_rows():
    import glob

    from cnnshape import design as D
    from cnnshape.tui.view import tree_nodes

    for path in glob.glob(os.path.join(SPECS, "*.yaml")):
        f = DesignFile.open(path)
        ev = D.evaluate(f.original)
        for n in tree_nodes(f.original, ev, set(), everything=True):
            if n.report is not None:
                assert n.label == n.report.path, (path, n.path)
                assert D.get_data(f.original, n.path)  # every row points at real data


def test_small_resnet_trains_from_the_studio(tmp_path):
    p = copy_spec(tmp_path, "resnet_small_32.yaml")
    p.write_text(p.read_text().replace("out_features: 10, name: fc", "out_features: 8, name: fc"))  # 8 shapes
    app = DesignApp(p)

    async def script(pilot):
        screen = await open_train(pilot, data="shapes", epochs="2", lr="0.05")
        r = await train_to_end(pilot, screen, timeout=120)
        assert r.stopped is None and r.final.val_accuracy > 0.3   # 8 shapes: chance 0.125
        assert screen.losses[-1] < screen.losses[0]

    run(app, script)


@pytest.mark.parametrize("seed", range(4))
def test_random_key_sequences_never_crash_the_studio(tmp_path, monkeypatch, seed):
    """A crude monkey: 40 random studio keys (editing, tree, dialogs, undo, save) per run."""
    import random

    monkeypatch.chdir(tmp_path)  # "save as" with typed names writes relative to the cwd

    keys = ["down", "up", "right", "left", "space", "e", "enter", "escape", "a", "i", "d", "y", "K", "J",
            "r", "f", "ctrl+z", "ctrl+y", "v", "question_mark", "tab", "3", "5", "ctrl+s", "S", "backspace"]
    spec = ["fashion_mnist.yaml", "resnet_small_32.yaml", "broken_fashion_mnist.yaml", "resnet18.yaml"][seed]
    app = DesignApp(copy_spec(tmp_path, spec))
    rnd = random.Random(seed)

    async def script(pilot):
        for _ in range(40):
            await pilot.press(rnd.choice(keys))
        await pilot.pause()
        assert app.is_running

    run(app, script)


def burst(app, *keys):
    """Post keys the way a paste or tmux send-keys delivers them: all at once, no pauses."""
    from textual import events
    from textual.keys import _character_to_key

    for k in keys:
        if k.startswith("paste:"):
            app.post_message(events.Paste(k[6:]))
            continue
        char = k if len(k) == 1 else {"space": " "}.get(k)
        app.post_message(events.Key(_character_to_key(k) if len(k) == 1 else k, char))


def test_keys_in_a_burst_land_where_the_cursor_is(fm):
    """Issue 15.1: `End BSpace 7` in one burst emptied kernel_size and typed 7 elsewhere."""
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "e")
        await pilot.pause()
        form = app.screen
        assert form.focused.id == "f-in_channels"
        burst(app, "tab", "tab", "end", "backspace", "paste:5", "tab", "9", "backspace", "2", "shift+tab",
              "home", "delete", "7")
        await pilot.pause()
        await pilot.pause()
        v = {k: form.query_one(f"#f-{k}").value for k in ("in_channels", "out_channels", "kernel_size", "stride")}
        assert v == {"in_channels": "1", "out_channels": "4", "kernel_size": "7", "stride": "2"}, v
        burst(app, "enter")
        await pilot.pause()
        assert app.studio.design.items[0].values["kernel_size"] == 7 and app.studio.design.items[0].values["stride"] == 2

    run(app, script)


@pytest.mark.parametrize("where", ["train", "probe"])
def test_an_unexpected_error_in_a_worker_keeps_the_studio_open(fm, monkeypatch, where):
    """Issue 15.2: a torch RuntimeError (CUDA out of memory...) goes to the panel; edits stay."""
    import cnnshape.torch_backend.train as T
    import cnnshape.tui.train_screen as TS

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(T if where == "train" else TS, "train" if where == "train" else "probe_devices", boom)
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "down", "y")                       # an unsaved edit (a second ReLU)
        n = len(app.studio.design.items)
        screen = await open_train(pilot, steps="3")
        if where == "train":
            await pilot.press("ctrl+r")
            await _wait(pilot, lambda: not screen.running)
            assert "RuntimeError: CUDA out of memory" in str(screen.query_one("#t-log").render())
        else:
            await _wait(pilot, lambda: "cannot check devices" in str(screen.query_one("#t-devices").render()))
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and len(app.studio.design.items) == n and app.studio.dirty

    run(app, script)


def test_f_applies_did_you_mean_and_the_picker_opens_with_the_suggestion(tmp_path):
    p = tmp_path / "typos.yaml"
    p.write_text("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channel: 4, kernel_size: 3}\n"
                 "  - Relu\n  - Flatten\n  - {type: Linear, out_features: 3}\n")
    app = DesignApp(p)

    async def script(pilot):
        s = app.studio
        assert s.selected == 0
        await pilot.press("f")                                       # out_channel -> out_channels
        assert s.design.items[0].values == {"out_channels": 4, "kernel_size": 3}
        await pilot.press("down", "e")                               # Relu: the picker, filtered
        await pilot.pause()
        assert isinstance(app.screen, PaletteScreen)
        assert app.screen.query_one("#palette-filter").value == "ReLU"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("f")                                       # Relu -> ReLU
        assert s.evaluation.ok and s.design.items[1].data == "ReLU"

    run(app, script)


def test_a_mistyped_file_name_asks_before_starting_a_new_design(tmp_path):
    copy_spec(tmp_path, "fashion_mnist.yaml")
    app = DesignApp(tmp_path / "fashion_minst.yaml")

    async def script(pilot):
        assert isinstance(app.screen, ChoiceScreen) and "New file?" in app.screen.title_text
        await pilot.press("1")                                       # open the similar spec instead
        await pilot.pause()
        assert app.studio.path.name == "fashion_mnist.yaml" and app.studio.evaluation.ok

    run(app, script)
    assert not (tmp_path / "fashion_minst.yaml").exists()


def test_resnet18_first_copy_stride_and_skip_connection_repair_by_keys(tmp_path):
    """Issue 15.3 driven by keys: the first copy's real stride in the form, a kernel change
    that breaks the Residual add shown on the layer, and f repairing it."""
    p = copy_spec(tmp_path, "resnet18.yaml")
    app = DesignApp(p)

    async def script(pilot):
        s = app.studio
        await pilot.press(*["down"] * 6, "right", "down", "right", "down")
        assert s.selected_node.label == "layer2.0.conv1"
        assert [n.label for n in s.nodes if n.copy] == ["layer2.1"]          # copy 2 listed, collapsed
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert form.query_one("#f-stride").value == "2"                     # not "1 (default)"
        form.query_one("#f-kernel_size").focus()
        await pilot.pause()
        burst(app, "end", "backspace", "5")
        await pilot.pause()
        assert "Residual add needs equal shapes" in str(form.query_one("#form-preview").render())
        burst(app, "enter")
        await pilot.pause()
        assert app.screen is s and not s.evaluation.ok and s.selected_node.label == "layer2.0.conv1"
        details = str(s.query_one("#details").render())
        assert "Residual add needs equal shapes" in details and "press f" in details
        await pilot.press("f")
        assert s.evaluation.ok
        data = s.design.items[5].data
        assert data["body"][0]["body"][0]["padding"] == 2 and data["first"]["conv1"] == {"stride": 2}

    run(app, script)


def test_train_panel_warns_before_a_run_whose_batch_will_not_fit(fm):
    """Issue 12 in the studio: the memory estimate against the chosen device's free memory."""
    app = DesignApp(fm)

    async def script(pilot):
        screen = await open_train(pilot)
        await _wait(pilot, lambda: "cpu" in str(screen.query_one("#t-devices").render()))
        screen.free = {"auto": 1_000_000, "cpu": 1_000_000}               # a 1 MB device
        screen.query_one("#t-batch").value = "512"
        await pilot.pause()
        warning = str(screen.query_one("#t-memory").render())
        assert "batch 512 needs about" in warning and "the largest batch that fits is" in warning
        await pilot.press("ctrl+r")
        assert not screen.running and "press ctrl+r again" in str(screen.query_one("#t-log").render())
        screen.query_one("#t-batch").value = "1"
        await pilot.pause()
        assert str(screen.query_one("#t-memory").render()) == ""

    run(app, script)


# ------------------------------------------------------------ issue 21: never lose work
@pytest.mark.parametrize("key", ["q", "ctrl+q", "ctrl+c"])
def test_every_way_out_asks_when_there_are_unsaved_edits(fm, key):
    app = DesignApp(fm)
    before = fm.read_text()

    async def script(pilot):
        await pilot.press("down", "d", key)
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen) and app.is_running
        await pilot.press(key)                          # again: the question stays, one of it
        await pilot.pause()
        assert len([s for s in app.screen_stack if isinstance(s, ChoiceScreen)]) == 1
        await pilot.press("c")                          # cancel
        await pilot.pause()
        assert app.studio.dirty and app.is_running and app.screen is app.studio
        await pilot.press(key)
        await pilot.pause()
        await pilot.press("d")                          # discard
        await pilot.pause()

    run(app, script)
    assert fm.read_text() == before
    assert not any(p.exists() for p in recovery.candidates(fm))  # discarded on purpose: nothing kept


def test_ctrl_q_quits_at_once_without_edits(fm):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("down", "ctrl+q")
        await pilot.pause()

    run(app, script)
    assert app.return_code in (0, None) and not app.is_running


def test_a_killed_session_is_recovered_on_the_next_open(fm, tmp_path):
    app = DesignApp(fm)

    async def edit(pilot):
        await pilot.press("down", "d")                  # 7 -> 6 layers, then the terminal dies
        await pilot.pause()
        assert any(p.exists() for p in recovery.candidates(fm))

    run(app, edit)                                      # leaves without quitting (as a kill would)
    assert len(DesignFile.open(fm).original.items) == 7

    app2 = DesignApp(fm)

    async def recover(pilot):
        assert isinstance(app2.screen, ChoiceScreen) and "Unsaved edits" in app2.screen.title_text
        await pilot.press("r")
        await pilot.pause()
        studio = app2.studio
        assert studio.dirty and len(studio.design.items) == 6
        await pilot.press("ctrl+z")                     # the recovery is one undoable edit
        await pilot.pause()
        assert not studio.dirty
        await pilot.press("ctrl+y", "ctrl+s")
        await pilot.pause()

    run(app2, recover)
    assert len(DesignFile.open(fm).original.items) == 6
    assert "# " in fm.read_text()                       # the comments of the file are kept
    assert not any(p.exists() for p in recovery.candidates(fm))

    app3 = DesignApp(fm)                                # saved: nothing offered any more

    async def plain(pilot):
        assert app3.screen is app3.studio

    run(app3, plain)


def test_recovery_can_be_discarded_and_goes_to_the_cache_when_beside_cannot_be_written(fm, tmp_path, monkeypatch):
    from cnnshape.design import Design

    design = DesignFile.open(fm).original
    smaller = Design(design.top, design.items[:-1])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recovery.candidates(fm)[0].mkdir()                 # not a file: refused there (tests run as root)
    where = recovery.write(fm, smaller, fm.read_text())
    assert where == recovery.candidates(fm)[1] and where.is_relative_to(tmp_path / "cache")
    found = recovery.read(fm, fm.read_text())
    assert found is not None and found.design == smaller
    app = DesignApp(fm)

    async def discard(pilot):
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("d")
        await pilot.pause()
        assert app.screen is app.studio and not app.studio.dirty

    run(app, discard)
    assert recovery.read(fm, fm.read_text()) is None


def test_a_design_from_python_is_read_only_until_saved_as_yaml(tmp_path):
    from cnnshape.design import Design

    design = Design.from_data({"input": [1, 8, 8], "layers": ["Flatten", {"type": "Linear", "out_features": 3}]})
    target = tmp_path / "net.yaml"
    app = DesignApp(target, design=design, origin="net.py:Net")

    async def script(pilot):
        studio = app.studio
        assert "this design comes from net.py:Net; save as YAML to edit" in str(studio.status.render())
        await pilot.press("down", "d")
        await pilot.pause()
        assert len(studio.design.items) == 2 and "save as YAML" in str(studio.status.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert target.exists() and studio.read_only is None
        await pilot.press("d")
        await pilot.pause()
        assert len(studio.design.items) == 1

    run(app, script)


def test_train_keys_win_over_a_focused_field_and_are_in_the_palette(fm):
    """ctrl+x stops the run (and does not cut the field's text), ctrl+k saves a
    checkpoint, while a text field has the focus; "checkpoint" is in the palette."""
    app = DesignApp(fm)

    async def script(pilot):
        screen = await open_train(pilot, epochs="500", batch="8")    # ~180 steps an epoch: stopped inside one
        field = screen.query_one("#t-epochs")
        field.focus()
        await pilot.pause()
        field.select_all()
        await pilot.press("ctrl+r")
        await _wait(pilot, lambda: len(screen.losses) >= 2)
        assert app.focused is field
        await pilot.press("ctrl+x")
        await _wait(pilot, lambda: screen.result is not None)
        assert screen.result.stopped == "cancelled" and field.value == "500"
        log = str(screen.query_one("#t-log").render())
        stopped_in = re.search(r"epoch (\d+)/500 \(run stopped at step", log)  # a loaded machine may finish epoch 1
        assert stopped_in and f"epoch {stopped_in.group(1)}/500: train" not in log
        stats = str(screen.query_one("#t-stats").render())
        mean = screen.result.seconds / screen.result.steps * 1e3
        assert f"{mean:.1f} ms/step (mean)" in stats
        assert app.focused is field
        await pilot.press("ctrl+k")                     # save checkpoint, from the field too
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen) and "checkpoint" in app.screen.title_text
        await pilot.press("escape")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(screen)]
        assert "Save checkpoint" in titles and "Stop" in titles

    run(app, script)


def run_at(app, size, script):
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot)
    asyncio.run(main())


@pytest.mark.parametrize("size", [(120, 40), (160, 45), (80, 24)])
def test_help_scrolls_to_its_last_line_at_every_size(fm, size):
    app = DesignApp(fm)

    async def script(pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        view = app.screen.query_one("#text-scroll")
        body = app.screen.query_one("#text-body")
        console = Console(width=body.size.width, record=True, file=io.StringIO())
        console.print(app.screen.text)
        text = console.export_text()
        assert "ctrl+p" in text and "tab" in text and "Status marks" in text
        assert body.size.height >= len(text.rstrip("\n").splitlines())
        assert body.size.height == body.virtual_size.height  # the text is never cut to the window
        assert view.max_scroll_y == body.size.height - view.scrollable_content_region.height > 0
        await pilot.press("j")
        await pilot.pause()
        assert view.scroll_y == 1
        await pilot.press("end")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y       # the last line (the status marks) is shown
        await pilot.press("home")
        await pilot.pause()
        assert view.scroll_y == 0

    run_at(app, size, script)


def test_at_80x24_the_layer_table_keeps_the_type_and_the_maps_list_names_types(tmp_path):
    from cnnshape.tui.maps_screen import MapsScreen

    app = DesignApp(copy_spec(tmp_path, "fashion_mnist.yaml"))

    async def script(pilot):
        table = app.studio.table
        keys = [k for k, _ in table.shown_columns]
        assert "type" in keys and "mark" in keys and "output" in keys
        assert "macs" not in keys                           # MACs gave way, the type did not
        assert table.get_row_at(0)[keys.index("type")].plain == "Input"
        types = [table.get_row_at(r)[keys.index("type")].plain for r in range(1, table.row_count)]
        assert types[:2] == ["Conv2d", "ReLU"]
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, MapsScreen)
        await _wait(pilot, lambda: screen.drawn is not None)
        sel = screen.query_one("#m-layer")
        labels = [str(prompt) for prompt, _ in sel._options if _ is not sel.BLANK]
        assert any(lab.split() == ["0", "Conv2d"] for lab in labels), labels

    run_at(app, (80, 24), script)


def test_f_is_offered_only_when_a_fix_exists_and_the_hint_is_in_view_at_80x24(tmp_path):
    """ResNet-18, stride 1 on layer2.0.conv1: no change of that layer repairs the add, so
    neither the pane nor the footer promise f, and the hint is on screen at 80x24."""
    app = DesignApp(copy_spec(tmp_path, "resnet18.yaml"))

    async def script(pilot):
        s = app.studio
        assert not s.check_action("fix", ())                               # a valid design: no fix
        await pilot.press(*["down"] * 6, "right", "down", "right", "down")
        assert s.selected_node.label == "layer2.0.conv1"
        await pilot.press("e")
        await pilot.pause()
        await set_field(pilot, "stride", "1")
        await pilot.press("enter")
        await pilot.pause()
        assert not s.evaluation.ok and s.selected_node.label == "layer2.0.conv1"
        assert s.fix_here is None and not s.check_action("fix", ())
        assert "f" not in {b.binding.key for b in s.active_bindings.values() if b.enabled and b.binding.show}
        details = s.query_one("#details")
        box = s.query_one("#details-box")
        await pilot.pause(0.2)
        lines = [details.render_line(y).text for y in range(details.size.height)]   # as drawn, wrapped
        assert not any("press f" in ln for ln in lines)
        hint = next(i for i, ln in enumerate(lines) if "fix:" in ln)
        assert hint < box.scrollable_content_region.height                 # visible without scrolling
        await pilot.press("f")                                             # nothing promised, nothing done
        await pilot.pause()
        assert not s.evaluation.ok
        await pilot.press("ctrl+z", "e")                                   # kernel 5: this one f repairs
        await pilot.pause()
        await set_field(pilot, "kernel_size", "5")
        await pilot.press("enter")
        await pilot.pause()
        assert s.fix_here is not None and s.check_action("fix", ())
        await pilot.pause(0.2)
        shown = " ".join(details.render_line(y).text for y in range(details.size.height))
        assert "press f: fix layer2.0.conv1" in " ".join(shown.split())
        await pilot.press("f")
        await pilot.pause()
        assert s.evaluation.ok

    run_at(app, (80, 24), script)


def test_a_misspelled_type_does_not_hide_the_later_layers(tmp_path):
    """The studio recovers as `cnnshape check` does: the typo is read as its suggestion and
    every later layer is analysed (same params as check)."""
    p = copy_spec(tmp_path, "fashion_mnist.yaml")
    p.write_text(p.read_text().replace("type: ReLU", "type: Relu", 1).replace("- ReLU", "- Relu", 1))
    app = DesignApp(p)

    async def script(pilot):
        s = app.studio
        ev = s.evaluation
        assert [r.status for r in ev.rows].count("error") == 1 and "unreached" not in [r.status for r in ev.rows]
        rep = check(p)
        assert ev.report.totals.params == rep.totals.params > 0
        keys = [k for k, _ in s.table.shown_columns]
        outputs = [s.table.get_row_at(r)[keys.index("output")].plain for r in range(1, s.table.row_count)]
        assert "?" not in outputs and outputs[-1] == "[10]"
        assert f"params {rep.totals.params:,}" in str(s.totals.render())

    run(app, script)


def test_bytes_in_the_studio_use_the_cli_units_and_formatter(fm):
    """One convention: binary units through the CLI's formatter (the studio showed
    "training peak 49.12 MB" where the CLI said "46.85 MiB" for the same bytes)."""
    from cnnshape.memory import estimate, nbytes_text, summary_lines

    app = DesignApp(fm)

    async def script(pilot):
        await app.workers.wait_for_complete()
        await pilot.pause()
        totals = str(app.studio.totals.render())
        rep = check(fm)
        peak = nbytes_text(estimate(rep, batch=rep.spec.batch).training_peak_bytes)
        assert f"training peak {peak}" in totals
        assert nbytes_text(rep.totals.param_bytes) in totals
        assert " MB" not in totals and "iB" in totals
        assert f"training peak ≈ {peak}" in " ".join(summary_lines(rep))   # what `check` prints

    run(app, script)


def _inside(inner, outer) -> bool:
    return (inner.x >= outer.x and inner.y >= outer.y and inner.right <= outer.right
            and inner.bottom <= outer.bottom)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 45)])
def test_the_new_file_dialog_shows_every_button_and_only_similar_names(tmp_path, size):
    for name in ("mynet.yaml", "mynet2.yaml", "my_net.yaml", "typo.yaml"):
        copy_spec(tmp_path, "fashion_mnist.yaml").rename(tmp_path / name)
    from cnnshape.tui.app import similar_files

    assert {p.name for p in similar_files(tmp_path / "mynt.yaml")} == {"mynet.yaml", "mynet2.yaml", "my_net.yaml"}
    app = DesignApp(tmp_path / "mynt.yaml")

    async def script(pilot):
        dialog = app.screen.query_one(".dialog")
        buttons = list(app.screen.query("Button"))
        assert len(buttons) == 5 and "Quit (q)" in [str(b.label) for b in buttons]
        for b in buttons:
            assert _inside(b.region, dialog.region), (str(b.label), b.region, dialog.region)
            assert b.region.width >= len(str(b.label))

    run_at(app, size, script)


def test_80_columns_footer_title_and_train_labels_are_whole(tmp_path):
    from textual.widgets._footer import FooterKey

    p = tmp_path / "mynet.yaml"
    p.write_text("input: [1, 28, 28]\nlayers:\n  - {type: Conv2d, out_channels: 4, kernel_size: 3}\n  - ReLU\n"
                 "  - Flatten\n  - {type: Linear, out_features: 10}\n")
    app = DesignApp(p)

    async def script(pilot):
        await pilot.pause(0.2)                           # the footer is composed after the screen
        keys = [k for k in app.studio.query(FooterKey) if k.display]
        assert {"edit", "add", "delete", "save", "quit_app", "help"} <= {k.action for k in keys}
        assert any(k.action == "command_palette" for k in keys)
        for a in keys:
            assert a.region.right <= 80 and a.region.width > 0
            for b in keys:                                       # no key drawn over another
                assert a is b or not a.region.overlaps(b.region), (a.action, b.action)
        await pilot.press("down", "d")
        await pilot.pause()
        assert app.title == "cnnshape · mynet.yaml ● modified" and app.sub_title == ""  # no "— (modified)"
        await pilot.press("ctrl+z")                      # the design is valid again: the train panel
        await pilot.press("t")
        await pilot.pause()
        options = app.screen.query_one("#train-options")
        for label in options.query("Label"):
            text = str(label.render())
            assert label.region.right <= options.region.right
            assert label.size.width * label.size.height >= len(text)     # wrapped, not cut

    run_at(app, (80, 24), script)


def test_small_things_palette_did_you_mean_home_end_pool_default_focus_and_paste(fm):
    from textual import events

    app = DesignApp(fm)

    async def script(pilot):
        s = app.studio
        await pilot.press("end")                                   # Home / End: first / last row
        assert s.table.cursor_row == s.table.row_count - 1
        await pilot.press("home")
        assert s.table.cursor_row == 0
        await pilot.press("a")                                     # the add palette, misspelled
        await pilot.pause()
        await pilot.press(*"batchnrm")
        await pilot.pause()
        ol = app.screen.query_one("#palette-list")
        first = ol.get_option_at_index(0)
        assert first.disabled and "no type matches 'batchnrm'; did you mean" in str(first.prompt)
        ids = [ol.get_option_at_index(k).id for k in range(1, ol.option_count)]
        assert "BatchNorm2d" in ids and ol.get_option_at_index(ol.highlighted).id in ids
        await pilot.press("ctrl+u", *"maxpool2d", "enter")         # MaxPool2d starts as users write it
        await pilot.pause()
        assert app.screen is s and s.design.items[0].data == {"type": "MaxPool2d", "kernel_size": 2}
        layers, problems = s.query_one("#layers"), s.query_one("#problems")
        assert app.focused is layers
        assert layers.styles.border.top[0] == "heavy" and problems.styles.border.top[0] != "heavy"
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is not layers and layers.styles.border.top[0] != "heavy"
        assert app.focused.styles.border.top[0] == "heavy"        # the focused pane is marked
        await pilot.press("shift+tab")
        await pilot.press("home", "down", "down", "r")             # rename: a text field
        await pilot.pause()
        field = app.screen.query_one("#prompt")
        field.value = "conv"
        app.post_message(events.Paste("first\nsecond\n"))
        await pilot.pause()
        assert field.value == "conv"                               # refused, not cut to "first"
        assert any("not pasted" in str(n.message) for n in app._notifications)
        app.post_message(events.Paste("_one\n"))                   # one line (and its newline): pasted
        await pilot.pause()
        assert field.value == "conv_one"

    run(app, script)


def test_train_panel_says_which_field_a_command_line_option_is(fm, monkeypatch):
    from cnnshape.torch_backend import data

    def refuse(*args, **kwargs):
        raise data.DataError("mnist: the IDX files are not in data; pass --data-dir to the folder that has "
                             "them; --data digits works offline (--limit to choose)")
    monkeypatch.setattr(data, "load_data", refuse)
    app = DesignApp(fm)

    async def script(pilot):
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        await _wait(pilot, lambda: not screen.running)
        log = " ".join(str(screen.query_one("#t-log").render()).split())
        assert "--data-dir is the 'data dir' field" in log and "--data is the 'data' field" in log
        assert "--limit is a command-line option" in log

    run(app, script)


def test_at_80x24_opened_blocks_show_whole_names_and_types(tmp_path):
    """Rows re-added after opening a block are drawn at the new column widths (they were
    drawn from a stale cache, names cut to "con"), and the type column stays."""
    app = DesignApp(copy_spec(tmp_path, "resnet18.yaml"))

    async def script(pilot):
        s = app.studio
        await pilot.press(*["down"] * 6, "right", "down", "right", "down")
        await pilot.pause(0.3)
        table = s.table
        lines = [table.render_line(y).text for y in range(table.size.height)]
        row = next(ln for ln in lines if "conv1" in ln and "[128, 28, 28]" in ln)
        assert "Conv2d" in row
        assert sum("BatchNorm2d" in ln for ln in lines) >= 2

    run_at(app, (80, 24), script)


def test_the_problems_title_fits_its_pane_at_80x24(tmp_path):
    p = copy_spec(tmp_path, "broken_fashion_mnist.yaml")
    app = DesignApp(p)

    async def script(pilot):
        problems = app.studio.query_one("#problems")
        n = len(app.studio.evaluation.errors)
        assert problems.border_title == f"problems: {n} error{'s' if n != 1 else ''}"
        assert len(problems.border_title) + 4 <= problems.size.width

    run_at(app, (80, 24), script)


def test_tui_on_a_python_model_opens_it_read_only(tmp_path):
    """`cnnshape tui FILE.py:ATTR`: the model imported into a Design shown read-only, with
    FILE_ATTR.yaml offered for saving (nothing written before the user saves)."""
    from cnnshape.commands.tui_cmd import _imported
    from cnnshape.design import type_of

    src = tmp_path / "net.py"
    src.write_text("from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.conv = nn.Conv2d(3, 4, 3)\n        self.fc = nn.Linear(4 * 6 * 6, 2)\n\n"
                   "    def forward(self, x):\n        return self.fc(self.conv(x).flatten(1))\n")
    out, design = _imported(f"{src}:Net", "3,8,8")
    assert out == str(tmp_path / "net_Net.yaml") and not os.path.exists(out)
    assert [type_of(d.data) for d in design.items] == ["Conv2d", "Flatten", "Linear"]
    assert design.get("input") == [3, 8, 8]
