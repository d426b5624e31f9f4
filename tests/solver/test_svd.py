"""The constitutive stage's SVD: exact in 2D even for shears far below 1e-5, where Taichi 1.7's
``ti.svd`` treats the stretch as diagonal (reference: numpy.linalg.svd, f64 round-off)."""

import numpy as np
import pytest
import taichi as ti

from engine.solver.runtime import ensure_runtime
from engine.solver.svd import svd


@ti.kernel
def decompose(
    F: ti.types.ndarray(), U: ti.types.ndarray(), S: ti.types.ndarray(), V: ti.types.ndarray()
):
    for p in range(F.shape[0]):
        A = ti.Matrix([[F[p, i, j] for j in ti.static(range(2))] for i in ti.static(range(2))])
        u, s, v = svd(A)
        for i, j in ti.static(ti.ndrange(2, 2)):
            U[p, i, j], S[p, i, j], V[p, i, j] = u[i, j], s[i, j], v[i, j]


@pytest.mark.parametrize("shear", [0.0, 1e-12, 1e-8, 1e-6, 1e-3, 0.5])
def test_2d_svd_rebuilds_F_and_matches_numpy(shear):
    ensure_runtime("cpu", "f64")
    rng = np.random.default_rng(0)
    F = np.eye(2) + shear * rng.normal(size=(64, 2, 2))
    F[-1] = [[-1.0, 0.2], [0.1, 0.5]]  # an inverted element too
    U, S, V = (np.zeros_like(F) for _ in range(3))
    decompose(F, U, S, V)
    assert np.abs(U @ S @ V.transpose(0, 2, 1) - F).max() <= 1e-14
    eye = np.broadcast_to(np.eye(2), F.shape)
    for Q in (U, V):
        assert np.abs(Q @ Q.transpose(0, 2, 1) - eye).max() <= 1e-14
    singular = np.abs(np.diagonal(S, axis1=1, axis2=2))
    assert np.abs(singular - np.linalg.svd(F, compute_uv=False)).max() <= 1e-14


def test_2d_svd_of_a_stretch_whose_squares_underflow_is_finite():
    """Equal diagonal entries and an off-diagonal entry whose square underflows (below 1e-23 in
    f32, 1e-162 in f64: F within round-off of a rotation) gave an infinite Jacobi tangent and a
    NaN stress; a 30 degree slope in f32 hit it within three steps."""
    ensure_runtime("cpu", "f64")
    F = np.array([[[1.0, 1e-170], [1e-170, 1.0]], [[2.0, -1e-200], [-1e-200, 2.0]]])
    U, S, V = (np.zeros_like(F) for _ in range(3))
    decompose(F, U, S, V)
    assert np.isfinite(U).all() and np.isfinite(S).all() and np.isfinite(V).all()
    assert np.abs(U @ S @ V.transpose(0, 2, 1) - F).max() <= 1e-14
    np.testing.assert_allclose(np.diagonal(S, axis1=1, axis2=2), [[1, 1], [2, 2]], atol=1e-14)
