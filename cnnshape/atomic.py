"""Atomic file writes: temp file in the same folder, fsync, rename."""

import os
import tempfile


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (str, or bytes written as they are) atomically:
    readers see the old or the new file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cnnshape-", suffix=".tmp", dir=folder)
    try:
        binary = isinstance(text, bytes)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
