"""cnnshape's memory figures against measured CPU memory (run: python benchmarks/bench_memory.py).

For every spec given (default: specs/*.yaml and the zoo under cnnshape/zoo/ when present),
at the batch given as ``path@batch`` (default: the spec's batch):

- saved-for-backward bytes: ``cnnshape.memory.estimate`` vs ``saved_tensors_hooks``
  (tests/memory_oracle.py: distinct storages, parameters/buffers/input excluded);
- training-step peak with ``--optimizer`` and the no_grad inference peak: the estimate vs
  the CPU allocator's own accounting (the profiler's allocation events, see
  tests/memory_oracle.py), and the time each takes (the estimate needs no torch and no
  model; the measurement builds the model and runs two training steps).

Prints a Markdown table (the one in README.md / docs/memory.md). CPU only.
"""

import argparse
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="*")
    ap.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "adam", "adamw"])
    args = ap.parse_args()
    specs = args.specs or sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml"))
                                 + glob.glob(os.path.join(ROOT, "cnnshape", "zoo", "*.yaml")))

    import torch

    from cnnshape.analysis import check
    from cnnshape.memory import estimate, nbytes_text
    from cnnshape.torch_backend.build import build
    from tests.memory_oracle import measured_peaks, saved_bytes

    torch.set_num_threads(2)  # the estimate models the default multi-threaded CPU
    print(f"optimizer: {args.optimizer}; torch {torch.__version__}, CPU; sizes in binary units\n")
    print("| spec | batch | saved (est = measured) | training peak est / measured (error) "
          "| inference peak est / measured (error) | estimate ms | measure s |")
    print("|---|---|---|---|---|---|---|")
    for item in specs:
        path, _, b = item.partition("@")
        report = check(path, batch=int(b) if b else None)
        if not report.ok:
            continue
        t0 = time.perf_counter()
        est = estimate(report, optimizer=args.optimizer)
        t_est = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = build(report.spec, report=report)
        x = torch.randn(report.spec.batch, *report.spec.input, dtype=getattr(torch, report.spec.dtype))
        saved = saved_bytes(model, x)
        train, infer = measured_peaks(model, x, args.optimizer)
        t_meas = time.perf_counter() - t0
        same = "=" if saved == est.saved_bytes else "≠"
        print(f"| {os.path.basename(path)} | {report.spec.batch} | {nbytes_text(est.saved_bytes)} {same} "
              f"{nbytes_text(saved)} | {nbytes_text(est.training_peak_bytes)} / {nbytes_text(train)} "
              f"({est.training_peak_bytes / train - 1:+.1%}) | {nbytes_text(est.inference_peak_bytes)} / "
              f"{nbytes_text(infer)} ({est.inference_peak_bytes / infer - 1:+.1%}) | {t_est * 1e3:.1f} | "
              f"{t_meas:.1f} |", flush=True)
        del model, x


if __name__ == "__main__":
    main()
