"""Design-studio responsiveness (run: python benchmarks/bench_tui.py).

1. Re-analysis after one edit of a 200-layer design (edit + validate + analyse + one
   status row per layer): the studio does this on every key that changes the design.
   Budget: 50 ms. Shown next to a plain `analyze` of the same spec for scale, and the
   same inside the running app including the redraw of table, details and problems and
   the write of the recovery file that keeps unsaved edits.
2. Start-up: a fresh process that imports the studio, opens specs/vgg16.yaml, mounts the
   screen (headless) and exits. Budget: 1.5 s. Shown next to a bare
   `python -c "import textual.app"` (the floor any Textual app pays) and a cold
   `cnnshape check` of the same file.
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

START = """
import asyncio, sys
from cnnshape.tui.app import DesignApp
async def main():
    app = DesignApp(sys.argv[1])
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.pause()
        assert app.studio is not None and app.studio.evaluation is not None
    assert "torch" not in sys.modules, "the studio imported torch at start-up"
asyncio.run(main())
"""


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), min(out)


def cold(cmd, runs):
    return timed(lambda: subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL), runs)


def main(runs: int = 7):
    from cnnshape import design as D
    from cnnshape.analysis import analyze
    from cnnshape.spec import from_data

    layers = []
    while len(layers) < 200:
        layers += [{"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
                   {"type": "BatchNorm2d"}, "ReLU"]
    data = {"input": [16, 64, 64], "batch": 32, "layers": layers[:200]}
    design = D.Design.from_data(data)
    spec = from_data(data)
    k = [3]

    def edit_and_evaluate():
        k[0] = 5 if k[0] == 3 else 3
        D.evaluate(D.set_args(design, 0, {"kernel_size": k[0], "padding": k[0] // 2}))

    med, best = timed(edit_and_evaluate, runs * 5)
    amed, _ = timed(lambda: analyze(spec), runs * 5)
    print(f"200-layer design, one edit -> full re-analysis: median {med * 1e3:.1f} ms "
          f"(best {best * 1e3:.1f} ms; budget 50 ms); analyze() alone {amed * 1e3:.1f} ms")

    import asyncio
    import tempfile

    from cnnshape.tui.app import DesignApp
    from cnnshape.yaml_out import dump_data

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "deep.yaml")
        with open(path, "w") as f:
            f.write(dump_data(data))

        async def in_app():
            app = DesignApp(path)
            async with app.run_test(size=(150, 45)) as pilot:
                await pilot.pause()
                studio = app.studio  # refresh_view also writes the recovery file (unsaved edits)
                return timed(lambda: (studio.history.apply("bench", edit_and_evaluate_design),
                                      studio.refresh_view()), runs * 3)

        def edit_and_evaluate_design(d):
            k[0] = 5 if k[0] == 3 else 3
            return D.set_args(d, 0, {"kernel_size": k[0]})

        rmed, rbest = asyncio.run(in_app())
    print(f"in the studio: edit + re-analysis + redraw of the 200-row table and panes: median "
          f"{rmed * 1e3:.1f} ms (best {rbest * 1e3:.1f} ms)")

    vgg = os.path.join(ROOT, "specs", "vgg16.yaml")
    smed, sbest = cold([sys.executable, "-c", START, vgg], runs)
    tmed, _ = cold([sys.executable, "-c", "import textual.app"], runs)
    cmed, _ = cold([sys.executable, "-m", "cnnshape", "check", vgg], runs)
    print(f"studio start-up (import, open vgg16, mount, exit): median {smed:.2f} s (best {sbest:.2f} s; "
          f"budget 1.5 s); bare 'import textual.app' {tmed:.2f} s; cnnshape check {cmed:.2f} s")


if __name__ == "__main__":
    main()
