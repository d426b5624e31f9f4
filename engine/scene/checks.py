"""Checks across tables that a per-key schema cannot express.

Each check returns :class:`SceneIssue` records (file lines are filled in by the loader).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.geometry.seeding import MeshError
from engine.geometry.shapes import MESH_FIX, vector_length
from engine.registry import Registry
from engine.scene.errors import SceneIssue
from engine.scene.schema import BASE_FIELDS

_TOLERANCE = 1e-9
#: Runs longer than this are refused as mistakes (a typo in end_time, dt or a modulus).
MAX_FRAMES = 100_000
MAX_STEPS = 100_000_000
#: Bodies that body contact keeps apart (each costs a grid field).
MAX_CONTACT_BODIES = 8


def allowed_fields(registry: Registry) -> tuple[str, ...]:
    """Names ``output.fields`` accepts: base ones, material state and plugin particle fields."""
    extra = registry.state_variables() | set(registry.particle_fields)
    return BASE_FIELDS + tuple(sorted(extra))


def _length(path, value, dim: int) -> list[SceneIssue]:
    return [
        SceneIssue(path, issue.message, issue.fix) for issue in vector_length(path[-1], value, dim)
    ]


def check_simulation(scene, registry: Registry) -> list[SceneIssue]:
    sim = scene.simulation
    issues = _length(("simulation", "domain"), sim.domain, sim.dim)
    issues += _length(("simulation", "gravity"), sim.gravity, sim.dim)
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
    if sim.end_time / sim.frame_dt > MAX_FRAMES:
        issues.append(
            SceneIssue(
                ("simulation", "frame_dt"),
                f"end_time / frame_dt = {sim.end_time / sim.frame_dt:.3g} frames (at most "
                f"{MAX_FRAMES:,})",
                "write frames less often, or shorten end_time",
            )
        )
    if sim.body_contact and (len(scene.bodies) > MAX_CONTACT_BODIES or sim.transfer != "apic"):
        issues.append(
            SceneIssue(
                ("simulation", "body_contact"),
                f"body contact takes at most {MAX_CONTACT_BODIES} bodies and APIC transfers",
                'merge bodies of the same material, or use transfer = "apic"',
            )
        )
    if sim.contact not in registry.contact_models:
        issues.append(
            SceneIssue(
                ("simulation", "contact"),
                f"unknown contact model {sim.contact!r}",
                "use one of: " + ", ".join(registry.contact_models),
            )
        )
    return issues


def check_output(scene, registry: Registry) -> list[SceneIssue]:
    issues = []
    allowed = allowed_fields(registry)
    for index, name in enumerate(scene.output.fields):
        if name not in allowed:
            issues.append(
                SceneIssue(
                    ("output", "fields", index),
                    f"unknown output field {name!r}",
                    "use some of: " + ", ".join(allowed),
                )
            )
    suffixes = [s for writer in registry.writers.values() for s in writer.suffixes]
    if Path(scene.output.path).suffix not in suffixes:
        issues.append(
            SceneIssue(
                ("output", "path"),
                f"no writer for result file {scene.output.path!r}",
                "end the path in one of "
                + ", ".join(suffixes)
                + " (pyvista reads .h5 as a Fluent file)",
            )
        )
    return issues


def check_bodies(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
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
        issues += _length((*path, "velocity"), body.velocity, dim)
        spin = body.angular_velocity
        if spin is not None and (dim == 2) != isinstance(spin, float):
            issues.append(
                SceneIssue(
                    (*path, "angular_velocity"),
                    "angular velocity must be a number in 2D and a 3-vector in 3D",
                    f"give {1 if dim == 2 else 3} value(s) in rad/s",
                )
            )
        shape = registry.shapes[body.shape]
        if body.mover not in (None, "none") and body.mover not in registry.mesh_movers:
            issues.append(
                SceneIssue(
                    (*path, "mover"),
                    f"unknown mesh mover {body.mover!r}",
                    "use none or one of: " + ", ".join(registry.mesh_movers),
                )
            )
        shape_issues = [
            SceneIssue((*path, issue.key), issue.message, issue.fix)
            for issue in shape.check(body, dim)
        ]
        issues += shape_issues
        if shape_issues or len(domain) != dim:
            continue
        try:
            lower, upper = shape.bounds(body, base_dir, dim)
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


def variant_issue(
    record, tag: str, dim: int, base_dir: Path, collider: bool = False
) -> SceneIssue | None:
    """The problem a shape or collider type has in ``dim`` whatever its other keys, or None.

    Runs the record's ``check`` on its ``Params`` holding only ``tag`` and the defaults; an issue
    at ``tag`` (``mesh bodies need dim = 3``) is such a problem. A check that needs the other keys
    fails to run, which counts as no problem: the variant is then judged by its keys as usual.
    """
    try:
        params = record.Params.model_construct(**{tag: record.name})
        args = (params, dim, base_dir) if collider else (params, dim)
        found = [issue for issue in record.check(*args) if issue.key == tag]
    except Exception:  # a check of a plugin's type that reads keys this probe lacks
        return None
    return SceneIssue((tag,), found[0].message, found[0].fix) if found else None


def check_colliders(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
    dim = scene.simulation.dim
    return [
        SceneIssue(("colliders", index, issue.key), issue.message, issue.fix)
        for index, collider in enumerate(scene.colliders)
        for issue in registry.colliders[collider.type].check(collider, dim, base_dir)
    ]


def estimated_steps(scene, registry: Registry) -> float:
    """Steps the run needs at its first step size (fixed dt, or CFL with bodies at rest)."""
    sim = scene.simulation
    if sim.dt != "auto":
        return sim.end_time / sim.dt
    dx = max(sim.domain) / sim.resolution
    materials = [(registry.materials[m.model], m) for m in scene.materials.values()]
    wave = max(cls.wave_speed(params) for cls, params in materials)
    limit = min(cls.critical_dt(params, dx, sim.dim) for cls, params in materials)
    dt = min(sim.cfl * dx / wave if wave > 0 else sim.max_dt, sim.cfl * limit, sim.max_dt)
    return sim.end_time / dt


def check_duration(scene, registry: Registry) -> list[SceneIssue]:
    steps = estimated_steps(scene, registry)
    if steps <= MAX_STEPS:
        return []
    return [
        SceneIssue(
            ("simulation", "end_time"),
            f"this run would take about {steps:.3g} steps (at most {MAX_STEPS:.0e})",
            "shorten end_time, use a larger dt, soften the stiffest material or coarsen the grid",
        )
    ]


def check_scene(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
    """All cross-table problems of a schema-valid scene."""
    issues = (
        check_simulation(scene, registry)
        + check_output(scene, registry)
        + check_bodies(scene, base_dir, registry)
        + check_colliders(scene, base_dir, registry)
    )
    return issues or check_duration(scene, registry)
