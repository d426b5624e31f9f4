"""The singular value decomposition the constitutive stage hands to materials (Taichi functions).

Taichi 1.7's ``ti.svd`` for 2x2 matrices treats the symmetric stretch as diagonal whenever its
off-diagonal entry is below 1e-5 in absolute value, so it drops shear strains under 1e-5 (in f64
too): a material that rebuilds ``F`` from the decomposition (sand, snow, von Mises) would then
erase small shears every step. :func:`svd` uses an exact closed form in 2D and ``ti.svd`` (accurate
to round-off) in 3D.
"""

import taichi as ti


@ti.func
def svd(F):
    """``U, S, V`` with ``F = U S V^T`` (``(d, d)`` each, ``S`` diagonal, descending in 2D)."""
    U, S, V = F, F, F
    if ti.static(F.n == 2):
        U, S, V = svd2d(F)
    else:
        U, S, V = ti.svd(F)
    return U, S, V


@ti.func
def svd2d(F):
    """Closed-form SVD of a 2x2 matrix: the polar decomposition ``F = R P``, then the Jacobi
    rotation ``V`` that diagonalises the symmetric ``P`` (``V^T P V = diag(s1, s2)``, s1 >= s2),
    and ``U = R V``."""
    R, P = ti.polar_decompose(F)
    cos, sin = 1.0, 0.0
    half_gap = 0.5 * (P[0, 0] - P[1, 1])
    largest = ti.max(ti.abs(half_gap), ti.abs(P[0, 1]))
    if P[0, 1] != 0.0 and largest > 0.0:
        # scaled so that squaring cannot underflow: in f32 an off-diagonal entry below 1e-23
        # with equal diagonal entries (F within round-off of a rotation) made radius 0 and the
        # tangent infinite, and the stress NaN
        gap, off = half_gap / largest, P[0, 1] / largest
        radius = largest * ti.sqrt(gap * gap + off * off)
        tangent = P[0, 1] / (half_gap - radius)  # the stable root of t^2 + 2 (gap/P01) t - 1
        if half_gap > 0.0:
            tangent = P[0, 1] / (half_gap + radius)
        cos = 1.0 / ti.sqrt(tangent * tangent + 1.0)
        sin = -tangent * cos
    s1 = cos * cos * P[0, 0] - 2.0 * cos * sin * P[0, 1] + sin * sin * P[1, 1]
    s2 = sin * sin * P[0, 0] + 2.0 * cos * sin * P[0, 1] + cos * cos * P[1, 1]
    V = ti.Matrix([[cos, sin], [-sin, cos]])
    if s1 < s2:
        s1, s2 = s2, s1
        V = ti.Matrix([[-sin, cos], [-cos, -sin]])
    return R @ V, ti.Matrix([[s1, 0.0], [0.0, s2]]), V
