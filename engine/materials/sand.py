"""Sand: Drucker–Prager plasticity in Hencky strain (Klar et al. 2016)."""

import math
from typing import Literal

import taichi as ti
from pydantic import Field

from engine.materials.base import ElasticParams
from engine.materials.elastic import ElasticSolid
from engine.materials.stress import diag, hencky_kirchhoff, hencky_strain


class SandParams(ElasticParams):
    model: Literal["sand"] = "sand"
    friction_angle: float = Field(
        default=30.0, gt=0, lt=90, description="Internal friction angle phi, degrees."
    )


class Sand(ElasticSolid):
    """Cohesionless Drucker–Prager sand with volume correction (Klar et al. 2016, sec. 7.3).

    State ``volume_correction`` (accumulated log volume gained in tension, starts at 0).
    Constants: ``k = (mu, lambda, alpha)`` with ``alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi))``.
    """

    name = "sand"
    Params = SandParams
    state_vars = (("volume_correction", 0.0),)

    @classmethod
    def pack(cls, params: SandParams) -> list[float]:
        s = math.sin(math.radians(params.friction_angle))
        return [*params.lame(), math.sqrt(2.0 / 3.0) * 2.0 * s / (3.0 - s)]

    @staticmethod
    @ti.func
    def project(U, sig, V, F, state, k):
        d = ti.static(sig.n)
        eps = hencky_strain(sig)
        trace = eps.sum() + state[0]
        eps_dev = eps - trace / d
        dev_norm = eps_dev.norm() + 1e-20
        new_eps = eps
        if trace >= 0.0:  # tension: sand has no cohesion, it separates stress-free
            new_eps = ti.Vector.zero(float, d)
            state[0] = trace
        else:
            state[0] = 0.0
            mu, lam, alpha = k[0], k[1], k[2]
            plastic = dev_norm + (d * lam + 2.0 * mu) / (2.0 * mu) * trace * alpha
            if plastic > 0.0:  # outside the cone: project back onto it
                new_eps = eps - plastic / dev_norm * eps_dev
        new_sig = ti.exp(new_eps)
        return U @ diag(new_sig) @ V.transpose(), new_sig, state

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        return hencky_kirchhoff(U, hencky_strain(sig), k[0], k[1])
