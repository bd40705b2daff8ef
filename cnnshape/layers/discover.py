"""Every module of a layer package is imported, so a new layer or block type is one file.

Importing a module runs its ``@register`` decorators, which add its types to
``LAYER_TYPES`` in import order: the palette's order (studio, docs, JSON Schema).
"""


def import_modules(package: str, path, first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> list[str]:
    """Import the modules and sub-packages of ``package`` (found on ``path``) whose names do
    not start with ``_``: those named in ``first`` in that order, then the ones named
    nowhere (by name), then those in ``last``. Returns the names, in import order."""
    import pkgutil

    found = {m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")}
    rest = sorted(found - set(first) - set(last))
    order = [n for n in first if n in found] + rest + [n for n in last if n in found]
    for name in order:
        __import__(f"{package}.{name}")  # (not importlib.import_module: -X importtime lists these)
    return order
