"""``engine train contact``: train the contact graph network on sweeps run at several resolutions.

Data: the output folders of ``engine sweep`` files whose axes include
``simulation.resolution`` (e.g. ``scenes/contact/sweep_drop_2d.toml``: 40, 80 and 160 cells). Runs
that differ only in resolution form one case: the lowest resolution is the coarse run the network
corrects, the highest the reference it learns to follow.

Method: solver in the loop (Um et al. 2020). The coarse scene is rolled out from its initial state
by the torch twin, with the network correcting contact at every step, for the whole trajectory;
every ``window`` output frames the loss is taken, back-propagated through the steps of the
window, the weights updated, and the state detached and carried on. The network thus learns on
the states its own corrections lead to, not on states of another resolution. The loss compares
what is resolution-independent: per body and output frame, its centroid's displacement
(over the body's size, squared), its mean velocity (times a horizon :data:`HORIZON`, over the
size, squared) and, in 2D, its rotation (radians, squared), against the reference run's frames.

Normalisation: feature means and deviations from the built-in coarse roll-outs
(:meth:`ContactGNN.fit_normalisation`). Input noise: Gaussian, on the normalised features. Each
epoch ends with a checkpoint (``--resume`` continues it); a loss curve PNG and the JSON sidecar
(data, settings, losses, minutes) are written beside the weights.

Shapes: ``N`` particles, ``B`` bodies, ``d`` dimensions, ``F`` frames.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import engine.io
from engine.diff.contact_gnn import ContactGNN, ContactGNNConfig, save_contact_gnn
from engine.diff.train import TrainingError, substeps_per_frame, usable_device
from engine.diff.twin import TorchTwin
from engine.progress import Counter
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation
from engine.sweep.dataset import finished_runs

RESOLUTION = "simulation.resolution"
HORIZON = 0.05  # s: how far ahead a velocity error counts, as a distance
NORMALISATION_STRIDE = 3  # every how many frames the built-in roll-outs give features to fit


@dataclass(frozen=True)
class ContactCase:
    """One scene of a sweep at its resolutions: the base scene, the parameters it shares, and
    the result file at each resolution (cells along the longest side)."""

    scene: Path
    params: dict
    results: dict[int, Path]

    @property
    def coarse(self) -> int:
        return min(self.results)

    @property
    def reference(self) -> int:
        return max(self.results)

    def overrides(self, resolution: int | None = None) -> list[str]:
        """``--set`` strings of this case at ``resolution`` (default: the coarse one)."""
        params = {**self.params, RESOLUTION: resolution or self.coarse}
        return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def sweep_cases(folders: list[Path]) -> list[ContactCase]:
    """The cases of finished sweeps: runs grouped by their parameters other than resolution,
    each case with two resolutions or more. :class:`TrainingError` if there are none."""
    cases = []
    for folder in folders:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise TrainingError(
                f"{folder} holds no manifest.json: pass the output_dir of an `engine sweep`"
            )
        scene = Path(json.loads(manifest.read_text())["scene"])
        groups: dict[str, dict[int, Path]] = {}
        shared: dict[str, dict] = {}
        for _, record in finished_runs(folder):
            params = dict(record["params"])
            resolution = params.pop(RESOLUTION, None)
            if resolution is None:
                continue
            key = json.dumps(params, sort_keys=True)
            groups.setdefault(key, {})[int(resolution)] = Path(record["output"])
            shared[key] = params
        cases += [
            ContactCase(scene, shared[key], results)
            for key, results in sorted(groups.items())
            if len(results) >= 2
        ]
    if not cases:
        raise TrainingError(
            f"no runs at two resolutions or more in {', '.join(map(str, folders))}: sweep "
            f"{RESOLUTION} (e.g. values = [40, 80, 160]) and let the runs finish"
        )
    return cases


# -- what is compared: each body's motion ----------------------------------------------------------
def body_motion(x, v, body_id, start, bodies: int):
    """Per body: centroid ``(B, d)`` m, mean velocity ``(B, d)`` m/s and, in 2D, the rotation
    from ``start`` ``(N, d)`` (the same particles' initial positions) ``(B,)`` rad (the angle of
    the best-fitting rotation); works on torch tensors and numpy arrays alike."""
    lib = torch if isinstance(x, torch.Tensor) else np
    one_hot = (body_id[:, None] == lib.arange(bodies)[None, :]) * 1.0  # (N, B)
    one_hot = one_hot.to(x.dtype) if lib is torch else one_hot
    count = one_hot.sum(0)[:, None]
    centroid = (one_hot.T @ x) / count
    velocity = (one_hot.T @ v) / count
    start_centroid = (one_hot.T @ start) / count
    if x.shape[1] != 2:
        return centroid, velocity, None
    r = x - centroid[body_id]
    r0 = start - start_centroid[body_id]
    cross = one_hot.T @ (r0[:, 0] * r[:, 1] - r0[:, 1] * r[:, 0])
    dot = one_hot.T @ (r0 * r).sum(1)
    return centroid, velocity, lib.arctan2(cross, dot)


def body_sizes(x: np.ndarray, body_id: np.ndarray, bodies: int) -> np.ndarray:
    """Each body's largest extent ``(B,)`` m."""
    return np.array(
        [float(np.ptp(x[body_id == b], axis=0).max()) for b in range(bodies)], dtype=np.float64
    )


@dataclass
class Reference:
    """A run's body motion at its output frames: times ``(F,)``, displacement of each body's
    centroid from frame 0 ``(F, B, d)``, velocity ``(F, B, d)``, rotation ``(F, B)`` (2D) and
    the bodies' sizes ``(B,)``."""

    times: np.ndarray
    displacement: np.ndarray
    velocity: np.ndarray
    rotation: np.ndarray | None
    sizes: np.ndarray


def read_reference(path: Path) -> Reference:
    """The body motion of every frame of the result at ``path`` (which stores ``velocity`` and
    ``body_id``)."""
    with engine.io.open(path) as result:
        missing = {"velocity", "body_id"} - set(result.fields)
        if missing:
            raise TrainingError(
                f"{path} lacks {sorted(missing)}: add them to output.fields of the sweep's scene"
            )
        first = result.arrays(0)
        body_id = first["body_id"].astype(np.int64)
        bodies = int(body_id.max()) + 1
        start = result.points(0)
        motion = [
            body_motion(result.points(i), result.arrays(i)["velocity"], body_id, start, bodies)
            for i in range(result.n_frames)
        ]
        times = np.asarray(result.times)
    centroids = np.stack([m[0] for m in motion])
    rotation = None if motion[0][2] is None else np.stack([m[2] for m in motion])
    return Reference(
        times,
        centroids - centroids[0],
        np.stack([m[1] for m in motion]),
        rotation,
        body_sizes(start, body_id, bodies),
    )


def motion_error(motion, origin, reference: Reference, frame: int, lib=torch):
    """Per body, the squared error ``(B,)`` of ``motion`` (:func:`body_motion`'s output;
    ``origin`` the centroids at frame 0) against the reference's ``frame``: displacement over
    size, velocity times :data:`HORIZON` over size, rotation in radians."""
    centroid, velocity, rotation = motion
    as_tensor = (lambda a: torch.as_tensor(a, dtype=centroid.dtype)) if lib is torch else np.asarray
    size = as_tensor(reference.sizes)
    error = (((centroid - origin) - as_tensor(reference.displacement[frame])) ** 2).sum(1)
    error = error + (HORIZON**2) * ((velocity - as_tensor(reference.velocity[frame])) ** 2).sum(1)
    error = error / size**2
    if rotation is not None:  # the angle between the two, in (-pi, pi]
        turn = rotation - as_tensor(reference.rotation[frame])
        lib_ = torch if lib is torch else np
        error = error + lib_.atan2(lib_.sin(turn), lib_.cos(turn)) ** 2
    return error


# -- training ---------------------------------------------------------------------------------
@dataclass
class ContactTrainingConfig:
    """How to train: the network's size, the schedule, the budget."""

    hidden: int = 32
    layers: int = 2
    contact_edges: bool = True  # False: the ablation without edges between bodies
    bound: float = 0.25  # corrections at most bound x (|u| + |g| dt) (ContactGNNConfig.bound)
    epochs: int = 8
    window: int = 2  # output frames per back-propagated window
    learning_rate: float = 5e-4
    noise: float = 0.02  # of the normalised features
    minutes: float = 30.0  # the training stops after the epoch that passes this
    seed: int = 0
    device: str = "cpu"


@dataclass
class Prepared:
    """A case ready to roll: its twin, initial state, step, reference and body count."""

    case: ContactCase
    twin: TorchTwin
    state: dict
    dt: float
    substeps: int
    reference: Reference
    bodies: int
    frames: int


def prepare(case: ContactCase, model: ContactGNN, device: str) -> Prepared:
    """Build the case's coarse simulation and its torch twin with ``model`` as the contact
    model; the step is the coarse run's own largest one, fitted to whole steps per frame."""
    loaded = load_scene(case.scene, case.overrides())
    sim = Simulation(loaded)
    twin = TorchTwin(sim, device=device, contact_model=model)
    state = twin.initial_state(sim)
    state["time"] = 0.0
    reference = read_reference(case.results[case.reference])
    with engine.io.open(case.results[case.coarse]) as coarse:
        dt = float(np.max(coarse.diagnostics().get("dt", [loaded.scene.simulation.frame_dt])))
    frame_dt = loaded.scene.simulation.frame_dt
    substeps = substeps_per_frame(frame_dt, dt)
    frames = min(len(reference.times) - 1, round(loaded.scene.simulation.end_time / frame_dt))
    return Prepared(
        case,
        twin,
        state,
        frame_dt / substeps,
        substeps,
        reference,
        len(reference.sizes),
        frames,
    )


def roll_frames(prepared: Prepared, state: dict, frames: range, origin=None):
    """Roll ``state`` over ``frames`` (output frame numbers, consecutive); returns the mean
    squared body error over them, the end state, and the centroids at frame 0."""
    twin, total = prepared.twin, 0.0
    start = prepared.state["x"]
    if origin is None:
        origin = body_motion(start, prepared.state["v"], twin.body_id, start, prepared.bodies)[0]
    for frame in frames:
        for _ in range(prepared.substeps):
            state = twin.step(state, prepared.dt)
        motion = body_motion(state["x"], state["v"], twin.body_id, start, prepared.bodies)
        total = total + motion_error(motion, origin, prepared.reference, frame).mean()
    return total / max(1, len(frames)), state, origin


def fit_normalisation(model: ContactGNN, cases: list[Prepared]) -> None:
    """Fit the feature scales to the built-in roll-outs of every case (the features of the
    last step of each :data:`NORMALISATION_STRIDE` th frame)."""
    kept = []
    with torch.no_grad():
        for prepared in cases:
            state = dict(prepared.state)
            for frame in range(1, prepared.frames + 1):
                model.collect = []
                _, state, _ = roll_frames(prepared, state, range(frame, frame + 1))
                if frame % NORMALISATION_STRIDE == 0 and model.collect:
                    kept.append(model.collect[-1])
    model.collect = None
    if kept:
        model.fit_normalisation(
            torch.cat([v for v, _ in kept]).cpu(), torch.cat([e for _, e in kept]).cpu()
        )


@dataclass
class EpochLog:
    """Per epoch: the mean window loss, and the built-in (untrained) loss of the same data."""

    losses: list[float] = field(default_factory=list)
    built_in: float | None = None
    seconds: float = 0.0


def epoch(model, cases, optimiser, config, order, counter=None, done=0) -> float:
    """One pass over every case's whole roll-out in windows; the mean window loss."""
    total, count = 0.0, 0
    for index in order:
        prepared = cases[index]
        state, origin = dict(prepared.state), None
        for first in range(1, prepared.frames + 1, config.window):
            frames = range(first, min(first + config.window, prepared.frames + 1))
            loss, state, origin = roll_frames(prepared, state, frames, origin)
            if not torch.isfinite(loss):
                break  # a diverged roll-out: skip the rest of this case
            if loss.requires_grad:  # else no contact in this window: nothing to learn
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
            state = {k: v.detach() if torch.is_tensor(v) else v for k, v in state.items()}
            total, count = total + float(loss.detach()), count + 1
        if counter is not None:
            done += 1
            counter.update(done, f"loss {total / max(1, count):.3e}")
    return total / max(1, count)


def built_in_loss(model, cases: list[Prepared]) -> float:
    """The mean window loss with the network's corrections off (the built-in coarse run)."""
    losses = []
    with torch.no_grad():
        for prepared in cases:
            twin = prepared.twin
            twin.contact_model = None
            frames = range(1, prepared.frames + 1)
            losses.append(float(roll_frames(prepared, dict(prepared.state), frames)[0]))
            twin.contact_model = model
    return sum(losses) / len(losses)


def train_contact(
    folders: list[Path],
    out: Path,
    config: ContactTrainingConfig,
    resume: bool = False,
    quiet: bool = False,
) -> EpochLog:
    """Train a :class:`ContactGNN` on the sweeps in ``folders``; write the weights to ``out``
    (with the sidecar, the loss curve ``<out>_loss.png`` and the checkpoint
    ``<out>.checkpoint``); return the losses."""
    usable_device(config.device)
    cases = sweep_cases([Path(f) for f in folders])
    dims = {load_scene(c.scene, c.overrides()).scene.simulation.dim for c in cases[:1]}
    torch.manual_seed(config.seed)
    model = ContactGNN(
        ContactGNNConfig(
            dim=dims.pop(),
            hidden=config.hidden,
            layers=config.layers,
            contact_edges=config.contact_edges,
            bound=config.bound,
        )
    ).to(device=config.device, dtype=torch.float64)
    prepared = [prepare(case, model, config.device) for case in cases]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    checkpoint = out.with_name(out.name + ".checkpoint")
    log = EpochLog()
    if resume and checkpoint.is_file():
        log = resume_contact(checkpoint, model, optimiser)
    else:
        fit_normalisation(model, prepared)
        log.built_in = built_in_loss(model, prepared)
    shuffle = np.random.default_rng(config.seed)
    for _ in range(len(log.losses)):  # the same case orders as an uninterrupted training
        shuffle.permutation(len(prepared))
    started = time.perf_counter() - log.seconds
    model.noise = config.noise
    with Counter("train contact", config.epochs * len(prepared), "cases", quiet) as counter:
        while len(log.losses) < config.epochs:
            if (time.perf_counter() - started) / 60 > config.minutes:
                break
            order = shuffle.permutation(len(prepared))
            done = len(log.losses) * len(prepared)
            log.losses.append(epoch(model, prepared, optimiser, config, order, counter, done))
            log.seconds = time.perf_counter() - started
            save_checkpoint(checkpoint, model, optimiser, log)
    model.noise = 0.0
    record = {
        "data": [str(Path(f).resolve()) for f in folders],
        "cases": len(prepared),
        "settings": asdict(config),
        "built_in_loss": log.built_in,
        "losses": log.losses,
        "minutes": log.seconds / 60,
        "method": "solver in the loop: whole coarse roll-outs through the torch twin, "
        f"{config.window}-frame back-propagated windows, loss vs the highest resolution",
    }
    save_contact_gnn(model, out, record)
    plot_contact_losses(log, out.with_name(out.stem + "_loss.png"))
    return log


def save_checkpoint(path: Path, model, optimiser, log: EpochLog) -> None:
    """The training state after an epoch (written to a temporary file, then renamed)."""
    state = {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "losses": log.losses,
        "built_in": log.built_in,
        "seconds": log.seconds,
    }
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, temporary)
    temporary.replace(path)


def resume_contact(path: Path, model, optimiser) -> EpochLog:
    """Load a checkpoint's training state; :class:`TrainingError` if it is of other settings."""
    try:
        saved = torch.load(path, weights_only=True, map_location=next(model.parameters()).device)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        return EpochLog(list(saved["losses"]), saved["built_in"], float(saved["seconds"]))
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise TrainingError(
            f"cannot resume from {path} ({type(error).__name__}): it was written with other "
            "settings (--hidden, --layers, --no-contact-edges) or is damaged; drop --resume"
        ) from None


def plot_contact_losses(log: EpochLog, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.semilogy(range(1, len(log.losses) + 1), log.losses, marker="o", label="coarse + GNN")
    if log.built_in is not None:
        axes.axhline(log.built_in, color="grey", linestyle="--", label="built-in coarse")
    axes.set_xlabel("epoch")
    axes.set_ylabel("body motion error (squared, per frame)")
    axes.set_title("contact training")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
