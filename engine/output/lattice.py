"""The structured meshes of ``[[output.meshes]]``: uniform nodes, VTK cells, and what a moved
mesh's cells measure (corner Jacobians, volumes, centres) and must satisfy (no inverted cell,
boundary nodes on their faces).

A mesh of ``nodes`` ``(d,)`` nodes per axis stores its ``M = prod(nodes)`` node positions as
``(M, d)`` in lattice order (C order: the last axis runs fastest), so ``points.reshape(*nodes,
d)`` is the lattice. Its cells are the ``prod(nodes - 1)`` quads (2D) or hexahedra (3D) between
neighbouring nodes, in the same order.
"""

from __future__ import annotations

import itertools

import numpy as np

#: A node may sit this far (relative to the domain's size) outside its face, or off it.
BOUNDARY_TOLERANCE = 1e-6


def uniform_nodes(domain: np.ndarray, nodes: tuple[int, ...]) -> np.ndarray:
    """Nodes ``(M, d)`` m evenly spaced over ``[0, domain]``, ``nodes`` per axis."""
    axes = [np.linspace(0.0, float(size), n) for size, n in zip(domain, nodes, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(nodes))


def _corners(dim: int) -> list[tuple[int, ...]]:
    """A cell's corners as lattice offsets, in VTK's order: counter-clockwise around the
    bottom face (and in 3D then the top face)."""
    square = [(0, 0), (1, 0), (1, 1), (0, 1)]
    return square if dim == 2 else [(i, j, k) for k in (0, 1) for i, j in square]


def lattice_cells(nodes: tuple[int, ...]) -> np.ndarray:
    """Cells ``(C, 2^d)`` int64 (node ids in VTK's corner order: VTK_QUAD, VTK_HEXAHEDRON)."""
    ids = np.arange(int(np.prod(nodes))).reshape(nodes)
    views = _corner_views(len(nodes), nodes)
    corners = [ids[views[corner]].ravel() for corner in _corners(len(nodes))]
    return np.stack(corners, axis=1).astype(np.int64)


def _corner_views(dim: int, nodes: tuple[int, ...]) -> dict[tuple[int, ...], tuple]:
    """For every corner offset, the lattice slice that gives that corner of every cell."""
    return {
        corner: tuple(slice(o, n - 1 + o) for o, n in zip(corner, nodes, strict=True))
        for corner in itertools.product((0, 1), repeat=dim)
    }


def array_namespace(array):
    """NumPy for an ndarray, else torch (imported only then): lattice functions take both."""
    if isinstance(array, np.ndarray):
        return np
    import torch

    return torch


def corner_jacobians(points, nodes: tuple[int, ...]):
    """Signed Jacobian determinants ``(..., C, 2^d)`` at every corner of every cell: at corner
    ``c`` the determinant of the edges leaving it along each lattice axis, each oriented like
    the axis (m^d). All positive, at every corner, is a valid (non-inverted, convex in 2D)
    cell; the uniform mesh's are the cell volume. ``points`` ``(..., M, d)``: a NumPy array or
    a torch tensor, with any leading batch axes."""
    xp = array_namespace(points)
    dim = len(nodes)
    lead = tuple(points.shape[:-2])
    grid = points.reshape(*lead, *nodes, dim)
    views = _corner_views(dim, nodes)

    def at(view: tuple):
        return grid[(Ellipsis, *view, slice(None))]

    out = []
    for corner, view in views.items():
        edges = []
        for axis in range(dim):
            flipped = tuple(o ^ (a == axis) for a, o in enumerate(corner))
            sign = 1.0 - 2.0 * corner[axis]
            edges.append(sign * (at(views[flipped]) - at(view)))
        out.append(determinant(edges).reshape(*lead, -1))
    return xp.stack(out, axis=-1)


def determinant(columns: list):
    """The determinant ``(...)`` of the 2x2 or 3x3 matrices whose columns are ``columns``
    (``d`` arrays ``(..., d)``, NumPy or torch), written out: many times faster than a batched
    LU for a batch of small matrices."""
    if len(columns) == 2:
        a, b = columns
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    a, b, c = columns
    return (
        a[..., 0] * (b[..., 1] * c[..., 2] - b[..., 2] * c[..., 1])
        - a[..., 1] * (b[..., 0] * c[..., 2] - b[..., 2] * c[..., 0])
        + a[..., 2] * (b[..., 0] * c[..., 1] - b[..., 1] * c[..., 0])
    )


def cell_volumes(points: np.ndarray, nodes: tuple[int, ...]) -> np.ndarray:
    """Cell areas (2D) or volumes (3D) ``(C,)``, m^d: the mean of the corner Jacobians (exact
    for quads and for parallelepipeds; for other hexahedra to second order in their
    distortion)."""
    return corner_jacobians(points, nodes).mean(axis=1)


def cell_centres(points: np.ndarray, nodes: tuple[int, ...]) -> np.ndarray:
    """The mean of each cell's corners ``(C, d)``, m."""
    dim = len(nodes)
    grid = points.reshape(*nodes, dim)
    corners = [grid[view].reshape(-1, dim) for view in _corner_views(dim, nodes).values()]
    return np.mean(corners, axis=0)


def mesh_problem(points: np.ndarray, nodes: tuple[int, ...], domain: np.ndarray) -> str | None:
    """Why a moved mesh ``(M, d)`` cannot be written, or None: nodes that are not finite or lie
    outside the domain, boundary nodes off their faces, or inverted cells (a corner Jacobian
    <= 0)."""
    domain = np.asarray(domain, float)
    tolerance = BOUNDARY_TOLERANCE * float(domain.max())
    if not np.all(np.isfinite(points)):
        return f"{int((~np.isfinite(points)).any(axis=1).sum())} nodes are not finite"
    outside = ((points < -tolerance) | (points > domain + tolerance)).any(axis=1)
    if outside.any():
        return f"{int(outside.sum())} nodes lie outside the domain"
    grid = points.reshape(*nodes, len(nodes))
    off = 0
    for axis, size in enumerate(domain):
        for index, face in ((0, 0.0), (-1, float(size))):
            off += int(
                (np.abs(np.take(grid, index, axis=axis)[..., axis] - face) > tolerance).sum()
            )
    if off:
        return f"{off} boundary nodes left their faces of the domain"
    inverted = (corner_jacobians(points, nodes) <= 0).any(axis=1)
    if inverted.any():
        return f"{int(inverted.sum())} of {len(inverted)} cells are inverted (det <= 0)"
    return None
