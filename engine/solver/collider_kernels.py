"""Colliders as Taichi functions of one grid node: which colliders hold it, where the nearest
one is, and the node's velocity after the contact model at each.

The colliders reach the kernels as arguments (see
:meth:`engine.solver.colliders.ColliderArrays.at`): the domain's walls by node index, plane rows
and rigid signed-distance colliders (meshes in 3D, outlines in 2D). The
grid update and the torch contact stage take the same arguments and use the same membership
rules, so a node that the grid update treats as a wall node is one for the contact view too.
"""

from collections.abc import Callable
from functools import lru_cache
from types import SimpleNamespace

import taichi as ti

#: Columns of a plane row: point (3), normal (3), condition, friction.
PLANE_COLUMNS = 8
#: Columns of a mesh collider's float row: origin (3), spacing, condition, friction,
#: centre now (3), rotation now (9, row-major), linear velocity (3), angular velocity (3),
#: centre at t = 0 (3).
MESH_COLUMNS = 27
#: A grid node within this many cells in front of a plane counts as on it (round-off in f32).
PLANE_TOLERANCE = 1e-4
#: The signed distance (m) reported where no collider is near (nothing is farther).
FAR = 1e30


@lru_cache(maxsize=8)
def collider_functions(dim: int, respond: Callable) -> SimpleNamespace:
    """The Taichi functions of the colliders in ``dim`` dimensions, responding through
    ``respond(v, n, v_collider, condition, friction)``:

    - ``response(v, node, position, dx, *colliders)``: velocity ``v`` (m/s) of grid node
      ``node`` (index vector) at ``position`` (m) after the walls, planes and mesh colliders
      that hold it, each through ``respond``. A plane or mesh collider also holds the nodes
      less than a cell in front of it in part: ``v`` becomes ``s respond(v) + (1 - s) v`` with
      ``s = 1 - distance / dx``. Where a collider's surface lies between node rows, the
      particles resting on it put most of their mass on the free row in front of it; held
      by the light row behind alone, a block held by friction fluttered and walked (8 cells
      in 1 s, plane 0.4 cell above a row), and a moving sticky collider let particles 0.12
      cell into it. Walls stand on node rows (by index) and need no such layer;
    - ``nearest(node, position, dx, *colliders)``: the collider nearest to the node, as
      ``(distance (m, <= 0 where it holds the node), outward normal, velocity (m/s), friction)``.

    ``*colliders`` are the ten arguments of :meth:`ColliderArrays.at`.
    """

    @ti.func
    def mesh_geometry(position, sdf: ti.template(), ints, row):
        """Signed distance (m, <= 0 inside), outward unit normal and surface velocity (m/s) of
        one rigid signed-distance collider at ``position``: a mesh in 3D (trilinear), an
        outline in 2D (bilinear, turning about z; its row's unused slots are zero); ``FAR`` and
        zeros outside the field's box."""
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
        distance = FAR
        normal = ti.Vector.zero(float, dim)
        velocity = ti.Vector.zero(float, dim)
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
                sign = [1.0 if corner[i] else -1.0 for i in ti.static(range(dim))]
                weight = w[0]
                for i in ti.static(range(1, dim)):
                    weight = weight * w[i]
                slope = ti.Vector.zero(float, dim)  # d(weight)/d(g), per axis
                for a in ti.static(range(dim)):
                    slope[a] = sign[a] if a == 0 else w[0]
                    for i in ti.static(range(1, dim)):
                        slope[a] = slope[a] * (sign[i] if i == a else w[i])
                phi += weight * value
                grad += slope * value
            if grad.norm() > 1e-12:
                distance = phi
                normal = (R @ grad).normalized()
                r = position - centre
                if ti.static(dim == 3):
                    velocity = linear + angular.cross(r)
                else:  # about z: (0, 0, w) x r
                    velocity = linear + angular[2] * ti.Vector([-r[1], r[0]])
        return distance, normal, velocity

    @ti.func
    def response(
        v, node, position, dx, wall_low, wall_high, wall_condition, wall_friction,
        planes: ti.template(), n_planes, sdf: ti.template(), mesh_ints: ti.template(),
        mesh_rows: ti.template(), n_meshes,
    ):  # fmt: skip
        for axis in ti.static(range(dim)):
            inward = ti.Vector([1.0 if i == axis else 0.0 for i in ti.static(range(dim))])
            if node[axis] <= wall_low[axis]:
                v = respond(v, inward, ti.zero(v), wall_condition, wall_friction)
            if node[axis] >= wall_high[axis]:
                v = respond(v, -inward, ti.zero(v), wall_condition, wall_friction)
        for k in range(n_planes):
            row = planes[k]
            point = ti.Vector([row[i] for i in ti.static(range(dim))])
            normal = ti.Vector([row[3 + i] for i in ti.static(range(dim))])
            distance = (position - point).dot(normal)
            if distance <= PLANE_TOLERANCE * dx:
                v = respond(v, normal, ti.zero(v), int(row[6]), row[7])
            elif distance < dx:  # within a cell in front: partly held
                share = 1.0 - distance / dx
                v = share * respond(v, normal, ti.zero(v), int(row[6]), row[7]) + (1.0 - share) * v
        for k in range(n_meshes):
            row = mesh_rows[k]
            distance, normal, velocity = mesh_geometry(position, sdf, mesh_ints[k], row)
            if distance <= 0.0:
                v = respond(v, normal, velocity, int(row[4]), row[5])
            elif distance < dx:  # within a cell in front: partly held
                share = 1.0 - distance / dx
                v = share * respond(v, normal, velocity, int(row[4]), row[5]) + (1.0 - share) * v
        return v

    @ti.func
    def nearest(
        node, position, dx, wall_low, wall_high, wall_condition, wall_friction,
        planes: ti.template(), n_planes, sdf: ti.template(), mesh_ints: ti.template(),
        mesh_rows: ti.template(), n_meshes,
    ):  # fmt: skip
        best = FAR
        best_normal = ti.Vector.zero(float, dim)
        best_velocity = ti.Vector.zero(float, dim)
        best_friction = 0.0
        for axis in ti.static(range(dim)):
            inward = ti.Vector([1.0 if i == axis else 0.0 for i in ti.static(range(dim))])
            # by index, as membership: <= 0 exactly on the nodes the walls hold
            for side in ti.static((-1, 1)):
                distance = (node[axis] - wall_low[axis]) * dx
                if ti.static(side == 1):
                    distance = (wall_high[axis] - node[axis]) * dx
                if distance < best:
                    best = distance
                    best_normal = -side * inward
                    best_velocity = ti.zero(best_velocity)
                    best_friction = wall_friction
        for k in range(n_planes):
            row = planes[k]
            point = ti.Vector([row[i] for i in ti.static(range(dim))])
            normal = ti.Vector([row[3 + i] for i in ti.static(range(dim))])
            distance = (position - point).dot(normal) - PLANE_TOLERANCE * dx
            if distance < best:
                best = distance
                best_normal = normal
                best_velocity = ti.zero(best_velocity)
                best_friction = row[7]
        for k in range(n_meshes):
            row = mesh_rows[k]
            distance, normal, velocity = mesh_geometry(position, sdf, mesh_ints[k], row)
            if distance < best:
                best = distance
                best_normal = normal
                best_velocity = velocity
                best_friction = row[5]
        return best, best_normal, best_velocity, best_friction

    return SimpleNamespace(response=response, nearest=nearest)
