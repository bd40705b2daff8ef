"""``timm:NAME`` through the importer, family by family (issue 25): timm builds the model on
the meta device, cnnshape imports it, and timm's own model (every weight and statistic
random) loads into the compiled spec with ``strict=True`` and gives the same outputs.

The fast profile runs a sample (one model from several families whose constructs differ:
graphs, dual paths, hierarchical splits, layer scales, torch-layer subclasses, constants);
``CNNSHAPE_HYPOTHESIS=thorough`` runs one model of every family in ``FAMILIES``.
``tools/timm_coverage.py`` runs every CNN name of timm (the table of docs/timm.md).
"""

import pytest
import torch

from .conftest import PROFILE
from .timm_ref import randomise, timm

#: family (timm's model module) -> one small model of it
FAMILIES = {
    "byobnet": "repvgg_a0", "byobnet/mobileone": "mobileone_s0", "convmixer": "convmixer_768_32",
    "convnext": "convnext_atto", "convnext/v2": "convnextv2_atto", "cspnet": "cs3darknet_focus_s",
    "cspnext": "cspnext_tiny", "densenet": "densenet121", "dla": "dla34", "dpn": "dpn48b",
    "efficientnet": "efficientnet_b0", "fasternet": "fasternet_t0", "fastvit": "fastvit_t8",
    "ghostnet": "ghostnetv2_100", "hardcorenas": "hardcorenas_b", "hgnet": "hgnetv2_b0",
    "hrnet": "hrnet_w18_small", "inception_next": "inception_next_atto", "inception_v3": "inception_v3",
    "lcnetv2": "lcnetv2_small", "mambaout": "test_mambaout", "metaformer": "poolformer_s12",
    "metaformer/v2": "poolformerv2_s12", "mobilenetv3": "mobilenetv3_small_050", "nfnet": "nf_resnet26",
    "regnet": "regnety_002", "regnet/v": "regnetv_040", "repghost": "repghostnet_050", "repvit": "repvit_m1",
    "res2net": "res2net50_14w_8s", "resnet": "resnet50d", "resnet/blur": "resnetblur18", "resnetv2": "resnetv2_50x1_bit",
    "rexnet": "rexnet_100", "selecsls": "selecsls42", "senet": "legacy_seresnet18", "starnet": "starnet_s050",
    "vgg": "vgg11", "vovnet": "ese_vovnet19b_slim_dw", "xception": "legacy_xception",
    "xception_aligned": "xception41p",
}
#: the fast profile's sample
SAMPLE = ("dla34", "dpn48b", "res2net50_14w_8s", "hrnet_w18_small", "fastvit_t8", "poolformerv2_s12",
          "nf_resnet26", "ghostnetv2_100")
NAMES = sorted(set(FAMILIES.values())) if PROFILE == "thorough" else SAMPLE


@pytest.mark.parametrize("name", NAMES)
def test_timm_model_imports_weight_exactly(name):
    from cnnshape import build
    from cnnshape.analysis import check
    from cnnshape.torch_backend.pyload import load_python

    t = timm()
    size = 96 if name in ("inception_v3", "legacy_xception") else 64
    report = check(load_python(f"timm:{name}", (3, size, size)))
    assert report.ok, report.errors[:1]
    torch.manual_seed(0)
    ref = randomise(t.create_model(name)).eval()
    net = build(report.spec).eval()
    net.load_state_dict(ref.state_dict(), strict=True)  # timm's keys, every one of them
    assert report.totals.params == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want, got = ref(x), net(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
