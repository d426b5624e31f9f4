"""Checks across tables that a per-key schema cannot express.

Each check returns :class:`SceneIssue` records (file line filled in later by the loader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.geometry.seeding import MeshError, load_mesh
from engine.materials import MATERIALS
from engine.scene.errors import SceneIssue
from engine.scene.schema import BASE_FIELDS, BoxBody, CylinderBody, MeshBody, SphereBody

_TOLERANCE = 1e-9
MESH_FIX = "give a closed (watertight) triangle mesh file that trimesh reads (obj, stl, ply, ...)"


def allowed_fields() -> tuple[str, ...]:
    """Field names ``output.fields`` accepts: the base ones plus material state variables."""
    state = {name for cls in MATERIALS.values() for name, _ in cls.state_vars}
    return BASE_FIELDS + tuple(sorted(state))


def _length(path, value, dim: int, what: str) -> list[SceneIssue]:
    if value is not None and len(value) != dim:
        return [
            SceneIssue(
                path,
                f"{what} has {len(value)} components but the scene has dim = {dim}",
                f"give exactly {dim} numbers",
            )
        ]
    return []


def body_bounds(body, base_dir: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (lower, upper), m, ``(dim,)`` each, of a body's shape."""
    if isinstance(body, BoxBody):
        return np.asarray(body.min, float), np.asarray(body.max, float)
    if isinstance(body, SphereBody):
        c = np.asarray(body.center, float)
        return c - body.radius, c + body.radius
    if isinstance(body, CylinderBody):
        c = np.asarray(body.center, float)
        half = np.full(dim, body.radius)
        half["xyz".index(body.axis)] = body.height / 2
        return c - half, c + half
    mesh = load_mesh(base_dir / body.mesh, body.scale, body.position, body.rotation)
    return mesh.bounds[0], mesh.bounds[1]


def check_simulation(scene) -> list[SceneIssue]:
    sim = scene.simulation
    issues = _length(("simulation", "domain"), sim.domain, sim.dim, "domain")
    issues += _length(("simulation", "gravity"), sim.gravity, sim.dim, "gravity")
    if any(size <= 0 for size in sim.domain):
        issues.append(
            SceneIssue(("simulation", "domain"), "domain sizes must be positive", "use sizes > 0 m")
        )
    if sim.frame_dt > sim.end_time:
        issues.append(
            SceneIssue(
                ("simulation", "frame_dt"),
                f"frame_dt = {sim.frame_dt} s is longer than end_time = {sim.end_time} s",
                "make frame_dt at most end_time",
            )
        )
    if sim.dt != "auto" and sim.dt > sim.frame_dt:
        issues.append(
            SceneIssue(
                ("simulation", "dt"),
                f"dt = {sim.dt} s is longer than frame_dt = {sim.frame_dt} s",
                'use a smaller dt, or dt = "auto"',
            )
        )
    return issues


def check_output(scene) -> list[SceneIssue]:
    issues = []
    allowed = allowed_fields()
    for index, name in enumerate(scene.output.fields):
        if name not in allowed:
            issues.append(
                SceneIssue(
                    ("output", "fields", index),
                    f"unknown output field {name!r}",
                    "use some of: " + ", ".join(allowed),
                )
            )
    if Path(scene.output.path).suffix not in (".vtkhdf", ".hdf"):
        issues.append(
            SceneIssue(
                ("output", "path"),
                f"result file {scene.output.path!r} must end in .vtkhdf or .hdf",
                "rename it, e.g. out/result.vtkhdf (pyvista reads .h5 as a Fluent file)",
            )
        )
    return issues


def check_bodies(scene, base_dir: Path) -> list[SceneIssue]:
    sim = scene.simulation
    dim = sim.dim
    domain = np.asarray(sim.domain, float)
    issues: list[SceneIssue] = []
    for index, body in enumerate(scene.bodies):
        path = ("bodies", index)
        if body.material not in scene.materials:
            issues.append(
                SceneIssue(
                    (*path, "material"),
                    f"material {body.material!r} is not defined",
                    "define [materials."
                    + body.material
                    + "] or use one of: "
                    + ", ".join(scene.materials),
                )
            )
        issues += _length((*path, "velocity"), body.velocity, dim, "velocity")
        spin_dim = 1 if dim == 2 else 3
        spin = body.angular_velocity
        if spin is not None and (dim == 2) != isinstance(spin, float):
            issues.append(
                SceneIssue(
                    (*path, "angular_velocity"),
                    "angular velocity must be a number in 2D and a 3-vector in 3D",
                    f"give {spin_dim} value(s) in rad/s",
                )
            )
        shape_issues = _shape_issues(body, path, dim)
        if isinstance(body, MeshBody) and dim != 3:
            shape_issues.append(
                SceneIssue((*path, "shape"), "mesh bodies need dim = 3", "use dim = 3")
            )
        issues += shape_issues
        if shape_issues or len(domain) != dim:
            continue
        try:
            lower, upper = body_bounds(body, base_dir, dim)
        except MeshError as error:
            issues.append(SceneIssue((*path, "mesh"), str(error), MESH_FIX))
            continue
        if np.any(lower < -_TOLERANCE) or np.any(upper > domain + _TOLERANCE):
            issues.append(
                SceneIssue(
                    path,
                    f"body spans {np.round(lower, 4).tolist()} to {np.round(upper, 4).tolist()} m, "
                    f"outside the domain [0, {sim.domain}]",
                    "move or shrink the body, or enlarge simulation.domain",
                )
            )
    return issues


def _shape_issues(body, path, dim: int) -> list[SceneIssue]:
    if isinstance(body, BoxBody):
        issues = _length((*path, "min"), body.min, dim, "min")
        issues += _length((*path, "max"), body.max, dim, "max")
        if not issues and any(lo >= hi for lo, hi in zip(body.min, body.max, strict=True)):
            issues.append(
                SceneIssue((*path, "max"), "max must exceed min on every axis", "swap them")
            )
        return issues
    if isinstance(body, SphereBody):
        return _length((*path, "center"), body.center, dim, "center")
    if isinstance(body, CylinderBody):
        issues = _length((*path, "center"), body.center, dim, "center")
        if dim == 2 and body.axis == "z":
            issues.append(SceneIssue((*path, "axis"), "a 2D cylinder has no z axis", "use x or y"))
        return issues
    return []


def check_colliders(scene, base_dir: Path) -> list[SceneIssue]:
    dim = scene.simulation.dim
    issues: list[SceneIssue] = []
    for index, collider in enumerate(scene.colliders):
        path = ("colliders", index)
        if collider.type == "plane":
            issues += _length((*path, "point"), collider.point, dim, "point")
            issues += _length((*path, "normal"), collider.normal, dim, "normal")
            if not any(collider.normal):
                issues.append(
                    SceneIssue((*path, "normal"), "normal is zero", "give a non-zero direction")
                )
            continue
        if dim != 3:
            issues.append(
                SceneIssue((*path, "type"), "mesh colliders need dim = 3", "use planes in 2D")
            )
            continue
        for key in ("velocity", "angular_velocity", "position", "rotation"):
            issues += _length((*path, key), getattr(collider, key), 3, key)
        try:
            load_mesh(
                base_dir / collider.mesh, collider.scale, collider.position, collider.rotation
            )
        except MeshError as error:
            issues.append(SceneIssue((*path, "mesh"), str(error), MESH_FIX))
    return issues


def check_scene(scene, base_dir: Path) -> list[SceneIssue]:
    """All cross-table problems of a schema-valid scene."""
    return (
        check_simulation(scene)
        + check_output(scene)
        + check_bodies(scene, base_dir)
        + check_colliders(scene, base_dir)
    )
