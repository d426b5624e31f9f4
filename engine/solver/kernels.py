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

With body contact each body ``b`` has its own fields on the same nodes: ``body_velocity``
``(B, *G, d)`` (momentum after the scatter, velocity after the grid update), ``body_mass``
``(B, *G)`` and ``body_mass_gradient`` ``(B, *G, d)``; the loops over bodies run at run time, so
the body count changes no compiled code and costs ``B`` times the grid's memory.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

import taichi as ti

from engine.materials.base import MAX_CONSTANTS, MAX_STATE
from engine.solver.contact import SEPARATE
from engine.solver.runtime import on_restart
from engine.solver.svd import svd

#: Grid nodes beyond each face of the domain.
PAD = 3
#: Columns of a plane row: point (3), normal (3), condition, friction.
PLANE_COLUMNS = 8
#: Columns of a mesh collider's float row: origin (3), spacing, condition, friction,
#: centre now (3), rotation now (9, row-major), linear velocity (3), angular velocity (3),
#: centre at t = 0 (3).
MESH_COLUMNS = 27
#: Slots of the health report: [max speed], and [non-finite count, escaped count, a bad index].
HEALTH_INTS = 3
#: A grid node within this many cells in front of a plane counts as on it (round-off in f32).
PLANE_TOLERANCE = 1e-4


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


@lru_cache(maxsize=32)
def build_kernels(config: KernelConfig):
    """Compile-once kernels for ``config`` (returned as a simple namespace)."""
    dim = config.dim
    models = config.models
    contact_response = config.contact
    flip = config.flip
    # the runtime's float type, spelled out: torch tensors passed as ndarrays are checked against it
    real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
    vec = ti.types.vector(dim, real)
    node = ti.types.vector(dim + 1, real)  # grid node: momentum (then velocity), and mass
    mat = ti.types.matrix(dim, dim, real)
    kvec = ti.types.vector(MAX_CONSTANTS, real)
    svec = ti.types.vector(MAX_STATE, real)
    serial_scatter = ti.lang.impl.current_cfg().arch == ti.cpu
    bodies = config.bodies
    ivec = ti.types.vector(dim, ti.i32)
    stencil = tuple(itertools.product(range(3), repeat=dim))

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
        for p in F:
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
    def body_index(b, node):
        """The index of node ``node`` in body ``b``'s field (``(B, *G)`` arrays)."""
        return ti.Vector([b] + [node[i] for i in ti.static(range(dim))])

    @ti.kernel
    def particle_to_grid(
        x: nd(vec),
        v: nd(vec),
        C: nd(mat),
        tau: nd(mat),
        mass: nd(real),
        volume: nd(real),
        grid: nd(node, dim),
        body_id: nd(ti.i32),
        body_velocity: nd(vec, dim + 1),
        body_mass: nd(real, dim + 1),
        body_mass_gradient: nd(vec, dim + 1),
        dt: float,
        dx: float,
    ):
        for node in ti.grouped(grid):
            grid[node] = ti.zero(grid[node])
        if ti.static(bodies):
            for index in ti.grouped(body_mass):
                body_velocity[index] = ti.zero(body_velocity[index])
                body_mass[index] = 0.0
                body_mass_gradient[index] = ti.zero(body_mass_gradient[index])
        inv_dx = 1.0 / dx
        upper = ti.Vector([grid.shape[i] - 3 for i in ti.static(range(dim))])
        # On the CPU one ordered pass without atomics beats contended atomic adds (and is
        # bitwise reproducible); GPUs scatter in parallel with atomics.
        ti.loop_config(serialize=serial_scatter)
        for p in range(x.shape[0]):
            base, fx = particle_stencil(x[p], inv_dx, upper)
            w = bspline_weights(fx)
            mp = mass[p]
            affine = (-dt * volume[p] * 4.0 * inv_dx * inv_dx) * tau[p]
            if ti.static(not flip):
                affine += mp * C[p]
            momentum = mp * v[p]
            for offset in ti.static(stencil):
                o = ti.Vector(offset)
                dpos = (o - fx) * dx
                weight = 1.0
                for i in ti.static(range(dim)):
                    weight *= w[offset[i]][i]
                contribution = momentum + affine @ dpos
                grid[base + o] += weight * ti.Vector(
                    [contribution[i] for i in ti.static(range(dim))] + [mp]
                )
                if ti.static(bodies):
                    index = body_index(body_id[p], base + o)
                    body_velocity[index] += weight * contribution
                    body_mass[index] += weight * mp
                    body_mass_gradient[index] += mp * inv_dx * weight_gradient(w, fx, offset)

    @ti.func
    def collider_response(
        v,
        node,
        dx,
        wall_low: ivec,
        wall_high: ivec,
        wall_condition: ti.i32,
        wall_friction: real,
        planes: ti.template(),
        n_planes: ti.i32,
        sdf: ti.template(),
        mesh_ints: ti.template(),
        mesh_rows: ti.template(),
        n_meshes: ti.i32,
    ):
        """Velocity ``v`` (m/s) of grid node ``node`` after the domain's walls, the plane
        colliders and the mesh colliders, each through the contact model."""
        for axis in ti.static(range(dim)):
            inward = ti.Vector([1.0 if i == axis else 0.0 for i in ti.static(range(dim))])
            if node[axis] <= wall_low[axis]:
                v = contact_response(v, inward, ti.zero(v), wall_condition, wall_friction)
            if node[axis] >= wall_high[axis]:
                v = contact_response(v, -inward, ti.zero(v), wall_condition, wall_friction)
        position = (node - PAD).cast(float) * dx
        for k in range(n_planes):
            row = planes[k]
            point = ti.Vector([row[i] for i in ti.static(range(dim))])
            normal = ti.Vector([row[3 + i] for i in ti.static(range(dim))])
            if (position - point).dot(normal) <= PLANE_TOLERANCE * dx:
                v = contact_response(v, normal, ti.zero(v), int(row[6]), row[7])
        for k in range(n_meshes):
            v = mesh_contact(v, position, sdf, mesh_ints[k], mesh_rows[k])
        return v

    @ti.kernel
    def grid_update(
        grid: nd(node, dim),
        grid_v_old: nd(vec, dim),
        body_velocity: nd(vec, dim + 1),
        body_mass: nd(real, dim + 1),
        body_mass_gradient: nd(vec, dim + 1),
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
    ):
        """Node velocities: the shared field's, then (with body contact) each body's. Where
        bodies meet, each body's own velocity is corrected by the contact model against the
        centre-of-mass velocity along its normal (Bardenhagen et al. 2000); every body's
        velocity then meets the walls and colliders, as the shared field's does."""
        for node in ti.grouped(grid):
            g = grid[node]
            m = g[dim]
            if m > 0.0:
                v = ti.Vector([g[i] for i in ti.static(range(dim))]) / m
                if ti.static(flip):
                    grid_v_old[node] = v
                v += dt * gravity
                centre_of_mass = v
                v = collider_response(
                    v, node, dx, wall_low, wall_high, wall_condition, wall_friction,
                    planes, n_planes, sdf, mesh_ints, mesh_rows, n_meshes,
                )  # fmt: skip
                grid[node] = ti.Vector([v[i] for i in ti.static(range(dim))] + [m])
                if ti.static(bodies):
                    present = 0
                    total_gradient = ti.Vector.zero(float, dim)
                    for b in range(body_mass.shape[0]):
                        if body_mass[body_index(b, node)] > 0.0:
                            present += 1
                        total_gradient += body_mass_gradient[body_index(b, node)]
                    for b in range(body_mass.shape[0]):
                        index = body_index(b, node)
                        m_b = body_mass[index]
                        v_b = v
                        if present > 1 and m_b > 0.0:
                            v_b = body_velocity[index] / m_b + dt * gravity
                            # the stored gradients are d(weight)/d(particle position) =
                            # -d/d(node), so this is grad(m_b) - grad(m_others): it points from
                            # the others into b, and two bodies share it (opposite signs), which
                            # makes the corrections conserve momentum
                            normal = total_gradient - 2.0 * body_mass_gradient[index]
                            if normal.norm() > 1e-12:
                                v_b = contact_response(
                                    v_b, normal.normalized(), centre_of_mass, SEPARATE,
                                    body_friction,
                                )  # fmt: skip
                            v_b = collider_response(
                                v_b, node, dx, wall_low, wall_high, wall_condition,
                                wall_friction, planes, n_planes, sdf, mesh_ints, mesh_rows,
                                n_meshes,
                            )  # fmt: skip
                        body_velocity[index] = v_b

    @ti.func
    def mesh_contact(v, position, sdf: ti.template(), ints, row):
        """Contact with one rigid SDF collider, through its signed distance field: a mesh in
        3D (trilinear), an outline in 2D (bilinear, rotated about z; unused row slots zero)."""
        origin = ti.Vector([row[i] for i in ti.static(range(dim))])
        spacing = row[3]
        centre = ti.Vector([row[6 + i] for i in ti.static(range(dim))])
        R = ti.Matrix(
            [[row[9 + 3 * i + j] for j in ti.static(range(dim))] for i in ti.static(range(dim))]
        )
        linear = ti.Vector([row[18 + i] for i in ti.static(range(dim))])
        angular = ti.Vector([row[21], row[22], row[23]])
        centre0 = ti.Vector([row[24 + i] for i in ti.static(range(dim))])
        q = R.transpose() @ (position - centre) + centre0  # where this point was at t = 0
        n = ti.Vector([ints[1 + i] for i in ti.static(range(dim))])
        g = (q - origin) / spacing
        inside_box = True
        for i in ti.static(range(dim)):
            if g[i] < 0.0 or g[i] > n[i] - 1.0:
                inside_box = False
        result = v
        if inside_box:
            cell = ti.min(ti.floor(g, int), n - 2)
            f = g - cell
            phi = 0.0
            grad = ti.Vector.zero(float, dim)
            for corner in ti.static(ti.grouped(ti.ndrange(*([2] * dim)))):
                c = cell + corner
                flat = c[0]
                for i in ti.static(range(1, dim)):
                    flat = flat * n[i] + c[i]
                value = sdf[ints[0] + flat]
                w = [f[i] if corner[i] else 1.0 - f[i] for i in ti.static(range(dim))]
                s = [1.0 if corner[i] else -1.0 for i in ti.static(range(dim))]
                weight = w[0]
                for i in ti.static(range(1, dim)):
                    weight = weight * w[i]
                slope = ti.Vector.zero(float, dim)
                for a in ti.static(range(dim)):
                    slope[a] = s[a] if a == 0 else w[0]
                    for i in ti.static(range(1, dim)):
                        slope[a] = slope[a] * (s[i] if i == a else w[i])
                phi += weight * value
                grad += slope * value
            if phi <= 0.0 and grad.norm() > 1e-12:
                normal = (R @ grad).normalized()
                r = position - centre
                v_collider = linear
                if ti.static(dim == 3):
                    v_collider = linear + angular.cross(r)
                else:  # about z: w (0, 0, 1) x r
                    v_collider = linear + angular[2] * ti.Vector([-r[1], r[0]])
                result = contact_response(v, normal, v_collider, int(row[4]), row[5])
        return result

    @ti.kernel
    def grid_to_particle(
        x: nd(vec),
        v: nd(vec),
        C: nd(mat),
        F: nd(mat),
        grid: nd(node, dim),
        grid_v_old: nd(vec, dim),
        body_id: nd(ti.i32),
        body_velocity: nd(vec, dim + 1),
        dt: float,
        dx: float,
        flip_blend: float,
        domain: vec,
        health_speed: nd(real),
        health: nd(ti.i32),
    ):
        inv_dx = 1.0 / dx
        upper = ti.Vector([grid.shape[i] - 3 for i in ti.static(range(dim))])
        for p in x:
            base, fx = particle_stencil(x[p], inv_dx, upper)
            w = bspline_weights(fx)
            new_v = ti.Vector.zero(float, dim)
            change = ti.Vector.zero(float, dim)
            new_C = ti.Matrix.zero(float, dim, dim)
            for offset in ti.static(stencil):
                o = ti.Vector(offset)
                dpos = (o - fx) * dx
                weight = 1.0
                for i in ti.static(range(dim)):
                    weight *= w[offset[i]][i]
                g = grid[base + o]
                g_v = ti.Vector([g[i] for i in ti.static(range(dim))])
                if ti.static(bodies):
                    g_v = body_velocity[body_index(body_id[p], base + o)]
                new_v += weight * g_v
                if ti.static(flip):
                    change += weight * (g_v - grid_v_old[base + o])
                new_C += (4.0 * inv_dx * inv_dx * weight) * g_v.outer_product(dpos)
            velocity = new_v
            if ti.static(flip):
                velocity = flip_blend * (v[p] + change) + (1.0 - flip_blend) * new_v
            position = x[p] + dt * new_v
            v[p] = velocity
            x[p] = position
            C[p] = new_C
            F[p] = (ti.Matrix.identity(float, dim) + dt * new_C) @ F[p]
            speed = velocity.norm()
            if not (speed < 1e30):  # NaN or inf
                ti.atomic_add(health[0], 1)
                ti.atomic_max(health[2], p)
            elif speed > health_speed[0]:  # read first: a shared write per particle is slow
                ti.atomic_max(health_speed[0], speed)
            outside = False
            for i in ti.static(range(dim)):
                if position[i] < -dx or position[i] > domain[i] + dx:
                    outside = True
            if outside:
                ti.atomic_add(health[1], 1)
                ti.atomic_max(health[2], p)

    return SimpleNamespace(
        constitutive=constitutive,
        particle_to_grid=particle_to_grid,
        grid_update=grid_update,
        grid_to_particle=grid_to_particle,
    )


on_restart(build_kernels.cache_clear)
