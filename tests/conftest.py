import os
import sys

from hypothesis import HealthCheck, settings

# fast profile for the README test command / CI; thorough: CNNSHAPE_HYPOTHESIS=thorough
# the fast profile is derandomized so that CI runs are repeatable; thorough explores anew
settings.register_profile("fast", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PROFILE = os.environ.get("CNNSHAPE_HYPOTHESIS", "fast")
settings.load_profile(PROFILE)


def examples(fast: int, thorough: int) -> int:
    """A test's own example count under the loaded profile (for tests slower or faster than
    the profile's default): the one place the profile is read."""
    return thorough if PROFILE == "thorough" else fast


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")
PY = sys.executable


def cli(*args, cwd=ROOT, env=None, input=None, prog_name="python -m cnnshape"):
    """``python -m cnnshape ARGS`` run in this process through click's ``CliRunner``, from
    the folder ``cwd``, with ``env`` laid over ``os.environ`` and ``input`` as stdin (text or
    bytes sent through a pipe, as a shell sends them, or a binary file). Answers what ``subprocess.run(..., capture_output=True,
    text=True)`` did: a ``CompletedProcess`` with ``returncode``, ``stdout`` and ``stderr``;
    an exception that escaped the command reads as the interpreter would show it (exit
    status 1, the traceback on stderr). Tests whose point is a fresh interpreter (what gets
    imported, start-up time) keep spawning one."""
    import subprocess
    import traceback

    from click.testing import CliRunner

    from cnnshape.cli import main

    import threading

    args = [str(a) for a in args]
    old, writer = os.getcwd(), None
    if isinstance(input, (str, bytes)):  # a real descriptor, as a shell gives the process
        data = input.encode() if isinstance(input, str) else input
        r_fd, w_fd = os.pipe()

        def send():
            with open(w_fd, "wb") as w:
                try:
                    w.write(data)
                except BrokenPipeError:  # the command stopped reading
                    pass

        writer = threading.Thread(target=send, daemon=True)
        writer.start()
        input = open(r_fd, "rb")
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(main, args, input=input, env=env, prog_name=prog_name)
    finally:
        os.chdir(old)
        if writer is not None:
            input.close()
            writer.join()
    stderr = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        stderr += "".join(traceback.format_exception(r.exception))
    return subprocess.CompletedProcess(["cnnshape", *args], r.exit_code, r.stdout, stderr)
