"""Evaluate a material on NumPy arrays with the solver's own constitutive kernel.

Useful to test a material (built-in or from a plugin), plot its stress-strain curve, or compare a
learned law with an analytic one, without building a scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import taichi as ti

from engine.materials import BUILTIN_MATERIALS
from engine.materials.base import MAX_CONSTANTS, MAX_STATE, Material, MaterialParams
from engine.solver.contact import COULOMB
from engine.solver.kernels import KernelConfig, build_kernels


@dataclass
class MaterialResponse:
    """Result of one constitutive update of N particles in d dimensions."""

    F: np.ndarray  # (N, d, d) elastic deformation gradient after the plastic projection
    state: np.ndarray  # (N, MAX_STATE) plastic state after the projection
    kirchhoff: np.ndarray  # (N, d, d) Kirchhoff stress, Pa

    @property
    def cauchy(self) -> np.ndarray:
        """Cauchy stress ``tau / J`` (Pa), ``(N, d, d)``."""
        return self.kirchhoff / np.linalg.det(self.F)[:, None, None]


def evaluate_material(
    params: MaterialParams,
    F: np.ndarray,
    C: np.ndarray | None = None,
    state: np.ndarray | None = None,
    material: type[Material] | None = None,
) -> MaterialResponse:
    """Project ``F`` (N, d, d) and compute the stress with the material ``params.model``.

    ``C`` (N, d, d) is the velocity gradient (1/s, default zero); ``state`` (N, MAX_STATE)
    defaults to the material's initial state. ``material`` is the class (default: the built-in
    of that model name). Runs on whatever Taichi runtime is active.
    """
    cls = material or next(c for c in BUILTIN_MATERIALS if c.name == params.model)
    n, dim = F.shape[0], F.shape[1]
    dtype = np.float64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else np.float32
    mat = ti.types.matrix(dim, dim, float)
    arrays = {name: ti.ndarray(mat, n) for name in ("F", "C", "tau")}
    arrays["F"].from_numpy(F.astype(dtype))
    arrays["C"].from_numpy((np.zeros_like(F) if C is None else C).astype(dtype))
    if state is None:
        state = np.zeros((n, MAX_STATE))
        for column, (_, initial) in enumerate(cls.state_vars):
            state[:, column] = initial
    state_nd = ti.ndarray(ti.types.vector(MAX_STATE, float), n)
    state_nd.from_numpy(state.astype(dtype))
    material_id = ti.ndarray(ti.i32, n)
    material_id.fill(0)
    model = ti.ndarray(ti.i32, 1)
    model.fill(0)
    constants = np.zeros((1, MAX_CONSTANTS))
    packed = cls.pack(params)
    constants[0, : len(packed)] = packed
    constants_nd = ti.ndarray(ti.types.vector(MAX_CONSTANTS, float), 1)
    constants_nd.from_numpy(constants.astype(dtype))
    kernels = build_kernels(KernelConfig(dim, (cls,), flip=False, contact=COULOMB.respond))
    kernels.constitutive(
        arrays["F"], arrays["C"], state_nd, arrays["tau"], material_id, model, constants_nd
    )
    return MaterialResponse(
        arrays["F"].to_numpy().astype(np.float64),
        state_nd.to_numpy().astype(np.float64),
        arrays["tau"].to_numpy().astype(np.float64),
    )
