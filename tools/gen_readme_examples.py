"""Regenerate the command examples of README.md and docs/memory.md from the real commands.

An example is a fenced code block whose first line starts with ``$ cnnshape``. Every
``$ cnnshape ...`` line in it is run, in order, in a fresh temporary folder that holds
``specs/`` (a link to this repository's), so ``cnnshape zoo resnet34 -o resnet34.yaml``
writes there, as on a fresh clone; what a command prints (stdout, then stderr, with
``COLUMNS=100`` and ``ONEDNN_MAX_CPU_ISA=AVX2``, so memory peaks are an AVX2 CPU's on
AVX2 and AVX-512 machines alike) follows its line. A line ``...`` in a command's output stands for lines
left out (indented as the output around it): the regenerated block keeps as many lines
before and after it as it had.
tests/test_docs.py checks that the files are current.

    python tools/gen_readme_examples.py          # rewrite the examples in place
    python tools/gen_readme_examples.py --check  # exit 1 when an example is stale
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ("README.md", os.path.join("docs", "memory.md"))
BLOCK = re.compile(r"^```\n(\$ cnnshape .*?)^```$", re.M | re.S)
GAP = "..."


def run(command: str, cwd: str) -> list[str]:
    """The lines ``command`` (``cnnshape ...``) prints, run from ``cwd``."""
    args = shlex.split(command)
    # memory peaks depend on the CPU (cnnshape.cpu_isa): the examples show an AVX2 CPU's
    # (oneDNN, and cnnshape's detection, cap an AVX-512 machine at AVX2 this way)
    env = {**os.environ, "PYTHONPATH": ROOT, "COLUMNS": "100", "NO_COLOR": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run([sys.executable, "-m", "cnnshape", *args[1:]], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    return [line.rstrip() for line in (r.stdout + r.stderr).splitlines()]


def _elide(shown: list[str], actual: list[str]) -> list[str]:
    """``actual`` with the gap of ``shown`` (``...``: the head and tail kept as long as shown)."""
    gaps = [i for i, line in enumerate(shown) if line.strip() == GAP]
    if not gaps:
        return actual
    head, tail = gaps[0], len(shown) - 1 - gaps[-1]
    if head + tail >= len(actual):
        return actual
    return actual[:head] + [shown[gaps[0]]] + (actual[len(actual) - tail:] if tail else [])


def render_block(body: str) -> str:
    """A block's text (without the fences) with every command's output regenerated."""
    lines = body.rstrip("\n").split("\n")
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cnnshape-readme-") as tmp:
        os.symlink(os.path.join(ROOT, "specs"), os.path.join(tmp, "specs"))
        i = 0
        while i < len(lines):
            command = lines[i][2:]
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ cnnshape "):
                j += 1
            out.append(lines[i])
            out.extend(_elide(lines[i + 1:j], run(command, tmp)))
            i = j
    return "\n".join(out) + "\n"


def render(text: str) -> str:
    return BLOCK.sub(lambda m: "```\n" + render_block(m.group(1)) + "```", text)


def main(argv: list[str]) -> int:
    sys.path.insert(0, ROOT)
    from cnnshape.atomic import write_atomic

    stale = []
    for name in FILES:
        path = os.path.join(ROOT, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale.append(name)
            if "--check" not in argv:
                write_atomic(path, new)
    if stale:
        print(("stale: " if "--check" in argv else "rewrote: ") + ", ".join(stale))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
