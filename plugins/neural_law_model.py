"""The networks of the ``neural`` material (see :mod:`plugins.neural_law`); imports torch."""

import json
from pathlib import Path

import torch

from engine.diff.linalg import polar_rotation

HIDDEN = 64


def invariants(E: torch.Tensor) -> torch.Tensor:
    """Rotation-invariant features ``(N, 3)`` of the stretch ``E = U - I``, zero at rest."""
    trace = E.diagonal(dim1=1, dim2=2).sum(-1)
    return torch.stack(
        [
            trace,
            (E * E).sum((1, 2)),
            torch.linalg.det(E + torch.eye(E.shape[-1], dtype=E.dtype, device=E.device)) - 1,
        ],
        dim=1,
    )


def mlp(outputs: int) -> torch.nn.Sequential:
    """Two hidden layers of 64 with GELU and no biases (zero in, zero out)."""
    return torch.nn.Sequential(
        torch.nn.Linear(3, HIDDEN, bias=False),
        torch.nn.GELU(),
        torch.nn.Linear(HIDDEN, HIDDEN, bias=False),
        torch.nn.GELU(),
        torch.nn.Linear(HIDDEN, outputs, bias=False),
    )


class NeuralLaw(torch.nn.Module):
    """The elastic and plastic networks; ``kirchhoff(F)`` and ``project(F)`` on ``(N, d, d)``."""

    def __init__(self, stress_scale: float = 1.0e4) -> None:
        super().__init__()
        self.elastic = mlp(3)
        self.plastic = mlp(2)
        torch.nn.init.zeros_(self.plastic[-1].weight)  # no plasticity until trained
        self.register_buffer("stress_scale", torch.tensor(stress_scale))

    @staticmethod
    def _stretch(F):
        R = polar_rotation(F)
        U = R.transpose(1, 2) @ F
        return R, 0.5 * (U + U.transpose(1, 2)) - torch.eye(
            F.shape[-1], dtype=F.dtype, device=F.device
        )

    @staticmethod
    def _combine(coefficients, terms):
        """``sum_k c_k T_k`` for coefficients ``(N, K)`` and K tensors ``(N, d, d)``."""
        return sum(c[:, None, None] * t for c, t in zip(coefficients.unbind(1), terms, strict=True))

    def kirchhoff(self, F):
        R, E = self._stretch(F)
        eye = torch.eye(F.shape[-1], dtype=F.dtype, device=F.device).expand_as(E)
        S = self.stress_scale * self._combine(self.elastic(invariants(E)), [eye, E, E @ E])
        return R @ S @ F.transpose(1, 2)

    def project(self, F):
        R, E = self._stretch(F)
        return F + R @ self._combine(self.plastic(invariants(E)), [E, E @ E])


def save_neural_law(path: str | Path, law: NeuralLaw, record: dict) -> None:
    """Write the weights (``path``) and the JSON sidecar (``path`` with ``.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(law.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))
