"""Built-in seeding shapes as :class:`ShapeType` records: box, sphere, cylinder, mesh, outline."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from engine.geometry.outline import (
    Loops,
    OutlineError,
    load_outline,
    outline_bounds,
    outline_problems,
    place_outline,
    points_outline,
)
from engine.geometry.seeding import (
    load_mesh,
    seed_box,
    seed_cylinder,
    seed_mesh,
    seed_outline,
    seed_sphere,
)
from engine.hooks.records import ShapeError, ShapeIssue, ShapeType
from engine.scene.schema import BodyBase, MeshTransform, OutlineTransform, Vector

MESH_FIX = "give a closed (watertight) triangle mesh file that trimesh reads (obj, stl, ply, ...)"
#: Fixes of an outline's problems (:func:`engine.geometry.outline.outline_problems`), by kind
#: and by where the outline comes from.
OUTLINE_FIXES = {
    ("few", "points"): "give at least 3 corners [x, y] of a closed outline",
    ("few", "path"): "draw closed paths with at least 3 corners",
    ("crossing", "points"): "list the corners in order around the outline, once, so no edges cross",
    ("crossing", "path"): "redraw the paths so that no edges cross or touch",
    ("flat", "points"): "give corners that enclose an area, not a line",
    ("flat", "path"): "draw closed paths that enclose an area",
}
OUTLINE_FILE_FIX = (
    "give an SVG or DXF file, relative to the scene file, whose paths are all closed "
    "(SVG: end each path with Z; DXF: closed polylines)"
)


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
        fix = "use box, sphere, cylinder or outline (a polygon) in 2D, or set simulation.dim = 3"
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


class OutlineBody(BodyBase, OutlineTransform):
    shape: Literal["outline"]


def check_outline_keys(params: OutlineTransform, dim: int, tag: str, kind: str) -> list[ShapeIssue]:
    """Problems with an outline's keys that need no file: dimension, vector lengths, and one of
    ``points`` or ``path``. ``tag`` is ``shape`` or ``type``; ``kind`` names the entry
    (``outline bodies``)."""
    if dim != 2:
        alternative = 'shape = "mesh"' if tag == "shape" else 'type = "mesh"'
        fix = f"use {alternative} (a closed triangle mesh) in 3D, or set simulation.dim = 2"
        return [ShapeIssue(tag, f"{kind} need dim = 2", fix)]
    issues = vector_length("position", params.position, 2)
    scales = params.scale if isinstance(params.scale, list) else [params.scale]
    if isinstance(params.scale, list):
        issues += vector_length("scale", params.scale, 2)
    if any(factor == 0 for factor in scales):
        fix = "give a non-zero number, or 2 (one per axis; a negative one mirrors)"
        issues.append(ShapeIssue("scale", f"scale must not be zero, got {params.scale}", fix))
    if params.points is None and params.path is None:
        fix = 'give points = [[x, y], ...] (m), or path = "outline.svg" (or .dxf)'
        issues.append(ShapeIssue("points", "an outline needs `points` or `path`", fix))
    elif params.points is not None and params.path is not None:
        fix = "remove `points` or `path`"
        issues.append(ShapeIssue("path", "give `points` or `path`, not both", fix))
    return issues


def outline_loops(params: OutlineTransform, base: Path) -> Loops:
    """The outline's closed loops placed in the scene ((n, 2) each, m).

    Raises :class:`ShapeError` at ``points`` or ``path`` for an unreadable file, an open path,
    too few points, crossing edges or no enclosed area.
    """
    key = "points" if params.points is not None else "path"
    try:
        loops = (
            points_outline(params.points) if key == "points" else load_outline(base / params.path)
        )
    except OutlineError as error:
        fix = OUTLINE_FILE_FIX if key == "path" else "write each point as [x, y] (m)"
        raise ShapeError(ShapeIssue(key, str(error), fix)) from None
    for kind, message in outline_problems(loops):
        raise ShapeError(ShapeIssue(key, message, OUTLINE_FIXES[kind, key]))
    return place_outline(loops, params.scale, params.position, params.rotation)


OUTLINE = ShapeType(
    name="outline",
    Params=OutlineBody,
    seed=lambda b, spacing, rng, base: seed_outline(outline_loops(b, base), spacing, rng, b.jitter),
    bounds=lambda b, base, dim: outline_bounds(outline_loops(b, base)),
    check=lambda b, dim: check_outline_keys(b, dim, "shape", "outline bodies"),
)

BUILTIN_SHAPES = [BOX, SPHERE, CYLINDER, MESH, OUTLINE]
