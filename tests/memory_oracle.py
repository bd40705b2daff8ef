"""Measurements of real torch memory on the CPU, the oracle of tests/test_memory*.py.

``saved_bytes``: what autograd keeps for backward, observed by
``torch.autograd.graph.saved_tensors_hooks`` during one training-mode forward. Every packed
tensor is resolved to its untyped storage; distinct storages (by data pointer: all saved
storages are alive together until backward, so pointers cannot be reused) are summed by
the storage's ``nbytes()`` — not the view's — so a Flatten/Linear view and the tensor it
views count once, and a storage is what the memory actually holds. Excluded: storages of
the model's parameters and buffers (weights, BatchNorm running stats) and of the input
batch (the caller's; it does not require grad).

``peak_bytes``: the CPU allocator's own accounting, from the profiler's memory events
(``torch.profiler.profile(profile_memory=True)``: every allocation and free of c10's CPU
allocator with its size); the peak of their running sum over the profiled region, plus
what was allocated before it (parameters, optimizer state, the batch).
"""

import torch


def saved_storages(model, x) -> dict[int, int]:
    """{storage data_ptr: nbytes} of what one training forward of ``x`` saves for backward."""
    excl = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    excl.add(x.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in excl and st.nbytes():
            seen[ptr] = st.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return seen


def saved_bytes(model, x) -> int:
    return sum(saved_storages(model, x).values())


def _allocations(prof) -> list[int]:
    """Sizes (+ allocated, - freed) of the CPU allocator's events in the profiled region, in time order."""
    from torch._C._profiler import _EventType

    out = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            out.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    return [size for _, size in sorted(out)]


def _peak(prof) -> int:
    cur = peak = 0
    for size in _allocations(prof):
        cur += size
        peak = max(peak, cur)
    return peak


def _nbytes(tensors) -> int:
    seen = {}
    for t in tensors:
        if t is not None:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def measured_peaks(model, x, optimizer: str = "adam", lr: float = 1e-3) -> tuple[int, int]:
    """(training step peak, inference peak) in bytes, measured on the CPU.

    Training: one warm-up step (so gradients and optimizer state exist, as in every step
    after the first), then one profiled step in ``cnnshape train``'s order: forward, loss,
    ``zero_grad(set_to_none=True)``, backward, ``optimizer.step()``. The loss is cross
    entropy on random labels when the output is ``[N, classes]``, else the output's mean.
    Inference: ``model.eval()`` and ``torch.no_grad()``, one forward. Each peak = bytes
    alive before the profiled region (parameters, buffers, gradients, optimizer state, the
    batch, the labels) + the peak of the allocator's running sum inside it.
    """
    from torch.profiler import ProfilerActivity, profile

    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=lr),
           "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
           "adam": lambda: torch.optim.Adam(params, lr=lr),
           "adamw": lambda: torch.optim.AdamW(params, lr=lr)}[optimizer]()
    model.train()
    y = None

    def step():
        nonlocal y
        out = model(x)
        if out.dim() == 2:
            if y is None:
                y = torch.randint(0, out.shape[1], (out.shape[0],))
            loss = torch.nn.functional.cross_entropy(out.float(), y)
        else:
            loss = out.float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if params:
        step()
    state = [t for s in opt.state.values() for t in s.values() if torch.is_tensor(t)]
    before = _nbytes([*model.parameters(), *model.buffers(), *(p.grad for p in params), *state, x,
                      *([y] if y is not None else [])])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        if params:
            step()
        else:
            with torch.no_grad():
                model(x)
    training = before + _peak(prof)
    model.eval()
    before = _nbytes([*model.parameters(), *model.buffers(), x])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof, torch.no_grad():
        model(x)
    return training, before + _peak(prof)
