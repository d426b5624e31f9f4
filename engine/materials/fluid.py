"""Weakly compressible Newtonian fluid (Tait equation of state plus viscous stress)."""

import math
from typing import Literal

import taichi as ti
from pydantic import Field

from engine.materials.base import Material, MaterialParams


class FluidParams(MaterialParams):
    model: Literal["fluid"] = "fluid"
    bulk_modulus: float = Field(gt=0, description="Bulk modulus K at rest, Pa.")
    viscosity: float = Field(default=0.0, ge=0, description="Dynamic viscosity mu, Pa s.")
    eos_exponent: float = Field(
        default=7.0, ge=1, le=10, description="Tait exponent gamma: p = K (J^-gamma - 1) / gamma."
    )


class Fluid(Material):
    """Weakly compressible fluid: only the volume ratio ``J = det F`` is kept.

    Cauchy stress ``sigma = -p I + mu (grad v + grad v^T) - 2/3 mu div(v) I`` with the Tait
    pressure ``p = K (J^-gamma - 1) / gamma`` (Pa); the velocity gradient is the particle's affine
    matrix ``C``. ``F`` is reset to ``J^(1/d) I`` every step, so the fluid keeps no shear memory.
    Constants: ``k = (K, mu, gamma)``.
    """

    name = "fluid"
    Params = FluidParams
    needs_svd = False

    @classmethod
    def pack(cls, params: FluidParams) -> list[float]:
        return [params.bulk_modulus, params.viscosity, params.eos_exponent]

    @classmethod
    def wave_speed(cls, params: FluidParams) -> float:
        """Speed of sound ``sqrt(K / rho)``, m/s."""
        return math.sqrt(params.bulk_modulus / params.density)

    @classmethod
    def critical_dt(cls, params: FluidParams, dx: float, dim: int) -> float:
        """Explicit viscous diffusion limit ``rho dx^2 / (2 d mu)``, s."""
        if params.viscosity == 0:
            return math.inf
        return params.density * dx * dx / (2 * dim * params.viscosity)

    @staticmethod
    @ti.func
    def project(U, sig, V, F, state, k):
        d = ti.static(F.n)
        J = F.determinant()
        return ti.Matrix.identity(float, d) * ti.pow(ti.max(J, 1e-6), 1.0 / d), sig, state

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        d = ti.static(F.n)
        J = F.determinant()
        eye = ti.Matrix.identity(float, d)
        pressure = k[0] * (ti.pow(ti.max(J, 1e-6), -k[2]) - 1.0) / k[2]
        strain_rate = C + C.transpose()
        viscous = k[1] * (strain_rate - (2.0 / 3.0) * C.trace() * eye)
        return J * (viscous - pressure * eye)
