"""Quantities in and out: one parser for counts and sizes, one formatter per kind of number.

Every place that reads a budget or a memory limit (CLI, gates, memory) parses it here, and
every place that prints a count or a number of bytes formats it here, so the CLI, CI
formats, the diff and the studio agree. Pure functions, no cnnshape imports.

>>> parse_quantity("5M"), parse_quantity("1.5G"), parse_quantity("8GiB"), parse_quantity("512MB")
(5000000, 1500000000, 8589934592, 512000000)
>>> binary_bytes(1536), decimal_mb(150_000), si(1_234_567), si(95_104, digits=".3g")
('1.50 KiB', '0.15 MB', '1.23 M', '95.1 k')
"""

import math
import re

#: bytes per element of the dtypes a spec may declare (torch's names, in the order the docs list them)
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
#: ... and of the other dtypes layers keep for the backward pass (pooling indices, dropout masks)
SAVED_DTYPE_BYTES = {**DTYPE_BYTES, "int64": 8, "bool": 1}

_SI = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QTY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ki|mi|gi|ti|k|m|g|t)?\s*(b|ib)?\s*$", re.I)
_SI_STEPS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY_STEPS = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def parse_quantity(text: str) -> int:
    """``"5M"`` -> 5000000; ``"8GiB"`` -> 8*2**30; ``"1e9"`` -> 10**9. ValueError otherwise."""
    m = _QTY.match(str(text))
    if not m:
        raise ValueError(f"expected a number with an optional unit (5M, 1.5G, 8GiB, 512MB), received {text!r}")
    number, prefix, unit = m.group(1), m.group(2) or "", (m.group(3) or "").lower()
    prefix = prefix[:1].upper() + prefix[1:].lower()
    if unit == "ib" and prefix and not prefix.endswith("i"):
        prefix += "i"
    scale = _BIN.get(prefix) or _SI.get(prefix)
    if scale is None:
        raise ValueError(f"unknown unit in {text!r}")
    value = float(number) * scale
    if not math.isfinite(value) or value > 2**62:
        raise ValueError(f"{text!r} is too large")
    return int(round(value))


def parse_bytes(text: str) -> int:
    """'8GiB' -> 8589934592, '12GB' -> 12e9, '512MiB', '1000000' (bytes, > 0); ValueError otherwise."""
    value = parse_quantity(text)
    if value <= 0:
        raise ValueError(f"expected a size like 8GiB, 12GB or 512MiB, received {text!r}")
    return value


def binary_bytes(n: float) -> str:
    """1536 -> '1.50 KiB' (binary units, as memory is sold and as ``check`` prints memory)."""
    for factor, unit in _BINARY_STEPS:
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{int(n)} B"


def decimal_mb(n: float) -> str:
    """150000 -> '0.15 MB' (the table footer's parameter and activation sizes)."""
    return f"{n / 1e6:,.2f} MB"


def si(n: float, unit: str = "", *, digits: str = ".2f", sep: str = " ") -> str:
    """1234567 -> '1.23 M' (counts: parameters, MACs); ``digits`` the format of the
    mantissa, ``sep`` between it and the prefix. Below 1000 the plain number."""
    for factor, suffix in _SI_STEPS:
        if abs(n) >= factor:
            return f"{n / factor:{digits}}{sep}{suffix}{unit}"
    return f"{n:g} {unit}".rstrip() if unit else f"{n:g}"
