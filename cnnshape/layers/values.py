"""Value types of the layer layer: errors, warnings, what a layer infers and what it saves.

Plain frozen data and small text helpers; no layer class, no validation (see
:mod:`cnnshape.layers.args` and :mod:`cnnshape.layers.layer`).
"""

from dataclasses import dataclass, field
from typing import Callable, Union

Shape = tuple[int, ...]

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
INPUT_LAYOUT = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}


class LayerError(Exception):
    """A fatal problem of one layer: what is wrong, and how to fix it.

    ``key`` names the offending argument (its YAML position is reported) or is None for
    the layer as a whole.
    """

    def __init__(self, message: str, hint: str = "", key: str | None = None, fix: dict | None = None,
                 suggestion: tuple[str, str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key
        #: machine-applicable form of the hint: argument changes ({key: value}, None
        #: removes the key) that make this layer fit; used by the TUI's "apply fix"
        self.fix = fix
        #: a "did you mean": ("argument" | "type", what was written, what was meant)
        self.suggestion = suggestion


class ArgErrors(Exception):
    """All problems found while validating one layer mapping (a list of LayerError)."""

    def __init__(self, errors: list[LayerError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Note:
    """A non-fatal warning on one layer."""

    message: str
    hint: str = ""
    key: str | None = None
    fix: dict | None = None


#: receptive-field rule of a layer: KEEP (pointwise), MIX (positions mixed: RF undefined
#: from here on), a tuple of (kernel_eff, stride, pad_left) per spatial axis, or a callable
#: mapping the incoming per-axis RF tuple to the outgoing one (None: undefined), for
#: layers that are not sliding windows (upsampling, pixel shuffle).
KEEP = "keep"
MIX = "mix"
Window = tuple[int, int, int]
RFRule = Union[str, tuple[Window, ...], Callable]


@dataclass(frozen=True, slots=True)
class Inference:
    """What a layer does to an incoming shape (all per sample, batch excluded)."""

    output: Shape
    params: int = 0
    macs: int = 0
    rf: RFRule = KEEP
    notes: tuple[Note, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Saved:
    """One tensor a layer's autograd node keeps for the backward pass (parameters excluded).

    ``what``: ``"input"`` / ``"output"`` (the layer's input or output storage: shared with
    the layers around it, counted once) or ``"new"`` (a storage of its own: pooling
    indices, dropout masks, normalisation statistics, a padded copy). ``numel`` counts the
    batch; ``dtype`` None = the spec's dtype. ``when``: kept only when that gradient is
    needed: ``"any"`` (the input's or the parameters'), ``"input"`` (e.g. F.pad keeps its
    input for the input's gradient) or ``"params"`` (Linear's mm keeps its input for the
    weight's gradient).
    """

    what: str
    numel: int = 0
    dtype: str | None = None
    when: str = "any"


def shape_str(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def ntuple(value, rank: int) -> tuple:
    """Expand an int-or-list argument to one value per spatial axis."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * rank


def closest(word: str, options) -> str | None:
    """The option ``word`` most likely misspells (same letters in another case, a close
    match, or a prefix), or None."""
    options = [str(o) for o in options]
    lower = {o.lower(): o for o in options}
    if word.lower() in lower:
        return lower[word.lower()]
    import difflib  # only on a problem: keeps `check` start-up light

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.startswith(word) or word.startswith(o)][:1]
    return close[0] if close else None


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    meant = closest(word, options)
    return f" (did you mean '{meant}'?)" if meant else ""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_name(v) -> str:
    return {bool: "a boolean", int: "an int", float: "a float", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)
