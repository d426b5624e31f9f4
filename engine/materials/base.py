"""The material contract: one small class per constitutive model.

The solver owns the per-particle loop, the SVD and the dispatch; a material only supplies two Taichi
functions (a plastic return mapping and a Kirchhoff stress), its scene parameters as a pydantic
model,
and how those parameters turn into the flat constant vector the kernels read. A new material never
edits the solver: it is registered through the ``engine_register_materials`` hook (built-ins do
so exactly like plugins do).
"""

from __future__ import annotations

import math
from typing import ClassVar

import taichi as ti
from pydantic import BaseModel, ConfigDict, Field

#: Number of packed constants every material may use (the kernels read a vector of this length).
MAX_CONSTANTS = 8
#: Number of per-particle plastic state variables any material may declare.
MAX_STATE = 2


class MaterialParams(BaseModel):
    """Scene parameters shared by every material (SI units)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    density: float = Field(gt=0, description="Rest mass density, kg/m^3.")


class ElasticParams(MaterialParams):
    """Isotropic linear-elastic constants, from which the Lamé parameters follow."""

    youngs_modulus: float = Field(gt=0, description="Young's modulus E, Pa.")
    poisson_ratio: float = Field(
        default=0.3, ge=-0.99, lt=0.5, description="Poisson's ratio nu, dimensionless, below 0.5."
    )

    def lame(self) -> tuple[float, float]:
        """Return the Lamé parameters (mu, lambda) in Pa."""
        e, nu = self.youngs_modulus, self.poisson_ratio
        return e / (2 * (1 + nu)), e * nu / ((1 + nu) * (1 - 2 * nu))


class ConstitutiveModel:
    """What every material declares, Taichi or torch: its scene name, parameters, plastic state
    and the time-step limits it imposes."""

    name: ClassVar[str]
    Params: ClassVar[type[MaterialParams]]
    #: Names of per-particle plastic state variables, in order, with their initial values.
    state_vars: ClassVar[tuple[tuple[str, float], ...]] = ()

    @classmethod
    def wave_speed(cls, params: MaterialParams) -> float:
        """Fastest elastic wave speed in the material at rest, m/s (used for the CFL time step)."""
        raise NotImplementedError

    @classmethod
    def critical_dt(cls, params: MaterialParams, dx: float, dim: int) -> float:
        """Largest stable time step from effects other than wave propagation (s); inf if none."""
        return math.inf


class Material(ConstitutiveModel):
    """Base class of a constitutive model.

    Subclasses set :attr:`name`, :attr:`Params`, optionally :attr:`state_vars` and
    :attr:`needs_svd`, and implement :meth:`pack`, :meth:`project` and :meth:`kirchhoff`.

    In the Taichi functions, ``U, sig, V`` are the SVD of the trial deformation gradient ``F``
    (``F = U diag(sig) V^T``, shapes ``(d, d)``, ``(d,)``, ``(d, d)``; identity placeholders when
    :attr:`needs_svd` is False), ``state`` is the particle's plastic state (vector of
    :data:`MAX_STATE`), ``k`` the packed constants (vector of :data:`MAX_CONSTANTS`), and ``C`` the
    particle's velocity gradient (1/s, ``(d, d)``).
    """

    #: Whether the solver must compute the SVD of F before calling this material.
    needs_svd: ClassVar[bool] = True

    @classmethod
    def pack(cls, params: MaterialParams) -> list[float]:
        """Turn scene parameters into the constants the Taichi functions read (at most 8)."""
        raise NotImplementedError

    @staticmethod
    @ti.func
    def project(U, sig, V, F, state, k):
        """Plastic return mapping: return ``(F_elastic, sig_elastic, state)``; none by default."""
        return F, sig, state

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        """Return the Kirchhoff stress ``tau = J sigma`` (Pa, ``(d, d)``) of the elastic ``F``."""
        raise NotImplementedError
