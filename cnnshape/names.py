"""Module names: what torch accepts as a child name, and what every output format can show.

A name reaches torch (``add_module``), Python source (``export``), terminals, Markdown,
GitHub annotations and SVG files. It is refused here when torch would refuse it (empty,
``'.'``, an attribute of the module), and when it holds characters no output can show
safely: control characters (a newline would start a forged ``::error`` line in a CI log,
ESC drives the terminal), format characters (bidirectional overrides), line separators,
surrogates and non-characters (U+FFFE is not XML).
"""

import unicodedata

#: attributes of torch.nn.Sequential: a child with one of these names cannot be added
#: (torch raises "attribute ... already exists"). Checked against torch in the tests.
RESERVED_NAMES = frozenset("""
T_destination add_module append apply bfloat16 buffers call_super_init children compile cpu
cuda double dump_patches eval extend extra_repr float forward get_buffer get_extra_state
get_parameter get_submodule half insert ipu load_state_dict modules mtia named_buffers
named_children named_modules named_parameters parameters pop register_backward_hook
register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())
#: Unicode categories never allowed in a name: control, format, surrogate, unassigned
#: (non-characters such as U+FFFE), line and paragraph separators
_UNSHOWABLE = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})


def unshowable(text: str) -> str | None:
    """The first character of ``text`` that no output format can show safely, else None."""
    for ch in text:
        if unicodedata.category(ch) in _UNSHOWABLE:
            return ch
    return None


def name_problem(name: str, container: str = "nn.Module") -> tuple[str, str] | None:
    """(message, hint) when ``name`` cannot name a child of a torch ``container``, else None."""
    if not name or "." in name:
        return (f"layer name {_quoted(name)} is not a valid module name (empty or contains '.')",
                "use letters, digits and underscores, e.g. conv1")
    bad = unshowable(name)
    if bad is not None:
        return (f"layer name {_quoted(name)} contains the control or invisible character U+{ord(bad):04X} "
                f"({unicodedata.name(bad, 'a control character')})", "use letters, digits, '-' and '_'")
    if name in RESERVED_NAMES:  # a block's own attributes (Residual's layer scale) are the block's check
        return (f"layer name '{name}' clashes with the {container} attribute '{name}' (torch refuses such "
                "a child)", f"rename it, e.g. {name}_layer")
    if name.startswith("_"):
        return (f"layer name '{name}' starts with '_': such names are torch's and cnnshape's module "
                "internals (e.g. _modules, _parameters)", f"rename it, e.g. {name.lstrip('_') or 'x'}_layer")
    return None


def _quoted(name: str) -> str:
    from .limits import shown

    return shown(name, 80)
