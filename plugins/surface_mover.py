"""The ``advect`` mesh mover: a mesh body's surface vertices ride the simulated deformation.

Each step, after grid-to-particle, every vertex takes the grid velocity interpolated with the same
quadratic B-spline weights the particles use and moves with it, so the surface follows the body
it bounds. The surface is written each frame as a transient triangle mesh beside the particles.
"""

import numpy as np
import taichi as ti

from engine.hooks import hookimpl
from engine.hooks.records import MeshMoverType
from engine.solver.kernels import bspline_weights, node_row, particle_stencil

vec3 = ti.types.vector(3, float)
node3 = ti.types.vector(4, float)


@ti.kernel
def advect_vertices(
    vertices: ti.types.ndarray(dtype=vec3, ndim=1),
    grid: ti.types.ndarray(dtype=node3, ndim=1),
    slots: ti.types.ndarray(dtype=ti.i32, ndim=1),
    blocks: ti.types.vector(3, ti.i32),
    shape: ti.types.vector(3, ti.i32),
    dt: float,
    dx: float,
):
    """Move each vertex (m) by ``dt`` (s) with the B-spline-interpolated grid velocity (the
    simulation's sparse grid: ``grid`` rows found by ``slots``, ``blocks`` and ``shape``, see
    ``engine.solver.kernels.node_row``).

    Only nodes that hold mass count, with the weights renormalised over them: a vertex on the
    surface, half outside the material, moves with the material rather than with empty nodes
    (nor with nodes the sparse grid does not hold: no particle reaches them).
    """
    for p in range(vertices.shape[0]):
        base, fx = particle_stencil(vertices[p], 1.0 / dx, shape - 3)
        w = bspline_weights(fx)
        velocity = ti.Vector.zero(float, 3)
        total = 0.0
        for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
            row = node_row(slots, base + ti.Vector([i, j, k]), blocks)
            g = ti.Vector.zero(float, 4)
            if row >= 0:
                g = grid[row]
            if g[3] > 0.0:
                weight = w[i][0] * w[j][1] * w[k][2]
                velocity += weight * ti.Vector([g[0], g[1], g[2]])
                total += weight
        if total > 0.0:
            vertices[p] += dt * velocity / total


class AdvectedSurfaces:
    """The surfaces of some bodies, advected with the grid: vertices ``(V, 3)`` m."""

    def __init__(self, simulation, surfaces: list) -> None:
        offsets = np.cumsum([0] + [len(mesh.vertices) for _, mesh in surfaces])
        self.faces = np.concatenate(
            [
                np.asarray(mesh.faces) + offset
                for (_, mesh), offset in zip(surfaces, offsets, strict=False)
            ]
        ).astype(np.int64)
        self.body_id = np.concatenate(
            [np.full(len(mesh.vertices), index, np.int32) for index, mesh in surfaces]
        )
        rest = np.concatenate([np.asarray(mesh.vertices) for _, mesh in surfaces])
        self._vertices = ti.ndarray(vec3, len(rest))
        self._vertices.from_numpy(rest.astype(simulation.store.float_np))

    def step(self, simulation, dt: float) -> None:
        advect_vertices(
            self._vertices, simulation.grid_nodes, *simulation.sparse.lookup, dt,
            simulation.grid.dx,
        )  # fmt: skip

    def vertices(self) -> np.ndarray:
        return self._vertices.to_numpy()

    def set_vertices(self, vertices: np.ndarray) -> None:
        self._vertices.from_numpy(vertices)


@hookimpl
def engine_register_mesh_movers():
    return [MeshMoverType(name="advect", create=AdvectedSurfaces)]
