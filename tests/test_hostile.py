"""Hostile input: never a traceback, never a hang, never a clobbered file (issue 13).

Generated hostile documents (random bytes and text, mutated shipped specs, wrong types at
every key, huge numbers, deep nesting, YAML tricks) go through load / analyze / to_dict /
JSON / the table renderer in-process, each under a watchdog (time) and a peak-memory
check; every spec that ``check`` accepts must also build, verify on the meta device and
export to Python that runs. Then one regression test per class of the issue.

Fast profile by default (~60 s); ``CNNSHAPE_HYPOTHESIS=thorough`` runs 15 times as many.
The second half (issue 23) aims at the newer features: blocks' child names, DenseBlock,
Concat, sizes, diff, draw (SVG/PNG), budgets and every ``--format``, with output checks
(SVG parses as XML, Markdown rows have their columns, no human line starts with ``::``).
"""

import contextlib
import io
import json
import os
import resource
import signal
import stat
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnshape.errors import SpecError, SpecFileError
from cnnshape.limits import MAX_BYTES, MAX_DEPTH, MAX_INT, MAX_ITEMS, MAX_LAYERS, MAX_WEIGHT
from cnnshape.spec import SpecPath, YAMLText, load

from .conftest import ROOT, SPECS

#: examples per property: a fifth of the loaded hypothesis profile's (conftest.py: fast 200
#: -> 40, thorough 3000 -> 600); every example runs whole pipelines
N = max(1, settings.default.max_examples // 5)
THOROUGH = settings.default.max_examples > 200
#: per example: seconds before the watchdog fails it, and peak-RSS growth allowed
TIME_LIMIT = 10.0
MEMORY_LIMIT = 1024 * 1024 * 1024
SETTINGS = settings(max_examples=N, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
SHIPPED = {name: open(os.path.join(SPECS, name), encoding="utf-8").read()
           for name in sorted(os.listdir(SPECS)) if name.endswith(".yaml")}


@contextlib.contextmanager
def watchdog(seconds: float = TIME_LIMIT):
    """Fail (TimeoutError) when the block runs longer than ``seconds``, and when the
    process's peak memory grew by more than MEMORY_LIMIT (ru_maxrss is a high-water mark,
    so any transient peak shows). SIGALRM works in the main thread only (pytest and
    pytest-xdist workers run tests there); elsewhere only the memory check runs."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    main = threading.current_thread() is threading.main_thread()

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    if main:
        old = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < MEMORY_LIMIT, f"peak memory grew by {grown / 1e6:.0f} MB"


def render_all(report) -> str:
    """Everything a user can see of a report: JSON and the table (with warnings/errors)."""
    from rich.console import Console

    from cnnshape.render import diagnostic_text, report_table, totals_text

    text = json.dumps(report.to_dict())
    out = Console(file=io.StringIO(), width=100, highlight=False)
    out.print(report_table(report, title="t", depth=3))
    out.print(totals_text(report))
    for d in report.errors + report.warnings:
        out.print(diagnostic_text(d, "x.yaml", report.spec.source.line if report.spec.source else None))
    rendered = out.file.getvalue()
    rendered.encode("utf-8")  # no lone surrogates reach the terminal
    return text + rendered


def pipeline(obj):
    """load -> analyze -> to_dict/JSON/table; only SpecError/SpecFileError may escape
    (their messages must render too). Returns the report or None."""
    from cnnshape.analysis import check

    with watchdog():
        try:
            report = check(obj)
        except (SpecError, SpecFileError) as exc:
            msg = str(exc)
            msg.encode("utf-8")
            assert msg.strip()
            for d in getattr(exc, "diagnostics", ()):
                json.dumps(d.to_dict())
            return None
        render_all(report)
        return report


def torch_pipeline(report) -> None:
    """A spec check accepts builds, verifies on the meta device, exports to Python that
    imports and builds (meta) with the same parameter count."""
    import torch

    from cnnshape.torch_backend.build import BuildError, build
    from cnnshape.torch_backend.export import export_python
    from cnnshape.torch_backend.verify import verify

    spec = report.spec
    with watchdog(30):
        try:
            build(spec, device="meta", report=report)
        except BuildError as exc:  # a located refusal is fine; a traceback is not
            assert str(exc)
            return
        v = verify(spec, device="meta", use_torchinfo=False)
        assert v.ok, [r for r in v.rows if not r.ok][:3]
        source = export_python(spec)
        namespace: dict = {}
        exec(compile(source, "<exported>", "exec"), namespace)
        with torch.device("meta"):
            net = namespace["Net"]()
        assert sum(p.numel() for p in net.parameters()) == report.totals.params


# ------------------------------------------------------------------ strategies
HOSTILE_SCALARS = st.sampled_from([
    None, True, False, 0, -1, 1, 2**31, 2**63, 10**30, 10**309, -(10**309), 10**5000, 1e308, 1e309,
    float("inf"), float("-inf"), float("nan"), "", " ", ".", "a.b", "²", "٣", "forward", "0", "\ud800",
    "\U0010FFFF", "x" * 20_000, "ReLU", "Conv2d", "same", "valid", [], {}, [[]], [1, [2]], {"type": "ReLU"},
    [None], ["ReLU"], {"a": {"b": {"c": None}}},
])


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _set(value, path, new):
    if not path:
        return new
    value = value.copy()
    value[path[0]] = _set(value[path[0]], path[1:], new)
    return value


@st.composite
def wrong_types(draw):
    """A shipped spec (as data) with one value anywhere replaced by a hostile one."""
    from cnnshape.yaml_io import parse

    name = draw(st.sampled_from(sorted(SHIPPED)))
    data, _ = parse(SHIPPED[name])
    paths = list(_paths(data))
    path = draw(st.sampled_from(paths[1:]))  # the root stays a mapping (else: a TypeError by contract)
    return _set(data, path, draw(HOSTILE_SCALARS))


TOKENS = ["\n", " ", "- ", ": ", "[", "]", "{", "}", ",", "#", "&a ", "*a", "!!python/object:os.system ",
          "<<: *a\n", "'", '"', "\t", "\\U0011FFFF", "9" * 400, "1e999", ".nan", "~", "---\n", "...\n", "|\n",
          "? ", "%YAML 1.1\n", "\x00", "\ufeff", "\r\n", "type: Repeat\n", "n: 1000000000\n", "groups: 3\n"]


@st.composite
def mutated_texts(draw):
    """A shipped spec's text with a few random cuts, duplications and hostile insertions."""
    text = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 80)))
        op = draw(st.sampled_from(["cut", "dup", "insert", "replace"]))
        if op == "cut":
            text = text[:i] + text[j:]
        elif op == "dup":
            text = text[:j] + text[i:j] * draw(st.integers(1, 5)) + text[j:]
        else:
            token = draw(st.sampled_from(TOKENS) | st.text(max_size=8))
            text = text[:i] + token + text[j if op == "replace" else i:]
    return text


@st.composite
def tricks(draw):
    """Small documents built from YAML tricks and limits (deep nesting, aliases, huge
    numbers, tags, duplicate keys, big Repeat counts)."""
    depth = draw(st.integers(0, 3 * MAX_DEPTH))
    kind = draw(st.sampled_from(["brackets", "braces", "indent", "laughs", "repeat", "number", "tag", "dup",
                                 "weight", "groups"]))
    if kind == "brackets":
        return "input: [1, 8]\nlayers: " + "[" * depth + "ReLU" + "]" * depth
    if kind == "braces":
        return "input: [1, 8]\nlayers:\n- " + "{a: " * depth + "1" + "}" * depth
    if kind == "indent":
        return "input: [1, 8]\nlayers:\n" + "".join("  " * i + "- \n" for i in range(depth)) + "  " * depth + "- ReLU"
    if kind == "laughs":
        levels = draw(st.integers(1, 12))
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
            f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
        return "\n".join(lines) + "\ninput: [1, 8]\nlayers: [ReLU]\n"
    if kind == "repeat":
        n = draw(st.sampled_from([2, 10**3, 10**6, 10**9, 2**63, 10**40]))
        inner = "ReLU"
        for _ in range(draw(st.integers(1, 40))):
            inner = f"{{type: Repeat, n: {n}, body: [{inner}]}}"
        return f"input: [1, 8]\nlayers: [{inner}]\n"
    if kind == "number":
        digits = draw(st.integers(1, 6000))
        key = draw(st.sampled_from(["input: [1, {v}]", "input: [{v}, 8]", "batch: {v}"]))
        return key.format(v="9" * digits) + ("\n" if key.startswith("batch") else "") + (
            "\ninput: [1, 8]\n" if key.startswith("batch") else "\n") + "layers: [ReLU]\n"
    if kind == "tag":
        tag = draw(st.sampled_from(["!!python/object/apply:os.system ['true']", "!!binary aGk=", "!!timestamp 2001-12-14",
                                    "!custom x", "!!set {a, b}", "!!omap [a: 1]"]))
        return f"input: [1, 8]\nlayers: [ReLU]\nname: {tag}\n"
    if kind == "dup":
        return "input: [1, 8]\ninput: [1, 9]\nlayers: [ReLU]\n"
    if kind == "weight":
        side = draw(st.sampled_from([1, 3, 50, 120, 1000]))
        row = "[" + ", ".join(["0.5"] * side) + "]"
        return ("input: [1, 8, 8]\nlayers:\n- {type: Conv2d, out_channels: 1, kernel_size: %d, padding: same, "
                "weight: [%s]}\n" % (side, ", ".join([row] * side)))
    out = draw(st.sampled_from([1000000000000001, 2**40, 2**40 + 1, 10**30]))
    return f"input: [2, 8, 8]\nlayers:\n- {{type: Conv2d, out_channels: {out}, kernel_size: 1, groups: 2}}\n"


DEEP_DICT = st.recursive(st.none() | st.integers() | st.text(max_size=3),
                         lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
                         max_leaves=40)


# ------------------------------------------------------------------ properties
@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    from cnnshape.yaml_io import decode

    with watchdog():
        try:
            text = decode(data)
        except SpecError as exc:
            assert exc.diagnostics[0].line is not None
            return
    pipeline(YAMLText(text))


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text):
    pipeline(YAMLText(text))


@SETTINGS
@given(mutated_texts())
def test_mutated_shipped_specs(text):
    pipeline(YAMLText(text))


@SETTINGS
@given(wrong_types())
def test_wrong_types_at_every_key(data):
    pipeline(data)


@SETTINGS
@given(tricks())
def test_yaml_tricks_and_limits(text):
    pipeline(YAMLText(text))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["input", "layers", "batch", "name", "dtype"]) | st.text(max_size=3),
                       DEEP_DICT, max_size=5))
def test_arbitrary_python_data(data):
    pipeline(data)


@settings(max_examples=max(1, N // 3), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.one_of(wrong_types(), mutated_texts().map(YAMLText)))
def test_what_check_accepts_builds_verifies_and_exports(obj):
    report = pipeline(obj)
    if report is not None and report.ok:
        torch_pipeline(report)


# ------------------------------------------------------ one regression per class
def _errors(obj) -> str:
    """All error messages for ``obj`` (which must be refused, quickly and cleanly)."""
    with watchdog():
        try:
            report = pipeline(obj)
        except AssertionError:
            raise
    if report is None:
        try:
            load(obj)
        except (SpecError, SpecFileError) as exc:
            return str(exc)
        raise AssertionError("pipeline refused but load accepted")
    assert not report.ok, f"accepted: {obj!r:.200}"
    return "\n".join(d.message for d in report.errors)


@pytest.mark.parametrize("text,expect", [
    # 1. work proportional to the text
    ("input: [1, 8]\nlayers: [{type: Repeat, n: 1000000000, body: [ReLU]}]", f"more than {MAX_LAYERS:,} layers"),
    ("input: [1, 8]\nlayers: [{type: Repeat, n: 1000000000000000, body: [ReLU]}]", "expected n of at most"),
    ("input: [1, 8]\nlayers: [{type: Repeat, n: 200000, body: [ReLU]}]", f"more than {MAX_LAYERS:,} layers"),
    ("input: [1, 8]\nlayers: [" + "{type: Repeat, n: 2, body: [" * 30 + "ReLU" + "]}" * 30 + "]",
     f"more than {MAX_LAYERS:,} layers"),
    ("input: [1, 8]\nlayers: [{type: Repeat, n: 9223372036854775808, body: [ReLU]}]", "at most"),
    ("input: [2, 8, 8]\nlayers: [{type: Conv2d, out_channels: 1000000000000001, kernel_size: 1, groups: 2}]",
     "at most"),
    ("input: [2, 8, 8]\nlayers: [{type: Conv2d, out_channels: 1099511627775, kernel_size: 1, groups: 2}]",
     "divisible by groups"),
    ("input: [1, 8]\nlayers:\n" + "- ReLU\n" * 400_000, "more than 20,000 lines"),
    ("input: [1, 8]\nlayers: " + "[" * 20_000 + "]" * 20_000, f"nested more than {MAX_DEPTH} levels"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 9) + "]\n" for i in range(1, 9)),
     "more than"),
    # 2. numbers Python cannot hold
    ("input: [1" + "0" * 309 + "]\nlayers: [ReLU]", "digits"),
    ("input: [1, 8]\nlayers: [{type: Conv1d, out_channels: 1, kernel_size: 1" + "0" * 20 + "}]", "at most"),
    ("input: [1, 8]\nlayers: [{type: ELU, alpha: 1e309}]", "finite"),
    ("input: [1, 8]\nlayers: [{type: Dropout, p: .nan}]", "finite"),
    ("input: [1, 8, 8]\nlayers: [{type: BatchNorm2d, eps: .inf}]", "finite"),
    ("input: [1, 1099511627777]\nlayers: [ReLU]", "input must be"),
    ("input: [1, 1073741824]\nlayers: [{type: ConvTranspose1d, out_channels: 1, kernel_size: 1, stride: 4096}]",
     "sizes are limited"),
    # 3. leaks of internal errors
    ("input: [1, 8]\nlayers: [{type: Repeat, n: 2, first: {after: x}, body: [{type: Residual, body: [ReLU]}]}]",
     "Repeat.first"),
    ("input: [1, 8]\nlayers: [{type: Residual, body: [ReLU], shortcut: [ReLU], shortcut_name: '²'}]", None),
    ('input: "\\U0011FFFF"\nlayers: [ReLU]', "invalid YAML"),
    ('input: [1, 8]\nlayers: [{type: ReLU, name: "\\ud800"}]', "not valid Unicode"),
    # 4. check accepts only what builds
    ("input: [1, 8]\nlayers: [{type: Residual, body: [ReLU], shortcut: [ReLU], shortcut_name: a.b}]", "shortcut_name"),
    ("input: [1, 8]\nlayers: [{type: Residual, body: [ReLU], shortcut: [ReLU], shortcut_name: ''}]", "shortcut_name"),
    ("input: [1, 8]\nlayers: [{type: Residual, body: [ReLU], shortcut: [ReLU], shortcut_name: forward}]",
     "shortcut_name"),
    ("input: [1, 8]\nlayers: [{type: Residual, body: [ReLU], shortcut: [ReLU], shortcut_name: '0'}]",
     "shortcut_name"),
])
def test_each_class_of_the_issue_is_refused_cleanly(text, expect):
    if len(text) > MAX_BYTES and expect is not None:
        with pytest.raises(SpecFileError, match="limit"):
            load(YAMLText(text))
        return
    if expect is None:  # accepted, and then it must build (int('²') used to crash)
        report = pipeline(YAMLText(text))
        assert report is not None and report.ok
        torch_pipeline(report)
        return
    assert expect in _errors(YAMLText(text))


def test_huge_weight_lists_are_refused_in_linear_time():
    side = 120  # 14,400 numbers > MAX_WEIGHT, within the item limit when written on few lines
    row = "[" + ",".join(["1"] * side) + "]"
    text = ("input: [1, 8, 8]\nlayers:\n- {type: Conv2d, out_channels: 1, kernel_size: %d, padding: same, "
            "weight: [%s]}\n" % (side, ",".join([row] * side)))
    assert "item" in _errors(YAMLText(text)) or f"{MAX_WEIGHT:,}" in _errors(YAMLText(text))
    from cnnshape.layers.base import _weight_shape

    with pytest.raises(ValueError, match=f"at most {MAX_WEIGHT:,}"):
        _weight_shape([[0.0] * 1000] * 1000)
    assert _weight_shape([[1, 2], [3, 4]]) == (2, 2)


def test_python_data_limits():
    deep: list = []
    node = deep
    for _ in range(600):
        node.append([])
        node = node[0]
    assert "nested more than" in _errors({"input": [1, 8], "layers": deep})
    cyclic: dict = {"input": [1, 8], "layers": ["ReLU"]}
    cyclic["me"] = cyclic
    assert "contains itself" in _errors(cyclic)
    assert "digits" in _errors({"input": [10**5000], "layers": ["ReLU"]})
    assert "at most" in _errors({"input": [1, 8], "layers": [{"type": "Linear", "out_features": 2**63}]})


def test_limits_are_documented_in_the_readme():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Limits"):]
    for value in (f"{MAX_BYTES:,}", f"{MAX_ITEMS:,}", str(MAX_DEPTH), f"{MAX_LAYERS:,}", "2^40", f"{MAX_WEIGHT:,}"):
        assert value in section, value
    assert MAX_INT == 2**40


# ------------------------------------------------------------------ files and paths
def test_odd_file_names_are_paths_and_load_does_not_misguess(tmp_path, monkeypatch):
    text = SHIPPED["fashion_mnist.yaml"]
    monkeypatch.chdir(tmp_path)
    for name in ("[v2] spec.yaml", "#1.yaml", "net: v2.yaml", "{x}.yaml"):
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert load(SpecPath(name)).source.path == name
        assert load(name).source.path == name  # an existing file wins over "looks like YAML"
    with pytest.raises(SpecFileError, match="empty path"):
        load(SpecPath(""))
    assert load(YAMLText("input: [4]\nlayers: [ReLU]")).input == (4,)


def test_reads_are_bounded_and_never_block(tmp_path, monkeypatch):
    from cnnshape import yaml_io

    with watchdog(5):
        with pytest.raises(SpecFileError, match="limit"):
            yaml_io.read_bytes("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    monkeypatch.setattr(yaml_io, "READ_TIMEOUT", 0.2)
    with watchdog(5):
        try:
            yaml_io.read_bytes(fifo)  # no writer: an empty read or a timeout, never a hang
        except SpecFileError as exc:
            assert "no data" in str(exc)
    with pytest.raises(SpecFileError, match="directory"):
        yaml_io.read_bytes(tmp_path)


def test_non_utf8_errors_have_line_and_column_after_a_bom(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"\xef\xbb\xbfinput: [1, 8]\nlayers: [Re\xffLU]\n")
    with pytest.raises(SpecError) as info:
        load(SpecPath(str(p)))
    d = info.value.diagnostics[0]
    assert (d.line, d.column) == (2, 12) and "line 2, column 12" in d.message


def test_deep_nesting_has_a_line():
    with pytest.raises(SpecError) as info:
        load(YAMLText("input: [1, 8]\nlayers:\n  " + "[" * 100 + "]" * 100))
    assert info.value.diagnostics[0].line == 3


# ------------------------------------------------------------------ writing files
def test_atomic_writes_respect_what_is_on_disk(tmp_path):
    from cnnshape.atomic import WriteRefused, write_atomic

    target = tmp_path / "real.yaml"
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    ro = tmp_path / "ro.yaml"
    ro.write_text("keep")
    os.chmod(ro, 0o444)
    with pytest.raises(WriteRefused, match="read-only"):
        write_atomic(ro, "x")
    assert ro.read_text() == "keep"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(WriteRefused, match="not a regular file"):
        write_atomic(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(WriteRefused, match="does not exist"):
        write_atomic(tmp_path / "missing" / "x.py", "x")
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.py", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.py").stat().st_mode) == 0o640
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".cnnshape-")]


def test_bom_crlf_files_are_not_changed_on_disk_and_non_utf8_keeps_the_edits(tmp_path):
    from cnnshape.roundtrip import ChangedOnDisk, DesignFile

    p = tmp_path / "net.yaml"
    p.write_bytes(b"\xef\xbb\xbfinput: [1, 8]\r\nlayers:\r\n  - ReLU\r\n")
    f = DesignFile.open(p)
    assert not f.changed_on_disk()
    p.write_bytes(b"input: [1, 8]\nlayers: [\xff]\n")
    assert f.changed_on_disk()
    with pytest.raises(ChangedOnDisk):
        f.save(f.original)
    assert p.read_bytes() == b"input: [1, 8]\nlayers: [\xff]\n"


# ------------------------------------------------------------------ CLI
def _cli(*args, input=None):
    from click.testing import CliRunner

    from cnnshape.cli import main

    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_cli_paths_and_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SHIPPED["fashion_mnist.yaml"]
    names = ["[v2] spec.yaml", "#1.yaml", "net: v2.yaml", "{x}.yaml"]
    for name in names:
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert _cli("check", "--format", "json", *names).exit_code == 0
    assert _cli("check", "").exit_code == 2
    assert _cli("check", "missing.yaml").exit_code == 2
    (tmp_path / "bad.yaml").write_text("input: [1, 8]\nlayers: [{type: Dropout, p: .nan}]\n")
    assert _cli("check", "bad.yaml").exit_code == 1
    assert _cli("check", "-", input="input: [4]\nlayers: [ReLU]\n").exit_code == 0
    assert _cli("check", "-", input="ReLU").exit_code == 1  # stdin is text, never a path


def test_cli_export_import_outputs(tmp_path):
    spec = os.path.join(SPECS, "fashion_mnist.yaml")
    r = _cli("export", spec, "-o", str(tmp_path / "missing" / "net.py"))
    assert r.exit_code == 2 and "does not exist" in r.output
    r = _cli("export", spec, "-o", "/dev/null")
    assert r.exit_code == 2 and "not a regular file" in r.output
    model = tmp_path / "model.py"
    model.write_text("from torch import nn\nnet = nn.Sequential(nn.Linear(5, 3))\n"
                     "def needs(x):\n    return x\ndef boom():\n    raise RuntimeError('no')\n")
    r = _cli("import", f"{model}:net", "--input", "1,28,28")
    assert r.exit_code == 1 and "does not accept --input" in r.output
    r = _cli("import", f"{model}:needs", "--input", "5")
    assert r.exit_code == 2 and "raised TypeError" in r.output
    r = _cli("import", f"{model}:boom", "--input", "5")
    assert r.exit_code == 2 and "raised RuntimeError" in r.output
    r = _cli("import", f"{model}:net", "--input", "5", "-o", str(tmp_path / "out.yaml"))
    assert r.exit_code == 0 and load(SpecPath(str(tmp_path / "out.yaml"))).input == (5,)


# ------------------------------------------------------------------ training inputs
def _idx(path, array, code=0x08, gz=False):
    import gzip
    import struct

    import numpy as np

    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_idx_headers_labels_and_sizes_are_checked_before_allocation(tmp_path):
    import gzip
    import struct

    import numpy as np

    from cnnshape.torch_backend.data import DataError, load_data, read_idx

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _idx(raw / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    _idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 255, 2], np.uint8))
    with pytest.raises(DataError, match="label 255 of sample 2"):
        load_data("fashion-mnist", (1, 28, 28), data_dir=tmp_path)
    _idx(raw / "train-images-idx3-ubyte", np.zeros((4, 0, 0), np.uint8))
    _idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 2], np.uint8))
    with pytest.raises(DataError, match="all ≥ 1"):
        load_data("fashion-mnist", (1, 28, 28), data_dir=tmp_path)
    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb") as f:  # claims 1 GB; holds a few bytes
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 1000, 1000, 1000) + b"\0" * 1000)
    with watchdog(5):
        with pytest.raises(DataError, match="more than the"):
            read_idx(bomb)


def test_decompression_bomb_images_are_skipped(tmp_path):
    import struct
    import zlib

    from PIL import Image

    from cnnshape.torch_backend.data import load_data

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / cls / "ok.png")
    png = (tmp_path / "a" / "ok.png").read_bytes()
    ihdr = struct.pack(">II", 30000, 30000) + png[24:29]
    bomb = png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    (tmp_path / "a" / "bomb.png").write_bytes(bomb)
    with watchdog(10):
        ds = load_data(f"folder:{tmp_path}", (1, 4, 4))
    assert len(ds) == 2 and any("skipped 1" in n for n in ds.notices)


def test_crafted_checkpoints_are_clear_errors(tmp_path):
    import torch

    from cnnshape.torch_backend.checkpoint import FORMAT, CheckpointError, load_checkpoint

    good = load(os.path.join(SPECS, "fashion_mnist.yaml")).to_dict()
    for payload, expect in [
        ({"format": FORMAT}, "without spec and state_dict"),
        ({"format": FORMAT, "spec": good, "state_dict": []}, "not a state_dict"),
        ({"format": FORMAT, "spec": good, "state_dict": None}, "not a state_dict"),
        ({"format": FORMAT, "spec": "junk", "state_dict": {}}, "not a mapping"),
        ({"format": FORMAT, "spec": {"input": [1]}, "state_dict": {}}, "stored spec is invalid"),
        ({"format": FORMAT, "spec": good, "state_dict": {}, "classes": 5}, "classes"),
        ({"format": FORMAT, "spec": good, "state_dict": {"x": torch.zeros(1)}}, "do not fit"),
    ]:
        path = tmp_path / "c.pt"
        torch.save(payload, path)
        with pytest.raises(CheckpointError, match=expect):
            load_checkpoint(path)


def test_train_checks_the_output_and_device_before_training(tmp_path):
    spec = os.path.join(SPECS, "fashion_mnist.yaml")
    r = _cli("train", spec, "--out", "/dev/null/x", "--steps", "1")
    assert r.exit_code == 2 and "cannot create" in r.output
    r = _cli("train", spec, "--device", "meta", "--steps", "1")
    assert r.exit_code == 2 and "meta" in r.output
    r = _cli("train", spec, "--device", "xla", "--steps", "1")
    assert r.exit_code == 2 and "Traceback" not in r.output
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text("input: [1, 8, 8]\nlayers: [Flatten, {type: Linear, out_features: 4}]\n")
    r = _cli("train", str(narrow), "--steps", "1", "--data", "mnist", "--data-dir", str(tmp_path))
    assert r.exit_code == 1 and "10 classes but the spec outputs 4" in r.output  # before looking for data


def test_verify_refuses_a_batch_that_cannot_fit():
    from cnnshape.torch_backend.build import BuildError
    from cnnshape.torch_backend.verify import verify

    with pytest.raises(BuildError, match="smaller --batch"):
        verify(load(os.path.join(SPECS, "fashion_mnist.yaml")), batch=10**12, use_torchinfo=False)


def test_build_refuses_unknown_dtypes_and_devices():
    from cnnshape.torch_backend.build import BuildError, build

    spec = load(os.path.join(SPECS, "fashion_mnist.yaml"))
    with pytest.raises(BuildError, match="unknown dtype"):
        build(spec, dtype="int8")
    with pytest.raises(BuildError, match="xla"):
        build(spec, device="xla")


def test_the_table_draws_a_bounded_number_of_rows():
    from cnnshape.analysis import check
    from cnnshape.render import MAX_TABLE_ROWS, report_table

    report = check(YAMLText("input: [1, 8]\nlayers: [{type: Repeat, n: 3000, body: [ReLU]}]\n"))
    assert report.ok
    table = report_table(report, depth=3)
    assert len(table.rows) == MAX_TABLE_ROWS
    assert "2,603 more rows" in table.rows[-1][1].plain  # 3,002 rows, 399 drawn
    assert len(report.to_dict()["layers"][0]["children"]) == 3000


# =================================================================== issue 23: newer features
HOSTILE_NAMES = ["a\n::error file=x::injected", "::error::x", "\x1b[31mred", "a|b", "a`b", "<b>x</b>", "a.b", "",
                 "train", "_modules", "layer_scale", "x" * 9_990, "\ufffe", "\u202eevil", "a\tb", "a\\", "#h", "é",
                 "\u2028", "ok", "*x*", "[x](y)"]
CHILD_FORMATS = ["{index}", "{number}", "b{index:03d}", "{index:c}", "{index:>2000000000}", "{number:>9999999999}",
                 "{index:>100}", "{index:>101}", "{index:.0e}", "{index:{number}}", "train", "x", "{index!r}",
                 "{index:x}", "{0}", "{index.real}", "{number:,}", "a{index}\n::warning::x"]
_CONTROL = __import__("re").compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_UNESCAPED_PIPE = __import__("re").compile(r"(?<!\\)\|")


def check_human(text: str) -> None:
    """Plain output for people and logs: no raw control characters (ESC included: not a
    terminal here), no line a CI runner would take for a workflow command."""
    for line in text.splitlines():
        assert not line.lstrip().startswith("::"), f"a line starts with '::': {line[:120]!r}"
        assert not _CONTROL.search(line), f"a raw control character: {line[:120]!r}"


def check_markdown(text: str) -> None:
    """Every row of every table has the header's number of columns."""
    check_human(text)
    cols = None
    for line in text.splitlines():
        if not line.startswith("|"):
            cols = None
            continue
        n = len(_UNESCAPED_PIPE.findall(line))
        if cols is None:
            cols = n
        assert n == cols, f"{n} column separators, the table has {cols}: {line[:160]!r}"


def check_github(text: str) -> None:
    """Every line one workflow command (no injected second line, no raw controls)."""
    for line in text.splitlines():
        assert line.startswith(("::error ", "::warning ", "::notice ")), line[:120]
        assert not _CONTROL.search(line), line[:120]


def check_svg(svg: str) -> None:
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)  # raises on anything that is not XML (control characters, U+FFFE)


@st.composite
def newer_specs(draw):
    """Specs with the newer blocks (DenseBlock, Concat names/split/flat, SqueezeExcitation,
    Repeat child_names, Residual layer_scale) whose names, child-name formats and counts
    are sometimes hostile."""
    from cnnshape.strategies import nested_spec_dicts

    d = draw(nested_spec_dicts(every_block=True))
    names = st.sampled_from(HOSTILE_NAMES)
    for item in d["layers"]:
        if not isinstance(item, dict):
            continue
        roll = draw(st.integers(0, 5))
        if roll == 0:
            item["name"] = draw(names)
        elif roll == 1 and item.get("type") in ("Repeat", "DenseBlock"):
            item["child_names"] = draw(st.sampled_from(CHILD_FORMATS))
            item["n"] = draw(st.sampled_from([1, 2, 47, 300, 3000]))
        elif roll == 2 and item.get("type") == "Concat" and not item.get("flat"):
            item["names"] = [draw(names) for _ in item["branches"]]
        elif roll == 3 and isinstance(item.get("body"), list) and item["body"] and isinstance(item["body"][0], dict):
            item["body"][0] = {**item["body"][0], "name": draw(names)}
    if draw(st.integers(0, 3)) == 0:
        d["name"] = draw(names)
    return d


def _cli_text(*args, input=None) -> tuple[int, str]:
    r = _cli(*args, input=input)
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.output[-400:])
    return r.exit_code, r.output


def every_output(report, text: str) -> None:
    """check (table, json, markdown, github, budgets, --memory-limit), sizes, diff (against
    itself and against a spec with one layer less), draw SVG and PNG: no traceback, bounded
    time, output safe for its format."""
    from cnnshape import draw
    from cnnshape.diff import diff, to_markdown, to_text
    from cnnshape.sizes import sizes

    budgets = ("--max-params", "1", "--max-macs", "1K", "--memory-limit", "1GiB", "--expect-output", "3")
    for fmt in ("table", "markdown", "github", "json"):
        code, out = _cli_text("check", "-", "--format", fmt, "--depth", "3", *budgets, input=text)
        if fmt == "json":
            json.loads(out[out.index("{"):]) if "{" in out else None
        elif fmt == "markdown":
            check_markdown(out)
        elif fmt == "github":
            check_github(out)
        else:
            check_human(out)
    code, out = _cli_text("sizes", "-", input=text)
    check_human(out)
    res = sizes(report)
    json.dumps(res.to_dict())
    other = report.spec.to_dict()
    other["layers"] = other["layers"][:-1] or ["ReLU"]
    for b in (report, other):
        d = diff(report, b)
        check_human("\n".join(to_text(d)))
        check_markdown(to_markdown(d))
        json.dumps(d.to_dict())
    scene = draw.figure(report, depth=3)
    check_svg(draw.to_svg(scene))
    try:
        scale = draw.png_scale(scene)
    except draw.PictureTooLarge as exc:
        assert "PNG" in str(exc)
    else:
        if scene.width * scene.height * scale * scale < 2_000_000:  # rasterise the smaller ones
            draw.to_png(scene)


@SETTINGS
@given(newer_specs())
def test_newer_blocks_names_and_every_output(d):
    from cnnshape.strategies import to_yaml

    text = to_yaml(d)
    with watchdog():
        report = pipeline(YAMLText(text))
        if report is None:
            for fmt in ("table", "markdown", "github"):
                code, out = _cli_text("check", "-", "--format", fmt, input=text)
                assert code in (1, 2)
                (check_github if fmt == "github" else check_markdown if fmt == "markdown" else check_human)(out)
            return
        every_output(report, text)


@settings(max_examples=max(1, N // 3), deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(newer_specs())
def test_what_check_accepts_of_the_newer_blocks_builds_and_exports(d):
    from cnnshape.strategies import to_yaml

    report = pipeline(YAMLText(to_yaml(d)))
    if report is not None and report.ok:
        torch_pipeline(report)


# ------------------------------------------------------------------ one regression per class (issue 23)
@pytest.mark.parametrize("fmt,n,expect", [
    ("{index:>2000000000}", 1, "above the 100-character limit"),
    ("{number:>9999999999}", 1, "above the 100-character limit"),
    ("{index:>100}", 1000, None),  # 100 characters: allowed
    ("{index:{number}}", 2, "nested fields"),
    ("{index:c}", 47, "U+0000"),
    ("train", 1, "clashes with the nn.Module attribute 'train'"),
    ("forward", 1, "clashes"),
    ("_x{index}", 2, "starts with '_'"),
    ("{index:.0e}", 12, "the same name '1e+01' to copies 10 and 11"),
    ("{index:.2f}", 2, "contains '.'"),
    ("a{index}\n::error::x", 2, "control or invisible character U+000A"),
])
def test_child_names_are_bounded_by_the_names_they_make(fmt, n, expect):
    for block in ("Repeat", "DenseBlock"):
        body = "[ReLU]" if block == "Repeat" else "[{type: Conv1d, out_channels: 1, kernel_size: 1}]"
        text = f"input: [1, 8]\nlayers: [{{type: {block}, n: {n}, child_names: {json.dumps(fmt)}, body: {body}}}]\n"
        with watchdog(20):
            if expect is None:
                report = pipeline(YAMLText(text))
                assert report is not None and report.ok
                assert max(len(c.name) for c in report.layers[0].children) == 100
            else:
                assert expect in _errors(YAMLText(text)), (block, fmt)


def test_names_with_markup_are_refused_and_escaped_in_every_format():
    text = ('input: [1, 8]\nname: "n\\n::error file=x::spec"\nlayers:\n'
            '- {type: ReLU, name: "a\\n::error file=x::injected"}\n- {type: ReLU, name: "\\e[31mred"}\n'
            '- {type: ReLU, name: "a|b"}\n- {type: ReLU, name: "\\uFFFE"}\n')
    errors = _errors(YAMLText(text))
    assert errors.count("control or invisible character") == 3
    for fmt, check_out in (("table", check_human), ("markdown", check_markdown), ("github", check_github)):
        code, out = _cli_text("check", "-", "--format", fmt, input=text)
        assert code == 1
        check_out(out)
    # found by the thorough run: a duplicated hostile name, through sizes' diagnostics
    dup = 'input: [1, 1, 1]\nlayers:\n' + '- {type: ReLU, name: "a\\n::error file=x::injected"}\n' * 2
    for args in (("sizes", "-"), ("check", "-"), ("diff", "-", os.path.join(SPECS, "lenet5.yaml"))):
        code, out = _cli_text(*args, input=dup)
        assert code in (1, 2) and "duplicate layer name" in out or args[0] == "diff"
        check_human(out)
    from cnnshape.analysis import check
    from cnnshape.draw import figure, to_svg

    check_svg(to_svg(figure(check(YAMLText(text)), depth=2)))


def test_dense_block_and_repeat_costs_are_linear():
    """Issue 23 item 2: n=4,000 DenseBlock checked in well under a second of CPU (was 12.7 s);
    --memory-limit costs a handful of memory estimates, not ~80."""
    import time

    from cnnshape import memory
    from cnnshape.analysis import check

    text = "input: [1, 4, 4]\nlayers: [{type: DenseBlock, n: %d, body: [{type: Conv2d, out_channels: 1, kernel_size: 1}]}]"
    start = time.process_time()
    report = check(YAMLText(text % 4000))
    memory.estimate(report)
    assert time.process_time() - start < 5.0
    assert report.ok and report.output == (4001, 4, 4)
    small = check(YAMLText(text % 30))
    calls = []
    real = memory.estimate

    def counting(*a, **k):
        calls.append(k.get("batch"))
        return real(*a, **k)

    memory.estimate = counting
    try:
        est = real(small, memory_limit=8 * 2**30)
    finally:
        memory.estimate = real
    assert len(calls) <= 16, calls
    for training in (True, False):
        b = est.max_batch["training" if training else "inference"]
        peak = [real(small, batch=x).training_peak_bytes if training else real(small, batch=x).inference_peak_bytes
                for x in (b, b + 1)]
        assert peak[0] <= 8 * 2**30 < peak[1]  # the largest batch that fits, exactly


def test_the_largest_batch_is_exact_on_every_shipped_spec():
    """The interpolating search of --memory-limit gives exactly the largest batch that fits
    (checked against the estimates at that batch and the next), on every shipped spec."""
    from cnnshape import memory
    from cnnshape.analysis import check

    for name in SHIPPED:
        report = check(os.path.join(SPECS, name))
        if not report.ok:
            continue
        for limit in (2**33, 10**8, 3 * 10**6, 30_000, 1000):
            est = memory.estimate(report, memory_limit=limit)
            for mode in ("training", "inference"):
                b = est.max_batch[mode]
                peak = [getattr(memory.estimate(report, batch=x), f"{mode}_peak_bytes") for x in (max(b, 1), b + 1)]
                assert (b == 0 or peak[0] <= limit) and peak[1] > limit, (name, limit, mode, b)


def test_json_saved_bytes_per_row_are_linear():
    """check --format json on 9,900 layers: one prefix-sum pass, not a scan per row."""
    import time

    from cnnshape.analysis import check
    from cnnshape.memory import add_to_json

    report = check(YAMLText("input: [1, 4, 4]\nlayers: [{type: Repeat, n: 9900, body: "
                            "[{type: Conv2d, out_channels: 1, kernel_size: 1}]}]"))
    start = time.process_time()
    doc = add_to_json(report.to_dict(), report)
    assert time.process_time() - start < 6.0
    assert doc["layers"][0]["saved_bytes"] == sum(c["saved_bytes"] for c in doc["layers"][0]["children"])


def test_merged_channels_past_the_limit_are_refused():
    concat = ("input: [1, 1, 1]\nlayers: [{type: Concat, branches: [[{type: Conv2d, out_channels: 1099511627776, "
              "kernel_size: 1}], [{type: Conv2d, out_channels: 1099511627776, kernel_size: 1}]]}]")
    assert "sizes are limited" in _errors(YAMLText(concat))
    dense = ("input: [1, 1, 1]\nlayers: [{type: DenseBlock, n: 40, body: [{type: Conv2d, out_channels: 34359738368, "
             "kernel_size: 1}]}]")
    assert "2^40" in _errors(YAMLText(dense))


def test_unflatten_with_an_int_size_builds_and_exports():
    report = pipeline(YAMLText("input: [16, 2, 16]\nlayers: [{type: Unflatten, dim: 2, unflattened_size: 2}]"))
    assert report is not None and report.ok
    torch_pipeline(report)


def test_draw_png_is_bounded(tmp_path):
    """Issue 23 item 4: long names are cut, a picture too large for a readable PNG is a clear
    error (the SVG is written), big blocks draw in seconds."""
    from cnnshape import draw
    from cnnshape.analysis import check

    convs = "".join(f"- {{type: Conv2d, out_channels: 1, kernel_size: 1, name: n{i}{'x' * 9_980}}}\n" for i in range(40))
    with watchdog(20):
        report = check(YAMLText("input: [1, 4, 4]\nlayers:\n" + convs))
        scene = draw.figure(report)
        assert scene.width < 40 * 1000
        draw.render(report, str(tmp_path / "long.png"))
    from PIL import Image

    w, h = Image.open(tmp_path / "long.png").size
    assert w <= draw.MAX_PNG_SIDE and w * h <= draw.MAX_PNG_PIXELS
    branches = "".join("  - [{type: Conv2d, out_channels: 1, kernel_size: 1}]\n" for _ in range(1500))
    with watchdog(60):
        wide = check(YAMLText("input: [1, 4, 4]\nlayers:\n- type: Concat\n  branches:\n" + branches))
        with pytest.raises(draw.PictureTooLarge, match="PNG"):
            draw.render(wide, str(tmp_path / "wide.png"), depth=3)
        draw.render(wide, str(tmp_path / "wide.svg"), depth=3)
        check_svg((tmp_path / "wide.svg").read_text())
        dense = check(YAMLText("input: [1, 4, 4]\nlayers: [{type: DenseBlock, n: 1000, body: "
                               "[{type: Conv2d, out_channels: 1, kernel_size: 1}]}]"))
        draw.render(dense, str(tmp_path / "dense.png"))
    assert not (tmp_path / "wide.png").exists()
    r = _cli("draw", "-", "--depth", "3", "-o", str(tmp_path / "w.png"),
             input="input: [1, 4, 4]\nlayers:\n- type: Concat\n  branches:\n" + branches)
    assert r.exit_code == 2 and "write an .svg" in r.output


def test_draw_of_a_broken_spec_stops_at_the_error(tmp_path):
    """Issue 20 item 4: layers after the error are not drawn as if analysed."""
    from cnnshape import draw
    from cnnshape.analysis import check

    report = check(os.path.join(SPECS, "broken_fashion_mnist.yaml"))
    labels = [it.text for it in draw.figure(report).items if isinstance(it, draw.Label)]
    assert "4: Linear" in labels and "2 more not analysed" in labels
    assert "64" not in labels and "10" not in labels  # the outputs of layers 4 and 6 (never analysed)
    assert any("2 later layers not analysed" in t for t in labels)
    r = _cli("draw", os.path.join(SPECS, "broken_fashion_mnist.yaml"), "-o", str(tmp_path / "b.svg"))
    assert r.exit_code == 1 and "drawn up to this error" in r.output


def test_stdin_has_a_timeout_and_the_size_cap_on_every_command(monkeypatch):
    """Issue 23 item 5: a pipe that sends nothing gives up after READ_TIMEOUT; /dev/zero on
    stdin stops at the 1 MiB cap, for check, sizes, diff and draw alike."""
    import sys

    from cnnshape import cli, yaml_io

    monkeypatch.setattr(yaml_io, "READ_TIMEOUT", 0.3)
    r, w = os.pipe()
    try:
        with open(r, "rb", closefd=False) as pipe:
            monkeypatch.setattr(sys, "stdin", pipe)
            with watchdog(5):
                with pytest.raises(SpecFileError, match="no data arrived"):
                    cli._spec_arg("-")
    finally:
        os.close(w)
        os.close(r)
    r, w = os.pipe()  # a writer that trickles a byte more often than the timeout
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.1):
            os.write(w, b"#")

    t = threading.Thread(target=trickle)
    t.start()
    try:
        with open(r, "rb", closefd=False) as pipe:
            monkeypatch.setattr(sys, "stdin", pipe)
            with watchdog(5):
                with pytest.raises(SpecFileError, match="still sending"):
                    cli._spec_arg("-")
    finally:
        stop.set()
        t.join()
        os.close(w)
        os.close(r)
    with open("/dev/zero", "rb") as zero:
        monkeypatch.setattr(sys, "stdin", zero)
        with watchdog(5):
            with pytest.raises(SpecFileError, match="limit"):
                cli._spec_arg("-")
    from .conftest import cli as cnnshape

    for args in (["check", "-"], ["sizes", "-"], ["diff", "-", os.path.join(SPECS, "lenet5.yaml")],
                 ["draw", "-", "-o", os.devnull + ".svg"]):
        with open("/dev/zero", "rb") as zero, watchdog(60):
            p = cnnshape(*args, input=zero)
        assert p.returncode == 2 and "1,048,576-byte limit" in p.stderr, (args, p.stderr[-300:])


def test_non_utf8_files_are_clear_errors_everywhere(tmp_path):
    """Issue 23 item 6: every command and format says where the file is not UTF-8."""
    bad = tmp_path / "x.yaml"
    bad.write_bytes(b"input: [1, 8]\nlayers: [\xc9]\n")
    runs = [("check", str(bad)), ("check", str(bad), "--format", "json"), ("check", str(bad), "--format", "github"),
            ("check", str(bad), "--format", "markdown"), ("export", str(bad)), ("verify", str(bad)),
            ("sizes", str(bad)), ("diff", str(bad), str(bad)), ("draw", str(bad), "-o", str(tmp_path / "x.svg"))]
    for args in runs:
        r = _cli(*args)
        assert r.exit_code in (1, 2), (args, r.exit_code)
        assert "not UTF-8" in r.output, (args, r.output[-300:])
        assert "Traceback" not in r.output


def test_messages_say_what_happened(tmp_path, monkeypatch):
    """Issue 23 item 10: a missing file is 'no such file' everywhere; - is stdin for diff and
    draw; zoo -o - prints, -o '' is an error, a dangling symlink is not followed."""
    monkeypatch.chdir(tmp_path)
    for args in (("draw", "input: [1,8,8]", "-o", "x.svg"), ("sizes", "input: [1,8,8]"),
                 ("diff", "input: [1,8,8]", "input: [1,8,8]")):
        r = _cli(*args)
        assert r.exit_code == 2 and "no such file" in r.output, (args, r.output)
    lenet = open(os.path.join(SPECS, "lenet5.yaml")).read()
    r = _cli("diff", "-", os.path.join(SPECS, "lenet5.yaml"), input=lenet)
    assert r.exit_code == 0 and "same architecture" in r.output
    r = _cli("draw", "-", "-o", "x.svg", input=lenet)
    assert r.exit_code == 0 and (tmp_path / "x.svg").exists()
    r = _cli("zoo", "resnet18", "-o", "-")
    assert r.exit_code == 0 and "type: Repeat" in r.output and not (tmp_path / "-").exists()
    r = _cli("zoo", "resnet18", "-o", "")
    assert r.exit_code == 2 and "empty file name" in r.output
    (tmp_path / "link.yaml").symlink_to(tmp_path / "nowhere.yaml")
    r = _cli("zoo", "resnet18", "-o", "link.yaml")
    assert r.exit_code == 2 and not (tmp_path / "nowhere.yaml").exists()


def test_every_torch_attribute_is_a_refused_name():
    """The names cnnshape refuses include every attribute torch would refuse as a child."""
    from torch import nn

    from cnnshape.names import name_problem

    for attr in dir(nn.Sequential()):
        try:
            nn.Sequential().add_module(attr, nn.ReLU())
        except (KeyError, TypeError):
            assert name_problem(attr, "nn.Sequential") is not None, attr
