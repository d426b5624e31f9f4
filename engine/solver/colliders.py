"""Colliders for the grid update: domain walls by node index, planes as rows, meshes (3D) and
outlines (2D) as SDFs.

The built-in collider types (``plane``, ``mesh`` and ``outline``) are :class:`ColliderType`
records whose ``build`` returns plane rows and :class:`MeshCollider` objects, the two things the
grid-update kernel understands; a plugin's collider type builds the same (any closed shape can
become an SDF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import taichi as ti

from engine.geometry.outline import outline_bounds
from engine.geometry.rotation import rotation_matrix
from engine.geometry.sdf import SDFGrid, mesh_sdf, outline_sdf
from engine.geometry.seeding import MeshError, load_mesh
from engine.geometry.shapes import MESH_FIX, check_outline_keys, outline_loops, vector_length
from engine.hooks.records import ColliderType, ShapeIssue
from engine.scene.schema import MeshColliderParams, OutlineColliderParams, PlaneCollider
from engine.solver.collider_kernels import MESH_COLUMNS, PLANE_COLUMNS
from engine.solver.contact import SEPARATE, SLIP, STICKY
from engine.solver.kernels import PAD

CONDITIONS = {"sticky": STICKY, "slip": SLIP, "separate": SEPARATE}


def plane_row(point, normal, condition: str, friction: float) -> np.ndarray:
    """One half-space as a kernel row ``(8,)``: point (3), unit normal (3), condition, friction."""
    row = np.zeros(PLANE_COLUMNS)
    normal = np.asarray(normal, float)
    row[: len(point)] = point
    row[3 : 3 + len(normal)] = normal / np.linalg.norm(normal)
    row[6] = CONDITIONS[condition]
    row[7] = friction
    return row


def wall_nodes(domain: list[float], dx: float) -> tuple[np.ndarray, np.ndarray]:
    """The domain's walls as node indices per axis ``(d,)`` each: nodes at or below ``low``
    stand at or beyond the near face, nodes at or above ``high`` at or beyond the far face
    (the first node at or past it; a face within 1e-6 cells of a node is on that node)."""
    low = np.full(len(domain), PAD, np.int32)
    high = np.array([PAD + math.ceil(size / dx - 1e-6) for size in domain], np.int32)
    return low, high


@dataclass
class MeshCollider:
    """A rigid body given by its SDF, moving at constant linear and angular velocity.

    In 2D (a ``(nx, ny)`` SDF) the vectors have 2 components and the angular velocity is
    ``(0, 0, w)``, about z; the row's unused slots stay zero.
    """

    sdf: SDFGrid
    condition: int
    friction: float
    centre0: np.ndarray  # (d,) m, the pivot at t = 0
    velocity: np.ndarray  # (d,) m/s
    angular_velocity: np.ndarray  # (3,) rad/s, about the pivot

    def row(self, time: float) -> np.ndarray:
        """The kernel row ``(27,)`` describing this collider's pose at ``time`` (s)."""
        d = len(self.centre0)
        row = np.zeros(MESH_COLUMNS)
        row[0:d] = self.sdf.origin
        row[3] = self.sdf.spacing
        row[4] = self.condition
        row[5] = self.friction
        row[6 : 6 + d] = self.centre0 + self.velocity * time
        row[9:18] = rotation_matrix(self.angular_velocity * time).ravel()
        row[18 : 18 + d] = self.velocity
        row[21:24] = self.angular_velocity
        row[24 : 24 + d] = self.centre0
        return row


def _check_plane(plane: PlaneCollider, dim: int, base: Path) -> list[ShapeIssue]:
    issues = vector_length("point", plane.point, dim) + vector_length("normal", plane.normal, dim)
    if not any(plane.normal):
        issues.append(ShapeIssue("normal", "normal is zero", "give a non-zero direction"))
    return issues


PLANE = ColliderType(
    name="plane",
    Params=PlaneCollider,
    build=lambda p, base, dim, dx: [plane_row(p.point, p.normal, p.boundary, p.friction)],
    check=_check_plane,
)


def _check_mesh_collider(params: MeshColliderParams, dim: int, base: Path) -> list[ShapeIssue]:
    if dim != 3:
        fix = 'use planes or type = "outline" (a polygon) in 2D'
        return [ShapeIssue("type", "mesh colliders need dim = 3", fix)]
    keys = ("velocity", "angular_velocity", "position", "rotation")
    issues = [issue for key in keys for issue in vector_length(key, getattr(params, key), 3)]
    try:
        load_mesh(base / params.mesh, params.scale, params.position, params.rotation)
    except MeshError as error:
        issues.append(ShapeIssue("mesh", str(error), MESH_FIX))
    return issues


def _rigid_collider(params, sdf: SDFGrid, angular_velocity) -> MeshCollider:
    """A mesh or outline collider from its keys (boundary, friction, position, velocity) and
    its SDF, spinning at ``angular_velocity`` ``(3,)`` rad/s about ``position``."""
    return MeshCollider(
        sdf=sdf,
        condition=CONDITIONS[params.boundary],
        friction=params.friction,
        centre0=np.asarray(params.position, float),
        velocity=np.asarray(params.velocity, float),
        angular_velocity=np.asarray(angular_velocity, float),
    )


def _build_mesh_collider(params: MeshColliderParams, base: Path, dim: int, dx: float):
    mesh = load_mesh(base / params.mesh, params.scale, params.position, params.rotation)
    sdf = mesh_sdf(mesh, params.sdf_spacing or dx / 2, margin=3 * dx)
    return [_rigid_collider(params, sdf, params.angular_velocity)]


MESH = ColliderType(
    name="mesh", Params=MeshColliderParams, build=_build_mesh_collider, check=_check_mesh_collider
)


def _check_outline_collider(
    params: OutlineColliderParams, dim: int, base: Path
) -> list[ShapeIssue]:
    issues = check_outline_keys(params, dim, "type", "outline colliders")
    if dim == 2:
        issues += vector_length("velocity", params.velocity, 2)
    return issues


def _build_outline_collider(params: OutlineColliderParams, base: Path, dim: int, dx: float):
    sdf = outline_sdf(outline_loops(params, base), params.sdf_spacing or dx / 2, margin=3 * dx)
    return [_rigid_collider(params, sdf, [0.0, 0.0, params.angular_velocity])]


OUTLINE = ColliderType(
    name="outline",
    Params=OutlineColliderParams,
    build=_build_outline_collider,
    check=_check_outline_collider,
    bounds=lambda params, base, dim: outline_bounds(outline_loops(params, base)),
)

BUILTIN_COLLIDERS = [PLANE, MESH, OUTLINE]


class ColliderArrays:
    """The walls, planes and SDF colliders of a scene, as the grid-update kernel's arguments."""

    def __init__(self, scene, base_dir: Path, registry, dx: float) -> None:
        sim = scene.simulation
        self.wall_low, self.wall_high = wall_nodes(sim.domain, dx)
        self.wall_condition = CONDITIONS[sim.boundary]
        self.wall_friction = sim.boundary_friction
        self._wall_arguments = (  # built once: they never change during a run
            ti.Vector(self.wall_low.tolist(), ti.i32),
            ti.Vector(self.wall_high.tolist(), ti.i32),
            self.wall_condition,
            self.wall_friction,
        )
        rows: list[np.ndarray] = []
        self.meshes: list[MeshCollider] = []
        for collider in scene.colliders:
            for item in registry.colliders[collider.type].build(collider, base_dir, sim.dim, dx):
                (self.meshes if isinstance(item, MeshCollider) else rows).append(item)
        float_np = np.float32 if sim.precision == "f32" else np.float64
        self.float_np = float_np
        self.plane_rows = np.stack(rows) if rows else np.zeros((0, PLANE_COLUMNS))
        self.planes = ti.ndarray(ti.types.vector(PLANE_COLUMNS, float), max(1, len(rows)))
        if rows:
            self.planes.from_numpy(self.plane_rows.astype(float_np))
        count = max(1, len(self.meshes))
        values = [mesh.sdf.values.ravel() for mesh in self.meshes] or [np.zeros(1)]
        offsets = np.cumsum([0] + [len(v) for v in values[:-1]])
        ints = np.zeros((count, 4), np.int32)
        for row, (mesh, offset) in enumerate(zip(self.meshes, offsets, strict=False)):
            shape = mesh.sdf.values.shape  # (nx, ny, nz), or (nx, ny) in 2D: the last slot 0
            ints[row, : 1 + len(shape)] = (offset, *shape)
        self.sdf = ti.ndarray(float, int(sum(len(v) for v in values)))
        self.sdf.from_numpy(np.concatenate(values).astype(float_np))
        self.mesh_ints = ti.ndarray(ti.types.vector(4, ti.i32), count)
        self.mesh_ints.from_numpy(ints)
        self.mesh_rows = ti.ndarray(ti.types.vector(MESH_COLUMNS, float), count)

    def at(self, time: float) -> tuple:
        """Kernel arguments ``(wall_low, wall_high, wall_condition, wall_friction, planes,
        n_planes, sdf, mesh_ints, mesh_rows, n_meshes)`` at ``time`` (s): moving meshes are
        posed where they are then."""
        if self.meshes:
            poses = np.stack([mesh.row(time) for mesh in self.meshes])
            self.mesh_rows.from_numpy(poses.astype(self.float_np))
        return (
            *self._wall_arguments,
            self.planes,
            len(self.plane_rows),
            self.sdf,
            self.mesh_ints,
            self.mesh_rows,
            len(self.meshes),
        )
