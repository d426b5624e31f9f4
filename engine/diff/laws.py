"""Torch versions of the built-in constitutive laws, differentiable in F and in the parameters.

Each law takes ``F`` ``(N, d, d)``, the velocity gradient ``C`` ``(N, d, d)``, the plastic state
``S`` ``(N, MAX_STATE)`` (columns in the order of the material's ``state_vars``) and a dict of
parameter tensors (the scene's keys, SI units), and returns the elastic ``F`` after the plastic
projection, the Kirchhoff stress ``(N, d, d)`` (Pa) and the new state, exactly as the Taichi
materials do.
"""

from __future__ import annotations

import math

import torch

from engine.diff.linalg import polar_rotation, safe_eigh


def lame(p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lamé parameters (mu, lambda), Pa, from Young's modulus and Poisson's ratio."""
    E, nu = p["youngs_modulus"], p["poisson_ratio"]
    return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))


def _eye(F: torch.Tensor) -> torch.Tensor:
    return torch.eye(F.shape[-1], dtype=F.dtype, device=F.device)


def neo_hookean(F, C, S, p):
    mu, lam = lame(p)
    J = torch.linalg.det(F).clamp_min(1e-6)
    eye = _eye(F)
    return F, mu * (F @ F.transpose(1, 2) - eye) + lam * torch.log(J)[:, None, None] * eye, S


def fixed_corotated(F, C, S, p):
    mu, lam = lame(p)
    J = torch.linalg.det(F)[:, None, None]
    R = polar_rotation(F)
    return F, 2 * mu * (F - R) @ F.transpose(1, 2) + lam * J * (J - 1) * _eye(F), S


def _hencky(F):
    """Eigenvectors V of b = F F^T and the principal Hencky strains ``log(sigma)``."""
    values, V = safe_eigh(F @ F.transpose(1, 2))
    return V, 0.5 * torch.log(values.clamp_min(1e-12))


def _hencky_kirchhoff(V, eps, mu, lam):
    principal = 2 * mu * eps + lam * eps.sum(-1, keepdim=True)
    return V @ torch.diag_embed(principal) @ V.transpose(1, 2)


def von_mises(F, C, S, p):
    mu, lam = lame(p)
    d = F.shape[-1]
    V, eps = _hencky(F)
    mean = eps.sum(-1, keepdim=True) / d
    deviator = eps - mean
    norm_squared = (deviator * deviator).sum(-1, keepdim=True)
    cap = math.sqrt(2.0 / 3.0) * p["yield_stress"] / (2 * mu)
    yielding = norm_squared > cap * cap
    norm = torch.sqrt(torch.where(yielding, norm_squared, 1.0))  # no 0/0 gradient at rest
    new_eps = torch.where(yielding, deviator * (cap / norm) + mean, eps)
    stretch = torch.exp(new_eps - eps)  # sigma_new / sigma
    F_new = V @ torch.diag_embed(stretch) @ V.transpose(1, 2) @ F
    return F_new, _hencky_kirchhoff(V, new_eps, mu, lam), S


def sand(F, C, S, p):
    """Drucker–Prager sand with volume correction (Klar et al. 2016), as engine.materials.sand:
    ``S[:, 0]`` is the log volume gained in tension."""
    mu, lam = lame(p)
    d = F.shape[-1]
    V, eps = _hencky(F)
    sine = torch.sin(torch.deg2rad(p["friction_angle"]))
    alpha = math.sqrt(2.0 / 3.0) * 2.0 * sine / (3.0 - sine)
    trace = eps.sum(-1, keepdim=True) + S[:, :1]
    deviator = eps - trace / d
    norm_squared = (deviator * deviator).sum(-1, keepdim=True)
    nonzero = norm_squared > 0.0  # no 0/0 gradient at rest
    norm = torch.where(nonzero, torch.sqrt(torch.where(nonzero, norm_squared, 1.0)), 0.0) + 1e-20
    plastic = norm + (d * lam + 2.0 * mu) / (2.0 * mu) * trace * alpha
    tension = trace >= 0.0
    new_eps = torch.where(
        tension, 0.0, torch.where(plastic > 0.0, eps - plastic / norm * deviator, eps)
    )
    stretch = torch.exp(new_eps - eps)
    F_new = V @ torch.diag_embed(stretch) @ V.transpose(1, 2) @ F
    S_new = torch.cat([torch.where(tension, trace, 0.0), S[:, 1:]], dim=1)
    return F_new, _hencky_kirchhoff(V, new_eps, mu, lam), S_new


def fluid(F, C, S, p):
    d = F.shape[-1]
    J = torch.linalg.det(F).clamp_min(1e-6)
    gamma = p["eos_exponent"]
    pressure = p["bulk_modulus"] * (J**-gamma - 1) / gamma
    eye = _eye(F)
    viscous = p["viscosity"] * (C + C.transpose(1, 2) - (2.0 / 3.0) * _trace(C) * eye)
    tau = J[:, None, None] * (viscous - pressure[:, None, None] * eye)
    return eye * (J ** (1.0 / d))[:, None, None], tau, S


def _trace(A):
    return A.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]


#: Built-in models the torch twin reproduces.
LAWS = {
    "neo_hookean": neo_hookean,
    "fixed_corotated": fixed_corotated,
    "von_mises": von_mises,
    "sand": sand,
    "fluid": fluid,
}
