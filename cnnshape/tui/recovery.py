"""Unsaved edits kept on disk, so that a killed terminal loses nothing (no Textual here).

After every edit the studio writes the design (its data and which item of the opened file
each layer came from) atomically to a recovery file beside the spec (``.NAME.unsaved``),
or, where that folder cannot be written, in the user's cache folder. Saving, quitting
without saving and recovering remove it; the next open of the spec offers what it holds.
"""

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..design import Design, Item

#: refuse to read a recovery file larger than this (a design is a few kB)
MAX_BYTES = 16 * 1024 * 1024
FORMAT = "cnnshape-unsaved-1"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnshape" / "unsaved"


def candidates(path: Path) -> list[Path]:
    """Where the recovery file of spec ``path`` may be: beside it, then the cache folder."""
    path = Path(path).absolute()
    key = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return [path.parent / f".{path.name}.unsaved", _cache_dir() / f"{key}-{path.name}.unsaved"]


@dataclass(frozen=True)
class Recovered:
    """What a recovery file holds: the design, when it was written, and where it is."""

    design: Design
    where: Path
    mtime: float
    base_digest: str | None  # digest of the file's text the origins refer to


def digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def write(path: Path, design: Design, base_text: str | None) -> Path:
    """Write the recovery file of ``path`` atomically (beside it, else in the cache
    folder); the file written. OSError when neither place can be written."""
    state = {"format": FORMAT, "file": str(Path(path).absolute()), "base": digest(base_text),
             "top": [[k, v] for k, v in design.top],
             "items": [{"data": it.data, "origin": it.origin} for it in design.items]}
    text = json.dumps(state, ensure_ascii=False)
    error: OSError | None = None
    for target in candidates(path):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, text)
        except OSError as exc:
            error = error or exc
            continue
        for other in candidates(path):  # one recovery file per spec
            if other != target:
                _unlink(other)
        return target
    raise error


def _unlink(p: Path) -> None:
    with contextlib.suppress(OSError):  # one that cannot be removed is offered again next time
        p.unlink()


def remove(path: Path) -> None:
    """Remove the recovery files of ``path`` (saved, or discarded on purpose)."""
    for p in candidates(path):
        _unlink(p)


def read(path: Path, current_text: str | None) -> Recovered | None:
    """The unsaved design kept for ``path``, or None (none, unreadable, or the same as
    the file). Origins are dropped when the file changed since they were recorded."""
    for where in candidates(path):
        try:
            if where.stat().st_size > MAX_BYTES:
                continue
            raw = where.read_text(encoding="utf-8")
            mtime = where.stat().st_mtime
        except (OSError, UnicodeDecodeError):
            continue
        try:
            state = json.loads(raw)
        except ValueError:
            continue
        design = _design(state)
        if design is None:
            continue
        same_base = state.get("base") == digest(current_text)
        if not same_base:
            design = Design(design.top, tuple(Item(it.data, None) for it in design.items))
        return Recovered(design, where, mtime, state.get("base"))
    return None


def _design(state) -> Design | None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None
    top, items = state.get("top"), state.get("items")
    if not isinstance(top, list) or not isinstance(items, list):
        return None
    if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in top):
        return None
    if not all(isinstance(it, dict) and "data" in it for it in items):
        return None
    return Design(tuple((k, v) for k, v in top),
                  tuple(Item(it["data"], it.get("origin") if isinstance(it.get("origin"), int) else None)
                        for it in items))
