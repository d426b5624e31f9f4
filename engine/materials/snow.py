"""Snow (Stomakhin et al. 2013): corotated elasticity with clamped singular values and hardening."""

from typing import Literal

import taichi as ti
from pydantic import Field

from engine.materials.base import ElasticParams
from engine.materials.elastic import ElasticSolid
from engine.materials.stress import corotated_kirchhoff, diag


class SnowParams(ElasticParams):
    model: Literal["snow"] = "snow"
    critical_compression: float = Field(
        default=2.5e-2, gt=0, lt=1, description="theta_c: singular values below 1 - theta_c yield."
    )
    critical_stretch: float = Field(
        default=7.5e-3, gt=0, description="theta_s: singular values above 1 + theta_s yield."
    )
    hardening: float = Field(
        default=10.0, ge=0, le=50, description="xi: Lamé parameters scale with exp(xi (1 - J_p))."
    )


class Snow(ElasticSolid):
    """Stomakhin 2013 snow. State ``J_p`` (plastic volume ratio, starts at 1).

    Constants: ``k = (mu0, lambda0, theta_c, theta_s, xi)``.
    """

    name = "snow"
    Params = SnowParams
    state_vars = (("plastic_J", 1.0),)

    @classmethod
    def pack(cls, params: SnowParams) -> list[float]:
        mu, lam = params.lame()
        return [
            mu,
            lam,
            params.critical_compression,
            params.critical_stretch,
            params.hardening,
        ]

    @staticmethod
    @ti.func
    def project(U, sig, V, F, state, k):
        clamped = ti.min(ti.max(sig, 1.0 - k[2]), 1.0 + k[3])
        ratio = 1.0
        for i in ti.static(range(sig.n)):
            ratio *= sig[i] / clamped[i]
        state[0] = ti.min(ti.max(state[0] * ratio, 0.1), 10.0)
        F_elastic = U @ diag(clamped) @ V.transpose()
        return F_elastic, clamped, state

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        h = ti.exp(k[4] * (1.0 - state[0]))
        return corotated_kirchhoff(U, sig, V, F, k[0] * h, k[1] * h)
