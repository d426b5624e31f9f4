"""The acceptance experiment of the contact graph network (``engine experiment contact``).

Held-out scenes (none of them in the training sweeps), in 2D: new draws inside the training
ranges of the families ``drop``, ``throw`` and ``slide`` (``scenes/contact/``); the family
``ramp`` (a disk on a polygon ramp, a 2D outline collider) held out of training entirely; and
one drop at three times the training's largest speed (outside the ranges: reported, not
targeted). In 3D (``dim = 3``): new draws of ``drop`` (a sphere onto a plane) and ``throw`` (a
sphere and a box), the family ``ramp`` (a sphere on a triangle-mesh ramp) held out, and a drop
at three times the training's largest speed.

Every scene runs in the engine (Taichi), side by side in one process: the built-in contact at
the coarse resolution, the coarse run with the network (``simulation.contact = "gnn"``), the
coarse run with the ablation (the network trained the same way without contact edges), the
built-in at twice the resolution, and the built-in at four times (the reference).

Metrics per run, over the bodies that move (more than 1 cm), against the reference:

- ``trajectory``: each body's centroid displacement error over its size, mean over frames;
- ``early``: the same over the first :data:`EARLY` s after the first contact (the short horizon);
- ``rotation``: the rotation error (rad), mean over frames (in 3D the angle of the rotation
  between the run's and the reference's best-fitting rotations);
- ``restitution`` (drop, throw): the rebound speed over the impact speed, its error;
- ``sliding`` (slide, ramp): the distance slid, its error over the reference's;
- ``one_frame``: the one-step error. From the reference's state at every output frame from
  the first contact on, carried over to the run's particles
  (:class:`~engine.diff.contact_training.FineToCoarse`), the run goes one output frame on; the
  error of each moving body's change of velocity against the reference's, summed, over what
  contact changes in the reference (the change that gravity does not explain), summed.

Cost: wall time per simulated second at steady state, the first :data:`WARM_UP` s of each run
(start-up, kernel compilation) excluded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.diff.contact_training import FineToCoarse, body_motion, body_sizes
from engine.progress import Counter
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

FAMILIES = Path(__file__).resolve().parents[2] / "scenes" / "contact"
COARSE = {2: 40, 3: 16}  # cells along the longest side, as the training sweeps' coarse runs
EARLY = 0.05  # s after the first contact
WARM_UP = 0.02  # s of each run left out of its cost
MOVING = 0.01  # m: a body that moves less is left out of the metrics


@dataclass(frozen=True)
class HeldOut:
    """A held-out scene: its family's base scene (``<family>_<dim>d.toml``), the values it
    sets, what it measures and whether it lies in the training ranges (family and
    parameters)."""

    family: str
    settings: dict
    measure: str  # "restitution" or "sliding"
    group: str  # "in ranges", "held-out family" or "outside ranges"
    dim: int = 2


SCENES = {
    "drop": HeldOut(
        "drop",
        {
            "bodies[1].radius": 0.075,
            "bodies[1].velocity": [0.8, -2.5],
            "simulation.body_friction": 0.5,
            "materials.rubber.youngs_modulus": 4.0e5,
        },
        "restitution",
        "in ranges",
    ),
    "throw": HeldOut(
        "throw",
        {
            "bodies[0].velocity": [1.8, 0.0],
            "bodies[1].velocity": [-1.2, 0.0],
            "bodies[0].center": [0.3, 0.18],
            "simulation.body_friction": 0.4,
            "materials.rubber.youngs_modulus": 6.0e5,
        },
        "restitution",
        "in ranges",
    ),
    "slide": HeldOut(
        "slide",
        {
            "bodies[0].velocity": [1.2, 0.0],
            "colliders[0].friction": 0.5,
            "bodies[0].max[0]": 0.36,
            "simulation.gravity[0]": 2.0,
            "materials.rubber.youngs_modulus": 3.0e5,
        },
        "sliding",
        "in ranges",
    ),
    "ramp": HeldOut("ramp", {}, "sliding", "held-out family"),
    "ramp_rough": HeldOut(
        "ramp",
        {
            "colliders[0].friction": 0.6,
            "bodies[0].radius": 0.06,
            "bodies[0].velocity": [1.0, -0.5],
        },
        "sliding",
        "held-out family",
    ),
    "drop_fast": HeldOut(
        "drop",
        {"bodies[1].velocity": [0.0, -12.0], "simulation.body_friction": 0.3},
        "restitution",
        "outside ranges",
    ),
    "drop_3d": HeldOut(
        "drop",
        {
            "bodies[0].radius": 0.07,
            "bodies[0].velocity": [0.9, -2.8, -0.6],
            "colliders[0].friction": 0.5,
            "materials.rubber.youngs_modulus": 4.0e5,
        },
        "restitution",
        "in ranges",
        3,
    ),
    "throw_3d": HeldOut(
        "throw",
        {
            "bodies[0].velocity": [1.8, 0.0, 0.0],
            "bodies[1].velocity": [-1.2, 0.0, 0.0],
            "bodies[0].center": [0.14, 0.12, 0.17],
            "simulation.body_friction": 0.4,
            "materials.rubber.youngs_modulus": 6.0e5,
        },
        "restitution",
        "in ranges",
        3,
    ),
    "ramp_3d": HeldOut("ramp", {}, "sliding", "held-out family", 3),
    "drop_fast_3d": HeldOut(
        "drop",
        {"bodies[0].velocity": [0.0, -12.0, 0.0], "colliders[0].friction": 0.3},
        "restitution",
        "outside ranges",
        3,
    ),
}

#: The runs of each scene: name -> (resolution factor, weights key or None for the built-in).
CONTENDERS = {
    "coarse": (1, None),
    "coarse + GNN": (1, "gnn"),
    "coarse + GNN, no contact edges": (1, "ablation"),
    "2x": (2, None),
    "4x (reference)": (4, None),
}


@dataclass
class Motion:
    """A run's bodies at its frames: times ``(F,)``, centroids ``(F, B, d)``, velocities
    ``(F, B, d)``, rotations ``(F, B)`` rad in 2D, ``(F, B, 3, 3)`` matrices in 3D (from the
    start), and sizes ``(B,)``; its cost (wall s per simulated s)."""

    times: np.ndarray
    centroids: np.ndarray
    velocities: np.ndarray
    rotations: np.ndarray
    sizes: np.ndarray
    cost: float
    #: The particles' rest positions ``(N, d)``, bodies ``(N,)`` and, per frame, positions and
    #: velocities ``(N, d)`` (kept for the reference run only).
    rest: np.ndarray | None = None
    body_id: np.ndarray | None = None
    particles: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def build(held_out: HeldOut, factor: int, weights: Path | None) -> Simulation:
    """The scene in the engine at ``factor`` times the coarse resolution, with the network of
    ``weights`` as its contact model if given."""
    coarse = COARSE[held_out.dim]
    overrides = {**held_out.settings, "simulation.resolution": coarse * factor}
    if weights is not None:
        overrides |= {"simulation.contact": "gnn", "contact.weights": str(weights)}
    texts = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    family = FAMILIES / f"{held_out.family}_{held_out.dim}d.toml"
    return Simulation(load_scene(family, texts))


def best_rotations(x: np.ndarray, start: np.ndarray, body_id: np.ndarray, bodies: int):
    """Each body's rotation ``(B, 3, 3)`` that best maps its particles' ``start`` ``(N, 3)``
    about their centroid onto ``x`` ``(N, 3)`` (Kabsch: the polar factor of their covariance,
    a proper rotation)."""
    rotations = np.empty((bodies, 3, 3))
    for body in range(bodies):  # a few bodies: one 3 x 3 SVD each
        mine = body_id == body
        r, r0 = x[mine] - x[mine].mean(0), start[mine] - start[mine].mean(0)
        u, _, vt = np.linalg.svd(r.T @ r0)
        rotations[body] = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    return rotations


def rotation_error(run: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The angle (rad) between rotations ``(F, B)``: of the difference of angles ``(F, B)``
    in 2D, of the rotation ``run reference^T`` for matrices ``(F, B, 3, 3)`` in 3D."""
    if run.ndim > 2:  # (F, B, 3, 3)
        trace = np.einsum("...ij,...ij->...", run, reference)  # tr(run reference^T)
        return np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))
    return np.abs(wrapped(run - reference))


def simulate(
    held_out: HeldOut, factor: int, weights: Path | None, particles: bool = False
) -> Motion:
    """Run the scene (:func:`build`); the bodies' motion at every output frame (and, with
    ``particles``, the particles' state)."""
    sim = build(held_out, factor, weights)
    loaded = sim.loaded
    config = loaded.scene.simulation
    frames = round(config.end_time / config.frame_dt)
    body_id = sim.numpy("body_id").astype(np.int64).copy()
    bodies = int(body_id.max()) + 1
    start = sim.numpy("x").copy()
    motion, started, kept = [], None, []
    for frame in range(frames + 1):
        if frame:
            sim.advance_to(frame * config.frame_dt)
        if started is None and sim.time >= WARM_UP - 1e-12:
            started, from_time = time.perf_counter(), sim.time
        x, v = sim.numpy("x").copy(), sim.numpy("v").copy()
        centroid, velocity, rotation, _ = body_motion(x, v, body_id, start, bodies)
        if rotation is None:
            rotation = best_rotations(x, start, body_id, bodies)
        motion.append((centroid, velocity, rotation))
        if particles:
            kept.append((x, v))
    cost = (time.perf_counter() - started) / max(sim.time - from_time, 1e-12)
    return Motion(
        np.arange(frames + 1) * config.frame_dt,
        np.stack([m[0] for m in motion]),
        np.stack([m[1] for m in motion]),
        np.stack([m[2] for m in motion]),
        body_sizes(start, body_id, bodies),
        cost,
        start if particles else None,
        body_id if particles else None,
        kept,
    )


def one_frame_error(
    held_out: HeldOut, factor: int, weights: Path | None, reference: Motion
) -> float:
    """The one-step error (module docstring, ``one_frame``) of a contender against the
    ``reference`` (simulated with ``particles``)."""
    sim = build(held_out, factor, weights)
    frame_dt = sim.scene.simulation.frame_dt
    body_id = sim.numpy("body_id").astype(np.int64).copy()
    rest = sim.numpy("x").copy()
    carry = FineToCoarse(rest, body_id, reference.rest, reference.body_id)
    moving = _moving(reference)
    gravity = np.asarray(sim.gravity_at(0.0)) * frame_dt
    error = acted = 0.0
    for frame in range(first_contact(reference, moving), len(reference.times) - 1):
        state = {k: value.numpy() for k, value in carry.state(*reference.particles[frame]).items()}
        for name, values in state.items():
            sim.store.assign(getattr(sim, name), values)
        sim.particles_changed()
        sim.time, sim.max_speed = (
            float(reference.times[frame]),
            float(np.linalg.norm(state["v"], axis=1).max()),
        )
        before = body_motion(state["x"], state["v"], body_id, rest, len(reference.sizes))[1]
        sim.advance_to(float(reference.times[frame + 1]))
        after = body_motion(sim.numpy("x"), sim.numpy("v"), body_id, rest, len(reference.sizes))
        change = reference.velocities[frame + 1] - reference.velocities[frame]
        error += np.linalg.norm((after[1] - before - change)[moving], axis=1).sum()
        acted += np.linalg.norm((change - gravity)[moving], axis=1).sum()
    return float(error / max(acted, 1e-12))


def wrapped(angle: np.ndarray) -> np.ndarray:
    return np.arctan2(np.sin(angle), np.cos(angle))


def first_contact(reference: Motion, moving: np.ndarray) -> int:
    """The frame where a moving body's velocity first turns by more than 10 % of its speed
    from what gravity alone would do: the first contact."""
    velocity = reference.velocities[:, moving]
    change = np.linalg.norm(np.diff(velocity, axis=0), axis=-1).max(axis=1)
    free = 9.81 * np.diff(reference.times)
    speed = np.linalg.norm(velocity, axis=-1).max(axis=1)[:-1]
    hit = np.nonzero(change > free + 0.1 * np.maximum(speed, 0.1))[0]
    return int(hit[0]) + 1 if len(hit) else 0


def restitution(motion: Motion, moving: np.ndarray) -> float:
    """The first rebound over its impact speed: of the relative velocity of the two moving
    bodies along their first line of approach, or of one body's velocity against the floor (y).
    The rebound is the fastest separation between the first impact and the next approach (a
    body that bounces off the floor and then the domain's top wall is measured at the floor);
    0 where the bodies never separate."""
    v = motion.velocities[:, moving]
    if v.shape[1] >= 2:
        relative = (v[:, 0] - v[:, 1])[:, 0]  # along x: the bodies are thrown along x
    else:
        relative = -v[:, 0, 1]  # toward the floor
    approached = np.maximum.accumulate(relative > 0)
    separated = np.nonzero(approached & (relative < 0))[0]
    if len(separated) == 0:
        return 0.0
    start = int(separated[0])
    again = np.nonzero(relative[start:] > 0)[0]
    end = start + int(again[0]) if len(again) else len(relative)
    impact_speed = max(float(relative[:start].max()), 1e-12)
    return float(-relative[start:end].min() / impact_speed)


def sliding(motion: Motion, moving: np.ndarray) -> float:
    """The distance the moving body's centroid has travelled at the end, m."""
    displacement = motion.centroids[-1, moving] - motion.centroids[0, moving]
    return float(np.linalg.norm(displacement, axis=-1).mean())


def _moving(reference: Motion) -> np.ndarray:
    """Which bodies ``(B,)`` move more than :data:`MOVING` in the reference."""
    return np.linalg.norm(reference.centroids - reference.centroids[0], axis=-1).max(0) > MOVING


def compare(run: Motion, reference: Motion, measure: str) -> dict[str, float]:
    """The metrics of ``run`` against ``reference`` (same frames), all but ``one_frame``."""
    moving = _moving(reference)
    frames = min(len(run.times), len(reference.times))
    own = run.centroids[:frames] - run.centroids[0]
    truth = reference.centroids[:frames] - reference.centroids[0]
    error = np.linalg.norm(own - truth, axis=-1)[:, moving] / reference.sizes[moving]
    rotation = rotation_error(run.rotations[:frames], reference.rotations[:frames])[:, moving]
    contact = first_contact(reference, moving)
    early = slice(contact, contact + max(1, round(EARLY / np.diff(reference.times).mean())) + 1)
    value = (restitution if measure == "restitution" else sliding)(run, moving)
    truth_value = (restitution if measure == "restitution" else sliding)(reference, moving)
    out = {
        "trajectory": float(error.mean()),
        "early": float(error[early].mean()),
        "rotation": float(rotation.mean()),
        measure: value,
        f"{measure}_error": abs(value - truth_value)
        / (1.0 if measure == "restitution" else max(abs(truth_value), 1e-12)),
        "cost": run.cost,
    }
    if not np.all(np.isfinite(run.centroids)):
        out["trajectory"] = float("inf")
    return out


@dataclass
class SceneReport:
    """One held-out scene: its group and measure, and each contender's metrics."""

    name: str
    group: str
    measure: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def run_experiment(
    weights: Path, ablation: Path | None, folder: Path, quiet: bool = False, only=None, dim=2
) -> list[SceneReport]:
    """Every held-out scene of ``dim`` dimensions (or those in ``only``) with every
    contender; ``report.json`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"gnn": weights, "ablation": ablation}
    contenders = {n: c for n, c in CONTENDERS.items() if c[1] is None or files[c[1]] is not None}
    names = [n for n, s in SCENES.items() if s.dim == dim and (only is None or n in only)]
    reports = []
    with Counter("experiment contact", len(names) * len(contenders), "runs", quiet) as counter:
        for name in names:
            held_out = SCENES[name]
            reference = simulate(held_out, 4, None, particles=True)
            report = SceneReport(name, held_out.group, held_out.measure)
            for contender, (factor, key) in contenders.items():
                motion = simulate(held_out, factor, files.get(key)) if factor < 4 else reference
                metrics = compare(motion, reference, held_out.measure)
                if factor < 4:  # the reference's own would be about zero, at a 4x run's cost
                    weights = files.get(key)
                    metrics["one_frame"] = one_frame_error(held_out, factor, weights, reference)
                report.metrics[contender] = metrics
                done = len(reports) * len(contenders) + len(report.metrics)
                counter.update(done, f"{name}: {contender}")
            reports.append(report)
            (folder / "report.json").write_text(json.dumps([asdict(r) for r in reports], indent=1))
    return reports


def summary_table(reports: list[SceneReport]) -> str:
    """A Markdown table: per scene and contender, the errors and the cost relative to the
    coarse run's."""
    lines = [
        "| scene | group | run | one frame | trajectory / size | first 0.05 s | rotation (rad) | "
        "restitution or sliding error | cost (s per simulated s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        for contender, metrics in report.metrics.items():
            if contender.startswith("4x"):
                continue
            lines.append(
                f"| {report.name} | {report.group} | {contender} | {metrics['one_frame']:.3f} | "
                f"{metrics['trajectory']:.4f} | "
                f"{metrics['early']:.4f} | {metrics['rotation']:.3f} | "
                f"{metrics[report.measure + '_error']:.3f} | {metrics['cost']:.2f} |"
            )
    return "\n".join(lines)


def targets(reports: list[SceneReport]) -> dict[str, float]:
    """The issue's targets over the held-out scenes inside the ranges and of the held-out
    family: mean trajectory error of the network over the coarse run's (target <= 0.5) and
    over the 2x run's (target <= 1), and its cost over the 2x run's (target <= 1/4 in 2D,
    1/8 in 3D)."""
    kept = [r for r in reports if r.group != "outside ranges"]

    def mean(contender: str, key: str) -> float:
        return float(np.mean([r.metrics[contender][key] for r in kept]))

    gnn = mean("coarse + GNN", "trajectory")
    out = {
        "gnn_over_coarse": gnn / mean("coarse", "trajectory"),
        "gnn_over_2x": gnn / mean("2x", "trajectory"),
        "cost_gnn_over_2x": mean("coarse + GNN", "cost") / mean("2x", "cost"),
    }
    out["one_frame_gnn_over_coarse"] = mean("coarse + GNN", "one_frame") / mean(
        "coarse", "one_frame"
    )
    if all("coarse + GNN, no contact edges" in r.metrics for r in kept):
        out["ablation_over_coarse"] = mean("coarse + GNN, no contact edges", "trajectory") / mean(
            "coarse", "trajectory"
        )
    return out
