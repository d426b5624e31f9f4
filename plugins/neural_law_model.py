"""The networks of the ``neural`` material (see :mod:`plugins.neural_law`); imports torch.

Two architectures, named in each law's JSON sidecar (``"architecture"``):

- ``invariant`` (:class:`NeuralLaw`): the physics is built in. Elastic part
  ``S = s (lambda ((1 + k1) J (J - 1) U^-1 + k2 |E|^2 I) + 2 mu ((1 + k3) E + k4 E^2))``,
  ``tau = R S F^T``, ``F = R U``, ``E = U - I``, ``J = det F``: with ``k = 0`` this is the
  fixed-corotated solid, the usual MPM prior. The moduli ``lambda`` and ``mu`` are learned (as
  logarithms, so they stay positive), and ``k`` in (-1/2, 1/2) comes from a network of rotation
  invariants of ``E``: it stiffens or softens the law by up to half and adds second-order terms,
  so the law stays stable. ``tau`` is zero at rest and rotation-equivariant whatever the
  weights. Plastic part:
  a return map in principal Hencky strain ``eps`` (eigenvalues of ``log(F F^T) / 2``):
  ``eps <- eps + c1 mean(eps) + c2 dev(eps) + c3 (dev(eps)^2 - mean(dev(eps)^2))``, with
  ``c`` in (-1, 1) from a network of invariants of ``eps``; von Mises, Drucker–Prager and the
  fluid's volume reset all have this form.
- ``mlp`` (:class:`MLPLaw`): the unconstrained baseline of the acceptance experiments, a network
  from the entries of ``F - I`` to the entries of ``tau``, no plastic part.

``s`` is the law's ``stress_scale`` (Pa). Shapes: ``F`` and ``tau`` are ``(N, d, d)``.
"""

import json
from pathlib import Path

import torch

from engine.diff.linalg import polar_rotation, safe_eigh

HIDDEN = 64
MODULATION = 0.5  # the elastic network changes the moduli by at most this fraction
STRAIN_SCALE = 0.05  # typical strain; network inputs are divided by it, then asinh-squashed


def mlp(inputs: int, outputs: int) -> torch.nn.Sequential:
    """Two hidden layers of 64 with GELU; the output layer starts at zero."""
    network = torch.nn.Sequential(
        torch.nn.Linear(inputs, HIDDEN),
        torch.nn.GELU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.GELU(),
        torch.nn.Linear(HIDDEN, outputs),
    )
    torch.nn.init.zeros_(network[-1].weight)
    torch.nn.init.zeros_(network[-1].bias)
    return network


def _eye(F: torch.Tensor) -> torch.Tensor:
    return torch.eye(F.shape[-1], dtype=F.dtype, device=F.device)


def stretch_invariants(E: torch.Tensor) -> torch.Tensor:
    """Rotation invariants ``(N, 3)`` of the stretch ``E = U - I`` ``(N, d, d)``: trace, squared
    norm and volume change, each divided by the typical strain (squared) and passed through
    ``asinh`` (linear near zero, logarithmic beyond), so that large strains cannot saturate the
    network."""
    trace = E.diagonal(dim1=1, dim2=2).sum(-1)
    squared = (E * E).sum((1, 2))
    volume = torch.linalg.det(E + _eye(E)) - 1
    return torch.asinh(
        torch.stack([trace / STRAIN_SCALE, squared / STRAIN_SCALE**2, volume / STRAIN_SCALE], 1)
    )


def principal_invariants(mean: torch.Tensor, dev: torch.Tensor) -> torch.Tensor:
    """Invariants ``(N, 3)`` of principal strains split into mean ``(N, 1)`` and deviator
    ``(N, d)``: the mean, the deviator's squared norm and the sum of its cubes, scaled and
    squashed like :func:`stretch_invariants`."""
    return torch.asinh(
        torch.cat(
            [
                mean / STRAIN_SCALE,
                (dev * dev).sum(-1, keepdim=True) / STRAIN_SCALE**2,
                (dev**3).sum(-1, keepdim=True) / STRAIN_SCALE**3,
            ],
            dim=1,
        )
    )


class NeuralLaw(torch.nn.Module):
    """The ``invariant`` architecture: ``kirchhoff(F)`` and ``project(F)`` on ``(N, d, d)``.

    Untrained, the elastic part is a fixed-corotated solid with Young's modulus
    ``stress_scale`` (Pa) and Poisson's ratio 0.3, and the plastic part is the identity. The
    two moduli are learned as logarithms (``log_moduli``), their modulation by a network.
    """

    architecture = "invariant"

    def __init__(self, stress_scale: float = 1.0e4) -> None:
        super().__init__()
        nu = 0.3
        self.register_buffer(
            "base_moduli", torch.tensor([nu / ((1 + nu) * (1 - 2 * nu)), 1 / (1 + nu)])
        )
        self.log_moduli = torch.nn.Parameter(torch.zeros(2))  # lambda, 2 mu = base * exp(this)
        self.elastic = mlp(3, 4)
        self.plastic = mlp(3, 3)
        self.register_buffer("stress_scale", torch.tensor(float(stress_scale)))

    def kirchhoff(self, F: torch.Tensor) -> torch.Tensor:
        R = polar_rotation(F)
        U = R.transpose(1, 2) @ F
        eye = _eye(F)
        E = 0.5 * (U + U.transpose(1, 2)) - eye
        lam, two_mu = self.base_moduli * torch.exp(self.log_moduli)
        k = MODULATION * torch.tanh(self.elastic(stretch_invariants(E)))  # (N, 4) in (-1/2, 1/2)
        J = torch.linalg.det(F)[:, None, None]
        squared = (E * E).sum((1, 2))[:, None, None]
        volumetric = (1 + k[:, 0, None, None]) * J * (J - 1) * torch.linalg.inv(U)
        S = lam * (volumetric + k[:, 1, None, None] * squared * eye)
        S = S + two_mu * ((1 + k[:, 2, None, None]) * E + k[:, 3, None, None] * (E @ E))
        return R @ (self.stress_scale * S) @ F.transpose(1, 2)

    def project(self, F: torch.Tensor) -> torch.Tensor:
        values, V = safe_eigh(F @ F.transpose(1, 2))
        eps = 0.5 * torch.log(values.clamp_min(1e-12))  # principal Hencky strains (N, d)
        mean = eps.mean(-1, keepdim=True)
        dev = eps - mean
        c = torch.tanh(self.plastic(principal_invariants(mean, dev)))  # in (-1, 1)
        squared = dev * dev
        delta = c[:, :1] * mean + c[:, 1:2] * dev
        delta = delta + c[:, 2:] * (squared - squared.mean(-1, keepdim=True))
        # F + V (exp(delta) - 1) V^T F: exactly F where delta is 0 (untrained, or at rest)
        return F + V @ torch.diag_embed(torch.expm1(delta)) @ V.transpose(1, 2) @ F


class MLPLaw(torch.nn.Module):
    """The ``mlp`` baseline: ``tau = s * net(F - I)``, entries to entries; elastic only."""

    architecture = "mlp"

    def __init__(self, stress_scale: float = 1.0e4, dim: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.stress = mlp(dim * dim, dim * dim)
        self.register_buffer("stress_scale", torch.tensor(float(stress_scale)))

    def kirchhoff(self, F: torch.Tensor) -> torch.Tensor:
        strain = torch.asinh((F - _eye(F)).flatten(1) / STRAIN_SCALE)
        return self.stress_scale * self.stress(strain).reshape(F.shape)

    def project(self, F: torch.Tensor) -> torch.Tensor:
        return F


ARCHITECTURES = {law.architecture: law for law in (NeuralLaw, MLPLaw)}


def build_law(architecture: str, stress_scale: float, dim: int) -> torch.nn.Module:
    """An untrained law of ``architecture`` (a key of :data:`ARCHITECTURES`) for ``dim``-D."""
    if architecture == "mlp":
        return MLPLaw(stress_scale, dim)
    return ARCHITECTURES[architecture](stress_scale)


def save_neural_law(path: str | Path, law: torch.nn.Module, record: dict) -> None:
    """Write the weights (``path``) and the JSON sidecar (``path`` with ``.json``), which gets
    the law's ``architecture`` and ``dim`` besides ``record``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(law.state_dict(), path)
    sidecar = {"architecture": law.architecture, "dim": getattr(law, "dim", None), **record}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))


def load_neural_law(path: str | Path, device="cpu", dtype=torch.float64) -> torch.nn.Module:
    """The law saved at ``path`` by :func:`save_neural_law`, weights loaded safely."""
    path = Path(path)
    record = json.loads(path.with_suffix(".json").read_text())
    law = build_law(record.get("architecture", "invariant"), 1.0, record.get("dim") or 3)
    law = law.to(dtype)
    law.load_state_dict(torch.load(path, weights_only=True, map_location=device))
    return law.to(device)
