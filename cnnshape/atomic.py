"""Safe file writes: check first, write a temp file in the target's folder, fsync, rename.

What is on disk is respected:

- a symlink is followed and its *target* replaced (the link stays a link);
- an existing file keeps its mode (and owner, where permitted); a new file gets
  ``0o666 & ~umask`` like any other program's files;
- a read-only file, a non-regular file (``/dev/full``, a FIFO, a folder) and a missing or
  unwritable folder are refused with :class:`WriteRefused` (an ``OSError``) before
  anything is written: :func:`check_target` lets long jobs (training) ask up front.
"""

import os
import stat
import tempfile


class WriteRefused(OSError):
    """Writing ``path`` would damage something or cannot succeed; ``str()`` says why."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path: str | os.PathLike) -> str:
    """The real path :func:`write_atomic` would replace (symlinks resolved); WriteRefused
    when it could not be written: folder missing or unwritable, target not a regular file
    or read-only."""
    name = os.fspath(path)
    if not name:
        raise WriteRefused("'': an empty output path")
    try:
        target = os.path.realpath(name)
    except (OSError, ValueError) as exc:
        raise WriteRefused(f"{name}: not a usable path ({exc})") from None
    folder = os.path.dirname(target) or "."
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise WriteRefused(f"{name}: a part of the path is not a folder") from None
    except (OSError, ValueError) as exc:
        raise WriteRefused(f"{name}: cannot use this path ({getattr(exc, 'strerror', None) or exc})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise WriteRefused(f"{name}: is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise WriteRefused(f"{name}: is not a regular file (a device, pipe or socket); not replacing it")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise WriteRefused(f"{name}: is read-only (mode {stat.S_IMODE(st.st_mode):04o}); make it writable "
                               "or write elsewhere")
    if not os.path.isdir(folder):
        raise WriteRefused(f"{name}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteRefused(f"{name}: folder {folder} is not writable")
    return target


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (str as UTF-8, or bytes as they are) atomically:
    readers see the old or the new file, never a part (see the module docstring)."""
    target = check_target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=".cnnshape-", suffix=".tmp", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
            if st is None:
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            else:
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
                if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.fchown(f.fileno(), st.st_uid, st.st_gid)
                    except OSError:
                        pass  # not permitted: the file becomes ours, as with any editor's save
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
