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
