"""Plasticine: von Mises perfect plasticity in Hencky strain with radial return."""

import math
from typing import Literal

import taichi as ti
from pydantic import Field

from engine.materials.base import ElasticParams
from engine.materials.elastic import ElasticSolid
from engine.materials.stress import diag, hencky_kirchhoff, hencky_strain


class VonMisesParams(ElasticParams):
    model: Literal["von_mises"] = "von_mises"
    yield_stress: float = Field(gt=0, description="Uniaxial yield stress sigma_y, Pa.")


class VonMises(ElasticSolid):
    """Von Mises plasticity: the deviatoric Hencky strain is returned radially to the yield surface.

    Yield when ``|tau_dev| = 2 mu |eps_dev| > sqrt(2/3) sigma_y``.
    Constants: ``k = (mu, lambda, sqrt(2/3) sigma_y / (2 mu))``, the last being the largest
    deviatoric strain norm.
    """

    name = "von_mises"
    Params = VonMisesParams

    @classmethod
    def pack(cls, params: VonMisesParams) -> list[float]:
        mu, lam = params.lame()
        return [mu, lam, math.sqrt(2.0 / 3.0) * params.yield_stress / (2.0 * mu)]

    @staticmethod
    @ti.func
    def project(U, sig, V, F, state, k):
        eps = hencky_strain(sig)
        mean = eps.sum() / sig.n
        eps_dev = eps - mean
        dev_norm = eps_dev.norm()
        new_sig = sig
        new_F = F
        if dev_norm > k[2]:
            new_sig = ti.exp(eps_dev * (k[2] / dev_norm) + mean)
            new_F = U @ diag(new_sig) @ V.transpose()
        return new_F, new_sig, state

    @staticmethod
    @ti.func
    def kirchhoff(U, sig, V, F, state, k, C):
        return hencky_kirchhoff(U, hencky_strain(sig), k[0], k[1])
