"""Particle and grid arrays as Taichi ndarrays or torch tensors: the kernels take either, without
copies.

Scenes with a torch material or a torch contact model store particle and grid state as torch
tensors on the simulation's device; the Taichi kernels read and write that same memory.
"""

from __future__ import annotations

import warnings

import numpy as np
import taichi as ti

from engine.solver.runtime import ArchUnavailable, Hardware


class Storage:
    """Allocates ``(N, *components)`` arrays in one backend and converts them to NumPy."""

    def __init__(self, backend: str, precision: str, hardware: Hardware) -> None:
        self.backend = backend  # "taichi" or "torch"
        self.float_np = np.float32 if precision == "f32" else np.float64
        self.device = hardware.torch_device
        if backend == "torch":
            import torch

            self.torch = torch
            self.float_torch = torch.float32 if precision == "f32" else torch.float64
            if self.device == "cuda" and not torch.cuda.is_available():
                raise ArchUnavailable(
                    f"Taichi runs on CUDA but torch {torch.__version__} cannot use CUDA, so "
                    "every kernel call would copy the particle arrays between host and GPU",
                    'install a CUDA build of torch (https://pytorch.org), or use arch = "cpu"',
                )
            if not (hardware.on_cpu or self.device == "cuda"):
                warnings.warn(
                    f"Taichi runs on {hardware.arch}, where torch cannot share memory with it: "
                    "the particle arrays stay on the CPU and every kernel call copies them",
                    stacklevel=2,
                )

    def array(self, n: int, components: tuple[int, ...] = (), integer: bool = False):
        """A zeroed array of ``n`` elements, each of shape ``components``."""
        if self.backend == "torch":
            dtype = self.torch.int32 if integer else self.float_torch
            return self.torch.zeros((n, *components), dtype=dtype, device=self.device)
        scalar = ti.i32 if integer else float
        if len(components) == 1:
            return ti.ndarray(ti.types.vector(components[0], scalar), n)
        if len(components) == 2:
            return ti.ndarray(ti.types.matrix(*components, scalar), n)
        return ti.ndarray(scalar, n)

    def grid(self, shape: tuple[int, ...], components: int = 0, integer: bool = False):
        """A zeroed grid array of ``shape`` nodes, each a vector of ``components`` floats (0: one
        float, or one int32 if ``integer``): ``(*shape, components)`` or ``shape``."""
        if self.backend == "torch":
            trailing = (components,) if components else ()
            dtype = self.torch.int32 if integer else self.float_torch
            return self.torch.zeros((*shape, *trailing), dtype=dtype, device=self.device)
        scalar = ti.i32 if integer else float
        return ti.ndarray(ti.types.vector(components, scalar) if components else scalar, shape)

    def to_numpy(self, array) -> np.ndarray:
        """A NumPy copy of ``array`` (also of a CPU tensor, whose ``numpy()`` shares memory: a
        checkpoint captured for a rollback must not follow the failed steps)."""
        if self.backend == "torch":
            return array.detach().to("cpu", copy=True).numpy()
        return array.to_numpy()

    def assign(self, array, values: np.ndarray) -> None:
        """Copy NumPy ``values`` into ``array`` (same shape), converting the dtype."""
        if self.backend == "torch":
            array.copy_(self.torch.as_tensor(np.array(values), dtype=array.dtype))
        else:
            kind = np.int32 if np.issubdtype(values.dtype, np.integer) else self.float_np
            array.from_numpy(np.ascontiguousarray(values, dtype=kind))
