"""The CPU kind a memory estimate is for: which instruction set oneDNN (torch's CPU
convolution library) runs on, found without importing torch.

The peaks of :mod:`cnnshape.memory` depend on it: oneDNN computes convolutions in a
channel-blocked layout whose block is 8 channels with AVX2 and 16 with AVX-512, so its
temporary copies of activations differ by up to 2x between the two (measured with torch
2.13 on an AVX-512 machine, natively and under ``ONEDNN_MAX_CPU_ISA=AVX2``). The names are
those of ``torch.backends.cpu.get_cpu_capability()``, lower case:

- ``avx512``: x86-64 with AVX-512 F/BW/VL/DQ (oneDNN's ``avx512_core``);
- ``avx2``: x86-64 with AVX2 and FMA;
- ``default``: anything else (ARM, Apple silicon, older x86): oneDNN's blocked kernels are
  not used; the estimate counts no blocked copies (see docs/memory.md: not measured there).

:func:`detect` reads the CPU's flags (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS,
``IsProcessorFeaturePresent`` on Windows) and, like oneDNN, caps the result at the
``ONEDNN_MAX_CPU_ISA`` (or older ``DNNL_MAX_CPU_ISA``) environment variable.
"""

import os
import sys
from functools import lru_cache

#: the CPU kinds, weakest first
ISAS = ("default", "avx2", "avx512")
#: channels per block of oneDNN's blocked layouts (0: no blocked kernels)
ONEDNN_BLOCK = {"default": 0, "avx2": 8, "avx512": 16}


def _from_flags(flags: set[str]) -> str:
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "default"


def _linux_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:  # the first processor's flags are enough (all cores are alike)
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return set(value.lower().split())
    except OSError:
        pass
    return set()


def _macos_flags() -> set[str]:
    import subprocess

    try:
        out = subprocess.run(["/usr/sbin/sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                             capture_output=True, text=True, timeout=2, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    # sysctl spells them AVX2, FMA, AVX512F, AVX512BW, ...
    return set(out.lower().replace(".", "_").split())


def _windows_isa() -> str:
    import ctypes

    present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    if present(41):  # PF_AVX512F_INSTRUCTIONS_AVAILABLE
        return "avx512"
    if present(40):  # PF_AVX2_INSTRUCTIONS_AVAILABLE
        return "avx2"
    return "default"


def native() -> str:
    """The CPU kind of this machine's processor (ignoring ONEDNN_MAX_CPU_ISA)."""
    # (os.uname, not the platform module: `check` keeps its start-up light)
    machine = (os.uname().machine if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "")).lower()
    if machine not in ("x86_64", "amd64", "x64", "i686", "i386"):
        return "default"
    if sys.platform.startswith("linux"):
        return _from_flags(_linux_flags())
    if sys.platform == "darwin":
        return _from_flags(_macos_flags())
    if sys.platform == "win32":
        return _windows_isa()
    return "default"


def env_cap(value: str | None) -> str | None:
    """The CPU kind an ``ONEDNN_MAX_CPU_ISA`` value allows at most (None: no cap), as
    oneDNN reads it: ``AVX512_CORE``, ``AVX512_CORE_VNNI``, ``AVX10_1_512``, ... -> avx512;
    ``AVX2``, ``AVX2_VNNI`` -> avx2; ``SSE41``, ``AVX`` -> default; ``ALL``/``DEFAULT``/unset/
    unknown -> no cap."""
    v = (value or "").strip().upper()
    if v.startswith(("AVX512", "AVX10")):
        return "avx512"
    if v.startswith("AVX2"):
        return "avx2"
    if v in ("SSE41", "AVX"):
        return "default"
    return None


@lru_cache(maxsize=1)
def detect() -> str:
    """The CPU kind oneDNN uses on this machine in this environment."""
    found = native()
    cap = env_cap(os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"))
    if cap is not None and ISAS.index(cap) < ISAS.index(found):
        return cap
    return found


def resolve(isa: str | None) -> str:
    """``isa`` checked (one of :data:`ISAS`), or the detected kind for None / ``"auto"``."""
    if isa is None or isa == "auto":
        return detect()
    if isa not in ISAS:
        raise ValueError(f"unknown CPU kind {isa!r}: use one of auto, {', '.join(ISAS)}")
    return isa
