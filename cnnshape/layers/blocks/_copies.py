"""What Repeat and DenseBlock share: ``child_names`` formats for their copies."""

from string import Formatter

from ..base import Arg, LayerError

child_names_arg = Arg("str", "{index}", "Child name of each copy: a format with {index} (0-based) and/or "
                      "{number} (1-based), e.g. denselayer{number} or block1-{index}.")


def check_child_names(fmt: str, n: int) -> None:
    """LayerError unless ``fmt`` gives n distinct valid module names."""
    try:
        fields = {f for _, f, _, _ in Formatter().parse(fmt) if f is not None}
        sample = fmt.format(index=0, number=1)
    except (ValueError, KeyError, IndexError) as exc:
        raise LayerError(f"child_names {fmt!r} is not a valid format ({exc})",
                         "use {index} or {number}, e.g. denselayer{number}", "child_names") from None
    if not fields <= {"index", "number"} or (n > 1 and not fields):
        raise LayerError(f"child_names {fmt!r} must contain {{index}} or {{number}} (and nothing else in braces)",
                         "e.g. child_names: \"layer{number}\"", "child_names")
    if not sample or "." in sample:
        raise LayerError(f"child_names {fmt!r} gives {sample!r}, not a valid module name (empty or contains '.')",
                         "use letters, digits, '-' and '_'", "child_names")


def copy_name(fmt: str, i: int) -> str:
    return fmt.format(index=i, number=i + 1) if fmt != "{index}" else str(i)
