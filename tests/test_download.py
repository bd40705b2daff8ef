"""Downloads against a loopback HTTP server (127.0.0.1, started here): never the internet.

The server serves small archives generated in the real formats (IDX gz, CIFAR binary
tar.gz); the tests replace the official mirrors and MD5 sums with the loopback ones
(``REMOTES``) and use ``CNNSHAPE_MIRRORS`` as an air-gapped site would.
"""

import dataclasses
import gzip
import hashlib
import io
import json
import os
import socket
import struct
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnshape.torch_backend import download as dl
from cnnshape.torch_backend.data import DataError, load_data

#: the sources as shipped (the fixture below replaces every mirror with a loopback one)
PUBLISHED = dict(dl.REMOTES)


# ------------------------------------------------------------------ generated data
def idx_bytes(array: np.ndarray) -> bytes:
    head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def learnable_images(labels: np.ndarray, side: int, channels: int, seed: int) -> np.ndarray:
    """Noise plus a bright band whose place is the class: a net can learn it in a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (len(labels), channels, side, side)).astype(np.uint8)
    k = int(labels.max()) + 1
    for i, c in enumerate(labels):
        row = int(c) * (side - 2) // max(k - 1, 1)
        x[i, :, row:row + 2, :] = 250
    return x


def make_idx_set(n: int = 240, seed: int = 0) -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    """The four IDX .gz files of an MNIST-like set (n training, n // 4 test images)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = learnable_images(y, 28, 1, seed)[:, 0]
    yt = rng.integers(0, 10, n // 4).astype(np.uint8)
    xt = learnable_images(yt, 28, 1, seed + 1)[:, 0]
    files = {"train-images-idx3-ubyte.gz": gz(idx_bytes(x)), "train-labels-idx1-ubyte.gz": gz(idx_bytes(y)),
             "t10k-images-idx3-ubyte.gz": gz(idx_bytes(xt)), "t10k-labels-idx1-ubyte.gz": gz(idx_bytes(yt))}
    return files, x, y


def make_cifar(kind: str, per_file: int = 60, seed: int = 0):
    """(archive bytes, train images [N, 3, 32, 32], train labels) in the CIFAR binary layout."""
    rng = np.random.default_rng(seed)
    k = 10 if kind == "cifar10" else 100
    label_bytes = 1 if kind == "cifar10" else 2
    train_names = [f"data_batch_{i}.bin" for i in range(1, 6)] if kind == "cifar10" else ["train.bin"]
    folder = "cifar-10-batches-bin" if kind == "cifar10" else "cifar-100-binary"
    members, xs, ys = {}, [], []
    for name in train_names + ["test_batch.bin" if kind == "cifar10" else "test.bin"]:
        y = rng.integers(0, k, per_file).astype(np.uint8)
        x = learnable_images(y, 32, 3, int(rng.integers(1 << 30)))
        labels = y[:, None] if label_bytes == 1 else np.stack([y // 5, y], 1).astype(np.uint8)  # coarse, fine
        members[f"{folder}/{name}"] = np.concatenate([labels, x.reshape(per_file, -1)], 1).tobytes()
        if name in train_names:
            xs.append(x)
            ys.append(y)
    if kind == "cifar10":
        members[f"{folder}/batches.meta.txt"] = "\n".join(
            ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]).encode() + b"\n\n"
    else:
        members[f"{folder}/fine_label_names.txt"] = "\n".join(f"fine{i}" for i in range(100)).encode()
        members[f"{folder}/coarse_label_names.txt"] = "\n".join(f"coarse{i}" for i in range(20)).encode()
    members[f"{folder}/readme.html"] = b"<html>not taken out</html>"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), np.concatenate(xs), np.concatenate(ys)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------ loopback server
class Loopback:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> serving ``files`` with Range support.

    ``behaviour[path]``: "404"; "corrupt" (one byte flipped); ("cut", n) (announces the
    whole length, sends n bytes, closes); ("stall", n) (sends n bytes, then nothing until
    the test ends); "norange" (ignores Range: answers 200 with the whole file)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.behaviour: dict[str, object] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append((self.path, self.headers.get("Range")))
                how = outer.behaviour.get(name)
                if name not in outer.files or how == "404":
                    self.send_error(404)
                    return
                body = outer.files[name]
                if how == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = 0
                rng = self.headers.get("Range")
                if rng and how != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if isinstance(how, tuple):
                    self.wfile.write(body[start:start + how[1]])
                    self.wfile.flush()
                    if how[0] == "stall":
                        outer.release.wait(30)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Loopback({})
    yield srv
    srv.close()


@pytest.fixture
def dead_port():
    """A loopback port that refuses connections (stands in for the official mirrors)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def offline(monkeypatch, dead_port, tmp_path):
    """No test here can reach the internet: every official mirror is a refused loopback port,
    the cache is a temporary folder, and the timeouts are short."""
    for name, remote in dl.REMOTES.items():
        monkeypatch.setitem(dl.REMOTES, name, dataclasses.replace(remote, mirrors=(dead_port,)))
    monkeypatch.delenv("CNNSHAPE_MIRRORS", raising=False)
    monkeypatch.delenv("CNNSHAPE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dl, "TIMEOUT_S", 1.0)


def serve(monkeypatch, server, name: str, files: dict[str, bytes]):
    """Serve ``files`` as data set ``name`` from ``server`` (via CNNSHAPE_MIRRORS), with their MD5s."""
    server.files.update(files)
    remote = dl.REMOTES[name]
    monkeypatch.setitem(dl.REMOTES, name, dataclasses.replace(
        remote, files=tuple((f, md5(files[f])) for f, _ in remote.files)))
    monkeypatch.setenv("CNNSHAPE_MIRRORS", server.url)


# ------------------------------------------------------------------------ tests
def test_published_checksums_are_the_ones_torchvision_uses():
    """The mirrors and MD5s are torchvision's, read from its source (torchvision/datasets/
    mnist.py, parsed, not imported); CIFAR's binary MD5s are the Toronto page's."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchvision is not installed")
    tree = ast.parse((Path(list(spec.submodule_search_locations)[0]) / "datasets" / "mnist.py").read_text())
    classes = {c.name: {t.id: ast.literal_eval(a.value) for a in c.body if isinstance(a, ast.Assign)
                        for t in a.targets if isinstance(t, ast.Name) and t.id in ("mirrors", "resources")}
               for c in tree.body if isinstance(c, ast.ClassDef)}
    for name, cls in (("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")):
        assert dict(PUBLISHED[name].files) == dict(classes[cls]["resources"])
        assert list(PUBLISHED[name].mirrors) == list(classes[cls]["mirrors"])
    assert PUBLISHED["cifar10"].files == (("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),)
    assert PUBLISHED["cifar100"].files == (("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"),)


def test_good_download_unpacks_verifies_and_caches(monkeypatch, server, tmp_path):
    files, x, y = make_idx_set()
    serve(monkeypatch, server, "fashion-mnist", files)
    events = []
    ds = load_data("fashion-mnist", (1, 28, 28), download=True, on_download=events.append, normalise=False)
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(list(files) + [f[:-3] for f in files])
    assert np.array_equal(ds.y.numpy(), y) and ds.classes[9] == "Ankle boot"
    assert np.allclose(ds.x[:, 0].numpy() * 255, x, atol=1e-3)
    assert any("downloaded and verified" in n for n in ds.notices)
    assert [e.file for e in events if e.kind == "done"] == list(files)
    assert events[-1].done == len(files["t10k-labels-idx1-ubyte.gz"])
    # cached: a second load asks nothing of the server, even with downloads off
    n = len(server.requests)
    load_data("fashion-mnist", (1, 28, 28), download=False)
    assert len(server.requests) == n


def test_resumed_download_asks_for_the_rest(monkeypatch, server, tmp_path):
    files, _, y = make_idx_set(n=400)
    serve(monkeypatch, server, "mnist", files)
    big = "train-images-idx3-ubyte.gz"
    server.behaviour[big] = ("cut", 5000)
    with pytest.raises(DataError, match=r"closed after 5,000 of [\d,]+ bytes; run again to resume"):
        load_data("mnist", (1, 28, 28), download=True)
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "MNIST" / "raw"
    assert (raw / f"{big}.part").stat().st_size == 5000 and not (raw / big).exists()
    del server.behaviour[big]
    ds = load_data("mnist", (1, 28, 28), download=True)
    assert ("/" + big, "bytes=5000-") in server.requests
    assert np.array_equal(ds.y.numpy(), y) and not (raw / f"{big}.part").exists()
    assert md5((raw / big).read_bytes()) == md5(files[big])


def test_server_ignoring_range_restarts_cleanly(monkeypatch, server, tmp_path):
    files, _, _ = make_idx_set()
    serve(monkeypatch, server, "mnist", files)
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz.part").write_bytes(b"stale bytes of another try")
    server.behaviour["train-images-idx3-ubyte.gz"] = "norange"
    load_data("mnist", (1, 28, 28), download=True)
    assert (raw / "train-images-idx3-ubyte.gz").read_bytes() == files["train-images-idx3-ubyte.gz"]


def test_stale_part_that_fails_the_checksum_is_fetched_again_whole(monkeypatch, server, tmp_path):
    files, _, _ = make_idx_set()
    serve(monkeypatch, server, "mnist", files)
    name = "train-labels-idx1-ubyte.gz"
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / f"{name}.part").write_bytes(b"\xff" * 10)  # wrong first bytes: the resumed file fails its MD5
    events = []
    load_data("mnist", (1, 28, 28), download=True, on_download=events.append)
    assert (raw / name).read_bytes() == files[name]
    assert any("fetching it again whole" in e.message for e in events)
    assert [r for p, r in server.requests if p.endswith(name)] == ["bytes=10-", None]


def test_corrupted_download_is_refused_and_nothing_kept(monkeypatch, server, tmp_path):
    files, _, _ = make_idx_set()
    serve(monkeypatch, server, "kmnist", files)
    server.behaviour["train-images-idx3-ubyte.gz"] = "corrupt"
    with pytest.raises(DataError) as err:
        load_data("kmnist", (1, 28, 28), download=True)
    msg = str(err.value)
    assert "checksum mismatch" in msg and md5(files["train-images-idx3-ubyte.gz"]) in msg
    assert "the file was not kept" in msg and "Traceback" not in msg
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "KMNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte.gz").exists()
    assert not (raw / "train-images-idx3-ubyte.gz.part").exists()
    assert not (raw / "train-images-idx3-ubyte").exists()


def test_stalling_server_times_out_in_seconds(monkeypatch, tmp_path):
    """One server accepts and never answers (a listening socket nobody serves); another
    sends the headers and some bytes then goes silent: both end in ~TIMEOUT_S, not a hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        monkeypatch.setenv("CNNSHAPE_MIRRORS", f"http://127.0.0.1:{listener.getsockname()[1]}/")
        t = time.perf_counter()
        with pytest.raises(DataError, match="no answer within 1 s"):
            load_data("fashion-mnist", (1, 28, 28), download=True)
        assert time.perf_counter() - t < 10
    finally:
        listener.close()
    srv = Loopback({})
    try:
        files, _, _ = make_idx_set()
        serve(monkeypatch, srv, "fashion-mnist", files)
        srv.behaviour["train-images-idx3-ubyte.gz"] = ("stall", 3000)
        t = time.perf_counter()
        with pytest.raises(DataError, match=r"stalled \(no data for 1 s\) after 3,000 bytes"):
            load_data("fashion-mnist", (1, 28, 28), download=True)
        assert time.perf_counter() - t < 10
    finally:
        srv.close()


def test_404_on_the_first_mirror_then_the_second(monkeypatch, server):
    files, _, y = make_idx_set()
    second = Loopback(files)
    try:
        serve(monkeypatch, server, "mnist", files)
        server.behaviour.update({f: "404" for f in files})
        monkeypatch.setenv("CNNSHAPE_MIRRORS", f"{server.url},{second.url}")
        events = []
        ds = load_data("mnist", (1, 28, 28), download=True, on_download=events.append)
        assert np.array_equal(ds.y.numpy(), y)
        notes = [e.message for e in events if e.kind == "note"]
        assert any("HTTP 404" in n and "trying the next mirror" in n for n in notes)
        assert len(second.requests) == 4
    finally:
        second.close()


def test_offline_message_names_urls_files_and_folder(monkeypatch, tmp_path, dead_port):
    with pytest.raises(DataError) as err:
        load_data("fashion-mnist", (1, 28, 28))  # downloads are off by default in the API
    msg = str(err.value)
    raw = tmp_path / "xdg" / "cnnshape" / "data" / "FashionMNIST" / "raw"
    for f, _ in dl.REMOTES["fashion-mnist"].files:
        assert f"{dead_port}{f}" in msg
    assert f"put them into {raw}" in msg and "--no-download" in msg and "CNNSHAPE_MIRRORS" in msg
    with pytest.raises(DataError) as err:  # download on, nothing reachable: the same instructions
        load_data("cifar10", (3, 32, 32), download=True)
    msg = str(err.value)
    assert "cannot connect" in msg and f"{dead_port}cifar-10-binary.tar.gz" in msg
    assert "never the pickled python version" in msg


def test_a_torchvision_root_keeps_working(monkeypatch, server, tmp_path):
    """Files where torchvision puts them (./data/FashionMNIST/raw) are used, nothing fetched."""
    files, _, y = make_idx_set()
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f, data in files.items():
        (raw / f).write_bytes(data)
    serve(monkeypatch, server, "fashion-mnist", files)
    ds = load_data("fashion-mnist", (1, 28, 28), download=True)
    assert np.array_equal(ds.y.numpy(), y) and server.requests == []
    monkeypatch.setenv("CNNSHAPE_DATA", str(tmp_path / "elsewhere"))  # CNNSHAPE_DATA overrides where to look
    with pytest.raises(DataError, match="elsewhere"):
        load_data("fashion-mnist", (1, 28, 28))


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_binary_download_and_layout(monkeypatch, server, tmp_path, kind):
    archive, x, y = make_cifar(kind)
    fname = dl.REMOTES[kind].files[0][0]
    serve(monkeypatch, server, kind, {fname: archive})
    ds = load_data(kind, (3, 32, 32), data_dir=tmp_path / "d", download=True, normalise=False)
    assert np.array_equal(ds.y.numpy(), y)
    assert np.allclose(ds.x.numpy() * 255, x, atol=1e-3)  # planes R, G, B in record order
    folder = tmp_path / "d" / dl.REMOTES[kind].folder
    assert not (folder / "readme.html").exists()  # only the named members are taken out
    assert ds.classes[0] == ("airplane" if kind == "cifar10" else "fine0") and len(ds.classes) == len(set(ds.classes))
    # an archive placed by hand is checked, then unpacked
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / fname).write_bytes(archive[:-1] + bytes([archive[-1] ^ 1]))
    with pytest.raises(DataError, match="published MD5"):
        load_data(kind, (3, 32, 32), data_dir=hand)
    (hand / fname).write_bytes(archive)
    assert np.array_equal(load_data(kind, (3, 32, 32), data_dir=hand).y.numpy(), y)


def test_idx_gz_is_unpacked_atomically(tmp_path):
    src = tmp_path / "a.gz"
    src.write_bytes(gz(b"x" * 1000))
    assert dl.gunzip(src).read_bytes() == b"x" * 1000
    src.write_bytes(gz(b"y" * 1000))
    with pytest.raises(dl.DownloadError, match="more than 10 bytes"):
        dl.gunzip(src, limit=10)
    assert (tmp_path / "a").read_bytes() == b"x" * 1000  # the old file stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.gz"]


SMALL_RGB = """
input: [3, 32, 32]
layers:
  - {type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - ReLU
  - {type: MaxPool2d, kernel_size: 4}
  - Flatten
  - {type: Linear, out_features: %d}
"""


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100"])
def test_train_a_few_steps_on_each_generated_set(monkeypatch, server, tmp_path, kind):
    """Download from the loopback mirror, load through the real code, train: the CLI, JSON out."""
    from click.testing import CliRunner

    from cnnshape.cli import main

    if kind.startswith("cifar"):
        archive, _, _ = make_cifar(kind, per_file=120 if kind == "cifar10" else 400)
        serve(monkeypatch, server, kind, {dl.REMOTES[kind].files[0][0]: archive})
        spec = tmp_path / "net.yaml"
        spec.write_text(SMALL_RGB % (10 if kind == "cifar10" else 100))
    else:
        files, _, _ = make_idx_set(n=400)
        serve(monkeypatch, server, kind, files)
        from tests.test_train import FM
        spec = FM
    res = CliRunner().invoke(main, ["train", str(spec), "--data", kind, "--steps", "30", "--batch-size", "32",
                                    "--device", "cpu", "--format", "json", "--lr", "0.05"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["steps"] == 30 and out["data"] == kind
    final = out["final"]
    assert np.isfinite(final["train_loss"])
    if kind != "cifar100":  # 10 classes, a band per class: far above chance after 30 steps
        assert final["val_accuracy"] > 0.5, final


def test_cli_no_download_and_quiet(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from cnnshape.cli import main
    from tests.test_train import FM

    res = CliRunner().invoke(main, ["train", FM, "--data", "kmnist", "--no-download", "--quiet",
                                    "--data-dir", str(tmp_path / "k")])
    assert res.exit_code == 1
    assert "downloads are off" in res.stderr and "train-images-idx3-ubyte.gz" in res.stderr
    assert "Traceback" not in res.output


def test_download_view_lines_when_piped():
    from rich.console import Console

    from cnnshape.commands.train_cmds import DownloadView

    buf = io.StringIO()
    view = DownloadView(Console(file=buf, force_terminal=False, width=200))
    view(dl.Event("start", "f.gz", "http://x/f.gz", 0, 10))
    view(dl.Event("bytes", "f.gz", "http://x/f.gz", 5, 10))
    view(dl.Event("done", "f.gz", "http://x/f.gz", 10, 10))
    view.close()
    assert buf.getvalue().splitlines() == ["downloading http://x/f.gz", "downloaded f.gz (10 bytes), MD5 verified"]
    quiet = io.StringIO()
    view = DownloadView(Console(file=quiet, force_terminal=True), quiet=True)
    view(dl.Event("start", "f.gz", "http://x/f.gz", 0, 10))
    view(dl.Event("note", "f.gz", message="m"))
    assert quiet.getvalue() == ""


def test_studio_train_panel_shows_the_download(monkeypatch, server, tmp_path):
    """The train panel downloads a missing set from the (loopback) mirror, logs each
    verified file, then trains."""
    import shutil

    from cnnshape.tui.app import DesignApp
    from tests.test_train import FM
    from tests.test_tui import SIZE, _wait, open_train, train_to_end

    files, _, _ = make_idx_set(n=200)
    serve(monkeypatch, server, "fashion-mnist", files)
    spec = tmp_path / "fm.yaml"
    shutil.copy(FM, spec)
    app = DesignApp(str(spec))

    async def main():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = await open_train(pilot, data="fashion-mnist", path=str(tmp_path / "dl"), steps="5")
            result = await train_to_end(pilot, screen)
            await _wait(pilot, lambda: not screen.running)
            log = "\n".join(screen.log_lines)
            assert result.steps == 5, log
            assert "downloaded train-images-idx3-ubyte.gz" in log and "MD5 verified" in log, log
            assert "downloaded and verified" in log, log

    import asyncio

    asyncio.run(main())
    assert (tmp_path / "dl" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_a_folder_that_cannot_be_made_is_one_clear_error(monkeypatch, server, tmp_path):
    files, _, _ = make_idx_set()
    serve(monkeypatch, server, "mnist", files)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DataError, match="cannot create .*a-file.*--data-dir or CNNSHAPE_DATA"):
        load_data("mnist", (1, 28, 28), data_dir=tmp_path / "a-file" / "sub", download=True)
    assert server.requests == []


def test_cache_folder_and_check_never_imports_the_downloader(monkeypatch, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, SPECS

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if sys.platform.startswith("linux"):
        assert dl.cache_dir() == tmp_path / "home" / ".cache" / "cnnshape" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert dl.cache_dir() == tmp_path / "x" / "cnnshape" / "data"
    assert dl.roots(None) == ([Path("data"), tmp_path / "x" / "cnnshape" / "data"], tmp_path / "x" / "cnnshape" / "data")
    code = ("import sys\nfrom cnnshape.cli import main\ntry:\n    main(['check', sys.argv[1]])\nexcept SystemExit:\n"
            "    pass\nbad = [m for m in sys.modules if m.endswith('download') or m.startswith(('urllib.request', "
            "'tarfile', 'torch'))]\nassert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code, f"{SPECS}/fashion_mnist.yaml"], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX flock")
def test_a_second_downloader_waits_for_the_first(monkeypatch, server, tmp_path):
    """While another process holds the folder (flock), a download waits, says so, then
    finds the file the other one finished and asks the server for nothing."""
    import fcntl

    files, _, _ = make_idx_set()
    serve(monkeypatch, server, "mnist", files)
    folder = tmp_path / "d" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    events, result = [], {}

    def other():
        result["path"] = dl.fetch("train-labels-idx1-ubyte.gz", md5(files["train-labels-idx1-ubyte.gz"]), folder,
                                  [server.url], on_event=events.append)

    t = threading.Thread(target=other)
    t.start()
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events and "another process is downloading" in events[0].message
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(files["train-labels-idx1-ubyte.gz"])  # the other finished
    os.close(fd)
    t.join(10)
    assert result["path"] == folder / "train-labels-idx1-ubyte.gz" and server.requests == []
