"""Hyperelastic solids: fixed-corotated and compressible neo-Hookean."""

from typing import Literal

import taichi as ti

from engine.materials.base import ElasticParams, Material
from engine.materials.stress import corotated_kirchhoff


class ElasticSolid(Material):
    """Shared by solids described by E and nu: constants start with ``(mu, lambda)`` in Pa."""

    @classmethod
    def pack(cls, params: ElasticParams) -> list[float]:
        return list(params.lame())

    @classmethod
    def wave_speed(cls, params: ElasticParams) -> float:
        """Dilatational (P) wave speed ``sqrt((lambda + 2 mu) / rho)``, m/s."""
        mu, lam = params.lame()
        return ((lam + 2 * mu) / params.density) ** 0.5


class FixedCorotatedParams(ElasticParams):
    model: Literal["fixed_corotated"] = "fixed_corotated"


class FixedCorotated(ElasticSolid):
    """Fixed-corotated elasticity (Stomakhin et al. 2012), robust under inversion."""

    name = "fixed_corotated"
    Params = FixedCorotatedParams

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        return corotated_kirchhoff(U, sig, V, F, k[0], k[1])


class NeoHookeanParams(ElasticParams):
    model: Literal["neo_hookean"] = "neo_hookean"


class NeoHookean(ElasticSolid):
    """Compressible neo-Hookean: ``tau = mu (F F^T - I) + lambda ln(J) I``; no SVD needed."""

    name = "neo_hookean"
    Params = NeoHookeanParams
    needs_svd = False

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        J = F.determinant()
        eye = ti.Matrix.identity(float, F.n)
        return k[0] * (F @ F.transpose() - eye) + k[1] * ti.log(ti.max(J, 1e-6)) * eye
