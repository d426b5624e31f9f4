"""Kernels of the torch contact stage: the grid update that also lists the interface nodes, the
particles next to them, and a model's velocity corrections added under the hard constraints.

All three work on the body-contact grid fields on the sparse grid's ``R`` rows
(``body_velocity (B, R, d)``, ``body_mass (B, R)``, ``body_mass_gradient (B, R, d)``,
``node_volume (R,)``, see :mod:`engine.solver.sparse_grid`) and take the colliders as the grid
update does, so they compile once per dimension and precision and run unchanged on a GPU.
Compaction is a count and a fill into arrays of a given capacity: the caller reads the count,
grows the arrays when it exceeds their length and calls again (the order of the filled rows is
not fixed; the caller sorts them).
"""

import itertools
from functools import lru_cache
from types import SimpleNamespace

import taichi as ti

from engine.solver.collider_kernels import MESH_COLUMNS, PLANE_COLUMNS, collider_functions
from engine.solver.contact import SEPARATE, non_penetration
from engine.solver.kernels import (
    BLOCK,
    PAD,
    KernelConfig,
    body_contact_normal,
    body_index,
    build_kernels,
    nd,
    node_row,
    particle_stencil,
    pool_node,
)
from engine.solver.launch import cached_launches
from engine.solver.runtime import on_restart


@lru_cache(maxsize=8)
def build_contact_kernels(config: KernelConfig) -> SimpleNamespace:
    """``grid_update_at_interface``, ``near_particles`` and ``apply_corrections`` for the
    grid update that ``config`` compiles."""
    dim = config.dim
    update_node = build_kernels(config).update_node
    real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
    vec = ti.types.vector(dim, real)
    node_type = ti.types.vector(dim + 1, real)
    ivec = ti.types.vector(dim, ti.i32)
    constrain = collider_functions(dim, non_penetration).response
    nearest = collider_functions(dim, non_penetration).nearest
    stencil = tuple(itertools.product(range(3), repeat=dim))

    @ti.func
    def flat_index(node, shape):
        flat = 0
        for i in ti.static(range(dim)):
            flat = flat * shape[i] + node[i]
        return flat

    @ti.func
    def unravel(flat, shape):
        node = ti.Vector.zero(ti.i32, dim)
        for k in ti.static(range(dim)):
            i = dim - 1 - k
            node[i] = flat % shape[i]
            flat //= shape[i]
        return node

    @ti.kernel
    def grid_update_at_interface(
        grid: nd(node_type, 1),
        grid_v_old: nd(vec, 1),
        body_velocity: nd(vec, 2),
        body_mass: nd(real, 2),
        body_mass_gradient: nd(vec, 2),
        node_volume: nd(real, 1),
        gravity: vec,
        dt: real,
        dx: real,
        body_friction: real,
        wall_low: ivec,
        wall_high: ivec,
        wall_condition: ti.i32,
        wall_friction: real,
        planes: nd(ti.types.vector(PLANE_COLUMNS, real)),
        n_planes: ti.i32,
        sdf: nd(real),
        mesh_ints: nd(ti.types.vector(4, ti.i32)),
        mesh_rows: nd(ti.types.vector(MESH_COLUMNS, real)),
        n_meshes: ti.i32,
        region: nd(ti.i32),
        sizes: nd(ti.i32),
        blocks: ivec,
        shape: ivec,
        count: nd(ti.i32),
        cells: nd(ti.types.vector(dim + 2, ti.i32)),
        geometry: nd(ti.types.vector(2 * dim + 2, real)),
        before: nd(vec, 2),
        flags: nd(ti.i32),
    ):
        """The grid update (the same node update as ``grid_update``, on the active rows of
        the sparse grid: ``region``, ``sizes``, ``blocks``, ``shape``, see
        :func:`~engine.solver.kernels.pool_node`), listing on the way the interface nodes:
        where two or more bodies have mass, or a body has mass within one cell of a collider.
        Rows: ``cells`` ``[flat index on the grid of shape nodes, row, *node index]``,
        ``geometry`` ``[signed distance, friction, *normal, *velocity]`` of the nearest
        collider, ``before`` ``(rows, B)`` each body's velocity before contact; ``flags``
        ``(R,)`` is 1 on the rows of interface nodes, 0 on the other active rows."""
        for row in range(sizes[0] * BLOCK**dim):
            node, inside = pool_node(region, row, blocks, shape)
            flags[row] = 0
            if inside and grid[row][dim] > 0.0:
                present = 0
                for b in range(body_mass.shape[0]):
                    if body_mass[body_index(b, row)] > 0.0:
                        present += 1
                position = (node - PAD).cast(float) * dx
                d, n, v, mu = nearest(
                    node, position, dx, wall_low, wall_high, wall_condition, wall_friction,
                    planes, n_planes, sdf, mesh_ints, mesh_rows, n_meshes,
                )  # fmt: skip
                if present >= 2 or d <= dx:
                    flags[row] = 1
                    slot = ti.atomic_add(count[0], 1)
                    if slot < cells.shape[0]:
                        cells[slot] = ti.Vector(
                            [flat_index(node, shape), row]
                            + [node[i] for i in ti.static(range(dim))]
                        )
                        geometry[slot] = ti.Vector(
                            [d, mu]
                            + [n[i] for i in ti.static(range(dim))]
                            + [v[i] for i in ti.static(range(dim))]
                        )
                        for b in range(body_mass.shape[0]):
                            index = body_index(b, row)
                            m_b = body_mass[index]
                            velocity = ti.zero(body_velocity[index])
                            if m_b > 0.0:
                                velocity = body_velocity[index] / m_b + dt * gravity
                            before[slot, b] = velocity
            if inside:
                update_node(
                    row, node, grid, grid_v_old, body_velocity, body_mass, body_mass_gradient,
                    node_volume, gravity, dt, dx, body_friction, wall_low, wall_high,
                    wall_condition, wall_friction, planes, n_planes, sdf, mesh_ints,
                    mesh_rows, n_meshes,
                )  # fmt: skip

    @ti.kernel
    def near_particles(
        x: nd(vec),
        flags: nd(ti.i32),
        slots: nd(ti.i32),
        blocks: ivec,
        shape: ivec,
        dx: real,
        count: nd(ti.i32),
        chosen: nd(ti.i32),
    ):
        """Particles whose 3^d stencil touches a node whose row is flagged non-zero (rows
        from ``slots``, ``blocks``: see :func:`~engine.solver.kernels.node_row`)."""
        inv_dx = 1.0 / dx
        upper = shape - 3
        for p in range(x.shape[0]):
            base, _ = particle_stencil(x[p], inv_dx, upper)
            near = 0
            for offset in ti.static(stencil):
                row = node_row(slots, base + ti.Vector(offset), blocks)
                if row >= 0:  # every node a particle reaches has one
                    near |= flags[row]
            if near != 0:
                slot = ti.atomic_add(count[0], 1)
                if slot < chosen.shape[0]:
                    chosen[slot] = p

    @ti.kernel
    def apply_corrections(
        correction: nd(vec, 2),
        node_index: nd(ti.i32),
        rows: nd(ti.i32),
        shape: ivec,
        grid: nd(node_type, 1),
        body_velocity: nd(vec, 2),
        body_mass: nd(real, 2),
        body_mass_gradient: nd(vec, 2),
        node_volume: nd(real, 1),
        dx: real,
        wall_low: ivec,
        wall_high: ivec,
        wall_condition: ti.i32,
        wall_friction: real,
        planes: nd(ti.types.vector(PLANE_COLUMNS, real)),
        n_planes: ti.i32,
        sdf: nd(real),
        mesh_ints: nd(ti.types.vector(4, ti.i32)),
        mesh_rows: nd(ti.types.vector(MESH_COLUMNS, real)),
        n_meshes: ti.i32,
    ):
        """Add ``correction[m, b]`` (m/s) to body ``b``'s velocity at interface node ``m``
        (``node_index``: flat on the grid of ``shape`` nodes; ``rows``: its row of the sparse
        grid); where any body's correction there is non-zero, then keep every body
        there from approaching the others where they touch (the grid update's test and
        normal, :func:`~engine.solver.kernels.body_contact_normal`; against the centre-of-mass
        velocity of the corrected velocities) and from entering a collider (no friction: the
        model owns friction)."""
        bodies = body_mass.shape[0]
        for m in range(node_index.shape[0]):
            changed = False
            for b in range(bodies):
                if any(correction[m, b] != 0.0):
                    changed = True
            if changed:
                node = unravel(node_index[m], shape)
                row = rows[m]
                total_mass = 0.0
                momentum = ti.Vector.zero(float, dim)
                total_gradient = ti.Vector.zero(float, dim)
                present = 0
                for b in range(bodies):
                    index = body_index(b, row)
                    m_b = body_mass[index]
                    total_gradient += body_mass_gradient[index]
                    if m_b > 0.0:
                        v_b = body_velocity[index] + correction[m, b]
                        body_velocity[index] = v_b
                        total_mass += m_b
                        momentum += m_b * v_b
                        present += 1
                centre_of_mass = momentum / total_mass
                position = (node - PAD).cast(float) * dx
                fill = node_volume[row] / dx**dim
                for b in range(bodies):
                    index = body_index(b, row)
                    m_b = body_mass[index]
                    if m_b > 0.0:
                        v_b = body_velocity[index]
                        normal = body_contact_normal(
                            body_mass_gradient[index], total_gradient, m_b, total_mass, fill
                        )
                        if present > 1 and any(normal != 0.0):
                            v_b = non_penetration(v_b, normal, centre_of_mass, SEPARATE, 0.0)
                        body_velocity[index] = constrain(
                            v_b, node, position, dx, wall_low, wall_high, wall_condition,
                            wall_friction, planes, n_planes, sdf, mesh_ints, mesh_rows, n_meshes,
                        )  # fmt: skip

    return cached_launches(
        SimpleNamespace(
            grid_update_at_interface=grid_update_at_interface,
            near_particles=near_particles,
            apply_corrections=apply_corrections,
        )
    )


on_restart(build_contact_kernels.cache_clear)
