"""Stress measures shared by several materials (Taichi functions, any dimension d)."""

import taichi as ti


@ti.func
def corotated_kirchhoff(U, sig, V, F, mu, lam):
    """Fixed-corotated Kirchhoff stress (Stomakhin et al. 2012), Pa, ``(d, d)``.

    ``tau = 2 mu (F - R) F^T + lam J (J - 1) I`` with ``R = U V^T`` and ``J = prod(sig)``.
    """
    J = 1.0
    for i in ti.static(range(sig.n)):
        J *= sig[i]
    R = U @ V.transpose()
    return 2.0 * mu * (F - R) @ F.transpose() + ti.Matrix.identity(float, sig.n) * lam * J * (
        J - 1.0
    )


@ti.func
def hencky_strain(sig):
    """Principal Hencky (logarithmic) strains ``log(sig)``, with sig clamped away from zero."""
    return ti.log(ti.max(ti.abs(sig), 1e-6))


@ti.func
def hencky_kirchhoff(U, eps, mu, lam):
    """St Venant–Kirchhoff stress in Hencky strain, Pa: ``U diag(2 mu eps + lam tr(eps)) U^T``."""
    tr = eps.sum()
    principal = 2.0 * mu * eps + lam * tr
    return U @ diag(principal) @ U.transpose()


@ti.func
def diag(v):
    """The diagonal matrix with the vector ``v`` on its diagonal."""
    return ti.Matrix([[v[i] if i == j else 0.0 for j in range(v.n)] for i in range(v.n)])
