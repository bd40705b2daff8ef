"""How much of timm the importer covers: every CNN model name of timm, imported with
``cnnshape import timm:NAME`` (the package's model on the meta device), compiled, loaded with
timm's own ``state_dict`` (every weight and statistic randomised) strictly, and run
against timm's model on the same input. Models above --max-params are imported and
checked only. Results appended as JSON lines (resumable), then a Markdown table family by
family.

    PYTHONPATH=. python tools/timm_coverage.py run --out /tmp/timm.jsonl [--families resnet dla] [--size 64]
    PYTHONPATH=. python tools/timm_coverage.py table /tmp/imports.jsonl /tmp/timm.jsonl  # Markdown

timm (test-only) must be installed; nothing here is collected by pytest.
"""

import argparse
import json
import os
import time

#: timm's CNN families (model modules); the transformers and hybrids are out of scope
CNN_FAMILIES = (
    "byobnet", "convmixer", "convnext", "cspnet", "cspnext", "densenet", "dla", "dpn", "efficientnet", "fasternet",
    "fastvit", "ghostnet", "hardcorenas", "hgnet", "hrnet", "inception_next", "inception_resnet_v2",
    "inception_v3", "inception_v4", "lcnetv2", "mambaout", "metaformer", "mobilenetv3", "nasnet", "nfnet",
    "pnasnet", "rdnet", "regnet", "repghost", "repvit", "res2net", "resnest", "resnet", "resnetv2", "rexnet",
    "selecsls", "senet", "sknet", "starnet", "tresnet", "vgg", "vovnet", "xception", "xception_aligned",
)

def one(timm, name: str, size: int, max_params: float) -> dict:
    """Import ``timm:NAME``, check it; when the model has at most ``max_params`` parameters,
    also compile it, load timm's state_dict strictly and compare outputs."""
    import torch

    from cnnshape import build
    from cnnshape.analysis import check
    from cnnshape.torch_backend.pyload import load_python
    from tests.timm_ref import randomise

    t0 = time.time()

    def out(status, detail=""):
        return {"name": name, "status": status, "detail": detail[:400], "size": size,
                "seconds": round(time.time() - t0, 1)}
    try:
        spec = load_python("timm:" + name, (3, size, size))
    except Exception as e:  # noqa: BLE001 - recorded per model
        return out("import", f"{type(e).__name__}: {e}".replace("\n", " / "))
    report = check(spec)
    if not report.ok:
        return out("check", f"{report.errors[0].name}: {report.errors[0].message}")
    if report.totals.params > max_params:
        return out("imported", f"{report.totals.params} params (not run: above --max-params)")
    torch.manual_seed(0)
    ref = randomise(timm.create_model(name)).eval()  # every weight random: a layer scale of 1e-6 hides nothing
    net = build(report.spec).eval()
    try:
        net.load_state_dict(ref.state_dict(), strict=True)
    except RuntimeError as e:
        return out("load", str(e).replace("\n", " / "))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        a, b = net(x), ref(x)
    if a.shape != b.shape or not torch.allclose(a, b, atol=1e-4, rtol=1e-4):
        return out("differ", f"max abs diff {(a - b).abs().max().item() if a.shape == b.shape else 'shape'}")
    return out("ok", f"{report.totals.params} params")


def names(timm, families):
    from timm.models import _registry as r

    return [(r._model_to_module[n], n) for n in timm.list_models() if r._model_to_module[n] in families]


def run(args) -> int:
    import signal

    from tests.timm_ref import timm

    t = timm()
    done = set()
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = {json.loads(line)["name"] for line in f if line.strip()}

    def alarm(signum, frame):
        raise TimeoutError(f"over {args.timeout} s")
    signal.signal(signal.SIGALRM, alarm)
    todo = names(t, set(args.families or CNN_FAMILIES))
    if args.only:  # in the order given (e.g. smallest first)
        family = dict((n, f) for f, n in todo)
        todo = [(family[n], n) for n in args.only if n in family]
    for family, name in (reversed(todo) if args.reverse else todo):
        if name in done:
            continue
        for size in (args.size, 128, 224):
            signal.alarm(args.timeout)
            try:
                line = one(t, name, size, args.max_params)
            except Exception as e:  # noqa: BLE001 - recorded per model
                line = {"name": name, "status": "crash", "detail": f"{type(e).__name__}: {e}"[:400], "size": size}
            finally:
                signal.alarm(0)
            if line["status"] in ("ok", "imported") or not any(w in line["detail"] for w in SIZE_WORDS):
                break
        line["family"] = family
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(line["status"], name, line["detail"][:150], flush=True)
    return 0


#: failures that may only mean the input is too small for the model (it is retried larger)
SIZE_WORDS = ("too small", "smaller than", "at least", "larger than the padded input", "for these arguments",
              "takes 1 tensor inputs and gives 0")
RAN = ("ok", "differ", "load")  # statuses of a model that was run against timm's


def merged(paths) -> dict:
    """name -> result over several result files: a later file wins, except that an
    import-only result never replaces one where the model was run."""
    out: dict = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                old = out.get(d["name"])
                if old is not None and old["status"] in RAN and d["status"] == "imported":
                    continue
                out[d["name"]] = d
    return out


def table(args) -> int:
    rows: dict = {}
    for d in merged(args.results).values():
        rows.setdefault(d["family"], []).append(d)
    count = {k: sum(1 for v in rows.values() for d in v if d["status"] == k) for k in ("ok", "imported")}
    total = sum(len(v) for v in rows.values())
    print("| family | names | weight-exact (run) | imported and checked, not run | not covered: name (what stops it) |")
    print("|---|---:|---:|---:|---|")
    for fam in sorted(rows):
        v = sorted(rows[fam], key=lambda d: d["name"])
        reasons: dict = {}
        for d in v:
            if d["status"] not in ("ok", "imported"):
                reasons.setdefault(reason(d), []).append(f"`{d['name']}`")
        bad = [f"{', '.join(names_)}: {why}" for why, names_ in reasons.items()]
        print(f"| {fam} | {len(v)} | {sum(d['status'] == 'ok' for d in v)} | "
              f"{sum(d['status'] == 'imported' for d in v)} | {'; '.join(bad)} |")
    covered = count["ok"] + count["imported"]
    print(f"| **all** | **{total}** | **{count['ok']}** | **{count['imported']}** | "
          f"**{total - covered} not covered; covered {covered} ({100 * covered / max(total, 1):.1f} %)** |")
    return 0


#: the construct behind a name that is not covered (read in timm's source), by name prefix
CONSTRUCTS = {
    "bat_": "non-local attention (BAT)", "resnet50_clip": "attention pooling (CLIP)",
    "resnet50x": "attention pooling (CLIP)", "resnet101_clip": "attention pooling (CLIP)",
    "efficientnet_cc": "CondConv (its conv takes routing weights: a second input)",
    "tf_efficientnet_cc": "CondConv (its conv takes routing weights: a second input)",
    "fastvit_sa": "self-attention stages", "fastvit_ma": "self-attention stages",
    "fastvit_mci": "MobileCLIP attention stages", "caformer": "self-attention stages",
    "mobilenetv4_hybrid": "multi-query attention", "rdnet": "a block with several inputs scaled by its own parameter",
}


def construct(name: str) -> str:
    return next((v for k, v in CONSTRUCTS.items() if name.startswith(k)), "")


def reason(d: dict) -> str:
    """What stops a model, without the parts that differ from name to name (file positions,
    node and module names), so that a family's failures group by cause."""
    import re

    text = d["detail"].replace("SpecError: ", "")
    text = re.sub(r"\S*site-packages/", "", text)
    text = re.sub(r"^\S+\.py:\d+:\d+: ", "", text)
    text = re.sub(r"'[\w.]+'", "'…'", text)
    text = re.sub(r"\b(mul|add|reshape|mean)_\d+\b", r"\1", text)
    what = construct(d["name"])
    return (f"{what}; the importer: " if what else "") + f"{d['status']}: {short(text)}"


def short(text: str) -> str:
    text = text.replace("|", "/").replace("/work/main/.venv/lib/python3.11/site-packages/", "")
    return text[:160]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--families", nargs="*")
    r.add_argument("--size", type=int, default=64)
    r.add_argument("--timeout", type=int, default=300)
    r.add_argument("--max-params", type=float, default=40e6)
    r.add_argument("--only", nargs="*")
    r.add_argument("--reverse", action="store_true", help="last name first (a second process from the other end)")
    t = sub.add_parser("table")
    t.add_argument("results", nargs="+", help="result files, oldest first")
    args = ap.parse_args(argv)
    return run(args) if args.cmd == "run" else table(args)


if __name__ == "__main__":
    raise SystemExit(main())
