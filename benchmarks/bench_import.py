"""``cnnshape check FILE.py:ATTR`` (the whole process: start, import torch, run the file,
build on the meta device, trace, analyse, print) against ``torchinfo.summary`` on the same
model at its real input size (the whole process too: start, import, build, summary with a
CPU forward pass, as torchinfo's users run it).

    PYTHONPATH=. python benchmarks/bench_import.py [--runs 3] [NAME ...]

Models: resnet50 at 224, efficientnet_b7 at 600, convnext_large at 224 (torchvision's own
classes) and the CIFAR tutorial Net at 32. Each process is run once untimed (caches), then
``--runs`` times, alternating, and the median is reported; the ratio is torchinfo / cnnshape (above 1:
cnnshape is faster).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STUBS = ("import sys, types\n"
         "for _n in ('torchvision._meta_registrations', 'torchvision._autograd_registrations'):\n"
         "    sys.modules.setdefault(_n, types.ModuleType(_n))\n")

TUTORIAL = '''
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
'''

CASES = {
    "resnet50": (STUBS + "from torchvision.models import resnet50 as net\n", "net", (3, 224, 224)),
    "efficientnet_b7": (STUBS + "from torchvision.models import efficientnet_b7 as net\n", "net", (3, 600, 600)),
    "convnext_large": (STUBS + "from torchvision.models import convnext_large as net\n", "net", (3, 224, 224)),
    "tutorial Net": (TUTORIAL, "Net", (3, 32, 32)),
}


def _torchinfo_script(path: str, attr: str, shape) -> str:
    return (f"import runpy, torch, torchinfo\nns = runpy.run_path({path!r})\nobj = ns[{attr!r}]\n"
            "model = obj() if callable(obj) and not isinstance(obj, torch.nn.Module) else obj\n"
            f"torchinfo.summary(model.eval(), input_size=(1, {', '.join(map(str, shape))}), verbose=1)\n")


def _run(cmd, cwd) -> float:
    # bytecode caches allowed (an installed cnnshape has them; PYTHONDONTWRITEBYTECODE would
    # make every run recompile cnnshape's sources)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = ROOT
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return elapsed


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names or list(CASES):
            text, attr, shape = CASES[name]
            path = os.path.join(tmp, f"{name.split()[0]}_model.py")
            with open(path, "w") as f:
                f.write(text)
            ti = os.path.join(tmp, "torchinfo_run.py")
            with open(ti, "w") as f:
                f.write(_torchinfo_script(path, attr, shape))
            ours_cmd = [sys.executable, "-m", "cnnshape", "check", f"{os.path.basename(path)}:{attr}",
                        "--input", ",".join(map(str, shape))]
            theirs_cmd = [sys.executable, ti]
            ours, theirs = [], []
            _run(ours_cmd, tmp)  # warm-up (not timed): bytecode caches, the OS file cache
            _run(theirs_cmd, tmp)
            for _ in range(args.runs):
                ours.append(_run(ours_cmd, tmp))
                theirs.append(_run(theirs_cmd, tmp))
            o, t = statistics.median(ours), statistics.median(theirs)
            rows.append((name, shape, o, t))
            print(f"{name} @ {'x'.join(map(str, shape[1:]))}: cnnshape check {o:.2f} s, torchinfo.summary {t:.2f} s, "
                  f"ratio {t / o:.2f}x", flush=True)
    print("\n| model | input | `cnnshape check FILE.py:ATTR` | `torchinfo.summary` | torchinfo / cnnshape |")
    print("|---|---|---:|---:|---:|")
    for name, shape, o, t in rows:
        print(f"| {name} | {'x'.join(map(str, shape[1:]))} | {o:.2f} s | {t:.2f} s | {t / o:.2f}x |")


if __name__ == "__main__":
    main()
