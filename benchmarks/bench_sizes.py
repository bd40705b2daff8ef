"""Side-by-side benchmark of `cnnshape sizes` (run: python benchmarks/bench_sizes.py [--quick]).

For each network, the analytic answer (every input size at once, both axes) against a
brute-force loop over sizes 1..1024 on each axis that answers the same question by trying:

- "analysis per size": cnnshape's own analysis (analyze at that input; the spec loaded
  once) per size;
- "torch meta per size": the compiled torch model run forward on the meta device (shapes
  only, no arithmetic: the cheapest honest torch brute force) per size. With --quick, or
  when a full loop would take over a minute, it runs on an evenly spaced sample of the
  sizes and the time is scaled to 1,024 sizes (the line says so).

Networks: ResNet-50 (specs/resnet50.yaml, both axes), and a 1,005-layer spec (3x3 convs
with BatchNorm and ReLU, a residual block every 50 layers, a MaxPool2d(2) every 200).
Figures are CPU time of this process (time.process_time: the machine is shared, and wall
time there measures the other processes), best of 20 in-process runs for the analytic
engine (and their median).
"""

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("OMP_NUM_THREADS", "1")

SIZES = range(1, 1025)


def deep_spec(groups: int = 20) -> dict:
    """20 groups of 50 layers (16 x [3x3 conv, BatchNorm, ReLU] + a residual block of a 3x3
    conv and a ReLU), a MaxPool2d(2) after every 4th group: 1,005 layers."""
    conv = {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}
    layers: list = []
    for g in range(groups):
        layers += [conv, "BatchNorm2d", "ReLU"] * 16
        layers.append({"type": "Residual", "body": [conv, "ReLU"]})
        if g % 4 == 3:
            layers.append({"type": "MaxPool2d", "kernel_size": 2})
    return {"input": [3, 224, 224], "layers": layers}


def best(fn, runs=20):
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times), statistics.median(times)


def per_size_analysis(spec, dims, sizes):
    """cnnshape's analysis at every size (the spec loaded once, its input replaced)."""
    from cnnshape.analysis import analyze
    from cnnshape.spec import load

    loaded = load(spec)
    base = list(loaded.input)
    t = time.process_time()
    for d in dims:
        for n in sizes:
            shape = list(base)
            shape[d] = n
            analyze(loaded.replace(input=tuple(shape)))
    return time.process_time() - t


def per_size_torch_meta(spec, dims, sizes):
    import warnings

    import torch

    from cnnshape.spec import load
    from cnnshape.torch_backend.build import build

    model = build(spec, device="meta").eval()
    base = list(load(spec).input)
    t = time.process_time()
    for d in dims:
        for n in sizes:
            shape = list(base)
            shape[d] = n
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model(torch.empty(1, *shape, device="meta"))
            except Exception:  # noqa: BLE001 - a failing size is an answer
                pass
    return time.process_time() - t


def row(label, seconds, ref):
    print(f"  {label:<44} {seconds * 1000:>12,.1f} ms   {seconds / ref:>10,.0f} x")


def main(quick: bool = False):
    import torch

    from cnnshape.analysis import analyze, check
    from cnnshape.sizes import sizes
    from cnnshape.spec import load

    torch.set_num_threads(1)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs, 1 thread")
    ref, _ = best(lambda: sum(i * i for i in range(10**6)), 3)
    print(f"CPU time (time.process_time); loadavg {os.getloadavg()[0]:.1f}; reference pure-Python loop "
          f"(sum of 10**6 squares) {ref * 1000:.0f} ms")
    r50 = os.path.join(ROOT, "specs", "resnet50.yaml")
    for title, spec in (("ResNet-50 (specs/resnet50.yaml)", r50), ("1,005-layer spec", deep_spec())):
        report = check(spec)
        assert report.ok, report.errors
        res = sizes(report)
        dims = [a.dim for a in res.axes]
        t_sizes, med = best(lambda: sizes(report))
        t_all, _ = best(lambda: sizes(analyze(load(spec))))
        n_leaf = sum(1 for r in report.layers for x in r.walk() if x.layer is not None and not x.layer.is_block)
        print(f"\n{title}: {n_leaf} layers, input {list(res.input)}")
        print(f"  answer: {res.summary}; no pixel dropped: "
              + "; ".join(" or ".join(g.text(a.axis) for g in a.no_drop[:2]) for a in res.axes))
        print(f"  {'method (both axes, every size)':<44} {'time':>15}   {'vs sizes':>10}")
        row("cnnshape sizes (report given)", t_sizes, t_sizes)
        row("cnnshape sizes (load + analyze + sizes)", t_all, t_sizes)
        sample = SIZES if not quick else range(1, 1025, 64)
        t_an = per_size_analysis(spec, dims, sample) * len(SIZES) / len(sample)
        row("analysis per size, 1..1024" + (" (sampled, scaled)" if quick else ""), t_an, t_sizes)
        # torch meta: sample first, run the full loop only if it takes under a minute
        probe = range(1, 1025, 64)
        t_probe = per_size_torch_meta(spec, dims, probe) * len(SIZES) / len(probe)
        if quick or t_probe > 60:
            row(f"torch meta forward per size ({len(probe)} sizes, scaled)", t_probe, t_sizes)
        else:
            row("torch meta forward per size, 1..1024", per_size_torch_meta(spec, dims, SIZES), t_sizes)
        print(f"  (median of the 20 'report given' runs: {med * 1000:.1f} ms; targets: ResNet-50 <= 20 ms, "
              "1,000 layers <= 100 ms)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
