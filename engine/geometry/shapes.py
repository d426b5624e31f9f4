"""Built-in seeding shapes as :class:`ShapeType` records: box, sphere, cylinder, mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from engine.geometry.seeding import load_mesh, seed_box, seed_cylinder, seed_mesh, seed_sphere
from engine.hooks.records import ShapeIssue, ShapeType
from engine.scene.schema import BodyBase, MeshTransform, Vector

MESH_FIX = "give a closed (watertight) triangle mesh file that trimesh reads (obj, stl, ply, ...)"


def vector_length(key: str, value, dim: int) -> list[ShapeIssue]:
    """A problem if ``value`` does not have ``dim`` components."""
    if value is not None and len(value) != dim:
        count = f"{len(value)} component" + ("" if len(value) == 1 else "s")
        return [
            ShapeIssue(
                key,
                f"{key} has {count} but dim = {dim}",
                f"give exactly {dim} numbers, one per axis ({', '.join('xyz'[:dim])})",
            )
        ]
    return []


class BoxBody(BodyBase):
    shape: Literal["box"]
    min: Vector = Field(description="Lower corner, m.")
    max: Vector = Field(description="Upper corner, m.")


def _check_box(body: BoxBody, dim: int) -> list[ShapeIssue]:
    issues = vector_length("min", body.min, dim) + vector_length("max", body.max, dim)
    axes = [a for a, lo, hi in zip("xyz", body.min, body.max, strict=False) if lo >= hi]
    if not issues and axes:
        where = " and ".join(axes)
        fix = f"make max larger than min along {where} (swap them if they are reversed)"
        issues.append(
            ShapeIssue("max", f"max must exceed min on every axis (it does not along {where})", fix)
        )
    return issues


BOX = ShapeType(
    name="box",
    Params=BoxBody,
    seed=lambda b, spacing, rng, base: seed_box(
        np.asarray(b.min), np.asarray(b.max), spacing, rng, b.jitter
    ),
    bounds=lambda b, base, dim: (np.asarray(b.min, float), np.asarray(b.max, float)),
    check=_check_box,
)


class SphereBody(BodyBase):
    shape: Literal["sphere"]
    center: Vector = Field(description="Centre, m.")
    radius: float = Field(gt=0, description="Radius, m.")


SPHERE = ShapeType(
    name="sphere",
    Params=SphereBody,
    seed=lambda b, spacing, rng, base: seed_sphere(
        np.asarray(b.center), b.radius, spacing, rng, b.jitter
    ),
    bounds=lambda b, base, dim: (np.asarray(b.center) - b.radius, np.asarray(b.center) + b.radius),
    check=lambda b, dim: vector_length("center", b.center, dim),
)


class CylinderBody(BodyBase):
    shape: Literal["cylinder"]
    center: Vector = Field(description="Centre of the cylinder's middle, m.")
    radius: float = Field(gt=0, description="Radius, m.")
    height: float = Field(gt=0, description="Length along the axis, m.")
    axis: Literal["x", "y", "z"] = Field(default="y", description="Axis direction.")


def _cylinder_bounds(body: CylinderBody, base: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    half = np.full(dim, body.radius)
    half["xyz".index(body.axis)] = body.height / 2
    return np.asarray(body.center) - half, np.asarray(body.center) + half


def _check_cylinder(body: CylinderBody, dim: int) -> list[ShapeIssue]:
    issues = vector_length("center", body.center, dim)
    if dim == 2 and body.axis == "z":
        issues.append(ShapeIssue("axis", "a 2D cylinder has no z axis", "use x or y"))
    return issues


CYLINDER = ShapeType(
    name="cylinder",
    Params=CylinderBody,
    seed=lambda b, spacing, rng, base: seed_cylinder(
        np.asarray(b.center), b.radius, b.height, "xyz".index(b.axis), spacing, rng, b.jitter
    ),
    bounds=_cylinder_bounds,
    check=_check_cylinder,
)


class MeshBody(BodyBase, MeshTransform):
    shape: Literal["mesh"]


def body_mesh(body: MeshBody, base: Path):
    """The body's closed surface, transformed into place (a ``trimesh.Trimesh``, m)."""
    return load_mesh(base / body.mesh, body.scale, body.position, body.rotation)


def _check_mesh_body(body: MeshBody, dim: int) -> list[ShapeIssue]:
    if dim != 3:
        fix = (
            "use box, sphere or cylinder in 2D, or set simulation.dim = 3 "
            "(2D shapes from outlines are not supported yet)"
        )
        return [ShapeIssue("shape", "mesh bodies need dim = 3", fix)]
    return vector_length("position", body.position, 3) + vector_length("rotation", body.rotation, 3)


MESH = ShapeType(
    name="mesh",
    Params=MeshBody,
    seed=lambda b, spacing, rng, base: seed_mesh(body_mesh(b, base), spacing, rng, b.jitter),
    bounds=lambda b, base, dim: tuple(body_mesh(b, base).bounds),
    check=_check_mesh_body,
    surface=body_mesh,
)

BUILTIN_SHAPES = [BOX, SPHERE, CYLINDER, MESH]
