"""cnnshape's training loop vs a plain hand-written PyTorch loop (run: python benchmarks/bench_train.py).

Same model (the compiled spec, same initial weights), same data (digits fitted to the
spec, already tensors in memory), same batch size, optimizer (SGD, momentum 0.9), and
the same number of steps; CPU; the two are interleaved A/B/A/B in one process and the
median images/s of each is compared. The hand loop is what a tutorial writes, minus the
DataLoader (which would only make it slower): randperm, index, forward, loss, backward,
step, ``loss.item()``.

Small nets are the hard case (per-step overhead matters most), so both a tiny net
(fashion_mnist: 44k params) and a larger one (convnet_notebook) are measured.

Also, side by side (``--process``): the whole ``cnnshape train specs/fashion_mnist.yaml``
process now, the same process made to pay the imports the old path paid
(``torch._dynamo`` via ``optimizer.step``, ``sklearn.datasets`` for the digits), and a
bare ``import torch`` (the floor); and (``--threads``) the 78 training steps of that run
with one thread against torch's default thread count.
"""

import subprocess

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def hand_loop(model, x, y, batch_size, steps, lr):
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    n = x.shape[0]
    done = 0
    t = time.perf_counter()
    while done < steps:
        perm = torch.randperm(n)
        for b in range(0, n - batch_size + 1, batch_size):
            if done >= steps:
                break
            idx = perm[b:b + batch_size]
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            done += 1
    return steps * batch_size / (time.perf_counter() - t)


def ours(spec, ds, batch_size, steps, lr, model):
    from cnnshape.torch_backend.train import train

    t = time.perf_counter()
    r = train(spec, ds, device="cpu", steps=steps, batch_size=batch_size, lr=lr, val_fraction=0.0, model=model)
    return r.steps * batch_size / (time.perf_counter() - t)


def main(repeats: int = 5, steps: int = 150, batch_size: int = 64):
    import torch

    from cnnshape.spec import load
    from cnnshape.torch_backend.build import build
    from cnnshape.torch_backend.data import load_data

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch_size}, {steps} steps per run, "
          f"{repeats} interleaved runs each")
    for name in ("fashion_mnist", "convnet_notebook"):
        spec = load(os.path.join(ROOT, "specs", f"{name}.yaml"))
        ds = load_data("digits", spec.input)
        torch.manual_seed(0)
        init = build(spec, dtype="float32").state_dict()
        a, b = [], []
        for r in range(repeats + 1):
            m1 = build(spec, dtype="float32")
            m1.load_state_dict(init)
            m2 = build(spec, dtype="float32")
            m2.load_state_dict(init)
            ips_hand = hand_loop(m1, ds.x, ds.y, batch_size, steps, 0.01)
            ips_ours = ours(spec, ds, batch_size, steps, 0.01, m2)
            if r:  # first round warms up both
                a.append(ips_hand)
                b.append(ips_ours)
        ha, ob = statistics.median(a), statistics.median(b)
        print(f"{name:18s} hand loop {ha:9,.0f} img/s   cnnshape.train {ob:9,.0f} img/s   ratio {ob / ha:.3f}")


def process_times(repeats: int = 5) -> None:
    """Median wall time of fresh processes, interleaved."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("OMP_NUM_THREADS", None)
    spec = os.path.join(ROOT, "specs", "fashion_mnist.yaml")
    runs = {
        "import torch (floor)": [sys.executable, "-c", "import torch"],
        "cnnshape train (now)": [sys.executable, "-m", "cnnshape", "train", spec, "--device", "cpu"],
        "+ old imports (dynamo, sklearn)": [
            sys.executable, "-c", "import sys, torch, torch._dynamo, sklearn.datasets; from cnnshape.cli import main; "
            "sys.argv[0] = 'cnnshape'; main()", "train", spec, "--device", "cpu"],
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, cmd in runs.items():
            t = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, check=True)
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["cnnshape train (now)"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:34s} median {m:6.2f} s  (min {min(ts):.2f}, max {max(ts):.2f})  ratio to now {m / base:.2f}")


def threads(repeats: int = 5) -> None:
    """The CLI's 78 steps (digits, fashion_mnist, batch 64, 3 epochs) at 1 thread vs the default."""
    import torch

    from cnnshape.spec import load
    from cnnshape.torch_backend.data import load_data
    from cnnshape.torch_backend.train import train

    spec = load(os.path.join(ROOT, "specs", "fashion_mnist.yaml"))
    ds = load_data("digits", spec.input)
    default = torch.get_num_threads()
    times: dict[int, list[float]] = {1: [], default: []}
    os.environ["OMP_NUM_THREADS"] = "set"  # train() then leaves the thread count alone
    for _ in range(repeats):
        for n in times:
            torch.set_num_threads(n)
            t = time.perf_counter()
            train(spec, ds, epochs=3)
            times[n].append(time.perf_counter() - t)
    for n, ts in times.items():
        print(f"78 steps with {n:2d} thread(s): median {statistics.median(ts):.2f} s (min {min(ts):.2f}, "
              f"max {max(ts):.2f})")


if __name__ == "__main__":
    if "--process" in sys.argv:
        process_times()
    elif "--threads" in sys.argv:
        threads()
    else:
        main()
