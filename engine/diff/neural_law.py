"""The networks of the ``neural`` material; imports torch. The built-in plugin
``engine_plugins.neural_law`` registers the material, training (:mod:`engine.diff.train`) builds
and saves the networks, so they live in the core.

Two architectures, named in each law's JSON sidecar (``"architecture"``):

- ``invariant`` (:class:`NeuralLaw`): a physical prior that spans the classic MPM laws, its few
  scalars identified from the motion, and networks that learn what the prior misses.
  Elastic part, in the principal stretches ``sigma`` of ``U`` (``F = R U``, ``J = det F``):
  ``S_i = lambda ((1 + k1) V_i + k2 |sigma - 1|^2) + 2 mu ((1 + k3) D_i + k4 (sigma_i - 1)^2)``
  with ``V_i = ((1 - w) J (J - 1) + w log J) / sigma_i`` and
  ``D_i = (1 - w) (sigma_i - 1) + w log(sigma_i) / sigma_i``; ``w = 0`` is the fixed-corotated
  solid, ``w = 1`` Hencky elasticity. ``tau = R S F^T``. ``k`` in (-1/2, 1/2) comes from a
  network of rotation invariants of ``E = U - I``: it stiffens or softens the law by up to half
  and adds second-order terms, so the law stays stable. ``tau`` is zero at rest and
  rotation-equivariant whatever the weights. Plastic part, in principal Hencky strains ``eps``
  (eigenvalues of ``log(F F^T) / 2``): the prior returns ``eps`` onto the Drucker–Prager cone
  ``|dev(eps)| <= y - f tr(eps)`` (beyond its apex, onto the apex), the yield strain ``y`` and
  friction slope ``f`` identified; von Mises is ``f -> 0``, cohesionless sand ``y -> 0``. The
  law carries one state per particle (:data:`STATE_VARS`): the log volume by which the last
  step went beyond the apex, added to the next step's ``tr(eps)`` (the volume correction of Klar
  et al. 2016), so a body that came apart must close up again before it carries load. A
  network of the two invariants the radial return keeps, the mean strain and the Lode invariant
  ``sum(dev^3) / |dev|^3``, shapes the yield surface: it scales the cone's radius by
  ``1 + c``, ``c`` in (-1/2, 1/2), zero untrained (pressure- and Lode-dependent yield, as in
  Mohr–Coulomb). Inside the yield surface the map is exactly the identity whatever the weights,
  and projecting its output again changes nothing.
- ``mlp`` (:class:`MLPLaw`): the unconstrained baseline of the acceptance experiments, a network
  from the entries of ``F - I`` to the entries of ``tau``, no plastic part.

``s`` is the law's ``stress_scale`` (Pa). Shapes: ``F`` and ``tau`` are ``(N, d, d)``.
"""

import json
from pathlib import Path

import torch

from engine.diff.linalg import polar_rotation, safe_eigh

HIDDEN = 64
INITIAL_YIELD = [0.1, 0.1]  # the untrained return map: yield strain, friction slope
PRIOR_RANGE = 12.0  # prior scalars are clamped to +-this (a factor e^12 ~ 1.6e5 either way)
MODULATION = 0.5  # the networks change the moduli and the yield radius by at most this fraction
#: The per-particle state of every neural law: log volume remembered from separating.
STATE_VARS = (("volume_correction", 0.0),)
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


class NeuralLaw(torch.nn.Module):
    """The ``invariant`` architecture: ``kirchhoff(F)`` and ``project(F)`` on ``(N, d, d)``.

    The physical prior's scalars are parameters named ``prior_*``: ``prior_moduli`` (log of
    lambda and 2 mu over ``stress_scale``), ``prior_mix`` (logit of the weight of Hencky over
    fixed-corotated elasticity) and ``prior_yield`` (log of the yield strain and friction
    slope).
    Untrained: a fixed-corotated and Hencky half-and-half solid of Young's modulus
    ``stress_scale`` (Pa) and Poisson's ratio 0.3, and a return map that leaves strains inside
    yield strain and friction slope 0.1 alone.
    """

    architecture = "invariant"
    state_vars = STATE_VARS

    def __init__(self, stress_scale: float = 1.0e4) -> None:
        super().__init__()
        nu = 0.3
        self.register_buffer(
            "base_moduli", torch.tensor([nu / ((1 + nu) * (1 - 2 * nu)), 1 / (1 + nu)])
        )
        self.register_buffer("stress_scale", torch.tensor(float(stress_scale)))
        self.prior_moduli = torch.nn.Parameter(torch.zeros(2))
        self.prior_mix = torch.nn.Parameter(torch.zeros(()))
        self.prior_yield = torch.nn.Parameter(torch.log(torch.tensor(INITIAL_YIELD)))
        self.elastic = mlp(3, 4)
        self.plastic = mlp(2, 1)

    def kirchhoff(self, F: torch.Tensor) -> torch.Tensor:
        R = polar_rotation(F)
        U = R.transpose(1, 2) @ F
        sigma, W = safe_eigh(0.5 * (U + U.transpose(1, 2)))  # principal stretches (N, d)
        strain = sigma - 1
        E = W @ torch.diag_embed(strain) @ W.transpose(1, 2)
        lam, two_mu = self.base_moduli * torch.exp(
            self.prior_moduli.clamp(-PRIOR_RANGE, PRIOR_RANGE)
        )
        hencky = torch.sigmoid(self.prior_mix.clamp(-PRIOR_RANGE, PRIOR_RANGE))
        k = MODULATION * torch.tanh(self.elastic(stretch_invariants(E)))  # (N, 4) in (-1/2, 1/2)
        J = sigma.prod(-1, keepdim=True)
        volumetric = ((1 - hencky) * J * (J - 1) + hencky * torch.log(J)) / sigma
        distortion = (1 - hencky) * strain + hencky * torch.log(sigma) / sigma
        squared = (strain * strain).sum(-1, keepdim=True)
        principal = lam * ((1 + k[:, :1]) * volumetric + k[:, 1:2] * squared)
        principal = principal + two_mu * ((1 + k[:, 2:3]) * distortion + k[:, 3:] * strain**2)
        S = W @ torch.diag_embed(self.stress_scale * principal) @ W.transpose(1, 2)
        return R @ S @ F.transpose(1, 2)

    def project(self, F: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The return map of the trial ``F`` ``(N, d, d)`` given the particles' remembered
        volume ``state`` ``(N, 1)``; returns the elastic ``F`` and the new state."""
        values, V = safe_eigh(F @ F.transpose(1, 2))
        eps = 0.5 * torch.log(values.clamp_min(1e-12))  # principal Hencky strains (N, d)
        d = eps.shape[-1]
        mean = eps.mean(-1, keepdim=True)
        dev = eps - mean
        cap, friction = torch.exp(self.prior_yield.clamp(-PRIOR_RANGE, PRIOR_RANGE))
        apex = cap / friction  # tr(eps) at the tip of the cone |dev| <= cap - friction tr(eps)
        trace = d * mean + state  # with the log volume remembered from coming apart
        beyond = trace > apex
        norm_squared = (dev * dev).sum(-1, keepdim=True)
        sheared = norm_squared > 0.0
        norm = torch.sqrt(torch.where(sheared, norm_squared, 1.0))  # no 0/0 gradient at rest
        lode = torch.where(sheared, (dev**3).sum(-1, keepdim=True) / norm**3, 0.0)
        shape = self.plastic(torch.cat([torch.asinh(mean / STRAIN_SCALE), lode], dim=1))
        radius = torch.clamp(cap - friction * trace, min=0.0)
        radius = radius * (1.0 + MODULATION * torch.tanh(shape))
        outside = norm_squared > radius * radius
        returned = torch.where(beyond, 0.0, torch.where(outside, dev * (radius / norm), dev))
        new_mean = torch.where(beyond, apex / d, mean)
        new_state = torch.where(beyond, trace - apex, 0.0)  # so projecting again changes nothing
        delta = (new_mean - mean) + (returned - dev)
        # F + V (exp(delta) - 1) V^T F: exactly F where delta is 0 (inside the yield surface)
        F_elastic = F + V @ torch.diag_embed(torch.expm1(delta)) @ V.transpose(1, 2) @ F
        return F_elastic, new_state


class MLPLaw(torch.nn.Module):
    """The ``mlp`` baseline: ``tau = s * net(F - I)``, entries to entries; elastic only."""

    architecture = "mlp"
    state_vars = STATE_VARS  # carried unchanged: this law has no plastic part

    def __init__(self, stress_scale: float = 1.0e4, dim: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.stress = mlp(dim * dim, dim * dim)
        self.register_buffer("stress_scale", torch.tensor(float(stress_scale)))

    def kirchhoff(self, F: torch.Tensor) -> torch.Tensor:
        strain = torch.asinh((F - _eye(F)).flatten(1) / STRAIN_SCALE)
        return self.stress_scale * self.stress(strain).reshape(F.shape)

    def project(self, F: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F, state


ARCHITECTURES = ("invariant", "mlp")


def build_law(architecture: str, stress_scale: float, dim: int) -> torch.nn.Module:
    """An untrained law of ``architecture`` (one of :data:`ARCHITECTURES`) for ``dim``-D."""
    if architecture == "invariant":
        return NeuralLaw(stress_scale)
    if architecture == "mlp":
        return MLPLaw(stress_scale, dim)
    raise ValueError(f"unknown law architecture {architecture!r}; choose from {ARCHITECTURES}")


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
