"""Run every timm model of the converted families weight-exactly (the table of docs/timm.md).

    PYTHONPATH=. python -m tests.timm_families "res2ne*" "convnext*" "resnetv2*" "dla*" "dpn*" \\
        "nfnet*" "dm_nfnet*" "eca_nfnet*" "nf_*"

Each model runs in its own process (one line per model: OK with the parameter counts of the
spec and of timm's model, the exception, or "skipped" above --max-params, default 100 M).
Not collected by pytest (slow: minutes per large model on a CPU).
"""

import argparse
import os
import subprocess
import sys

ONE = """
import sys, torch
from tests.timm_ref import timm, randomise, assert_same
from tests import timm_convert as C
from cnnshape.analysis import check
from cnnshape.torch_backend.build import build
name = sys.argv[1]
m = randomise(timm().create_model(name, pretrained=False, num_classes=10), 1).eval()
spec = {"input": [3, 64, 64], "batch": 2, "layers": C.seq(m)}
r = check(spec)
if not r.ok:
    print(name, "FAILED", r.errors[0].name, r.errors[0].message); sys.exit(0)
assert_same(build(spec), m, torch.randn(2, 3, 64, 64), atol=1e-4)
print(name, "OK", r.totals.params, sum(p.numel() for p in m.parameters()))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("patterns", nargs="+")
    ap.add_argument("--max-params", type=float, default=100e6)
    args = ap.parse_args(argv)
    import torch

    from tests.timm_ref import timm

    t = timm()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for pat in args.patterns:
        for name in t.list_models(pat):
            with torch.device("meta"):
                n = sum(p.numel() for p in t.create_model(name, pretrained=False).parameters())
            if n > args.max_params:
                print(f"{name} skipped ({n / 1e6:.0f}M params)", flush=True)
                continue
            r = subprocess.run([sys.executable, "-c", ONE, name], capture_output=True, text=True, cwd=root,
                               env={**os.environ, "PYTHONPATH": root})
            lines = (r.stdout.strip() or r.stderr.strip() or "?").splitlines()
            print(lines[-1][:300], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
