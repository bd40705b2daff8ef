"""The tutorials' data sets fetched as torchvision fetches them, without torchvision.

Standard library only (``urllib``, ``hashlib``, ``gzip``, ``tarfile``); imported only when
``--data`` names a downloadable set, never by ``cnnshape check``.

- Sources: the mirror lists, file names and MD5 sums of torchvision 0.28
  (``torchvision/datasets/mnist.py``); CIFAR in its *binary* version
  (``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz`` from
  https://www.cs.toronto.edu/~kriz/, MD5 sums as published in the md5sum column of
  https://www.cs.toronto.edu/~kriz/cifar.html). A CIFAR download is never unpickled.
- ``CNNSHAPE_MIRRORS`` (comma-separated base URLs serving the same file names) are tried
  first, then the official mirrors in torchvision's order. Checksums are checked whatever
  the source.
- A download goes to ``NAME.part`` (resumed with an HTTP ``Range`` request when one is
  left over), is checked against its MD5 and only then renamed to ``NAME``: a killed
  download never leaves a file with the final name; a checksum mismatch keeps nothing.
- Every socket operation has a timeout (:data:`TIMEOUT_S`): a server that accepts and
  never answers is an error after that many seconds, never a hang.
- Layout (a torchvision ``root`` works as is): ``ROOT/FashionMNIST/raw/*-ubyte(.gz)``,
  ``ROOT/MNIST/raw``, ``ROOT/KMNIST/raw``; ``ROOT/cifar-10-binary.tar.gz`` unpacked to
  ``ROOT/cifar-10-batches-bin/``, ``ROOT/cifar-100-binary.tar.gz`` to ``ROOT/cifar-100-binary/``.
"""

import contextlib
import gzip
import secrets
import hashlib
import os
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CnnshapeError

#: seconds any one socket operation (connect, each read) may wait
TIMEOUT_S = 30.0
#: the largest file accepted from a server (the CIFAR archives are ~170 MB)
MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024
#: the largest member taken out of a CIFAR archive (the largest, train.bin, is 154 MB)
MAX_MEMBER_BYTES = 512 * 1024 * 1024
CHUNK = 1 << 16


class DownloadError(CnnshapeError):
    """A data set could not be fetched or verified (the message says what to do)."""


@dataclass(frozen=True)
class Remote:
    """One downloadable data set."""

    name: str                            # as in --data
    mirrors: tuple[str, ...]             # base URLs, tried in order
    files: tuple[tuple[str, str], ...]   # (file name, MD5 of the file as published)
    kind: str                            # "idx" or "cifar"
    folder: str                          # idx: torchvision's folder (FOLDER/raw); cifar: the archive's folder
    #: cifar: the archive members cnnshape unpacks (paths inside the archive)
    members: tuple[str, ...] = ()
    home: str = ""


_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Mirrors and MD5 sums: torchvision/datasets/mnist.py (MNIST, FashionMNIST, KMNIST).
# CIFAR binary MD5 sums: the md5sum column of https://www.cs.toronto.edu/~kriz/cifar.html
# ("CIFAR-10 binary version (suitable for C programs)" / "CIFAR-100 binary version").
REMOTES: dict[str, Remote] = {
    "mnist": Remote(
        "mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        tuple(zip(_IDX, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        "idx", "MNIST", home="http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": Remote(
        "fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        tuple(zip(_IDX, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        "idx", "FashionMNIST", home="https://github.com/zalandoresearch/fashion-mnist"),
    "kmnist": Remote(
        "kmnist", ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        tuple(zip(_IDX, ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
                         "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"))),
        "idx", "KMNIST", home="https://github.com/rois-codh/kmnist"),
    "cifar10": Remote(
        "cifar10", ("https://www.cs.toronto.edu/~kriz/",),
        (("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),), "cifar", "cifar-10-batches-bin",
        tuple(f"cifar-10-batches-bin/{n}" for n in
              [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]),
        home="https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": Remote(
        "cifar100", ("https://www.cs.toronto.edu/~kriz/",),
        (("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"),), "cifar", "cifar-100-binary",
        tuple(f"cifar-100-binary/{n}" for n in
              ("train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt")),
        home="https://www.cs.toronto.edu/~kriz/cifar.html"),
}


@dataclass(frozen=True)
class Event:
    """Sent to ``on_event`` while fetching: ``kind`` is "start" (a file from ``url``,
    ``total`` bytes or None, ``done`` already there when resuming), "bytes" (``done`` of
    ``total``), "done" (downloaded and verified), "note" (``message``: a mirror failed, a
    file is being unpacked...)."""

    kind: str
    file: str = ""
    url: str = ""
    done: int = 0
    total: int | None = None
    message: str = ""


OnEvent = Callable[[Event], None] | None


# ------------------------------------------------------------------------- places
def cache_dir() -> Path:
    """The platform's cache folder for data: ``$XDG_CACHE_HOME/cnnshape/data`` when set,
    else ``~/.cache/cnnshape/data`` (macOS: ``~/Library/Caches/cnnshape/data``; Windows:
    ``%LOCALAPPDATA%/cnnshape/cache/data``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "cnnshape" / "data"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "cnnshape" / "data"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "cnnshape" / "cache" / "data"
    return Path.home() / ".cache" / "cnnshape" / "data"


def roots(data_dir=None) -> tuple[list[Path], Path]:
    """(folders searched for the files, folder a download goes to): ``data_dir`` (or
    ``CNNSHAPE_DATA``) alone when given; else ``./data`` (the tutorials' torchvision root)
    and the cache folder, downloads going to the cache."""
    chosen = data_dir or os.environ.get("CNNSHAPE_DATA")
    if chosen:
        p = Path(chosen).expanduser()
        return [p], p
    cache = cache_dir()
    return [Path("data"), cache], cache


def mirrors(remote: Remote) -> list[str]:
    """``CNNSHAPE_MIRRORS`` (comma-separated base URLs) then the official mirrors."""
    extra = [m.strip() for m in os.environ.get("CNNSHAPE_MIRRORS", "").split(",") if m.strip()]
    return [m if m.endswith("/") else m + "/" for m in extra] + list(remote.mirrors)


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------ fetching
class _Failed(Exception):
    """One URL failed (the message says how); the next mirror is tried."""


def _open(url: str, part: Path, have: int, timeout: float):
    """The response to a GET of ``url`` asking for the bytes from ``have`` on; None when the
    server refuses the range (``part`` is then removed: start again); _Failed on any error."""
    headers = {"User-Agent": "cnnshape (python urllib)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is as long as the file or longer: start again
            part.unlink()
            return None
        raise _Failed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Failed(f"no answer within {timeout:g} s") from None
        raise _Failed(f"cannot connect ({reason})") from None
    except (TimeoutError, socket.timeout):
        raise _Failed(f"no answer within {timeout:g} s") from None
    except (OSError, ValueError) as exc:
        raise _Failed(f"cannot connect ({exc})") from None


def _resume_from(resp, have: int) -> int:
    """How many bytes of the part the response continues (0: it sends the whole file)."""
    status = getattr(resp, "status", None) or 200
    if have and status == 206:
        start = resp.headers.get("Content-Range", "").replace("bytes", "").strip().split("-")[0]
        if start.strip() == str(have):
            return have
    return 0


def _receive(resp, part: Path, have: int, total: int | None, timeout: float, on_event: OnEvent, name: str,
             url: str) -> int:
    """Write the response's body into ``part`` (appended after ``have`` bytes, or anew):
    the bytes the part then holds."""
    done = have
    read = getattr(resp, "read1", resp.read)  # what has arrived, so a stall loses no received byte
    try:
        with open(part, "ab" if have else "wb") as f:
            while True:
                block = read(CHUNK)
                if not block:
                    break
                done += len(block)
                if done > MAX_DOWNLOAD_BYTES:
                    raise _Failed(f"more than {MAX_DOWNLOAD_BYTES:,} bytes: not the expected file")
                f.write(block)
                if on_event:
                    on_event(Event("bytes", name, url, done, total))
            f.flush()
            os.fsync(f.fileno())
    except (TimeoutError, socket.timeout):
        raise _Failed(f"the transfer stalled (no data for {timeout:g} s) after {done:,} bytes; "
                      "run again to resume") from None
    except OSError as exc:
        raise _Failed(f"the transfer failed after {done:,} bytes ({exc}); run again to resume") from None
    return done


def _get(url: str, part: Path, timeout: float, on_event: OnEvent, name: str) -> None:
    """Download ``url`` into ``part``, resuming what ``part`` already holds; _Failed on any error."""
    have = part.stat().st_size if part.exists() else 0
    resp = _open(url, part, have, timeout)
    if resp is None:
        return _get(url, part, timeout, on_event, name)
    with resp:
        have = _resume_from(resp, have)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > MAX_DOWNLOAD_BYTES:
            raise _Failed(f"the server announces {total:,} bytes, more than the {MAX_DOWNLOAD_BYTES:,}-byte limit")
        if on_event:
            on_event(Event("start", name, url, have, total))
        done = _receive(resp, part, have, total, timeout, on_event, name, url)
        if total is not None and done < total:
            raise _Failed(f"the connection closed after {done:,} of {total:,} bytes; run again to resume")


def fetch(name: str, md5: str, dest_dir: Path, urls: list[str], *, timeout: float | None = None,
          on_event: OnEvent = None) -> Path:
    """``dest_dir/name``, downloaded from the first of ``urls`` (base URLs) that serves it
    with MD5 ``md5``; DownloadError naming every URL and why it failed."""
    timeout = TIMEOUT_S if timeout is None else timeout
    dest = dest_dir / name
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest_dir} ({exc.strerror or exc}); choose another folder with "
                            "--data-dir or CNNSHAPE_DATA") from None
    with _folder_lock(dest_dir, name, on_event):
        if dest.is_file():  # another process fetched it while we waited
            return dest
        return _fetch_locked(name, md5, dest, urls, timeout, on_event)


@contextlib.contextmanager
def _folder_lock(folder: Path, name: str, on_event: OnEvent):
    """One downloader per folder at a time (POSIX ``flock`` on the folder itself, so no lock
    file is left behind); a second process waits for the first, whose waits are bounded."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock (a clash ends in a checksum mismatch, never a bad file)
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting and on_event:
                    on_event(Event("note", name, message=f"another process is downloading into {folder}; waiting "
                                   "for it"))
                waiting = True
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def _fetch_locked(name: str, md5: str, dest: Path, urls: list[str], timeout: float, on_event: OnEvent) -> Path:
    dest_dir = dest.parent
    part = dest_dir / f"{name}.part"
    try:
        open(part, "ab").close()  # a folder we cannot write into is one clear error, not one per mirror
    except OSError as exc:
        raise DownloadError(f"cannot write {part} ({exc.strerror or exc}); choose another folder with "
                            "--data-dir or CNNSHAPE_DATA") from None
    failures = []
    for base in urls:
        url = base + name
        if not url.lower().startswith(("http://", "https://", "file:")):
            failures.append(f"{url}: not an http(s):// or file: URL")
            continue
        for attempt in (0, 1):  # a resumed download that fails its checksum is fetched again whole
            resumed = part.exists() and part.stat().st_size > 0
            try:
                _get(url, part, timeout, on_event, name)
            except _Failed as exc:
                failures.append(f"{url}: {exc}")
                if on_event and base != urls[-1]:  # the last failure is in the error itself
                    on_event(Event("note", name, url, message=f"{url}: {exc}; trying the next mirror"))
                break
            got = md5_of(part)
            if got == md5:
                os.replace(part, dest)
                if on_event:
                    on_event(Event("done", name, url, dest.stat().st_size, dest.stat().st_size))
                return dest
            size = part.stat().st_size
            part.unlink()
            if resumed and attempt == 0:
                if on_event:
                    on_event(Event("note", name, url, message=f"{name}: the resumed download fails its "
                                   "checksum; fetching it again whole"))
                continue
            failures.append(f"{url}: checksum mismatch: MD5 {got} ({size:,} bytes), expected {md5}; "
                            "the file was not kept")
            if on_event and base != urls[-1]:
                on_event(Event("note", name, url, message=failures[-1]))
            break
    if part.exists() and part.stat().st_size == 0:
        part.unlink()
    raise DownloadError(f"could not download {name}:\n  " + "\n  ".join(failures))


# ----------------------------------------------------------------------- unpacking
def _write_atomic_from(src, dest: Path, limit: int) -> None:
    """Copy the stream ``src`` to ``dest`` through a temporary file in the same folder."""
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as out:
            n = 0
            for block in iter(lambda: src.read(1 << 20), b""):
                n += len(block)
                if n > limit:
                    raise DownloadError(f"{dest.name}: more than {limit:,} bytes unpacked; not the expected file")
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def gunzip(path: Path, limit: int = MAX_MEMBER_BYTES) -> Path:
    """``x.gz`` unpacked next to it as ``x`` (atomically); returns ``x``."""
    dest = path.with_suffix("")
    try:
        with gzip.open(path, "rb") as src:
            _write_atomic_from(src, dest, limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DownloadError(f"{path}: cannot unpack ({exc})") from None
    return dest


def untar_members(archive: Path, members: tuple[str, ...], dest_root: Path, on_event: OnEvent = None) -> None:
    """Take exactly ``members`` (regular files) out of ``archive`` (tar.gz) into
    ``dest_root/<member path>``; nothing else is extracted, no link or absolute path followed."""
    if on_event:
        on_event(Event("note", archive.name, message=f"unpacking {archive.name} to {dest_root}"))
    wanted = set(members)
    found = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.name not in wanted or m.name in found:
                    continue
                if not m.isreg() or m.size > MAX_MEMBER_BYTES:
                    raise DownloadError(f"{archive}: {m.name} is not a regular file of at most "
                                        f"{MAX_MEMBER_BYTES:,} bytes; not the expected archive")
                dest = dest_root / m.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                _write_atomic_from(src, dest, MAX_MEMBER_BYTES)
                found.add(m.name)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise DownloadError(f"{archive}: cannot unpack ({exc})") from None
    missing = sorted(wanted - found)
    if missing:
        raise DownloadError(f"{archive}: the archive lacks {', '.join(missing)}; not the expected archive")


# ------------------------------------------------------------------------- entry
def _idx_folders(remote: Remote, root: Path) -> list[Path]:
    return [root, root / remote.folder / "raw", root / remote.folder, root / remote.name]


def _idx_present(remote: Remote, root: Path) -> Path | None:
    """The folder under ``root`` holding the training IDX pair (gzipped or not), if any."""
    for folder in _idx_folders(remote, root):
        if all((folder / f).is_file() or (folder / f[:-3]).is_file() for f, _ in remote.files[:2]):
            return folder
    return None


def _cifar_present(remote: Remote, root: Path) -> Path | None:
    folder = root / remote.folder
    needed = [Path(m).name for m in remote.members if m.endswith(".bin")]
    return folder if all((folder / n).is_file() for n in needed) else None


def ensure(name: str, data_dir=None, *, download: bool = False, on_event: OnEvent = None,
           timeout: float | None = None) -> tuple[Path, list[str]]:
    """(folder holding data set ``name``'s files, notices). Looks in the roots (see
    :func:`roots`) first; with ``download`` fetches what is missing into the download root.
    DownloadError (with the URLs, the file names and where to put them) otherwise."""
    remote = REMOTES[name]
    search, target = roots(data_dir)
    notices: list[str] = []
    present = _idx_present if remote.kind == "idx" else _cifar_present
    for root in search:
        hit = present(remote, root)
        if hit is not None:
            return hit, notices
    if remote.kind == "cifar":  # an archive placed by hand (or a download whose unpacking was cut short)
        for root in search:
            archive = root / remote.files[0][0]
            if archive.is_file():
                got = md5_of(archive)
                if got != remote.files[0][1]:
                    raise DownloadError(f"{archive}: MD5 {got}, but the published MD5 of {archive.name} is "
                                        f"{remote.files[0][1]}; delete it (cnnshape downloads it again) or "
                                        f"replace it with the official file from {remote.mirrors[0]}{archive.name}")
                untar_members(archive, remote.members, root, on_event)
                return root / remote.folder, notices
    if not download:
        raise DownloadError(offline_message(remote, search, target, why="downloads are off (--no-download)"))
    folder = target / remote.folder / "raw" if remote.kind == "idx" else target
    urls = mirrors(remote)
    try:
        for fname, md5 in remote.files:
            dest = folder / fname
            if not dest.is_file():
                fetch(fname, md5, folder, urls, timeout=timeout, on_event=on_event)
            if remote.kind == "idx":
                if not dest.with_suffix("").is_file():
                    gunzip(dest)
            else:
                untar_members(dest, remote.members, target, on_event)
    except DownloadError as exc:
        raise DownloadError(f"{exc}\n" + offline_message(remote, search, target)) from None
    notices.append(f"{name}: downloaded and verified (MD5) into {folder}")
    hit = present(remote, target)
    if hit is None:  # cannot happen unless the folder is changed under us
        raise DownloadError(f"{name}: the files were downloaded to {folder} but are not there any more")
    return hit, notices


def offline_message(remote: Remote, search: list[Path], target: Path, why: str = "") -> str:
    """What to fetch, from where, and where to put it, for a machine that cannot download."""
    urls = mirrors(remote)
    where = target / remote.folder / "raw" if remote.kind == "idx" else target
    lines = [f"{remote.name}: the data set is not on this machine"
             + (f" and {why}" if why else "") + f" (looked in {', '.join(str(r) for r in search)})",
             "  download these files (MD5 as published):"]
    for fname, md5 in remote.files:
        lines.append(f"    {fname}  MD5 {md5}  from {' or '.join(u + fname for u in urls)}")
    lines.append(f"  and put them into {where}")
    if remote.kind == "idx":
        lines.append(f"  (gzipped or not; a torchvision root works too: pass --data-dir to the folder that holds "
                     f"{remote.folder}/raw/)")
    else:
        lines.append(f"  (cnnshape unpacks it to {target / remote.folder}; only the binary version is read, "
                     "never the pickled python version)")
        pickled = [r / {"cifar-10-batches-bin": "cifar-10-batches-py",
                             "cifar-100-binary": "cifar-100-python"}[remote.folder] for r in search]
        for p in pickled:
            if p.is_dir():
                lines.append(f"  {p} is torchvision's pickled python version: cnnshape does not unpickle "
                             "downloads, it needs the binary version above")
    lines.append("  or set CNNSHAPE_MIRRORS to a server holding the same file names; --data digits and "
                 "--data shapes work offline")
    return "\n".join(lines)
