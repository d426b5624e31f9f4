"""Collider rows for the grid-update kernel: domain walls and planes, and rigid mesh colliders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.geometry.sdf import SDFGrid, mesh_sdf
from engine.geometry.seeding import load_mesh
from engine.solver.kernels import MESH_COLUMNS, PLANE_COLUMNS, SEPARATE, SLIP, STICKY

CONDITIONS = {"sticky": STICKY, "slip": SLIP, "separate": SEPARATE}


def plane_row(point, normal, condition: str, friction: float) -> np.ndarray:
    """One plane as a kernel row: point (3), unit normal (3), condition, friction."""
    row = np.zeros(PLANE_COLUMNS)
    normal = np.asarray(normal, float)
    row[: len(point)] = point
    row[3 : 3 + len(normal)] = normal / np.linalg.norm(normal)
    row[6] = CONDITIONS[condition]
    row[7] = friction
    return row


def plane_rows(scene) -> np.ndarray:
    """Rows ``(P, 8)`` for the domain's 2 d walls followed by the scene's plane colliders."""
    sim = scene.simulation
    rows = []
    for axis, size in enumerate(sim.domain):
        for point_value, sign in ((0.0, 1.0), (size, -1.0)):
            point = np.zeros(sim.dim)
            point[axis] = point_value
            normal = np.zeros(sim.dim)
            normal[axis] = sign
            rows.append(plane_row(point, normal, sim.boundary, sim.boundary_friction))
    for collider in scene.colliders:
        if collider.type == "plane":
            rows.append(
                plane_row(collider.point, collider.normal, collider.boundary, collider.friction)
            )
    return np.stack(rows)


def rotation_matrix(rotation_vector: np.ndarray) -> np.ndarray:
    """Rotation ``(3, 3)`` by ``|r|`` radians about ``r / |r|`` (Rodrigues' formula)."""
    angle = float(np.linalg.norm(rotation_vector))
    if angle < 1e-15:
        return np.eye(3)
    k = rotation_vector / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


@dataclass
class MeshCollider:
    """A rigid mesh moving at constant linear and angular velocity about its ``position``."""

    sdf: SDFGrid
    condition: int
    friction: float
    centre0: np.ndarray  # (3,) m, the pivot at t = 0
    velocity: np.ndarray  # (3,) m/s
    angular_velocity: np.ndarray  # (3,) rad/s

    def row(self, time: float) -> np.ndarray:
        """The kernel row ``(27,)`` describing this collider's pose at ``time`` (s)."""
        row = np.zeros(MESH_COLUMNS)
        row[0:3] = self.sdf.origin
        row[3] = self.sdf.spacing
        row[4] = self.condition
        row[5] = self.friction
        row[6:9] = self.centre0 + self.velocity * time
        row[9:18] = rotation_matrix(self.angular_velocity * time).ravel()
        row[18:21] = self.velocity
        row[21:24] = self.angular_velocity
        row[24:27] = self.centre0
        return row


def mesh_colliders(scene, base_dir: Path, dx: float) -> list[MeshCollider]:
    """Build the signed distance fields of a scene's mesh colliders (spacing dx/2 by default)."""
    out = []
    for collider in scene.colliders:
        if collider.type != "mesh":
            continue
        mesh = load_mesh(
            base_dir / collider.mesh, collider.scale, collider.position, collider.rotation
        )
        spacing = collider.sdf_spacing or dx / 2
        out.append(
            MeshCollider(
                sdf=mesh_sdf(mesh, spacing, margin=3 * dx),
                condition=CONDITIONS[collider.boundary],
                friction=collider.friction,
                centre0=np.asarray(collider.position, float),
                velocity=np.asarray(collider.velocity, float),
                angular_velocity=np.asarray(collider.angular_velocity, float),
            )
        )
    return out
