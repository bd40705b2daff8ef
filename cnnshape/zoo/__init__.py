"""The zoo: ready-made specs shipped with cnnshape (torchvision's 68 convolutional
classifiers in torchvision's exact layout, plus a U-Net, a DCGAN generator and a
convolutional autoencoder).

>>> from cnnshape import zoo
>>> zoo.names()[:2]
['alexnet', 'conv_autoencoder']
>>> spec = zoo.load("resnet50")          # a cnnshape Spec
>>> zoo.path("resnet50")                 # the YAML file inside the installed package

``entries()`` gives each spec's input, params and MACs from ``index.json`` (written by
``refresh_index()`` from cnnshape's own analysis, so listing the zoo analyses nothing and
imports no torch; a test checks the index equals a fresh analysis).
"""

import json
import os

from ..errors import CnnshapeError

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs")
INDEX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.json")


class ZooError(CnnshapeError, KeyError):
    """No zoo entry of that name."""

    def __str__(self):
        return self.args[0]


def names() -> list[str]:
    """Every zoo entry, sorted."""
    return sorted(f[:-5] for f in os.listdir(DIR) if f.endswith(".yaml"))


def path(name: str) -> str:
    """The YAML file of zoo entry ``name``; :class:`ZooError` with a suggestion when unknown."""
    from ..layers.base import did_you_mean

    all_names = names()
    if name not in all_names:
        guess = did_you_mean(name, all_names)
        raise ZooError(f"no zoo entry named {name!r}{guess}; `cnnshape zoo` lists the {len(all_names)} entries")
    return os.path.join(DIR, f"{name}.yaml")


def load(name: str, **overrides):
    """The :class:`~cnnshape.spec.Spec` of zoo entry ``name`` (``overrides`` as for ``cnnshape.load``)."""
    from ..spec import load as load_spec

    return load_spec(path(name), **overrides)


def entries() -> list[dict]:
    """One dict per entry: name, input, output, params, trainable_params, macs, description."""
    with open(INDEX) as f:
        return json.load(f)


def compute_index() -> list[dict]:
    """The index from a fresh analysis of every spec (what ``index.json`` must equal)."""
    from ..analysis import analyze

    return [entry(name, analyze(load(name))) for name in names()]


def entry(name: str, report) -> dict:
    """The index entry of zoo spec ``name`` from its analysis ``report``."""
    if not report.ok:
        raise ZooError(f"zoo entry {name!r} does not check: {report.errors[0].message}")
    t, spec = report.totals, report.spec
    return {"name": name, "input": list(spec.input), "output": list(report.output), "params": t.params,
            "trainable_params": t.trainable_params, "macs": t.macs, "description": spec.description or ""}


def refresh_index() -> list[dict]:
    """Rewrite ``index.json`` from :func:`compute_index` (run by tools/gen_zoo.py)."""
    index = compute_index()
    with open(INDEX, "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    return index
