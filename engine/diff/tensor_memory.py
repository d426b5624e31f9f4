"""The peak memory of the tensors a torch call allocates, on any device: on CUDA the caching
allocator's own peak, elsewhere (the CPU has no allocator statistics) a dispatch mode that
counts each new storage an operator returns until its last tensor is freed."""

import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakTensorBytes(TorchDispatchMode):
    """While active: :attr:`live` and :attr:`peak` bytes of the storages that operators
    allocated (a view or an in-place result shares its input's storage and adds nothing;
    temporaries inside one kernel are not seen). Run under ``torch.no_grad()``, or autograd's
    saved tensors count as live."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [bytes, tensors alive]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, inputs)
        return out

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if key not in self._storages:
            if key in inputs or size == 0:  # a view of memory from before, or nothing
                return
            self._storages[key] = [size, 0]
            self.live += size
            self.peak = max(self.peak, self.live)
        self._storages[key][1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[key]


def peak_call_bytes(call: Callable[[], object], device: str | torch.device) -> int:
    """Peak bytes of the tensors ``call()`` allocates (its result included) beyond those alive
    before it, on ``device`` (``"cpu"`` or ``"cuda..."``); under ``no_grad``."""
    with torch.no_grad():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            call()
            torch.cuda.synchronize(device)
            return torch.cuda.max_memory_allocated(device) - before
        with PeakTensorBytes() as counter:
            call()
        return counter.peak
