"""cnnshape's memory figures against measured CPU memory (run: python benchmarks/bench_memory.py).

For every spec given as ``path[@batch]`` (default: :data:`TABLE`, the rows of the tables in
README.md and docs/memory.md), at that batch (default: the spec's):

- saved-for-backward bytes: ``cnnshape.memory.estimate`` vs ``saved_tensors_hooks``
  (tests/memory_oracle.py: distinct storages, parameters/buffers/input excluded);
- training-step peak with ``--optimizer`` and the no_grad inference peak: the estimate vs
  the CPU allocator's own accounting (the profiler's allocation events, see
  tests/memory_oracle.py), and the time each takes (the estimate needs no torch and no
  model; the measurement builds the model and runs two training steps).

Prints a Markdown table (the one in README.md / docs/memory.md) with the CPU kind of the
run in its ``CPU`` column: the estimate is for the kind cnnshape detects (the CPU flags,
capped by ``ONEDNN_MAX_CPU_ISA`` as oneDNN caps itself), so on an AVX-512 machine
``ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_memory.py`` measures the AVX2 model and a
plain run the AVX-512 one. CPU only.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


#: the measured rows of README.md / docs/memory.md (small batches: the measurement runs two
#: real training steps on a shared 2-core machine)
TABLE = ("specs/lenet5.yaml@32", "specs/fashion_mnist.yaml@64", "specs/convnet_notebook.yaml@64",
         "specs/edge_filters.yaml@1", "specs/m5_audio_1d.yaml@16", "specs/volume_3d.yaml@8",
         "specs/resnet_small_32.yaml@64", "specs/unet_small.yaml@1", "specs/resnet18.yaml@4",
         "specs/mobilenet_v2.yaml@4", "cnnshape/zoo/specs/regnet_x_400mf.yaml@4",
         "cnnshape/zoo/specs/conv_autoencoder.yaml@1", "cnnshape/zoo/specs/dcgan_generator.yaml@1")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="*")
    ap.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "adam", "adamw"])
    args = ap.parse_args()
    specs = args.specs or [os.path.join(ROOT, item) for item in TABLE]

    import torch

    from cnnshape import cpu_isa
    from cnnshape.analysis import check
    from cnnshape.memory import estimate, nbytes_text
    from cnnshape.torch_backend.build import build
    from tests.memory_oracle import measured_peaks, saved_bytes

    torch.set_num_threads(2)  # the estimate models the default multi-threaded CPU
    isa = cpu_isa.detect()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    kind = {"avx2": "AVX2", "avx512": "AVX-512", "default": "no AVX2"}[isa] + \
        (f" (ONEDNN_MAX_CPU_ISA={cap} on {cpu_isa.native()})" if cap else "")
    print(f"optimizer: {args.optimizer}; torch {torch.__version__}, CPU {_cpu_name()}; "
          f"torch's capability {torch.backends.cpu.get_cpu_capability()}; cnnshape's CPU kind {isa}"
          f"{f' (ONEDNN_MAX_CPU_ISA={cap})' if cap else ''}; 2 threads; sizes in binary units\n")
    print("| spec | batch | CPU | saved (est = measured) | training peak est / measured (error) "
          "| inference peak est / measured (error) | estimate ms | measure s |")
    print("|---|---|---|---|---|---|---|---|")
    for item in specs:
        path, _, b = item.partition("@")
        report = check(path, batch=int(b) if b else None)
        if not report.ok:
            continue
        t0 = time.perf_counter()
        est = estimate(report, optimizer=args.optimizer, cpu_isa=isa)
        t_est = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = build(report.spec, report=report)
        x = torch.randn(report.spec.batch, *report.spec.input, dtype=getattr(torch, report.spec.dtype))
        saved = saved_bytes(model, x)
        train, infer = measured_peaks(model, x, args.optimizer)
        t_meas = time.perf_counter() - t0
        same = "=" if saved == est.saved_bytes else "≠"
        print(f"| {os.path.basename(path)} | {report.spec.batch} | {kind} | {nbytes_text(est.saved_bytes)} {same} "
              f"{nbytes_text(saved)} | {nbytes_text(est.training_peak_bytes)} / {nbytes_text(train)} "
              f"({est.training_peak_bytes / train - 1:+.1%}) | {nbytes_text(est.inference_peak_bytes)} / "
              f"{nbytes_text(infer)} ({est.inference_peak_bytes / infer - 1:+.1%}) | {t_est * 1e3:.1f} | "
              f"{t_meas:.1f} |", flush=True)
        del model, x


if __name__ == "__main__":
    main()
