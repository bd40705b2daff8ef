"""Open a spec file for editing and save a design back into it, keeping what the user wrote.

Saving re-uses the file's own YAML (ruamel.yaml round-trip mode): comments, key order,
flow/block style, quoting and indentation of everything the edits did not touch stay as
they were; a moved layer takes its end-of-line comment with it. One known normalisation:
ruamel.yaml drops alignment spaces *inside* flow lists (``[ 0,  0]`` becomes ``[0, 0]``)
when the file is re-written after an edit. Writes are atomic and
refuse to replace a file that changed on disk since it was opened or last saved
(:class:`ChangedOnDisk`: the caller offers reload / overwrite / save as).
"""

import copy
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .design import Design
from .errors import SpecError, SpecFileError
from .yaml_io import parse, read_text
from .yaml_out import dump_data

#: what a new design starts with (a valid minimal classifier to grow from)
NEW_DESIGN = {
    "input": [1, 28, 28],
    "batch": 1,
    "layers": [{"type": "Conv2d", "out_channels": 8, "kernel_size": 3}, "ReLU", "Flatten",
               {"type": "Linear", "out_features": 10}],
}


class ChangedOnDisk(Exception):
    """The file was changed by someone else since it was opened (or last saved)."""


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _disk_text(path: Path) -> str | None:
    """The file's text decoded exactly as :meth:`DesignFile.open` decodes it (BOM removed,
    CRLF kept), so an untouched file never counts as changed; bytes that are not UTF-8 (or
    a file that can no longer be read) yield a marker that differs from any text: the
    save then asks before overwriting, and the user's edits stay in memory."""
    from .yaml_io import decode, read_bytes

    try:
        data = read_bytes(path)
    except SpecFileError as exc:
        if not os.path.lexists(path):
            return None
        return f"\x00unreadable: {exc}"
    try:
        return decode(data)
    except SpecError:
        return "\x00not UTF-8: " + hashlib.sha256(data).hexdigest()


@dataclass
class DesignFile:
    """A spec file opened for editing (mutable session state, not a result object)."""

    path: Path
    original: Design            # the design as opened (items' origins index into _doc)
    text: str | None            # the file's text as opened/saved (None: new file)
    _doc: Any = None            # ruamel round-trip document of the opened text
    _indent: tuple[int, int] = (2, 4, 2)

    @property
    def is_new(self) -> bool:
        return self.text is None

    # ---------------------------------------------------------------- open
    @classmethod
    def open(cls, path: str | os.PathLike) -> "DesignFile":
        """Open ``path``; a missing file starts a new design there.

        Raises SpecFileError when the file cannot be read, is not YAML, or its top level
        is not a mapping (the TUI shows that on an error screen).
        """
        path = Path(path)
        if not path.exists():
            if not path.parent.exists():
                raise SpecFileError(f"{path}: folder {path.parent} does not exist")
            return cls(path, Design.from_data(copy.deepcopy(NEW_DESIGN)), None)
        if path.is_dir():
            raise SpecFileError(f"{path}: is a folder, not a spec file")
        text = read_text(path)
        from .errors import SpecError

        try:
            data, _ = parse(text, str(path))
        except SpecError as exc:
            d = exc.diagnostics[0]
            where = f":{d.line}:{d.column}" if d.line else ""
            raise SpecFileError(f"{path}{where}: {d.message}" + (f"\n  hint: {d.hint}" if d.hint else "")) from None
        if not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
            raise SpecFileError(f"{path}: not a cnnshape spec (the YAML is {kind}); a spec is a mapping "
                                "with input: and layers:")
        if "layers" in data and not isinstance(data["layers"], list):
            raise SpecFileError(f"{path}: layers: must be a list of layers, received "
                                f"{type(data['layers']).__name__}")
        doc, indent = _rt_load(text)
        return cls(path, Design.from_data(data), text, doc, indent)

    # ---------------------------------------------------------------- render
    def render(self, design: Design) -> str:
        """The YAML text of ``design``, round-tripped over the opened file when possible."""
        if design == self.original and self.text is not None:
            return self.text  # nothing changed: the file exactly as it is
        if self._doc is None:
            return dump_data(design.data())
        doc = copy.deepcopy(self._doc)
        _apply(doc, self.original, design)
        return _rt_dump(doc, self._indent)

    # ---------------------------------------------------------------- save
    def changed_on_disk(self) -> bool:
        return _digest(_disk_text(self.path)) != _digest(self.text)

    def save(self, design: Design, *, force: bool = False, path: str | os.PathLike | None = None) -> Path:
        """Write ``design`` atomically; ChangedOnDisk unless ``force`` when the file
        changed since opened/saved. ``path`` saves as another file (which must not exist
        unless ``force``)."""
        text = self.render(design)
        if path is not None and Path(path) != self.path:
            target = Path(path)
            if target.exists() and not force:
                raise ChangedOnDisk(f"{target} already exists")
            write_atomic(target, text)
            self.path = target
        else:
            if not force and self.changed_on_disk():
                raise ChangedOnDisk(f"{self.path} changed on disk since it was opened")
            write_atomic(self.path, text)
        self.text = text
        return self.path


# --------------------------------------------------------------- ruamel round trip
def _rt_yaml(indent=(2, 4, 2)):
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return y


def _rt_load(text: str):
    """(round-trip document, (mapping, sequence, offset) indent) or (None, default)."""
    from ruamel.yaml.error import YAMLError

    try:
        indent = guess_indent(text)
        doc = _rt_yaml(indent).load(text)
    except (YAMLError, ValueError, TypeError):
        return None, (2, 4, 2)
    if not isinstance(doc, dict) or not isinstance(doc.get("layers", []), list):
        return None, (2, 4, 2)
    return doc, indent


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation the file uses for block collections.

    ruamel.yaml applies one setting to the whole document when it writes, so it must be
    the file's own: a nested mapping's indent, and where a list's ``-`` sits under its key.
    """
    import re

    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping, offset = None, None
    for a, b in zip(lines, lines[1:]):
        ka = re.match(r"^(\s*)(- )?[^\s#-][^:#]*:\s*(#.*)?$", a)
        if not ka:
            continue
        col = len(ka.group(1)) + (2 if ka.group(2) else 0)
        ib = len(b) - len(b.lstrip())
        if ib <= col:
            continue
        if b.lstrip().startswith("- "):
            offset = ib - col if offset is None else offset
        elif mapping is None:
            mapping = ib - col
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = offset if offset is not None else 0
    return (mapping, offset + 2, offset)


def _rt_dump(doc, indent) -> str:
    buf = io.StringIO()
    _rt_yaml(indent).dump(doc, buf)
    return buf.getvalue()


def _flow(value):
    """A new value in flow style (lists and mappings written on one line)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, list):
        seq = CommentedSeq(_flow(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        m = CommentedMap((k, _flow(v)) for k, v in value.items())
        m.fa.set_flow_style()
        return m
    return value


def _same(a, b) -> bool:
    return a == b and type(a) is type(b)


def _update_map(node, old: dict, new: dict) -> None:
    """Make mapping ``node`` (whose plain value was ``old``) equal ``new``, in place,
    recursing into nested mappings and lists so untouched parts keep their style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    for k in [k for k in node if str(k) not in new]:
        del node[k]
    for k, v in new.items():
        if k in old and _same(old[k], v):
            continue
        cur = node.get(k) if k in node else None
        if isinstance(cur, CommentedMap) and isinstance(v, dict) and isinstance(old.get(k), dict):
            _update_map(cur, old[k], v)
        elif isinstance(cur, CommentedSeq) and isinstance(v, list) and isinstance(old.get(k), list):
            _update_seq(cur, old[k], v)
        else:
            node[k] = _flow(v)


def _update_seq(seq, old: list, new: list, origins: list | None = None) -> None:
    """Make sequence ``seq`` (plain value ``old``) equal ``new`` in place. Each new item
    reuses the node (and end-of-line comment) of the old item it came from: ``origins[j]``
    when given (the design's layer identities), else an equal old item, else the same
    position when the lengths agree; a reused mapping that changed is updated recursively."""
    from ruamel.yaml.comments import CommentedMap

    nodes, comments = list(seq), dict(seq.ca.items)
    used: set[int] = set()
    out, out_comments = [], {}
    for j, v in enumerate(new):
        if origins is not None:
            match = origins[j] if origins[j] is not None and origins[j] < len(nodes) else None
        else:
            match = next((i for i, o in enumerate(old) if i not in used and _same(o, v)), None)
            if match is None and len(old) == len(new) and j not in used:
                match = j  # same position, changed: update that node
        if match is not None:
            used.add(match)
            node = nodes[match]
            if not _same(old[match], v):
                if isinstance(node, CommentedMap) and isinstance(v, dict) and isinstance(old[match], dict):
                    _update_map(node, old[match], v)
                else:
                    node = _flow(v)
            if match in comments:
                out_comments[j] = comments[match]
        else:
            node = _flow(v)
        out.append(node)
    seq.ca.items.clear()
    del seq[:]
    seq.extend(out)
    seq.ca.items.update(out_comments)


def _apply(doc, original: Design, design: Design) -> None:
    """Turn round-trip ``doc`` (which holds ``original``) into ``design``."""
    from ruamel.yaml.comments import CommentedSeq

    top_new = dict(design.top)
    old_top = dict(original.top)
    for k in [k for k in doc if k != "layers" and str(k) not in top_new]:
        del doc[k]
    keys = list(doc.keys())
    for k, v in top_new.items():
        if k in old_top and old_top[k] == v:
            continue
        if k in doc:
            doc[k] = _flow(v)
        else:  # a new key: before layers
            pos = keys.index("layers") if "layers" in keys else len(keys)
            doc.insert(pos, k, _flow(v))
            keys = list(doc.keys())
    seq = doc.get("layers")
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        doc["layers"] = seq
    _update_seq(seq, [it.data for it in original.items], [it.data for it in design.items],
                [it.origin for it in design.items])
