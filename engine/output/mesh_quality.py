"""How well a moved output mesh fits its monitor and its field.

- :func:`equidistribution_spread`: the standard deviation of ``m x cell volume`` over its mean
  (``m`` at each cell's centre); 0 for a mesh that equidistributes the monitor exactly, the
  Monge-Ampere equation's aim, and the issue's measure of a mover.
- :func:`interpolation_error`: a field sampled at a mesh's nodes, interpolated piecewise
  linearly over the nodes, against the same field sampled on a finer uniform mesh (the issue's
  error measure: at equal node count, against a 4x finer uniform mesh, see :func:`finer`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

from engine.output.lattice import cell_centres, cell_volumes


def equidistribution_spread(
    points: np.ndarray, nodes: tuple[int, ...], monitor: Callable[[np.ndarray], np.ndarray]
) -> float:
    """``std(m_c |K_c|) / mean(m_c |K_c|)`` over the cells ``c`` of the mesh ``points``
    ``(M, d)`` m with ``nodes`` per axis, ``monitor`` ``(C, d) -> (C,)`` at their centres."""
    density = monitor(cell_centres(points, nodes)) * cell_volumes(points, nodes)
    return float(density.std() / density.mean())


def finer(nodes: tuple[int, ...], factor: int = 4) -> tuple[int, ...]:
    """The node counts of a mesh ``factor`` times finer: ``factor (n - 1) + 1`` per axis."""
    return tuple(factor * (n - 1) + 1 for n in nodes)


def interpolation_error(
    points: np.ndarray, values: np.ndarray, reference_points: np.ndarray, reference: np.ndarray
) -> float:
    """The root-mean-square difference, at ``reference_points`` ``(R, d)``, between
    ``reference`` ``(R,)`` or ``(R, k)`` and ``values`` ``(M,)`` or ``(M, k)`` given at the mesh
    nodes ``points`` ``(M, d)`` and interpolated linearly over the Delaunay simplices of the
    nodes (a valid moved quad or hexahedral mesh's cells split into simplices, up to the choice
    of diagonals; reference points a round-off outside the nodes' hull take the nearest node's
    value). For vectors, the norm of the difference. In the field's unit."""
    values = np.asarray(values, float).reshape(len(points), -1)
    reference = np.asarray(reference, float).reshape(len(reference_points), -1)
    interpolated = LinearNDInterpolator(points, values)(reference_points)
    outside = np.isnan(interpolated).any(axis=1)
    if outside.any():
        interpolated[outside] = NearestNDInterpolator(points, values)(reference_points[outside])
    return float(np.sqrt(((interpolated - reference) ** 2).sum(axis=1).mean()))
