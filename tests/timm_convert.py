"""Hand-written converters from timm module trees to cnnshape spec items (test-only).

They read a timm module's structure and arguments and write the spec a user would write
(Graph for the blocks whose tensors branch and merge, Residual for ConvNeXt's blocks); the
tests then prove the compiled spec weight-exact against the timm module. Families: ResNet
(Res2Net's Bottle2neck), ResNetV2 / BiT (PreActBottleneck), ConvNeXt v1/v2, and the
sequential containers around them (stages, heads).
"""

import math

from torch import nn

from cnnshape.torch_backend.importer import _item

#: containers whose forward runs their children in registration order
SEQUENTIAL = {"Sequential", "ConvNeXtStage", "ResNetStage", "NormMlpClassifierHead", "ClassifierHead",
              "SelectAdaptivePool2d", "ResNet", "ConvNeXt", "ResNetV2", "ModuleList", "Mlp",
              "GlobalResponseNormMlp", "DownsampleConv",
              "ConvNormAct", "BnActConv2d", "DLA", "DPN", "BnAct", "CatBnAct",
              "NormFreeNet", "DownsampleAvg"}


def seq(module) -> list:
    """The items of a sequential container's children (flat: a child may give two items)."""
    out = []
    for name, child in module.named_children():
        out += convert(name, child)
    return out


def convert(name: str, m) -> list:
    """Spec items for child ``name`` = ``m`` (usually one; GroupNormAct gives norm + act)."""
    cls = type(m).__name__
    if cls in ("Bottle2neck",):
        return [res2net_block(name, m)]
    if cls in ("PreActBottleneck", "PreActBasic"):
        return [preact_block(name, m)]
    if cls == "ConvNeXtBlock":
        return [convnext_block(name, m)]
    if cls == "DlaTree":
        nodes: list = []
        out = dla_tree(m, "", "x", nodes, [])
        return [{"type": "Graph", "name": name, "nodes": nodes, "output": out}]
    if cls == "DualPathBlock":
        return [dpn_block(name, m)]
    if cls == "NormFreeBlock":
        return [nf_block(name, m)]
    if cls in SEQUENTIAL and cls not in ("Sequential",) or (cls == "Sequential" and len(m)):
        if cls == "SelectAdaptivePool2d":
            return [{"type": "Sequential", "name": name, "body": [
                {"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "pool"}, *convert("flatten", m.flatten)]}]
        return [{"type": "Sequential", "name": name, "body": seq(m)}]
    return leaf(name, m)


def leaf(name: str, m) -> list:
    cls = type(m).__name__
    if cls == "GroupNormAct":
        act = act_items(f"{name}_act", m.act)
        return [{"type": "GroupNorm", "name": name, "num_groups": m.num_groups, "eps": m.eps}] + act
    if cls == "BatchNormAct2d":
        return [{"type": "BatchNorm2d", "name": name, "eps": m.eps}] + act_items(f"{name}_act", m.act)
    if cls == "LayerNorm2d":
        return [{"type": "LayerNorm2d", "name": name, "eps": m.eps}]
    if cls == "LayerNorm":
        return [{"type": "LayerNorm", "name": name, "normalized_shape": list(m.normalized_shape), "eps": m.eps}]
    if cls in ("StdConv2d", "ScaledStdConv2d"):
        d = {"type": cls, "name": name, "out_channels": m.out_channels, "kernel_size": list(m.kernel_size),
             "stride": list(m.stride), "padding": list(m.padding), "dilation": list(m.dilation),
             "groups": m.groups, "bias": m.bias is not None, "eps": m.eps}
        if cls == "ScaledStdConv2d":
            d["gamma"] = m.scale * math.sqrt(m.weight[0].numel())
        return [d]
    if cls == "GammaAct":
        act = {v: k for k, v in (("relu", "relu"), ("silu", "silu"), ("gelu", "gelu"))}
        fn = m.act_fn.__name__
        return [{"type": "GammaAct", "name": name, "act_type": act.get(fn, fn), "gamma": float(m.gamma)}]
    if cls == "SEModule":
        if m.add_maxpool:
            raise NotImplementedError("SE with max pooling")
        gate = [{"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "pool"}, *convert("fc1", m.fc1),
                *convert("bn", m.bn), *convert("act", m.act), *convert("fc2", m.fc2), *convert("gate", m.gate)]
        return [{"type": "SqueezeExcitation", "name": name, "gate": gate}]
    if cls == "EcaModule":
        if m.conv2 is not None:
            raise NotImplementedError("ECA with two convs")
        gate = [{"type": "AdaptiveAvgPool2d", "output_size": 1, "name": "pool"}, {"type": "Flatten", "name": "flat"},
                {"type": "Unflatten", "dim": 1, "unflattened_size": [1, -1], "name": "as_seq"},
                *convert("conv", m.conv), *convert("gate", m.gate), {"type": "Flatten", "name": "flat2"},
                {"type": "Unflatten", "dim": 1, "unflattened_size": [-1, 1, 1], "name": "as_map"}]
        return [{"type": "SqueezeExcitation", "name": name, "gate": gate}]
    if cls == "RmsNorm2d":
        return [{"type": "RmsNorm2d", "name": name, "eps": m.eps, "affine": m.weight is not None}]
    if cls == "GlobalResponseNorm":
        return [{"type": "GlobalResponseNorm", "name": name, "eps": m.eps, "channels_last": m.channel_dim == -1}]
    if cls in ("DropPath",) or (cls == "Dropout" and m.p == 0):
        return [{"type": "Identity", "name": name}]
    if type(m).__module__.startswith("timm") and cls in ("GELU", "Sigmoid", "Tanh", "Swish", "SiLU", "HardSigmoid"):
        return [{"type": {"Swish": "SiLU", "HardSigmoid": "Hardsigmoid"}.get(cls, cls), "name": name}]
    return [_item(name, m, -1, "")]


def act_items(name: str, act) -> list:
    if isinstance(act, nn.Identity):
        return []
    return [_item(name, act, -1, "")]


def _node(items, src=None) -> list:
    if src is not None:
        items = [{**items[0], "from": src}] + items[1:]
    return items


def res2net_block(name: str, m) -> dict:
    """timm's Bottle2neck: conv1-bn1-relu, split in ``scale`` chunks of ``width``; chunk i (plus
    the previous branch's output unless is_first) through convs.i-bns.i-relu; the last
    chunk passes (avg-pooled when is_first); cat; conv3-bn3 (+ se); + shortcut; relu."""
    w, s = m.width, m.scale
    nodes = [*convert("conv1", m.conv1), *convert("bn1", m.bn1), {"type": "ReLU", "name": "relu1"}]
    outs = []
    prev = None
    for i in range(m.num_scales):
        nodes.append({"type": "Slice", "name": f"spx{i}", "from": "relu1", "start": i * w, "length": w})
        src = f"spx{i}"
        if i > 0 and not m.is_first:
            nodes.append({"type": "Add", "name": f"sp{i}", "from": [prev, f"spx{i}"]})
            src = f"sp{i}"
        nodes += _node(convert(f"convs.{i}", m.convs[i]), src)
        nodes += convert(f"bns.{i}", m.bns[i])
        nodes.append({"type": "ReLU", "name": f"relu_s{i}"})
        prev = f"relu_s{i}"
        outs.append(prev)
    if s > 1:
        nodes.append({"type": "Slice", "name": "spx_last", "from": "relu1", "start": (s - 1) * w, "length": w})
        if m.pool is not None:
            nodes += convert("pool", m.pool)
            outs.append("pool")
        else:
            outs.append("spx_last")
    nodes.append({"type": "Cat", "name": "cat", "from": outs})
    nodes += convert("conv3", m.conv3) + convert("bn3", m.bn3)
    if m.se is not None:
        raise NotImplementedError("Res2Net with SE")
    last = nodes[-1]["name"]
    short = "x"
    if m.downsample is not None:
        nodes += _node(convert("downsample", m.downsample), "x")
        short = "downsample"
    nodes += [{"type": "Add", "name": "add", "from": [last, short]}, {"type": "ReLU", "name": "relu"}]
    return {"type": "Graph", "name": name, "nodes": nodes}


def preact_block(name: str, m) -> dict:
    """timm's PreActBottleneck (BiT): x_preact = norm1(x); the shortcut is downsample(x_preact)
    (or x); conv1, norm2, conv2, norm3, conv3 from x_preact; + shortcut."""
    nodes = convert("norm1", m.norm1)
    pre = nodes[-1]["name"]
    for part in ("conv1", "norm2", "conv2", "norm3", "conv3"):
        if hasattr(m, part):  # PreActBasic: conv1, norm2, conv2
            nodes += convert(part, getattr(m, part))
    last = nodes[-1]["name"]
    short = "x"
    if m.downsample is not None:
        nodes += _node(convert("downsample", m.downsample), pre)
        short = "downsample"
    nodes += convert("drop_path", m.drop_path) if not isinstance(m.drop_path, nn.Identity) else []
    nodes.append({"type": "Add", "name": "add", "from": [last, short]})
    return {"type": "Graph", "name": name, "nodes": nodes}


def convnext_block(name: str, m) -> dict:
    """timm's ConvNeXtBlock (v1 with layer scale ``gamma``, v2 with GRN in its MLP): a Residual
    whose body is conv_dw, (permute to channels last,) norm, mlp, (permute back)."""
    if not isinstance(m.shortcut, nn.Identity):
        raise NotImplementedError("ConvNeXt block with a projection shortcut")
    body = convert("conv_dw", m.conv_dw)
    if m.use_conv_mlp:
        body += convert("norm", m.norm) + convert("mlp", m.mlp)
    else:
        body += [{"type": "Permute", "dims": [0, 2, 3, 1], "name": "to_nhwc"}, *convert("norm", m.norm),
                 *convert("mlp", m.mlp), {"type": "Permute", "dims": [0, 3, 1, 2], "name": "to_nchw"}]
    body += convert("drop_path", m.drop_path)
    d = {"type": "Residual", "name": name, "body": body}
    if m.gamma is not None:
        d.update(layer_scale=float(m.gamma.detach().flatten()[0]), layer_scale_name="gamma", layer_scale_flat=True)
    return d


def _named(items, prefix: str) -> list:
    return [{**x, "name": prefix + x["name"]} for x in items]


def dla_block(m, p: str, x: str, shortcut: str, nodes: list) -> str:
    """DlaBasic / DlaBottleneck at dotted prefix ``p``: convs from ``x``, + ``shortcut``, relu."""
    parts = ("conv1", "bn1", "conv2", "bn2") + (("conv3", "bn3") if hasattr(m, "conv3") else ())
    first = True
    for part in parts:
        items = _named(convert(part, getattr(m, part)), p)
        nodes += _node(items, x) if first else items
        first = False
        if part.startswith("bn") and part != parts[-1]:
            nodes.append({"type": "ReLU", "name": f"{p}relu_{part}"})
    nodes.append({"type": "Add", "name": f"{p}add", "from": [nodes[-1]["name"], shortcut]})
    nodes.append({"type": "ReLU", "name": f"{p}relu"})
    return f"{p}relu"


def dla_tree(m, p: str, x: str, nodes: list, children: list) -> str:
    """timm's DlaTree at dotted prefix ``p`` reading ``x``: its nodes appended to ``nodes``;
    the name of its output tensor returned (children: tensors its root also aggregates)."""
    nodes += _node(_named(convert("downsample", m.downsample), p), x)
    bottom = nodes[-1]["name"]
    nodes += _named(convert("project", m.project), p)
    shortcut = nodes[-1]["name"]
    if m.level_root:
        children.append(bottom)
    if type(m.tree1).__name__ == "DlaTree":
        x1 = dla_tree(m.tree1, f"{p}tree1.", x, nodes, [])
    else:
        x1 = dla_block(m.tree1, f"{p}tree1.", x, shortcut, nodes)
    if m.root is not None:
        x2 = dla_block(m.tree2, f"{p}tree2.", x1, x1, nodes)
        nodes.append({"type": "Cat", "name": f"{p}root_cat", "from": [x2, x1] + children})
        nodes += _named(convert("conv", m.root.conv) + convert("bn", m.root.bn), f"{p}root.")
        if m.root.shortcut:
            nodes.append({"type": "Add", "name": f"{p}root.add", "from": [nodes[-1]["name"], x2]})
        nodes.append({"type": "ReLU", "name": f"{p}root.relu"})
        return f"{p}root.relu"
    children.append(x1)
    return dla_tree(m.tree2, f"{p}tree2.", x1, nodes, children)


def dpn_block(name: str, m) -> dict:
    """timm's DualPathBlock: the projection (or x) split into the residual part (num_1x1_c
    channels) and the dense part; c1x1_a, c3x3_b, c1x1_c; out = cat(x_s1 + out1, x_s2, out2)."""
    c = m.num_1x1_c
    nodes: list = []
    proj = m.c1x1_w_s1 if m.c1x1_w_s1 is not None else m.c1x1_w_s2
    src = "x"
    if proj is not None:
        pname = "c1x1_w_s1" if m.c1x1_w_s1 is not None else "c1x1_w_s2"
        nodes += _node(convert(pname, proj), "x")
        src = pname
    nodes += [{"type": "Slice", "name": "x_s1", "from": src, "start": 0, "length": c}]
    nodes += _node(convert("c1x1_a", m.c1x1_a), "x") + convert("c3x3_b", m.c3x3_b) + convert("c1x1_c", m.c1x1_c)
    if m.c1x1_c1 is not None:
        nodes += _node(convert("c1x1_c1", m.c1x1_c1), "c1x1_c") + _node(convert("c1x1_c2", m.c1x1_c2), "c1x1_c")
        out1, out2 = "c1x1_c1", "c1x1_c2"
    else:
        total = m.c1x1_c.conv.out_channels
        nodes += [{"type": "Slice", "name": "out1", "from": "c1x1_c", "start": 0, "length": c},
                  {"type": "Slice", "name": "out2", "from": "c1x1_c", "start": c, "length": total - c}]
        out1, out2 = "out1", "out2"
    return {"type": "Graph", "name": name, "nodes": nodes + [
        {"type": "Add", "name": "resid", "from": ["x_s1", out1]},
        {"type": "Slice", "name": "x_s2", "from": src, "start": c,
         "length": (proj.conv.out_channels if proj is not None else m.c1x1_a.bn.num_features) - c},
        {"type": "Cat", "name": "out", "from": ["resid", "x_s2", out2]}]}


def nf_block(name: str, m) -> dict:
    """timm's NormFreeBlock (NFNet, NF-ResNet, NF-RegNet): out = act1(x) * beta; shortcut =
    downsample(out) or x; conv1, act2, conv2 (, act2b, conv2b) (, attn * attn_gain), act3,
    conv3 (, attn_last * attn_gain); out * alpha + shortcut."""
    if m.skipinit_gain is not None:
        raise NotImplementedError("skipinit")
    nodes = convert("act1", m.act1) + [{"type": "Multiply", "name": "beta", "value": float(m.beta)}]
    short = "x"
    if m.downsample is not None:
        nodes += convert("downsample", m.downsample)
        short = "downsample"
        nodes += _node(convert("conv1", m.conv1), "beta")
    else:
        nodes += convert("conv1", m.conv1)
    parts = ["act2", "conv2"] + (["act2b", "conv2b"] if m.conv2b is not None else [])
    for part in parts:
        nodes += convert(part, getattr(m, part))
    if m.attn is not None:
        nodes += convert("attn", m.attn) + [{"type": "Multiply", "name": "attn_gain", "value": float(m.attn_gain)}]
    nodes += convert("act3", m.act3) + convert("conv3", m.conv3)
    if m.attn_last is not None:
        nodes += convert("attn_last", m.attn_last) + [{"type": "Multiply", "name": "attn_last_gain",
                                                       "value": float(m.attn_gain)}]
    nodes += convert("drop_path", m.drop_path)
    nodes += [{"type": "Multiply", "name": "alpha", "value": float(m.alpha)},
              {"type": "Add", "name": "add", "from": ["alpha", short]}]
    return {"type": "Graph", "name": name, "nodes": nodes}


def basic_block_nodes(m, p: str, x: str) -> tuple[list, str]:
    """timm's resnet BasicBlock at prefix ``p`` reading ``x`` (as Graph nodes): conv1, bn1, act1,
    conv2, bn2, + shortcut (downsample or x), act2."""
    if m.se is not None or not isinstance(m.aa, nn.Identity) or not isinstance(m.drop_block, nn.Identity):
        raise NotImplementedError("BasicBlock with se / aa / drop_block")
    nodes = _node(_named(convert("conv1", m.conv1), p), x)
    for part in ("bn1", "act1", "conv2", "bn2"):
        nodes += _named(convert(part, getattr(m, part)), p)
    last, short = nodes[-1]["name"], x
    if m.downsample is not None:
        nodes += _node(_named(convert("downsample", m.downsample), p), x)
        short = nodes[-1]["name"]
    nodes += [{"type": "Add", "name": f"{p}add", "from": [last, short]}, *_named(convert("act2", m.act2), p)]
    return nodes, nodes[-1]["name"]


def hr_module_nodes(m, p: str, xs: list) -> tuple[list, list]:
    """timm's HighResolutionModule at prefix ``p`` reading the streams ``xs``: each branch's
    blocks, then every output stream i = fuse_act(sum_j fuse_layers[i][j](stream j))."""
    nodes, outs = [], []
    for i, x in enumerate(xs):
        for k, block in enumerate(m.branches[i]):
            more, x = basic_block_nodes(block, f"{p}branches.{i}.{k}.", x)
            nodes += more
        outs.append(x)
    if m.num_branches == 1:
        return nodes, outs
    fused = []
    for i, row in enumerate(m.fuse_layers):
        terms = []
        for j, f in enumerate(row):
            if isinstance(f, nn.Identity):
                terms.append(outs[j])
                continue
            nodes += _node(convert(f"{p}fuse_layers.{i}.{j}", f), outs[j])
            terms.append(nodes[-1]["name"])
        nodes.append({"type": "Add", "name": f"{p}fuse_sum{i}", "from": terms})
        nodes.append({"type": "ReLU", "name": f"{p}fuse_act{i}"})
        fused.append(f"{p}fuse_act{i}")
    return nodes, fused
