"""timm (test-only) as the reference: imported with torchvision's op registrations stubbed,
and helpers that prove a compiled spec equals a timm module weight for weight."""

import sys
import types

import torch


def timm():
    """The timm package (1.0.x), with torchvision's compiled-op registrations stubbed (they
    do not load against the CPU build of torch; the model code does not need them)."""
    for n in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(n, types.ModuleType(n))
    import timm as t
    import timm.layers  # noqa: F401
    import timm.models  # noqa: F401

    return t


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter and buffer of ``module`` random (BatchNorm running variances
    positive), so that equal outputs mean equal weights and equal arithmetic. Non-persistent
    buffers (BlurPool2d's fixed ``filt``) are constants of the module, not in its
    ``state_dict``: a load cannot carry them, so they stay as built."""
    g = torch.Generator().manual_seed(seed)
    fixed = {f"{path}.{b}" if path else b for path, m in module.named_modules() for b in m._non_persistent_buffers_set}
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point() or name in fixed:
                continue
            if t.dim() > 1 and t.numel() > t.shape[0]:  # kernels: timm's own scale, perturbed
                r = t * (1 + 0.2 * torch.randn(t.shape, generator=g)) + 0.01 * torch.randn(t.shape, generator=g)
            elif name.endswith(("running_var", "gain")):
                r = torch.rand(t.shape, generator=g) * 0.5 + 0.75
            elif name.endswith(("weight", "gamma", "scale")):  # norm scales around 1
                r = 1 + 0.3 * torch.randn(t.shape, generator=g)
            else:
                r = torch.randn(t.shape, generator=g) * 0.3
            t.copy_(r.to(t.dtype))
    return module


def timm_verdict(make, d: dict, shape, batch: int, refusals: tuple, random: bool = True):
    """(timm's module or None, its output or None, the input): ``make(d, shape)`` run in eval on a
    random batch; None, None when timm / torch refuses it with one of ``refusals`` (noted)."""
    import warnings

    from hypothesis import note

    x = torch.randn(batch, *shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = make(d, shape)
            m = (randomise(m) if random else m).eval()
            with torch.no_grad():
                y = m(x)
    except refusals as exc:
        note(f"timm refuses: {type(exc).__name__}: {exc}")
        return None, None, x
    return m, y, x


def assert_same(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor, *, train: bool = False,
                atol: float = 1e-5) -> None:
    """``ours`` loads ``ref``'s state_dict strictly (same keys, same shapes) and gives the
    same output on ``x`` (eval by default)."""
    ours_keys = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ref_keys = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours_keys == ref_keys, (sorted(set(ours_keys) ^ set(ref_keys)),
                                   {k: (ours_keys.get(k), ref_keys.get(k)) for k in ours_keys
                                    if ref_keys.get(k) not in (None, ours_keys[k])})
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.train(train)
    ref.train(train)
    with torch.no_grad():
        a, b = ours(x), ref(x)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, atol=atol, rtol=1e-5), (a - b).abs().max().item()


def same_module(d: dict, shape):
    """timm's own module for layer dict ``d`` on input ``shape``."""
    timm()
    from timm.layers import Conv2dSame, ScaledStdConv2dSame, StdConv2dSame
    from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame

    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k not in ("type", "name", "trainable")}
    typ = d["type"]
    if typ.endswith("Pool2dSame"):
        kw.setdefault("stride", kw["kernel_size"])  # timm's own default (None) does not run
        cls = MaxPool2dSame if typ == "MaxPool2dSame" else AvgPool2dSame
        return cls(kw.pop("kernel_size"), **kw)
    cls = {"Conv2dSame": Conv2dSame, "StdConv2dSame": StdConv2dSame, "ScaledStdConv2dSame": ScaledStdConv2dSame}[typ]
    c_in = kw.pop("in_channels", shape[0])
    return cls(c_in, kw.pop("out_channels"), kw.pop("kernel_size"), **kw)


def ref_module(d: dict, shape):
    """timm's module for the layer types built here (None for the others)."""
    if d["type"] in ("Conv2dSame", "StdConv2dSame", "ScaledStdConv2dSame", "MaxPool2dSame", "AvgPool2dSame"):
        return same_module(d, shape)
    if d["type"] in ("SplitAttn", "SelectiveKernel"):
        return attn_module(d, shape)
    if d["type"] == "GlobalContext":
        timm()
        from timm.layers.global_context import GlobalContext

        kw = {k: v for k, v in d.items() if k not in ("type", "name", "trainable")}
        kw["act_layer"] = getattr(torch.nn, kw.get("act_layer", "ReLU"))
        return GlobalContext(**{"channels": shape[0], **kw})
    if d["type"] == "BlurPool2d":
        timm()
        from timm.layers import BlurPool2d

        kw = {k: v for k, v in d.items() if k not in ("type", "name", "trainable")}
        return BlurPool2d(**{"channels": shape[0], **kw})
    if d["type"] == "MixedConv2d":
        timm()
        from timm.layers.mixed_conv2d import MixedConv2d

        kw = {k: v for k, v in d.items() if k not in ("type", "name", "trainable")}
        c_in = kw.pop("in_channels", shape[0])
        return MixedConv2d(c_in, kw.pop("out_channels"), **kw)
    return None


def attn_module(d: dict, shape):
    """timm's ``SplitAttn`` / ``SelectiveKernel`` for layer dict ``d`` on input ``shape``."""
    timm()
    from timm.layers import SelectiveKernel, SplitAttn

    kw = {k: v for k, v in d.items() if k not in ("type", "name", "trainable")}
    c_in = kw.pop("in_channels", shape[0])
    if d["type"] == "SplitAttn":
        if kw.get("norm_layer"):
            kw["norm_layer"] = torch.nn.BatchNorm2d
        kw["act_layer"] = getattr(torch.nn, kw.get("act_layer", "ReLU"))
        return SplitAttn(c_in, **kw)
    return SelectiveKernel(c_in, **kw)
