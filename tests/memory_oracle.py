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
allocator with its size; frees are reported only for blocks allocated while profiling, so
everything a step allocates is allocated inside the profile); the peak of their running
sum, plus what was allocated before profiling (parameters, buffers, the batch).
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


def _allocations(prof, after: str | None = None) -> tuple[int, list[int]]:
    """(bytes allocated before the region, sizes (+ allocated, - freed) in it) of the CPU
    allocator's events, in time order; the region starts at the ``record_function(after)``
    range when given, else at the profile's start."""
    from torch._C._profiler import _EventType

    events, start = [], None
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        elif after is not None and node.name == after:
            start = node.start_time_ns
        stack.extend(node.children)
    events.sort()
    if after is None:
        return 0, [size for _, size in events]
    return sum(s for t, s in events if t < start), [s for t, s in events if t >= start]


def _peak(prof, after: str | None = None) -> int:
    cur, sizes = _allocations(prof, after)
    peak = cur
    for size in sizes:
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

    Training: two steps in ``cnnshape train``'s order (forward, loss,
    ``zero_grad(set_to_none=True)``, backward, ``optimizer.step()``), the peak taken over the
    second (gradients and optimizer state exist, as in every step after the first). The loss is cross
    entropy on random labels when the output is ``[N, classes]``, else the output's mean.
    Inference: ``model.eval()`` and ``torch.no_grad()``, one forward. Each peak = bytes
    alive before profiling (parameters, buffers, the batch) + the peak of the allocator's
    running sum over the measured region (what the first step left allocated included).
    """
    from torch.profiler import ProfilerActivity, profile

    params = [p for p in model.parameters() if p.requires_grad]
    opt = None if not params else {"sgd": lambda: torch.optim.SGD(params, lr=lr),
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

    # profile a first step too: the frees of what it allocates (gradients, optimizer state)
    # are only reported for blocks allocated while profiling
    before = _nbytes([*model.parameters(), *model.buffers(), x])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        if params:
            step()
            with torch.profiler.record_function("cnnshape-step-2"):
                step()
        else:
            with torch.profiler.record_function("cnnshape-step-2"):
                model(x)
    training = before + _peak(prof, "cnnshape-step-2")
    model.eval()
    before = _nbytes([*model.parameters(), *model.buffers(), x])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof, torch.no_grad():
        model(x)
    return training, before + _peak(prof)
