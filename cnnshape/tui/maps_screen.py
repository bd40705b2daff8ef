"""Filters and feature maps of the current design, in half-block pixels.

Shows the weights after the last training run of this session (if any) or the initial
weights ("before"); ``b`` switches between the two. Pick the layer with the selector and
the sample with ``[`` / ``]``.
"""

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Select, Static

from .markup import escape


class MapsScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("left_square_bracket", "sample(-1)", "Prev sample"),
        Binding("right_square_bracket", "sample(1)", "Next sample"),
        Binding("b", "toggle", "Before/after training"),
    ]

    def __init__(self, spec, result=None, dataset=None):
        super().__init__()
        self.spec = spec
        self.result = result
        self.dataset = dataset
        self.sample = 0
        self.after = result is not None
        self.models = {}
        self.drawn = None  # (layer, "before"|"after", map shape) of the last drawing

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="maps-bar"):
            yield Label("layer ")
            yield Select([], id="m-layer", allow_blank=True, compact=True)
            yield Static("", id="m-info")
        with VerticalScroll(id="maps-view"):
            yield Static("[dim]loading torch and building the model…[/]", id="m-body")
        yield Footer()

    def on_mount(self) -> None:
        self.prepare()

    @work(thread=True, exclusive=True)
    def prepare(self) -> None:
        import torch

        from ..torch_backend import viz
        from ..torch_backend.build import build
        from ..torch_backend.data import load_data

        torch.manual_seed(0)
        before = build(self.spec, dtype="float32")
        self.models["before"] = before
        if self.result is not None:
            self.models["after"] = self.result.model
        if self.dataset is None:
            self.dataset = load_data("digits" if len(self.spec.input) == 3 else "shapes", self.spec.input,
                                     samples=64, limit=64)
        names = [(n, type(m).__name__) for n, m in before.named_modules() if n]
        convs = viz.conv_layers(before)
        self.app.call_from_thread(self._ready, names, convs[0] if convs else names[0][0])

    def _ready(self, names, first) -> None:
        """Fill the layer list: each entry is the module path and its type (``0  Conv2d``)."""
        sel = self.query_one("#m-layer", Select)
        sel.set_options([(f"{n}  {t}", n) for n, t in names])
        sel.value = first
        self.draw()

    @on(Select.Changed, "#m-layer")
    def _layer(self, event) -> None:
        if self.models:
            self.draw()

    def action_sample(self, delta: int) -> None:
        if self.dataset is not None:
            self.sample = (self.sample + delta) % len(self.dataset)
            self.draw()

    def action_toggle(self) -> None:
        if "after" not in self.models:
            self.notify("no training run yet: these are the initial weights", severity="warning")
            return
        self.after = not self.after
        self.draw()

    def action_back(self) -> None:
        self.dismiss(None)

    def draw(self) -> None:
        from rich.console import Group
        from rich.text import Text

        from ..torch_backend import viz

        name = self.query_one("#m-layer", Select).value
        if name is Select.NULL or not self.models:
            return
        model = self.models["after" if self.after and "after" in self.models else "before"]
        ds = self.dataset
        x = ds.x[self.sample]
        width = max(40, self.size.width - 4)
        parts = [Text(f"input: sample {self.sample} of {ds.name}, class {ds.classes[int(ds.y[self.sample])]}",
                      style="bold"), viz.half_blocks(viz.input_tile(x), 32)]
        if name in viz.conv_layers(model):
            w = viz.filters(model, name)
            tiles = viz.filter_tiles(w)
            parts += [Text(f"\n{name}: {w.shape[0]} filters {list(w.shape[1:])}", style="bold"),
                      viz.tile_grid_text(tiles, [f"#{i}" for i in range(len(tiles))], width, 8)]
        maps = viz.feature_maps(model, x, name)
        tiles = viz.map_tiles(maps)
        parts += [Text(f"\n{name}: feature maps {list(maps.shape)}", style="bold"),
                  viz.tile_grid_text(tiles, [f"ch {i}" for i in range(len(tiles))], width, 16)]
        self.query_one("#m-body", Static).update(Group(*parts))
        self.drawn = (name, "after" if model is self.models.get("after") else "before", tuple(maps.shape))
        which = "after training" if model is self.models.get("after") else "initial weights"
        self.query_one("#m-info", Static).update(f"  [b]{escape(which)}[/b] · sample {self.sample}")  # keys: footer
