"""Side-by-side benchmarks of `cnnshape check` (run: python benchmarks/bench_check.py).

1. Cold start: `cnnshape check specs/vgg16.yaml` vs a cold `torchinfo.summary` of the same
   VGG-16 (the plain-PyTorch module exported from the spec), each a fresh process, median
   of N runs, in one run of this script.
2. `check` start-up now vs before the table renderer dropped rich, table and json output,
   wall and CPU time, interleaved runs.
3. In-process analysis time (load + analyze) for 10 / 100 / 1,000 / 10,000-layer specs.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def cold(cmd, runs, with_cpu=False):
    """(median wall, best wall[, median CPU]) of ``runs`` fresh processes. CPU time (user +
    sys of the child) is far less disturbed than wall time on a machine shared with others."""
    times, cpus = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    out = (statistics.median(times), min(times))
    return out + (statistics.median(cpus),) if with_cpu else out


def check_variants(runs):
    """`check` now vs before (the table renderer used to import rich: measured by importing
    rich in the same process before running the same command), side by side."""
    py = sys.executable
    run_check = ("import runpy, sys; sys.argv = ['cnnshape'] + sys.argv[1:]; "
                 "runpy.run_module('cnnshape', run_name='__main__')")
    before = [py, "-c", "import rich.console, rich.table, rich.text; " + run_check, "check", "specs/vgg16.yaml"]
    rows = [("bare python start", [py, "-c", "pass"]),
            ("check vgg16.yaml (table)", [py, "-m", "cnnshape", "check", "specs/vgg16.yaml"]),
            ("check vgg16.yaml --format json", [py, "-m", "cnnshape", "check", "specs/vgg16.yaml", "--format", "json"]),
            ("before: table with rich", before)]
    print(f"\ncheck start-up now vs before (fresh processes, {runs} runs each, interleaved)")
    print(f"  {'':34} {'wall median':>11} {'wall best':>10} {'CPU median':>11}")
    results = {label: ([], [], []) for label, _ in rows}
    for _ in range(runs):  # interleaved, so that load changes hit every variant alike
        for label, cmd in rows:
            w, b, c = cold(cmd, 1, with_cpu=True)
            results[label][0].append(w)
            results[label][2].append(c)
    for label, _ in rows:
        walls, _, cpus = results[label]
        print(f"  {label:34} {statistics.median(walls):9.3f} s {min(walls):8.3f} s {statistics.median(cpus):9.3f} s")
    now, old = results[rows[1][0]], results[rows[3][0]]
    print(f"  table now / before: wall {statistics.median(now[0]) / statistics.median(old[0]):.2f}x, "
          f"CPU {statistics.median(now[2]) / statistics.median(old[2]):.2f}x")


def deep_spec(n_layers: int) -> dict:
    layers = []
    while len(layers) < n_layers:
        layers += [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}, "ReLU"]
    return {"input": [16, 32, 32], "layers": layers[:n_layers]}


def main(runs: int = 10):
    from cnnshape.analysis import analyze
    from cnnshape.spec import load
    from cnnshape.torch_backend.export import export_python

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        net = os.path.join(tmp, "vgg16_net.py")
        with open(net, "w") as f:
            f.write(export_python(os.path.join(ROOT, "specs", "vgg16.yaml")))
        torchinfo_cmd = [sys.executable, "-c",
                         f"import runpy, torchinfo; ns = runpy.run_path({net!r}, run_name='bench'); "
                         "torchinfo.summary(ns['Net'](), input_size=(1, 3, 224, 224), device='cpu')"]
        check_cmd = [sys.executable, "-m", "cnnshape", "check", "specs/vgg16.yaml"]
        bare = cold([sys.executable, "-c", "pass"], runs)
        t_check = cold(check_cmd, runs)
        t_info = cold(torchinfo_cmd, max(3, runs // 3))
    print(f"\ncold start (fresh processes; median and best of {runs} runs)")
    print(f"  bare python start            {bare[0]:7.3f} s  {bare[1]:7.3f} s")
    print(f"  cnnshape check vgg16.yaml    {t_check[0]:7.3f} s  {t_check[1]:7.3f} s   (target <= 0.25 s)")
    print(f"  torchinfo.summary(VGG-16)    {t_info[0]:7.3f} s  {t_info[1]:7.3f} s")
    print(f"  ratio torchinfo / cnnshape   {t_info[0] / t_check[0]:7.1f} x            (target >= 10 x)")

    check_variants(runs)

    print("\nin-process load + analyze (best of 5)")
    print(f"  {'layers':>7} {'load ms':>9} {'analyze ms':>11} {'us/layer':>9}")
    for n in (10, 100, 1_000, 5_000):  # 10,000 such layers exceed the 50,000-value limit (README: Limits)
        data = deep_spec(n)
        best_load = best_an = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            spec = load(data)
            t1 = time.perf_counter()
            report = analyze(spec)
            t2 = time.perf_counter()
            assert report.ok
            best_load, best_an = min(best_load, t1 - t), min(best_an, t2 - t1)
        print(f"  {n:>7} {best_load * 1e3:9.2f} {best_an * 1e3:11.2f} {best_an / n * 1e6:9.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
