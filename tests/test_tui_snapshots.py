"""SVG snapshots of the studio's main screens at a fixed size.

Deliberately not pytest-textual-snapshot: its 1.1.0 release pins syrupy 4.8.0, which
needs pytest < 9, and this project runs pytest 9. Textual's own ``export_screenshot``
is deterministic for a given Textual version, so the SVGs are compared byte for byte
(CI pins Textual through constraints.txt). Refresh after an intended change:
``CNNSHAPE_UPDATE_GOLDEN=1 python -m pytest tests/test_tui_snapshots.py`` and look at the
SVGs (any browser) before committing them.
"""

import asyncio
import os
import shutil

import pytest
import textual

from cnnshape.tui.app import DesignApp

from .conftest import SPECS

HERE = os.path.join(os.path.dirname(__file__), "snapshots")
VERSION_FILE = os.path.join(HERE, "TEXTUAL_VERSION")
UPDATE = os.environ.get("CNNSHAPE_UPDATE_GOLDEN") == "1"
SIZE = (140, 40)


def _recorded_version():
    try:
        with open(VERSION_FILE) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def snapshot(tmp_path, spec_name, keys, name, size=SIZE):
    p = tmp_path / spec_name
    shutil.copy(os.path.join(SPECS, spec_name), p)
    app = DesignApp(p)

    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for k in keys:
                if callable(k):
                    await k(pilot)
                else:
                    await pilot.press(k)
            await app.workers.wait_for_complete()   # the input sizes are found in a thread
            await pilot.pause()
            return app.export_screenshot(title=name).replace(str(tmp_path), "<tmp>")

    svg = asyncio.run(main())
    path = os.path.join(HERE, f"{name}.svg")
    if UPDATE:
        with open(path, "w") as f:
            f.write(svg)
        with open(VERSION_FILE, "w") as f:
            f.write(textual.__version__ + "\n")
        return
    recorded = _recorded_version()
    if recorded != textual.__version__:
        pytest.skip(f"snapshots were recorded with Textual {recorded}; this is {textual.__version__}")
    with open(path) as f:
        expected = f.read()
    if svg != expected:
        out = tmp_path / f"{name}.actual.svg"
        out.write_text(svg)
        pytest.fail(f"{name}: the screen differs from tests/snapshots/{name}.svg; see {out} "
                    "(CNNSHAPE_UPDATE_GOLDEN=1 to accept)")


async def _set_kernel_5(pilot):
    await pilot.press("down", "e")
    await pilot.pause()
    w = pilot.app.screen.query_one("#f-kernel_size")
    w.value = "5"
    await pilot.press("ctrl+s")
    await pilot.pause()


def test_snapshot_kernel_change_shows_broken_linear_and_fix(tmp_path):
    snapshot(tmp_path, "fashion_mnist.yaml", [_set_kernel_5, "down", "down", "down", "down"], "kernel_change")


def test_snapshot_resnet_tree(tmp_path):
    keys = ["down"] * 6 + ["right", "down", "right"] + ["down"] * 6
    snapshot(tmp_path, "resnet18.yaml", keys, "resnet18_tree")


def test_snapshot_resnet_first_copy_at_80x24(tmp_path):
    """The narrow studio: status marks and shapes stay, the other columns give way."""
    keys = ["down"] * 6 + ["right", "down", "right", "down"]
    snapshot(tmp_path, "resnet18.yaml", keys, "resnet18_80x24", size=(80, 24))


def test_snapshot_help(tmp_path):
    snapshot(tmp_path, "fashion_mnist.yaml", ["question_mark"], "help")
