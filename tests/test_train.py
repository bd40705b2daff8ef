"""Brief training, data sources, checkpoints and visualisation (CPU, seeded, small)."""

import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnshape.spec import load
from cnnshape.torch_backend.build import BuildError, build
from cnnshape.torch_backend.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cnnshape.torch_backend.data import DataError, load_data, read_idx
from cnnshape.torch_backend.train import TrainError, train

from .conftest import ROOT, SPECS, cli

FM = os.path.join(SPECS, "fashion_mnist.yaml")
SMALL_CNN = """
input: [1, 12, 12]
layers:
  - {type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - ReLU
  - {type: MaxPool2d, kernel_size: 2}
  - Flatten
  - {type: Linear, out_features: 10}
"""


def test_digits_loss_falls_and_beats_chance():
    spec = load(FM)
    ds = load_data("digits", spec.input)
    assert len(ds) == 1797 and ds.num_classes == 10 and tuple(ds.x.shape[1:]) == (1, 28, 28)
    assert any("resized 8x8 to 28x28" in n for n in ds.notices)
    r = train(spec, ds, epochs=3, batch_size=64, lr=0.01, seed=0)
    assert r.stopped is None and len(r.history) == 3
    assert r.history[-1].train_loss < 0.5 * r.history[0].train_loss
    assert r.final.val_accuracy > 0.6  # chance is 0.1


@pytest.mark.parametrize("spec_text,shape", [
    ("input: [1, 24, 24]\nlayers:\n  - {type: Conv2d, out_channels: 8, kernel_size: 3}\n  - ReLU\n"
     "  - {type: AdaptiveAvgPool2d, output_size: 4}\n  - Flatten\n  - {type: Linear, out_features: 8}\n", (1, 24, 24)),
    ("input: [2, 64]\nlayers:\n  - {type: Conv1d, out_channels: 8, kernel_size: 5}\n  - ReLU\n"
     "  - {type: AdaptiveMaxPool1d, output_size: 4}\n  - Flatten\n  - {type: Linear, out_features: 6}\n", (2, 64)),
    ("input: [1, 8, 8, 8]\nlayers:\n  - {type: Conv3d, out_channels: 4, kernel_size: 3}\n  - ReLU\n"
     "  - Flatten\n  - {type: Linear, out_features: 4}\n", (1, 8, 8, 8)),
])
def test_shapes_every_rank_learns(spec_text, shape):
    spec = load(spec_text)
    ds = load_data("shapes", spec.input, samples=600, seed=1)
    assert tuple(ds.x.shape) == (600, *shape)
    r = train(spec, ds, epochs=6, batch_size=32, lr=0.003, optimizer="adam", seed=0)
    chance = 1 / ds.num_classes
    assert r.final.val_accuracy > chance + 0.2, (r.final, chance)
    assert r.history[-1].train_loss < r.history[0].train_loss


def test_output_width_mismatches_are_treated_the_same_for_every_source():
    wide = load(SMALL_CNN)  # 10 outputs
    narrow = load(SMALL_CNN.replace("out_features: 10", "out_features: 4"))
    for name, outputs in (("shapes", 10), ("digits", None)):
        ds = load_data(name, wide.input, samples=100, limit=100, outputs=outputs)
        if ds.num_classes < 10:  # shapes: 8 generated classes for a 10-wide classifier
            r = train(wide, ds, steps=2)
            assert r.steps == 2 and any("never the target" in w for w in r.warnings)
        with pytest.raises(TrainError, match=f"data has {ds.num_classes} classes but the spec outputs 4"):
            train(narrow, ds, steps=1)


def test_one_frozen_config_one_default_lr_and_the_plain_step_matches_torch():
    from cnnshape.torch_backend.train import DEFAULT_LR, TrainConfig, make_optimizer, optimizer_step

    assert TrainConfig(optimizer="adam").learning_rate == DEFAULT_LR["adam"] == 0.001
    assert TrainConfig().optimizer == "momentum" and TrainConfig().learning_rate == DEFAULT_LR["momentum"] == 0.01
    assert TrainConfig(optimizer="adamw").learning_rate == 0.001
    for bad in ({"lr": float("nan")}, {"batch_size": 0}, {"steps": True}, {"val_fraction": 1.0},
                {"optimizer": "rmsprop"}, {"epochs": 2**40}):
        with pytest.raises(TrainError):
            TrainConfig(**bad)
    kinds = {"sgd": (torch.optim.SGD, 0), "momentum": (torch.optim.SGD, 0.9), "adam": (torch.optim.Adam, None),
             "adamw": (torch.optim.AdamW, None)}
    for opt_name, (cls, momentum) in kinds.items():
        opt = make_optimizer(torch.nn.Linear(2, 2).parameters(), TrainConfig(optimizer=opt_name))
        assert type(opt) is cls and (momentum is None or opt.defaults["momentum"] == momentum)
    for opt_name in ("sgd", "momentum", "adam", "adamw"):
        finals = []
        for plain in (True, False):
            torch.manual_seed(0)
            m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                    torch.nn.Linear(8, 2))
            opt = make_optimizer(m.parameters(), TrainConfig(optimizer=opt_name, lr=0.05))
            x, y = torch.randn(3, 1, 4, 4), torch.tensor([0, 1, 1])
            for _ in range(4):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(m(x), y).backward()
                optimizer_step(opt) if plain else opt.step()
            finals.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
        assert torch.equal(*finals)


def test_training_imports_neither_dynamo_nor_sklearn():
    code = ("import sys; from cnnshape.spec import load; from cnnshape.torch_backend.data import load_data; "
            "from cnnshape.torch_backend.train import train; s = load(sys.argv[1]); "
            "r = train(s, load_data('digits', s.input, limit=200), steps=2); "
            "print(r.steps, 'torch._dynamo' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, FM], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.split() == ["2", "False", "False"], out.stderr


def test_single_sample_with_batchnorm_is_a_clear_error():
    spec = load("input: [64]\nlayers: [{type: Linear, out_features: 4}, {type: BatchNorm1d}, "
                "{type: Linear, out_features: 10}]")
    ds = load_data("digits", (64,), limit=10)
    ds = type(ds)(ds.name, ds.x[:1], ds.y[:1], ds.classes, ds.notices)
    with pytest.raises(TrainError, match="BatchNorm needs at least 2"):
        train(spec, ds, steps=1, val_fraction=0)


def test_seed_reproducible_on_cpu():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=300)
    a = train(spec, ds, steps=20, seed=3)
    b = train(spec, ds, steps=20, seed=3)
    c = train(spec, ds, steps=20, seed=4)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_cancel_keeps_weights_and_reports():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=400)
    calls = []
    r = train(spec, ds, epochs=50, batch_size=16, should_stop=lambda: len(calls) >= 1,
              on_progress=calls.append, progress_every=5)
    assert r.stopped == "cancelled" and r.steps == 5 and "step 5" in r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())


def test_nan_loss_stops_naming_the_step_and_keeps_last_good_weights():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=400)
    r = train(spec, ds, epochs=5, lr=1e4, seed=0)
    assert r.stopped == "nan"
    assert f"step {r.steps + 1}" in r.message and "smaller learning rate" in r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())


def test_class_mismatch_is_a_clear_error_with_fix():
    spec = load(SMALL_CNN.replace("out_features: 10", "out_features: 7"))
    ds = load_data("digits", spec.input, limit=100)
    with pytest.raises(TrainError, match=r"(?s)10 classes but the spec outputs 7.*set out_features: 10 on layer 4"):
        train(spec, ds, steps=1)
    spec = load("input: [1, 12, 12]\nlayers:\n  - {type: Conv2d, out_channels: 10, kernel_size: 12}\n")
    with pytest.raises(TrainError, match=r"(?s)outputs \[10, 1, 1\].*add Flatten"):
        train(spec, ds, steps=1)


def test_softmax_endings_get_the_right_loss():
    ds = load_data("digits", (1, 12, 12), limit=300)
    soft = train(load(SMALL_CNN + "  - Softmax\n"), ds, epochs=4, lr=0.05)
    assert any("Softmax" in w and "twice" not in w and "second time" in w for w in soft.warnings)
    logsoft = train(load(SMALL_CNN + "  - LogSoftmax\n"), ds, epochs=4, lr=0.05)
    assert not logsoft.warnings
    for r in (soft, logsoft):
        assert r.history[-1].train_loss < r.history[0].train_loss


def test_bad_options():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=100)
    with pytest.raises(TrainError, match="optimizer"):
        train(spec, ds, optimizer="rmsprop")
    with pytest.raises(TrainError, match="lr must be"):
        train(spec, ds, lr=-1)
    with pytest.raises(TrainError, match=r"samples are \[1, 28, 28\]"):
        train(spec, load_data("digits", (1, 28, 28), limit=100))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_device_is_a_clear_error():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=100)
    with pytest.raises(BuildError, match="CUDA is not available"):
        train(spec, ds, device="cuda", steps=1)
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        with pytest.raises(BuildError, match="MPS is not available"):
            train(spec, ds, device="mps", steps=1)


# ----------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_spec_mismatch(tmp_path):
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=200)
    r = train(spec, ds, steps=10)
    path = save_checkpoint(tmp_path / "ck.pt", r.model, spec, metrics=r.to_dict(), classes=ds.classes, data="digits")
    ck = load_checkpoint(path, spec)
    x = ds.x[:8]
    assert torch.equal(ck.model(x), r.model(x))
    assert ck.classes == ds.classes and ck.metrics["steps"] == 10 and ck.spec == spec
    other = load(SMALL_CNN.replace("out_channels: 8", "out_channels: 6"))
    with pytest.raises(CheckpointError, match=r"(?s)different spec: .*8 vs 6"):
        load_checkpoint(path, other)
    # plain torch can read it without cnnshape types
    raw = torch.load(path, weights_only=True)
    assert set(raw["state_dict"]) == set(r.model.state_dict())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a cnnshape checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_loads_into_exported_plain_pytorch(tmp_path):
    from cnnshape.torch_backend.export import export_python

    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=100)
    r = train(spec, ds, steps=5)
    ck = save_checkpoint(tmp_path / "ck.pt", r.model, spec)
    (tmp_path / "net.py").write_text(export_python(spec))
    code = ("import torch, sys\nsys.path.insert(0, sys.argv[1])\nfrom net import Net, load_sequential_state\n"
            "m = Net()\nstate = torch.load(sys.argv[2], weights_only=True)['state_dict']\n"
            "load_sequential_state(m, state)\nprint(m(torch.zeros(2, 1, 12, 12)).shape)\n"
            "assert not any(k.startswith('cnnshape') for k in sys.modules)\n")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path), str(ck)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([2, 10])" in out.stdout


# ------------------------------------------------------------------ data sources
def _write_idx(path, array, gz):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    head = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    body = head + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(body)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_and_torchvision_layout(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50).astype(np.uint8)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    sfx = ".gz" if gz else ""
    _write_idx(raw / f"train-images-idx3-ubyte{sfx}", images, gz)
    _write_idx(raw / f"train-labels-idx1-ubyte{sfx}", labels, gz)
    assert np.array_equal(read_idx(raw / f"train-images-idx3-ubyte{sfx}"), images)
    ds = load_data("fashion-mnist", (1, 28, 28), data_dir=tmp_path, normalise=False)
    assert len(ds) == 50 and ds.classes[9] == "Ankle boot"
    assert torch.allclose(ds.x[:, 0] * 255, torch.from_numpy(images).float(), atol=1e-3)
    assert torch.equal(ds.y, torch.from_numpy(labels).long())
    with pytest.raises(DataError, match=r"(?s)train-images-idx3-ubyte\.gz  MD5 f68b3c2d.*put them into .*MNIST.raw"
                                        r".*--data-dir"):
        load_data("mnist", (1, 28, 28), data_dir=tmp_path)


def test_idx_reader_rejects_corrupt_files(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(DataError, match="holds 3 bytes"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(p)


def test_folder_dataset(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, cls in enumerate(["dark", "light"]):
        (tmp_path / cls).mkdir()
        for i in range(6):
            v = 40 if k == 0 else 220
            arr = np.clip(rng.normal(v, 10, (20 + i, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "light" / "broken.png").write_bytes(b"nope")
    ds = load_data(f"folder:{tmp_path}", (3, 8, 8), normalise=False)
    assert ds.classes == ("dark", "light") and len(ds) == 12 and tuple(ds.x.shape) == (12, 3, 8, 8)
    assert any("skipped 1 unreadable" in n for n in ds.notices)
    assert ds.x[ds.y == 0].mean() < 0.3 < 0.7 < ds.x[ds.y == 1].mean()
    with pytest.raises(DataError, match="need at least 2"):
        load_data(f"folder:{tmp_path / 'dark'}", (3, 8, 8))


def test_data_errors():
    with pytest.raises(DataError, match="did you mean 'digits'"):
        load_data("digitz", (1, 28, 28))
    with pytest.raises(DataError, match="use --data shapes"):
        load_data("digits", (1, 100))


# ------------------------------------------------------------------------- CLI
def test_cli_train_json_and_viz(tmp_path):
    out = cli("train", FM, "--steps", "30", "--format", "json", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["steps"] == 30 and data["device"] == "cpu" and data["final"]["val_accuracy"] > 0.2
    assert os.path.exists(data["checkpoint"])
    png = tmp_path / "maps.png"
    out = cli("viz", FM, "--checkpoint", data["checkpoint"], "--out", str(png))
    assert out.returncode == 0, out.stderr
    from PIL import Image

    with Image.open(png) as im:
        assert im.width > 50 and im.height > 100
    bad = cli("train", FM, "--device", "cuda")
    if not torch.cuda.is_available():
        assert bad.returncode == 2 and "CUDA is not available" in bad.stderr and "Traceback" not in bad.stderr


def test_ctrl_c_stops_cleanly_keeping_the_weights():
    spec = load(SMALL_CNN)
    ds = load_data("digits", spec.input, limit=300)

    def interrupt(p):
        if p.step >= 10:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    r = train(spec, ds, epochs=20, batch_size=16, on_progress=interrupt, progress_every=5)
    assert r.stopped == "interrupted" and r.steps == 10 and "step 10" in r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())


def test_viz_reaches_into_blocks():
    from cnnshape.analysis import analyze
    from cnnshape.torch_backend import viz
    from cnnshape.torch_backend.build import build

    spec = load(os.path.join(SPECS, "resnet_small_32.yaml"))
    model = build(spec)
    rows = {r.path: r for lr in analyze(spec).layers for r in lr.walk()}
    x = torch.randn(*spec.input)
    for path in ("layer2.conv1", "layer2.shortcut.0", "layer3", "fc"):
        assert viz.feature_maps(model, x, path).shape == rows[path].output
    assert viz.filters(model, "layer2.shortcut.0").shape == (32, 16, 1, 1)
    assert "layer2.conv1" in viz.conv_layers(model)
    with pytest.raises(viz.VizError, match="did you mean 'layer2.conv"):
        viz.child(model, "layer2.conv")


def test_viz_of_1d_nets_draws_line_plots(tmp_path):
    from PIL import Image

    from cnnshape.torch_backend import viz

    wave = np.sin(np.linspace(0, 20, 8000))
    maps = viz.maps_panel("maps", np.stack([wave, -wave, wave * 0]))
    assert maps.kind == "lines" and len(maps.tiles) == 3
    assert viz.maps_panel("many", np.zeros((40, 100))).title.endswith("(first 16 of 40 channels)")
    out = viz.write_png(tmp_path / "a.png", [viz.input_panel("x", torch.from_numpy(wave[None]).float()), maps])
    with Image.open(out) as im:
        assert im.width < 1000 and 150 < im.height < 400  # not an 8000-pixel strip
        box = np.asarray(im.convert("L"))[20:76, 121:840]   # the input's plot box
        lit = (box > 150).any(axis=1)
        assert lit.sum() > 30  # the sine wave spans the plot's height
    from cnnshape.torch_backend import viz as v

    assert v.filters_panel("f", np.zeros((32, 1, 80))).kind == "lines"
    assert v.filters_panel("f", np.zeros((8, 3, 3, 3))).kind == "image"


def test_viz_image_any_size_and_repeated_layers(tmp_path):
    """One picture of any size and mode, converted and resized with notes; every --layer
    kept; the hand-set edge filters' maps equal torch's conv2d of the same picture."""
    from click.testing import CliRunner
    from PIL import Image

    from cnnshape.cli import main
    from cnnshape.torch_backend import viz

    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (90, 300, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "edges.png"
    spec = os.path.join(SPECS, "edge_filters.yaml")
    res = CliRunner().invoke(main, ["viz", spec, "--image", str(photo), "--layer", "edges", "--layer", "pooled",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "converted RGB to grey" in res.stderr and "resized 300x90 to 128x128" in res.stderr
    assert "edges: feature maps [3, 126, 126]" in res.stdout and "pooled: feature maps [3, 63, 63]" in res.stdout
    x, notes = viz.load_image(photo, (1, 128, 128))
    with Image.open(photo) as im:
        grey = np.asarray(im.convert("L").resize((128, 128), Image.BILINEAR), dtype=np.float32) / 255
    assert torch.allclose(x[0], torch.from_numpy((grey - grey.mean()) / grey.std()), atol=1e-5)
    model = build(load(spec))
    sobel = torch.tensor([[[-1, -2, -1], [0, 0, 0], [1, 2, 1]], [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
                          [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]], dtype=torch.float32)[:, None]
    expect = torch.nn.functional.conv2d(x[None], sobel)[0]
    assert np.allclose(viz.feature_maps(model, x, "edges"), expect.numpy(), atol=1e-4)
    with Image.open(out) as im:
        assert im.height > 300
    res = CliRunner().invoke(main, ["viz", os.path.join(SPECS, "m5_audio_1d.yaml"), "--image", str(photo),
                                    "--out", str(out)])
    assert res.exit_code == 1 and "is not [1, H, W]" in res.stderr
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    res = CliRunner().invoke(main, ["viz", spec, "--image", str(tmp_path / "bad.png"), "--out", str(out)])
    assert res.exit_code == 1 and "cannot read the picture" in res.stderr and "Traceback" not in res.output
