"""Differentiable 3x3 / 2x2 linear algebra that stays finite where torch's does not.

``torch.linalg.eigh`` and ``svd`` have gradients with ``1 / (lambda_i - lambda_j)`` terms, which
are infinite at the rest state F = I (repeated values). :func:`safe_eigh` uses the same formula
with those terms dropped where the gap is below ``EPS``; :func:`polar_rotation` avoids
decompositions altogether (Newton iteration), so its gradient is exact everywhere F is
invertible.
"""

from __future__ import annotations

import torch

EPS = 1e-12


class _SafeEigh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A):
        values, vectors = torch.linalg.eigh(A)
        ctx.save_for_backward(values, vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):
        values, vectors = ctx.saved_tensors
        gap = values[..., None, :] - values[..., :, None]  # lambda_j - lambda_i
        inverse = torch.where(gap.abs() > EPS, 1.0 / torch.where(gap == 0, 1.0, gap), 0.0)
        inner = torch.diag_embed(grad_values)
        if grad_vectors is not None:
            inner = inner + inverse * (vectors.transpose(-1, -2) @ grad_vectors)
        grad = vectors @ inner @ vectors.transpose(-1, -2)
        return 0.5 * (grad + grad.transpose(-1, -2))


def safe_eigh(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending, ``(..., d)``) and eigenvectors (``(..., d, d)``) of symmetric A."""
    return _SafeEigh.apply(A)


def polar_rotation(F: torch.Tensor, iterations: int = 12) -> torch.Tensor:
    """Rotation R of the polar decomposition F = R S, ``(..., d, d)``, by scaled Newton steps
    ``R <- (g R + R^-T / g) / 2`` (Higham 1986); exact gradients, also at F = I. In 2D the
    closed form ``R = [[a + d, b - c], [c - b, a + d]] / |(a + d, c - b)|`` is used instead."""
    if F.shape[-1] == 2:
        cos, sin = F[..., 0, 0] + F[..., 1, 1], F[..., 1, 0] - F[..., 0, 1]
        norm = torch.sqrt(cos * cos + sin * sin)
        cos, sin = cos / norm, sin / norm
        return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    R = F
    for _ in range(iterations):
        inverse_t = torch.linalg.inv(R).transpose(-1, -2)
        scale = (inverse_t.abs().sum((-1, -2)) / R.abs().sum((-1, -2))).sqrt()[..., None, None]
        R = 0.5 * (scale * R + inverse_t / scale)
    return R
