"""The mover experiment measures meshes as the engine writes them: a mesh the engine's check
refuses (NaN nodes, an inverted cell) counts as the uniform mesh and as a fallback."""

import numpy as np

from engine.diff.mover_experiment import as_written, inverted_cells
from engine.output.lattice import uniform_nodes

NODES = (5, 5)
DOMAIN = np.array([1.0, 1.0])


def test_refused_meshes_are_measured_as_the_uniform_mesh_the_engine_writes():
    xi = uniform_nodes(DOMAIN, NODES)
    moved = xi.copy()
    moved[12] += 0.05  # the centre node: a valid move
    not_finite = xi.copy()
    not_finite[12] = np.nan
    inverted = xi.copy()
    inverted[12] += 0.4  # past its neighbours: cells fold
    points = {"good": moved, "nan": not_finite, "folded": inverted}
    written, fallbacks = as_written(points, xi, NODES, DOMAIN)
    assert set(fallbacks) == {"nan", "folded"}
    assert "not finite" in fallbacks["nan"] and "inverted" in fallbacks["folded"]
    assert written["good"] is moved
    assert written["nan"] is xi and written["folded"] is xi


def test_cells_with_nan_corners_count_as_inverted():
    xi = uniform_nodes(DOMAIN, NODES)
    assert inverted_cells(xi, NODES) == 0
    broken = xi.copy()
    broken[12] = np.nan
    assert inverted_cells(broken, NODES) == 4  # the four cells around the centre node
