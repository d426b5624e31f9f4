"""Checks across tables that a per-key schema cannot express.

Each check returns :class:`SceneIssue` records (file lines are filled in by the loader).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, get_args

import numpy as np

from engine.geometry.seeding import MeshError
from engine.geometry.shapes import MESH_FIX, vector_length
from engine.hooks.records import ShapeError
from engine.registry import Registry
from engine.scene.errors import SceneIssue
from engine.scene.locate import KeyPath
from engine.scene.schema import BASE_FIELDS, SAMPLED_FIELDS, BodyBase, Vector

_TOLERANCE = 1e-9
#: Runs longer than this are refused as mistakes (a typo in end_time, dt or a modulus).
MAX_FRAMES = 100_000
MAX_STEPS = 100_000_000
#: Bodies that body contact keeps apart: each costs a grid field (momentum, mass and mass
#: gradient on every node) and a pass over it per step, whether or not it is near the node.
MAX_CONTACT_BODIES = 64


def allowed_fields(registry: Registry) -> tuple[str, ...]:
    """Names ``output.fields`` accepts: base ones, material state and plugin particle fields."""
    extra = registry.state_variables() | set(registry.particle_fields)
    return BASE_FIELDS + tuple(sorted(extra))


def sampled_fields(registry: Registry) -> tuple[str, ...]:
    """Names an output mesh samples (``fields``, ``monitor``): density, velocity, pressure and
    material state variables."""
    return SAMPLED_FIELDS + tuple(sorted(registry.state_variables()))


def choice_fix(value: Any, options: list) -> str:
    """``did you mean `fluid`? use one of: fluid, sand`` (the question for a close spelling)."""
    names = [str(option) for option in options]
    if isinstance(value, str) and value in names and value not in options:
        return f"write {value} without quotes"  # dim = "2"
    close = difflib.get_close_matches(str(value), names, n=1)
    hint = f"did you mean `{close[0]}`? " if close else ""
    return f"{hint}use one of: {', '.join(names)}"


def non_finite_issues(data: Any, path: KeyPath = ()) -> list[SceneIssue]:
    """Every ``nan`` and ``inf`` in the scene's data: TOML reads them, no key takes them."""
    if isinstance(data, float) and not math.isfinite(data):
        return [SceneIssue(path, f"{data} is not a finite number", "write a finite number")]
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return []
    return [issue for key, value in items for issue in non_finite_issues(value, (*path, key))]


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
            SceneIssue(
                ("simulation", "domain"),
                f"domain sizes must be positive, got {sim.domain}",
                "use sizes > 0 m (the domain spans [0, size] along each axis)",
            )
        )
    if sim.dt != "auto" and sim.dt <= 0:
        issues.append(
            SceneIssue(
                ("simulation", "dt"),
                f"dt = {sim.dt} s is not positive",
                'use a step > 0 s, or dt = "auto"',
            )
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
    if scene.output.contact_data != "none" and not sim.body_contact:
        issues.append(
            SceneIssue(
                ("output", "contact_data"),
                "contact data are recorded per body: they need body contact",
                'set simulation.body_contact = true, or output.contact_data = "none"',
            )
        )
    contact = registry.contact_models.get(sim.contact)
    if contact is None:
        issues.append(
            SceneIssue(
                ("simulation", "contact"),
                f"unknown contact model {sim.contact!r}",
                choice_fix(sim.contact, list(registry.contact_models)),
            )
        )
    elif contact.create is not None and not sim.body_contact:
        issues.append(
            SceneIssue(
                ("simulation", "contact"),
                f"contact model {sim.contact!r} is a torch model, which corrects each body's "
                "own grid velocities: it needs body contact",
                "set simulation.body_contact = true (a single body works too)",
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
                    choice_fix(name, list(allowed)),
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


def check_meshes(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
    """``[[output.meshes]]``: one node count per axis, names used once, a known mover with the
    weights it reads (and none it does not), sampled fields, and the mover's own checks."""
    dim, issues, seen = scene.simulation.dim, [], set()
    allowed = sampled_fields(registry)
    for index, mesh in enumerate(scene.output.meshes):
        path = ("output", "meshes", index)
        issues += _length((*path, "nodes"), mesh.nodes, dim)
        if mesh.name in seen:
            message = f"output mesh name {mesh.name!r} is used twice (each names a file)"
            issues.append(SceneIssue((*path, "name"), message, "give each mesh its own name"))
        seen.add(mesh.name)
        named = [(("monitor",), mesh.monitor)]
        named += [(("fields", i), name) for i, name in enumerate(mesh.fields)]
        for key, name in named:
            if name not in allowed:
                message = f"{name!r} is not a field sampled at mesh nodes"
                issues.append(SceneIssue((*path, *key), message, choice_fix(name, list(allowed))))
        mover = registry.output_mesh_movers.get(mesh.mover)
        if mover is None:
            issues.append(
                SceneIssue(
                    (*path, "mover"),
                    f"unknown output mesh mover {mesh.mover!r}",
                    choice_fix(mesh.mover, list(registry.output_mesh_movers)),
                )
            )
            continue
        if mover.weights and mesh.weights is None:
            message = f"mover {mesh.mover!r} needs weights"
            fix = 'add weights = "path/to/weights.pt" (relative to the scene)'
            issues.append(SceneIssue((*path, "weights"), message, fix))
        elif not mover.weights and mesh.weights is not None:
            readers = [name for name, kind in registry.output_mesh_movers.items() if kind.weights]
            message = f"mover {mesh.mover!r} reads no weights"
            fix = "remove weights" + (
                f", or use a mover that reads them: {', '.join(readers)}" if readers else ""
            )
            issues.append(SceneIssue((*path, "weights"), message, fix))
        else:
            issues += [
                SceneIssue((*path, issue.key), issue.message, issue.fix)
                for issue in mover.check(mesh, dim, base_dir)
            ]
    return issues


def _material_issues(path: KeyPath, name: str, materials: dict) -> list[SceneIssue]:
    """A body's material that no ``[materials.<name>]`` table defines."""
    if name in materials:
        return []
    define = f"define [materials.{name}]"
    fix = f"{choice_fix(name, list(materials))}, or {define}" if materials else define
    return [SceneIssue((*path, "material"), f"material {name!r} is not defined", fix)]


def _spin_issues(path: KeyPath, spin, dim: int) -> list[SceneIssue]:
    """An angular velocity of the wrong form: one number in 2D, three in 3D."""
    if spin is None:
        return []
    if dim == 2:
        if isinstance(spin, float):
            return []
        message = "in 2D angular_velocity is one number (rad/s), not a list"
        return [SceneIssue(path, message, "write one number, e.g. angular_velocity = 1.0")]
    if dim == 3 and isinstance(spin, float):
        message = "in 3D angular_velocity is a vector (rad/s about x, y and z), not one number"
        return [
            SceneIssue(path, message, "give 3 numbers, e.g. angular_velocity = [0.0, 0.0, 1.0]")
        ]
    return _length(path, spin, dim)


def _placement_keys(params: type[BodyBase]) -> list[str]:
    """The numeric keys a shape of its own has (``min``, ``max``, an outline's ``points``): what
    moves or sizes a body."""
    return [
        name
        for name, info in params.model_fields.items()
        if name not in BodyBase.model_fields
        and (info.annotation is float or {float, list[Vector]} & set(get_args(info.annotation)))
    ]


def _round_up(value: float) -> float:
    """``value`` rounded up to 3 significant digits: 1.2 stays 1.2, 1.2345 is 1.24."""
    step = 10.0 ** (math.floor(math.log10(value)) - 2)
    return float(f"{math.ceil(value / step - 1e-6) * step:.6g}")


def _outside_domain(
    index: int, bounds, domain: np.ndarray, keys: list[str], what: str = "body"
) -> SceneIssue | None:
    """Body (or collider, ``what``) ``index``, spanning ``bounds`` (lower and upper corners),
    past the domain's walls: where it reaches, along which axes, and what to change."""
    reaches = [
        (axis, value, size)
        for axis, low, high, size in zip("xyz", *bounds, domain, strict=False)
        for value in (low, high)
        if value < -_TOLERANCE or value > size + _TOLERANCE
    ]
    if not reaches:
        return None
    where = " and ".join(f"{axis} = {value:g} m" for axis, value, _ in reaches)
    spans = dict.fromkeys(f"[0, {size:g}] m along {axis}" for axis, _, size in reaches)
    fix = f"move or shrink the {what}" + (f" ({', '.join(keys)})" if keys else "")
    if any(value > size for _, value, size in reaches):
        needed = [_round_up(max(size, high)) for size, high in zip(domain, bounds[1], strict=True)]
        fix += f", or enlarge simulation.domain to {needed}"
    if any(value < 0 for _, value, _ in reaches):
        fix += "; the domain starts at 0 on every axis"
    message = f"{what} {index} reaches {where}, beyond the domain {' and '.join(spans)}"
    table = "bodies" if what == "body" else "colliders"
    return SceneIssue((table, index), message, fix)


def check_bodies(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
    sim = scene.simulation
    dim = sim.dim
    domain = np.asarray(sim.domain, float)
    domain_ok = len(domain) == dim and bool(np.all(domain > 0))
    issues: list[SceneIssue] = []
    for index, body in enumerate(scene.bodies):
        path = ("bodies", index)
        issues += _material_issues(path, body.material, scene.materials)
        issues += _length((*path, "velocity"), body.velocity, dim)
        issues += _spin_issues((*path, "angular_velocity"), body.angular_velocity, dim)
        shape = registry.shapes[body.shape]
        if body.mover not in (None, "none") and body.mover not in registry.mesh_movers:
            issues.append(
                SceneIssue(
                    (*path, "mover"),
                    f"unknown mesh mover {body.mover!r}",
                    choice_fix(body.mover, ["none", *registry.mesh_movers]),
                )
            )
        shape_issues = [
            SceneIssue((*path, issue.key), issue.message, issue.fix)
            for issue in shape.check(body, dim)
        ]
        issues += shape_issues
        if shape_issues or not domain_ok:
            continue
        try:
            bounds = shape.bounds(body, base_dir, dim)
        except MeshError as error:
            issues.append(SceneIssue((*path, "mesh"), str(error), MESH_FIX))
            continue
        except ShapeError as error:
            issues.append(_shape_error_issue(path, error))
            continue
        if outside := _outside_domain(index, bounds, domain, _placement_keys(shape.Params)):
            issues.append(outside)
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


def _shape_error_issue(path: KeyPath, error: ShapeError) -> SceneIssue:
    return SceneIssue((*path, error.issue.key), error.issue.message, error.issue.fix)


def check_colliders(scene, base_dir: Path, registry: Registry) -> list[SceneIssue]:
    sim = scene.simulation
    domain = np.asarray(sim.domain, float)
    domain_ok = len(domain) == sim.dim and bool(np.all(domain > 0))
    issues: list[SceneIssue] = []
    for index, collider in enumerate(scene.colliders):
        kind = registry.colliders[collider.type]
        found = [
            SceneIssue(("colliders", index, issue.key), issue.message, issue.fix)
            for issue in kind.check(collider, sim.dim, base_dir)
        ]
        issues += found
        if found or kind.bounds is None or not domain_ok:
            continue
        try:
            bounds = kind.bounds(collider, base_dir, sim.dim)
        except ShapeError as error:
            issues.append(_shape_error_issue(("colliders", index), error))
            continue
        keys = [key for key in ("points", "position", "scale") if key in kind.Params.model_fields]
        if outside := _outside_domain(index, bounds, domain, keys, "collider"):
            issues.append(outside)
    return issues


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
        + check_meshes(scene, base_dir, registry)
        + check_bodies(scene, base_dir, registry)
        + check_colliders(scene, base_dir, registry)
    )
    return issues or check_duration(scene, registry)
