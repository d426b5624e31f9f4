"""The MLS-MPM step as Taichi kernels, one per named stage.

Stages, in order, each a kernel over Taichi ndarrays (so particle state is shared with torch and
compiled kernels are reused by every scene with the same :class:`KernelConfig`):

1. ``constitutive``: plastic return mapping and Kirchhoff stress per particle;
2. ``particle_to_grid``: APIC (or FLIP/PIC) scatter of mass, momentum and stress impulse;
3. ``grid_update``: momentum to velocity, gravity, contact between bodies (per-body fields),
   then walls, planes and mesh colliders, for the shared field and for every body's field;
4. ``grid_to_particle``: gather velocity and its gradient, advect, update F, and check health.

Grid node ``I`` sits at ``(I - PAD) * dx``: the domain starts at node ``PAD`` and the padding
nodes outside the domain hold the walls. A node belongs to a wall by its index (at or below
``PAD``, or at or above the first node on the far face), never by a rounded position, so f32 and
f64 agree on every face.

The grid is sparse (:mod:`engine.solver.sparse_grid`): its arrays hold ``R`` rows, one per node
of the blocks of nodes that particles reach; :func:`node_row` finds a node's row and
:func:`pool_node` a row's node. ``grid`` ``(R, d + 1)`` holds momentum (velocity after the grid
update) and mass. With body contact each body ``b`` has its own fields on the same rows:
``body_velocity`` ``(B, R, d)`` (momentum after the scatter, velocity after the grid update),
``body_mass`` ``(B, R)`` and ``body_mass_gradient`` ``(B, R, d)``; the loops over bodies run at
run time, so the body count changes no compiled code and costs ``B`` times the grid's memory.
One more field, ``node_volume`` ``(R,)``, holds the volume all bodies bring to each node (one
scalar a node, whatever ``B``); :func:`body_contact_normal` uses it to tell bodies that touch
from bodies that only share a node through their shape functions' tails.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import taichi as ti

from engine.materials.base import MAX_CONSTANTS, MAX_STATE
from engine.solver.collider_kernels import MESH_COLUMNS, PLANE_COLUMNS, collider_functions
from engine.solver.contact import SEPARATE
from engine.solver.launch import cached_launches
from engine.solver.runtime import on_restart
from engine.solver.svd import svd

#: Grid nodes beyond each face of the domain.
PAD = 3
#: Body contact acts at a node only where the bodies fill its cell: their volume there (the
#: particles' current volumes, B-spline weighted) is at least the cell's, less a round-off
#: margin. Touching bodies fill it exactly (a regular lattice's weights sum to one: summed in
#: another order, 0.9999999999999998 or 1.0000000000000002), overlapping ones more; bodies with a
#: gap between them, or only a corner of each near the node, less (0.08-0.4 at corners).
CONTACT_FILL = 0.999
#: ...and where each body holds at least this fraction of the node's mass. A body's shape
#: function reaches 1/48 (1D quadratic B-spline) of the mass at a node one cell inside the other
#: body; with jittered particles those tails carry noisy normals that turn sliding into drag.
CONTACT_MASS_FRACTION = 0.03
#: Slots of the health report, one integer array read once a step (one host sync): the
#: non-finite count, the escaped count, a bad particle's row, the largest speed's bits, and the
#: sparse grid's blocks listed for the step and those the next listing will find.
HEALTH_SLOTS = 6


def health_integer(real):
    """The health report's integer type: as wide as ``real``, so that the largest speed (m/s)
    is kept as its bits (:func:`speed_of_bits` reads it back)."""
    return ti.i64 if real == ti.f64 else ti.i32


def speed_of_bits(bits) -> float:
    """The speed (m/s) whose float bits the health report's last slot holds (an int64 or
    int32 NumPy scalar, as wide as the runtime's floats)."""
    value = np.asarray(bits)
    return float(value.view(np.float64 if value.dtype == np.int64 else np.float32))


@dataclass(frozen=True)
class KernelConfig:
    """What changes the compiled code (everything else is a runtime argument)."""

    dim: int
    models: tuple[type, ...]  # Taichi material classes present, in dispatch order
    flip: bool
    contact: Callable  # the contact model's Taichi function (see engine.solver.contact)
    bodies: bool = False  # one grid field per body (body contact), else one shared field


def nd(dtype, ndim: int = 1):
    """Shorthand for a Taichi ndarray kernel argument."""
    return ti.types.ndarray(dtype=dtype, ndim=ndim)


@ti.func
def particle_stencil(position, inv_dx, upper):
    """Lower node of the 3^d nodes around a point at ``position`` (m), clamped to the grid
    (``upper`` = nodes per axis - 3), and the point's offset from it ``fx`` (cells)."""
    Xp = position * inv_dx + PAD
    base = ti.max(ti.min(ti.floor(Xp - 0.5, int), upper), 0)
    return base, Xp - base


@ti.func
def bspline_weights(fx):
    """Quadratic B-spline weights of the 3 nodes around a particle, per axis: list of 3 vectors."""
    return [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]


#: Nodes per block side (at least 2, see :mod:`engine.solver.scatter_order`), in the scatter order
#: and the sparse grid alike.
BLOCK = 4

#: Consecutive iterations of a parallel loop that Taichi's CPU backend gives one thread at a
#: time (at least 512, its adaptive task size): a loop over a few large work items (chunks of
#: particles, parts of a colour) runs on one thread unless it is spread, item ``i`` at
#: iteration ``i * TASK_ITERATIONS`` with the iterations between doing nothing.
TASK_ITERATIONS = 512


@ti.func
def node_row(slots: ti.template(), node, blocks):
    """The row of grid node ``node`` (index vector) in the sparse grid's arrays (see
    :mod:`engine.solver.sparse_grid`): the pool block that ``slots`` gives its block of nodes
    (flat over ``blocks`` blocks per axis), times ``BLOCK^d``, plus its place in the block (row
    major). Negative where its block is not in the pool: no particle reaches it, and the grid is
    zero there."""
    dim = ti.static(blocks.n)
    block = 0
    local = 0
    for i in ti.static(range(dim)):
        block = block * blocks[i] + node[i] // BLOCK
        local = local * BLOCK + node[i] % BLOCK
    slot = slots[block]
    row = -1
    if slot >= 0:
        row = slot * BLOCK**dim + local
    return row


@ti.func
def pool_node(region: ti.template(), row, blocks, shape):
    """The grid node stored in row ``row`` of the sparse grid's arrays (``region[k]``: the
    flat index, on ``blocks`` blocks per axis, of the block of nodes in pool block ``k``): its
    index vector, and whether it lies on the grid of ``shape`` nodes (blocks at the far faces
    reach past it)."""
    dim = ti.static(blocks.n)
    rest = region[row // BLOCK**dim]
    local = row % BLOCK**dim
    node = ti.Vector.zero(ti.i32, dim)
    inside = True
    for i in ti.static(range(dim)):
        axis = ti.static(dim - 1 - i)
        node[axis] = (rest % blocks[axis]) * BLOCK + local % BLOCK
        rest //= blocks[axis]
        local //= BLOCK
        inside = inside and node[axis] < shape[axis]
    return node, inside


@ti.func
def stencil_rows(slots: ti.template(), base, blocks):
    """The rows of the 3^d nodes from lower node ``base`` (as :func:`node_row` finds them,
    ``(3^d,)`` in the order of ``itertools.product(range(3), repeat=d)``), with one division
    per axis instead of one per node: a stencil spans a block and the next on each axis. Every
    node a particle reaches is in the sparse grid, unless the pool overflowed (a step the
    health check then refuses): the rows of a missing block are pool block 0's, in bounds."""
    dim = ti.static(blocks.n)
    first = base // BLOCK
    offset = base - first * BLOCK
    rows = ti.Vector.zero(ti.i32, 3**dim)
    for k, node in ti.static(enumerate(itertools.product(range(3), repeat=dim))):
        block = 0
        local = 0
        for i in ti.static(range(dim)):
            spill = 1 if offset[i] + node[i] >= BLOCK else 0
            block = block * blocks[i] + first[i] + spill
            local = local * BLOCK + offset[i] + node[i] - spill * BLOCK
        rows[k] = ti.max(slots[block], 0) * BLOCK**dim + local
    return rows


@ti.func
def mark_next_blocks(
    position, inv_dx, upper, blocks, marks: ti.template(), stamp, sizes: ti.template()
):
    """Count in ``sizes[2]``, once each, the blocks of nodes that a particle at ``position``
    (m) reaches (its stencil's block and the next ones, on ``blocks`` blocks per axis), as the
    sparse grid's next listing will: ``marks`` holds the ``stamp`` of the count that last saw
    each block."""
    base, _ = particle_stencil(position, inv_dx, upper)
    for corner in ti.static(ti.grouped(ti.ndrange(*([2] * blocks.n)))):
        flat = 0
        for i in ti.static(range(blocks.n)):
            flat = flat * blocks[i] + ti.min(base[i] // BLOCK + corner[i], blocks[i] - 1)
        if marks[flat] != stamp:  # read first: most particles share their blocks
            if ti.atomic_max(marks[flat], stamp) < stamp:
                ti.atomic_add(sizes[2], 1)


@ti.func
def body_index(b, row):
    """The index of the grid node in row ``row`` in body ``b``'s field (``(B, rows)``)."""
    return ti.Vector([b, row])


@ti.func
def body_contact_normal(gradient_b, total_gradient, mass_b, total_mass, fill):
    """The unit contact normal of body ``b`` at a node where it meets the others, pointing from
    them into ``b``; zero where the node is not in contact. ``gradient_b``, ``total_gradient``:
    ``b``'s and all bodies' stored mass gradients; ``mass_b``, ``total_mass``: ``b``'s and all
    bodies' mass there; ``fill``: the bodies' volume there over the cell's.

    The stored gradients are d(weight)/d(particle position) = -d/d(node), so
    ``total_gradient - 2 gradient_b`` is grad(m_b) - grad(m_others) (Bardenhagen et al. 2000);
    two bodies share it with opposite signs, and make the same decision (``fill`` is shared,
    the mass test is symmetric), which keeps the corrections equal and opposite. The grid update
    and the torch contact stage's hard constraints both call this function."""
    normal = total_gradient - 2.0 * gradient_b
    length = normal.norm()
    in_contact = (
        fill >= CONTACT_FILL
        and ti.min(mass_b, total_mass - mass_b) >= CONTACT_MASS_FRACTION * total_mass
        and length > 1e-12
    )
    result = ti.zero(normal)
    if in_contact:
        result = normal / length
    return result


def coloured_scatter_on(arch) -> bool:
    """Whether particle-to-grid scatters colour by colour without atomics (the CPU, see
    :mod:`engine.solver.scatter_order`) on Taichi backend ``arch``, rather than with atomic adds
    (GPUs)."""
    return arch == ti.cpu


@lru_cache(maxsize=32)
def build_kernels(config: KernelConfig):
    """Compile-once kernels for ``config`` (returned as a simple namespace)."""
    dim = config.dim
    models = config.models
    contact_response = config.contact
    flip = config.flip
    # the runtime's float type, spelled out: torch tensors passed as ndarrays are checked against it
    real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
    health_int = health_integer(real)
    vec = ti.types.vector(dim, real)
    node = ti.types.vector(dim + 1, real)  # grid node: momentum (then velocity), and mass
    mat = ti.types.matrix(dim, dim, real)
    kvec = ti.types.vector(MAX_CONSTANTS, real)
    svec = ti.types.vector(MAX_STATE, real)
    coloured_scatter = coloured_scatter_on(ti.lang.impl.current_cfg().arch)
    bodies = config.bodies
    ivec = ti.types.vector(dim, ti.i32)
    stencil = tuple(itertools.product(range(3), repeat=dim))
    # a scatter tile's parts: the block (no spill) and the next blocks it reaches, with the
    # tile's nodes in each (per axis, 0 .. BLOCK - 1 or BLOCK .. BLOCK + 1)
    tile_parts = tuple(
        (spill, tuple((BLOCK, BLOCK + 2) if s else (0, BLOCK) for s in spill))
        for spill in itertools.product(range(2), repeat=dim)
    )
    collider_response = collider_functions(dim, contact_response).response

    @ti.kernel
    def constitutive(
        F: nd(mat),
        C: nd(mat),
        state: nd(svec),
        tau: nd(mat),
        material_id: nd(ti.i32),
        material_model: nd(ti.i32),
        material_constants: nd(kvec),
    ):
        for p in range(F.shape[0]):
            m = material_id[p]
            model = material_model[m]
            k = material_constants[m]
            Fp = F[p]
            st = state[p]
            stress = ti.Matrix.zero(float, dim, dim)
            for index, material in ti.static(enumerate(models)):
                if model == index:
                    U = ti.Matrix.identity(float, dim)
                    V = ti.Matrix.identity(float, dim)
                    sig = ti.Vector.one(float, dim)
                    if ti.static(material.needs_svd):
                        U, S, V = svd(Fp)
                        for i in ti.static(range(dim)):
                            sig[i] = S[i, i]
                    Fp, sig, st = material.project(U, sig, V, Fp, st, k)
                    stress = material.kirchhoff(U, sig, V, Fp, st, k, C[p])
            F[p] = Fp
            state[p] = st
            tau[p] = stress

    @ti.func
    def weight_gradient(w, fx, offset: ti.template()):
        """Gradient (per cell) of the node's B-spline weight w.r.t. the particle, ``(d,)``."""
        dw = [fx - 1.5, -2.0 * (fx - 1.0), fx - 0.5]
        gradient = ti.Vector.zero(float, dim)
        for i in ti.static(range(dim)):
            value = dw[offset[i]][i]
            for j in ti.static(range(dim)):
                if ti.static(j != i):
                    value *= w[offset[j]][j]
            gradient[i] = value
        return gradient

    @ti.func
    def add(array: ti.template(), index, value, exclusive: ti.template()):
        """``array[index] += value``: a plain read and write where no other thread writes to
        ``index`` (``exclusive``, the coloured scatter), else an atomic add."""
        if ti.static(exclusive):
            array[index] = array[index] + value
        else:
            array[index] += value

    @ti.func
    def scatter_particle(
        p, x: ti.template(), v: ti.template(), C: ti.template(), tau: ti.template(),
        mass: ti.template(), volume: ti.template(), grid: ti.template(),
        body_id: ti.template(), body_velocity: ti.template(), body_mass: ti.template(),
        body_mass_gradient: ti.template(), node_volume: ti.template(), F: ti.template(),
        slots: ti.template(), blocks, upper, tile: ti.template(), part, dt, dx,
        exclusive: ti.template(),
    ):  # fmt: skip
        """Particle ``p``'s mass, momentum and stress impulse to its 3^d nodes (and, with
        body contact, to its body's fields and the nodes' volume), at their rows of the sparse
        grid (``slots``, ``blocks``: see :func:`node_row`; every node a particle reaches has
        one). ``exclusive`` (the coloured scatter): the shared field's sums go to ``tile``
        ``[part]`` instead, the ``(BLOCK + 2)^d`` nodes from the particle's block's first node
        (:func:`flush_tile` adds them to the grid), and the per-body sums are plain
        read-writes; else every sum is an atomic add."""
        inv_dx = 1.0 / dx
        base, fx = particle_stencil(x[p], inv_dx, upper)
        w = bspline_weights(fx)
        mp = mass[p]
        affine = (-dt * volume[p] * 4.0 * inv_dx * inv_dx) * tau[p]
        if ti.static(not flip):
            affine += mp * C[p]
        momentum = mp * v[p]
        current_volume = 0.0
        if ti.static(bodies):
            current_volume = volume[p] * F[p].determinant()
        rows = ti.Vector.zero(ti.i32, 3**dim)
        if ti.static(bodies or not exclusive):
            rows = stencil_rows(slots, base, blocks)
        local = base % BLOCK
        for k, offset in ti.static(enumerate(stencil)):
            o = ti.Vector(offset)
            dpos = (o - fx) * dx
            weight = 1.0
            for i in ti.static(range(dim)):
                weight *= w[offset[i]][i]
            contribution = momentum + affine @ dpos
            node_value = ti.Vector([contribution[i] for i in ti.static(range(dim))] + [mp])
            if ti.static(exclusive):  # dense in the tile: the compiler sees distinct nodes
                at = ti.Vector([part] + [local[i] + offset[i] for i in ti.static(range(dim))])
                tile[at] = tile[at] + weight * node_value
            else:
                grid[rows[k]] += weight * node_value
            if ti.static(bodies):
                index = body_index(body_id[p], rows[k])
                add(body_velocity, index, weight * contribution, exclusive)
                add(body_mass, index, weight * mp, exclusive)
                gradient = mp * inv_dx * weight_gradient(w, fx, offset)
                add(body_mass_gradient, index, gradient, exclusive)
                add(node_volume, rows[k], weight * current_volume, exclusive)

    @ti.func
    def flush_tile(tile: ti.template(), part, block, particle_blocks, grid: ti.template(),
                   slots: ti.template(), blocks):  # fmt: skip
        """Add ``tile[part]`` (the sums of the particles of ``block``, flat on
        ``particle_blocks`` per axis) to the grid's rows, and zero it. Nodes no particle
        reached hold exactly zero and are skipped."""
        first = ti.Vector.zero(ti.i32, dim)  # the block's index vector
        rest = block
        for i in ti.static(range(dim)):
            axis = ti.static(dim - 1 - i)
            first[axis] = rest % particle_blocks[axis]
            rest //= particle_blocks[axis]
        # the tile covers the block and the first two nodes of the next one on each axis
        for spill, span in ti.static(tile_parts):
            flat = 0
            for i in ti.static(range(dim)):
                flat = flat * blocks[i] + ti.min(first[i] + spill[i], blocks[i] - 1)
            slot = slots[flat]
            for local in ti.grouped(ti.ndrange(*span)):
                at = ti.Vector([part] + [local[i] for i in ti.static(range(dim))])
                value = tile[at]
                if value[dim] != 0.0 and slot >= 0:  # slot < 0: the pool overflowed
                    inside = 0
                    for i in ti.static(range(dim)):
                        inside = inside * BLOCK + local[i] - spill[i] * BLOCK
                    row = slot * BLOCK**dim + inside
                    grid[row] = grid[row] + value
                tile[at] = ti.zero(value)

    @ti.kernel
    def clear_pool(
        sizes: nd(ti.i32),
        grid: nd(node, 1),
        grid_v_old: nd(vec, 1),
        body_velocity: nd(vec, 2),
        body_mass: nd(real, 2),
        body_mass_gradient: nd(vec, 2),
        node_volume: nd(real, 1),
    ):
        """Zero the sparse grid's rows that the last scatter wrote or the next one will
        (``sizes``: the pool blocks now active, and those the last scatter wrote; see
        :mod:`engine.solver.sparse_grid`): every row past them is zero already."""
        rows = ti.max(sizes[0], sizes[1]) * BLOCK**dim
        for row in range(rows):
            grid[row] = ti.zero(grid[row])
            if ti.static(flip):
                grid_v_old[row] = ti.zero(grid_v_old[row])
            if ti.static(bodies):
                node_volume[row] = 0.0
                for b in range(body_mass.shape[0]):
                    index = body_index(b, row)
                    body_velocity[index] = ti.zero(body_velocity[index])
                    body_mass[index] = 0.0
                    body_mass_gradient[index] = ti.zero(body_mass_gradient[index])
        sizes[1] = sizes[0]

    @ti.kernel
    def particle_to_grid(
        x: nd(vec),
        v: nd(vec),
        C: nd(mat),
        tau: nd(mat),
        mass: nd(real),
        volume: nd(real),
        grid: nd(node, 1),
        body_id: nd(ti.i32),
        body_velocity: nd(vec, 2),
        body_mass: nd(real, 2),
        body_mass_gradient: nd(vec, 2),
        node_volume: nd(real, 1),
        F: nd(mat),
        slots: nd(ti.i32),
        blocks: ivec,
        shape: ivec,
        tile: nd(node, dim + 1),
        particle_blocks: ivec,
        order: nd(ti.i32),
        block_start: nd(ti.i32),
        colour_blocks: nd(ti.i32),
        colour_start: nd(ti.i32),
        colour: ti.i32,
        parts: ti.i32,
        dt: float,
        dx: float,
    ):
        """The scatter, into rows of the sparse grid that :func:`clear_pool` left at zero
        (``slots``, ``blocks``: see :func:`node_row`; ``shape``: nodes per axis).

        On the CPU, of the particles of the blocks of one ``colour`` (see
        :mod:`engine.solver.scatter_order`: ``order`` ``(N,)`` lists the particles block by
        block from ``block_start`` ``(blocks + 1,)``; ``colour_blocks`` the occupied blocks
        colour by colour from ``colour_start`` ``(2^d + 1,)``): the colour's blocks are cut
        into ``parts``, one thread task each, and run without atomics, each block's particles
        in order into the part's ``tile`` (``(parts, (BLOCK + 2)^d)`` nodes, zero; blocks of
        ``particle_blocks`` per axis), added to the grid after each block: the sums are bitwise
        the same on any number of threads. The tile is dense, so the compiler sees the 3^d
        nodes of a particle as distinct and keeps its reads ahead of its writes (through the
        rows of the sparse grid the scatter took 1.8 times as long). One launch per colour
        keeps one copy of the scatter in the compiled code (2^d copies took minutes to compile
        in 3D with body contact).

        On GPUs (one launch, the colour arguments unused): every particle in parallel with
        atomic adds."""
        upper = shape - 3
        if ti.static(coloured_scatter):
            first, last = colour_start[colour], colour_start[colour + 1]
            for spread in range(parts * TASK_ITERATIONS):  # a part per thread task
                if spread % TASK_ITERATIONS == 0:
                    part = spread // TASK_ITERATIONS
                    lo = first + (last - first) * part // parts
                    hi = first + (last - first) * (part + 1) // parts
                    for k in range(lo, hi):
                        block = colour_blocks[k]
                        for row in range(block_start[block], block_start[block + 1]):
                            scatter_particle(
                                order[row], x, v, C, tau, mass, volume, grid, body_id,
                                body_velocity, body_mass, body_mass_gradient, node_volume, F,
                                slots, blocks, upper, tile, part, dt, dx, True,
                            )  # fmt: skip
                        flush_tile(tile, part, block, particle_blocks, grid, slots, blocks)
        else:
            for p in range(x.shape[0]):
                scatter_particle(
                    p, x, v, C, tau, mass, volume, grid, body_id, body_velocity, body_mass,
                    body_mass_gradient, node_volume, F, slots, blocks, upper, tile, 0, dt, dx,
                    False,
                )  # fmt: skip

    @ti.func
    def update_node(
        row, node, grid: ti.template(), grid_v_old: ti.template(),
        body_velocity: ti.template(), body_mass: ti.template(),
        body_mass_gradient: ti.template(), node_volume: ti.template(), gravity, dt, dx,
        body_friction, wall_low, wall_high, wall_condition, wall_friction, planes: ti.template(),
        n_planes, sdf: ti.template(), mesh_ints: ti.template(), mesh_rows: ti.template(),
        n_meshes,
    ):  # fmt: skip
        """Node velocities at grid node ``node`` (index vector), stored in row ``row``: the
        shared field's, then (with body contact) each body's. Where bodies touch
        (:func:`body_contact_normal`), each body's own velocity is corrected by the contact
        model against the centre-of-mass velocity along its normal (Bardenhagen et al. 2000);
        every body's velocity then meets the walls and colliders, as the shared field's does."""
        g = grid[row]
        m = g[dim]
        if m > 0.0:
            v = ti.Vector([g[i] for i in ti.static(range(dim))]) / m
            if ti.static(flip):
                grid_v_old[row] = v
            v += dt * gravity
            centre_of_mass = v
            position = (node - PAD).cast(float) * dx
            v = collider_response(
                v, node, position, dx, wall_low, wall_high, wall_condition, wall_friction,
                planes, n_planes, sdf, mesh_ints, mesh_rows, n_meshes,
            )  # fmt: skip
            grid[row] = ti.Vector([v[i] for i in ti.static(range(dim))] + [m])
            if ti.static(bodies):
                present = 0
                total_gradient = ti.Vector.zero(float, dim)
                total_mass = 0.0
                for b in range(body_mass.shape[0]):
                    if body_mass[body_index(b, row)] > 0.0:
                        present += 1
                    total_gradient += body_mass_gradient[body_index(b, row)]
                    total_mass += body_mass[body_index(b, row)]
                fill = node_volume[row] / dx**dim
                for b in range(body_mass.shape[0]):
                    index = body_index(b, row)
                    m_b = body_mass[index]
                    v_b = v
                    if present > 1 and m_b > 0.0:
                        v_b = body_velocity[index] / m_b + dt * gravity
                        normal = body_contact_normal(
                            body_mass_gradient[index], total_gradient, m_b, total_mass, fill
                        )
                        if any(normal != 0.0):
                            v_b = contact_response(
                                v_b, normal, centre_of_mass, SEPARATE, body_friction
                            )
                        v_b = collider_response(
                            v_b, node, position, dx, wall_low, wall_high, wall_condition,
                            wall_friction, planes, n_planes, sdf, mesh_ints, mesh_rows,
                            n_meshes,
                        )  # fmt: skip
                    body_velocity[index] = v_b

    @ti.kernel
    def grid_update(
        grid: nd(node, 1),
        grid_v_old: nd(vec, 1),
        body_velocity: nd(vec, 2),
        body_mass: nd(real, 2),
        body_mass_gradient: nd(vec, 2),
        node_volume: nd(real, 1),
        gravity: vec,
        dt: float,
        dx: float,
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
    ):
        """Node velocities (see ``update_node``) on the rows of the active pool blocks
        (``region``, ``sizes``: see :func:`pool_node`): every other node is empty."""
        for row in range(sizes[0] * BLOCK**dim):
            at, inside = pool_node(region, row, blocks, shape)
            if inside:
                update_node(
                    row, at, grid, grid_v_old, body_velocity, body_mass, body_mass_gradient,
                    node_volume, gravity, dt, dx, body_friction, wall_low, wall_high,
                    wall_condition, wall_friction, planes, n_planes, sdf, mesh_ints, mesh_rows,
                    n_meshes,
                )  # fmt: skip

    @ti.kernel
    def grid_to_particle(
        x: nd(vec),
        v: nd(vec),
        C: nd(mat),
        F: nd(mat),
        grid: nd(node, 1),
        grid_v_old: nd(vec, 1),
        body_id: nd(ti.i32),
        body_velocity: nd(vec, 2),
        slots: nd(ti.i32),
        blocks: ivec,
        shape: ivec,
        marks: nd(ti.i32),
        stamp: ti.i32,
        sizes: nd(ti.i32),
        dt: float,
        dx: float,
        flip_blend: float,
        domain: vec,
        health: nd(health_int),
    ):
        inv_dx = 1.0 / dx
        upper = shape - 3
        sizes[2] = 0
        for p in range(x.shape[0]):
            base, fx = particle_stencil(x[p], inv_dx, upper)
            w = bspline_weights(fx)
            new_v = ti.Vector.zero(float, dim)
            change = ti.Vector.zero(float, dim)
            new_C = ti.Matrix.zero(float, dim, dim)
            rows = stencil_rows(slots, base, blocks)
            for k, offset in ti.static(enumerate(stencil)):
                o = ti.Vector(offset)
                dpos = (o - fx) * dx
                weight = 1.0
                for i in ti.static(range(dim)):
                    weight *= w[offset[i]][i]
                row = rows[k]
                g = grid[row]
                g_v = ti.Vector([g[i] for i in ti.static(range(dim))])
                if ti.static(bodies):
                    g_v = body_velocity[body_index(body_id[p], row)]
                new_v += weight * g_v
                if ti.static(flip):
                    change += weight * (g_v - grid_v_old[row])
                new_C += (4.0 * inv_dx * inv_dx * weight) * g_v.outer_product(dpos)
            velocity = new_v
            if ti.static(flip):
                velocity = flip_blend * (v[p] + change) + (1.0 - flip_blend) * new_v
            position = x[p] + dt * new_v
            mark_next_blocks(position, inv_dx, upper, blocks, marks, stamp, sizes)
            v[p] = velocity
            x[p] = position
            C[p] = new_C
            F[p] = (ti.Matrix.identity(float, dim) + dt * new_C) @ F[p]
            speed = velocity.norm()
            if not (speed < 1e30):  # NaN or inf
                ti.atomic_add(health[0], 1)
                ti.atomic_max(health[2], p)
            else:  # a non-negative float orders like its bits read as an integer
                bits = ti.bit_cast(speed, health_int)
                if bits > health[3]:  # read first: a shared write per particle is slow
                    ti.atomic_max(health[3], bits)
            outside = False
            for i in ti.static(range(dim)):
                if position[i] < -dx or position[i] > domain[i] + dx:
                    outside = True
            if outside:
                ti.atomic_add(health[1], 1)
                ti.atomic_max(health[2], p)
        health[4] = ti.cast(sizes[0], health_int)
        health[5] = ti.cast(sizes[2], health_int)

    return cached_launches(
        SimpleNamespace(
            constitutive=constitutive,
            clear_pool=clear_pool,
            particle_to_grid=particle_to_grid,
            grid_update=grid_update,
            update_node=update_node,
            grid_to_particle=grid_to_particle,
        )
    )


on_restart(build_kernels.cache_clear)
