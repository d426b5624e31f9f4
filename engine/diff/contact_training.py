"""``engine train contact``: train the contact graph network on sweeps run at several resolutions.

Data: the output folders of ``engine sweep`` files whose axes include
``simulation.resolution`` (e.g. ``scenes/contact/sweep_drop_2d.toml``: 40, 80 and 160 cells). Runs
that differ only in resolution form one case: the lowest resolution is the coarse run the network
corrects, the highest the reference it learns to follow.

Method: solver in the loop (Um et al. 2020) from the reference's states. A window starts from the
reference run's state at an output frame, carried over to the coarse particles
(:class:`FineToCoarse`: per coarse particle, an affine fit to the fine particles of its body
nearest it at rest gives its position, velocity, deformation gradient and affine velocity); the
torch twin rolls the coarse scene ``window`` output frames on from there with the network
correcting contact at every step, and the loss on what the window changed is back-propagated
through all its steps. The network so learns to make a coarse step follow the fine run, from
states the fine run really passes through, and several steps deep. The windows start at frames
drawn at random each epoch, from the bodies' first contact on, impacts most often (in proportion
to the reference's change of velocity that gravity does not explain). The loss compares
what does not depend on resolution: per body and output frame, its centroid's displacement since
the window's start (over the body's size, squared), its mean velocity (times a horizon
:data:`HORIZON`, over the size, squared) and, in 2D, its rotation since the start (radians,
squared) and its rate of rotation (times :data:`HORIZON`, squared: a spin that is off turns
the body wrong long after the window). Each window's loss is then divided by its case's
scale: the built-in contact's mean loss on the case's validation windows (:data:`CHECKED` fixed
windows per case, where contact acts most), so that every case asks for the same fraction of
its built-in error to go, a slide as much as an impact (absolute losses are 10^-5 in steady
sliding against 10^-2 at impacts: summed as they are, only impacts would be learnt, and a
small bias in friction adds up over a long slide). After each epoch the same loss over the
validation windows is compared with the built-in contact's (1 by construction, less where a
case's scale is :data:`FLOOR`).

Normalisation: feature means and deviations from built-in coarse steps taken from the
reference's states (:meth:`ContactGNN.fit_normalisation`). Input noise: Gaussian, on the
normalised features. Each epoch ends with a checkpoint (``--resume`` continues it); a loss
curve PNG and the JSON sidecar (data, settings, losses, minutes) are written beside the
weights.

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
CHECKED = 3  # validation windows per case
LEAD = 2  # frames before the built-in run's first contact where windows may start
#: The least case scale: a case whose built-in window loss is below this (errors of 3 % of a
#: body's size) counts as it stands, not magnified (the built-in contact is nearly exact there:
#: divided by its own tiny loss, such a case would outweigh the impacts a thousand times).
FLOOR = 1e-3


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
    the best-fitting rotation) and the spin ``(B,)`` rad/s (the rate of the rigid rotation that
    best fits the velocities about the centroid, least squares); in 3D the last two are
    ``None``. Works on torch tensors and numpy arrays alike."""
    lib = torch if isinstance(x, torch.Tensor) else np
    one_hot = (body_id[:, None] == lib.arange(bodies)[None, :]) * 1.0  # (N, B)
    one_hot = one_hot.to(x.dtype) if lib is torch else one_hot
    count = one_hot.sum(0)[:, None]
    centroid = (one_hot.T @ x) / count
    velocity = (one_hot.T @ v) / count
    start_centroid = (one_hot.T @ start) / count
    if x.shape[1] != 2:
        return centroid, velocity, None, None
    r = x - centroid[body_id]
    r0 = start - start_centroid[body_id]
    cross = one_hot.T @ (r0[:, 0] * r[:, 1] - r0[:, 1] * r[:, 0])
    dot = one_hot.T @ (r0 * r).sum(1)
    u = v - velocity[body_id]
    moment = one_hot.T @ (r * r).sum(1)
    spin = (one_hot.T @ (r[:, 0] * u[:, 1] - r[:, 1] * u[:, 0])) / moment
    return centroid, velocity, lib.arctan2(cross, dot), spin


def body_sizes(x: np.ndarray, body_id: np.ndarray, bodies: int) -> np.ndarray:
    """Each body's largest extent ``(B,)`` m."""
    return np.array(
        [float(np.ptp(x[body_id == b], axis=0).max()) for b in range(bodies)], dtype=np.float64
    )


@dataclass
class Reference:
    """A run's body motion at its output frames: times ``(F,)``, displacement of each body's
    centroid from frame 0 ``(F, B, d)``, velocity ``(F, B, d)``, rotation ``(F, B)`` rad and
    spin ``(F, B)`` rad/s (2D; else ``None``) and the bodies' sizes ``(B,)``."""

    times: np.ndarray
    displacement: np.ndarray
    velocity: np.ndarray
    rotation: np.ndarray | None
    sizes: np.ndarray
    spin: np.ndarray | None = None


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
    planar = motion[0][2] is not None
    return Reference(
        times,
        centroids - centroids[0],
        np.stack([m[1] for m in motion]),
        np.stack([m[2] for m in motion]) if planar else None,
        body_sizes(start, body_id, bodies),
        np.stack([m[3] for m in motion]) if planar else None,
    )


def motion_error(motion, origin, reference: Reference, frame: int, lib=torch, since=None):
    """Per body, the squared error ``(B,)`` of ``motion`` (:func:`body_motion`'s output;
    ``origin`` the centroids at frame 0) against the reference's ``frame``: displacement over
    size, velocity times :data:`HORIZON` over size, rotation in radians, spin times
    :data:`HORIZON` (where the reference has it). With ``since = (frame0, rotation0)``
    displacement and rotation count from the reference's ``frame0``, ``origin`` and
    ``rotation0`` ``(B,)`` being the run's centroids and rotation then."""
    centroid, velocity, rotation, spin = motion
    as_tensor = (lambda a: torch.as_tensor(a, dtype=centroid.dtype)) if lib is torch else np.asarray
    moved, turned = reference.displacement[frame], 0.0
    if since is not None:
        moved, turned = moved - reference.displacement[since[0]], since[1]
    size = as_tensor(reference.sizes)
    moved = as_tensor(moved)
    error = (((centroid - origin) - moved) ** 2).sum(1)
    error = error + (HORIZON**2) * ((velocity - as_tensor(reference.velocity[frame])) ** 2).sum(1)
    error = error / size**2
    if rotation is not None:  # the angle between the two, in (-pi, pi]
        turned_reference = reference.rotation[frame]
        if since is not None:
            turned_reference = turned_reference - reference.rotation[since[0]]
        turn = rotation - turned - as_tensor(turned_reference)
        lib_ = torch if lib is torch else np
        error = error + lib_.atan2(lib_.sin(turn), lib_.cos(turn)) ** 2
    if spin is not None and reference.spin is not None:
        error = error + (HORIZON**2) * (spin - as_tensor(reference.spin[frame])) ** 2
    return error


class FineToCoarse:
    """Carries a fine run's particle state over to the coarse run's particles.

    Each coarse particle takes the ``K`` fine particles of its body nearest it at rest (``K``
    the ratio of the fine particle count to the coarse one, at least ``3^d``); at a frame, the
    affine map that best fits their rest positions to their positions (least squares) gives the
    coarse particle's position and deformation gradient ``F``, and the one that fits their
    velocities its velocity and velocity gradient ``G`` (the affine velocity ``C = G F^-1``).
    Exact for any affine motion of the body.

    Shapes: ``N`` coarse and ``M`` fine particles, ``d`` dimensions.
    """

    def __init__(self, coarse_rest, coarse_body, fine_rest, fine_body, dtype=torch.float64):
        """``coarse_rest`` ``(N, d)``, ``fine_rest`` ``(M, d)`` m; bodies ``(N,)``, ``(M,)``."""
        from scipy.spatial import cKDTree

        coarse_rest, fine_rest = np.asarray(coarse_rest), np.asarray(fine_rest)
        dim = coarse_rest.shape[1]
        ratio = max(1, round(len(fine_rest) / len(coarse_rest)))
        count = max(3**dim, ratio)  # never too few to span the body, even on a lattice
        neighbours = np.zeros((len(coarse_rest), count), dtype=np.int64)
        for body in np.unique(coarse_body):
            mine, theirs = np.flatnonzero(coarse_body == body), np.flatnonzero(fine_body == body)
            _, nearest = cKDTree(fine_rest[theirs]).query(coarse_rest[mine], k=count)
            neighbours[mine] = theirs[nearest]
        rest = fine_rest[neighbours]  # (N, K, d)
        centre = rest.mean(1)
        spread = rest - centre[:, None]
        self.neighbours = torch.as_tensor(neighbours)
        self.spread = torch.as_tensor(spread, dtype=dtype)
        self.offset = torch.as_tensor(coarse_rest - centre, dtype=dtype)  # (N, d)
        moment = np.einsum("nki,nkj->nij", spread, spread)
        self.inverse = torch.as_tensor(np.linalg.inv(moment), dtype=dtype)  # (N, d, d)

    def _fit(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fitted value at each coarse particle ``(N, d)`` and the gradient ``(N, d, d)``
        of the affine map from rest positions to ``values`` ``(M, d)``."""
        near = values[self.neighbours]  # (N, K, d)
        mean = near.mean(1)
        gradient = torch.einsum("nki,nkj->nij", near - mean[:, None], self.spread) @ self.inverse
        return mean + (gradient @ self.offset[..., None])[..., 0], gradient

    def state(self, x, v) -> dict[str, torch.Tensor]:
        """The coarse particles' ``x``, ``v`` ``(N, d)``, ``F``, ``C`` ``(N, d, d)`` from the
        fine particles' positions and velocities ``(M, d)``."""
        position, F = self._fit(torch.as_tensor(x, dtype=self.spread.dtype))
        velocity, G = self._fit(torch.as_tensor(v, dtype=self.spread.dtype))
        return {"x": position, "v": velocity, "F": F, "C": G @ torch.linalg.inv(F)}


# -- training ---------------------------------------------------------------------------------
@dataclass
class ContactTrainingConfig:
    """How to train: the network's size, the schedule, the budget."""

    hidden: int = 32
    layers: int = 2
    contact_edges: bool = True  # False: the ablation without edges between bodies
    bound: float = 0.5  # corrections at most bound x (|u| + |g| dt) (ContactGNNConfig.bound)
    epochs: int = 8
    window: int = 2  # output frames per back-propagated window
    windows: int = 8  # windows per case and epoch
    teacher_epochs: int = 2  # epochs whose windows all start from the reference's states
    pushforward: int = 0  # later: up to this many frames of the run's own before a window
    learning_rate: float = 5e-4
    relative: bool = True  # each window's loss over its case's built-in loss (Prepared.scale)
    noise: float = 0.02  # of the normalised features
    minutes: float = 30.0  # no epoch starts that would end past this (the last one's length)
    seed: int = 0
    device: str = "cpu"


@dataclass
class Prepared:
    """A case ready to roll: its twin, initial state, step, reference and body count, the
    reference's state carried over to the coarse particles at every output frame, and the
    first frame windows start from."""

    case: ContactCase
    twin: TorchTwin
    state: dict
    dt: float
    substeps: int
    reference: Reference
    bodies: int
    frames: int
    starts: list[dict] = field(default_factory=list)
    first: int = 0
    weights: np.ndarray | None = None  # (F + 1,) how much contact acts in a window from each frame
    scale: float = 1.0  # what its windows' losses are divided by (see set_scales)

    def start(self, frame: int) -> dict:
        """The state a window from output ``frame`` starts with (on the twin's device)."""
        carried = self.starts[frame]
        device = self.state["x"].device
        state = {k: v.to(device=device, dtype=self.state["x"].dtype) for k, v in carried.items()}
        return {**state, "state": self.state["state"], "time": float(self.reference.times[frame])}


def prepare(case: ContactCase, model: ContactGNN, device: str) -> Prepared:
    """Build the case's coarse simulation and its torch twin with ``model`` as the contact
    model; the step is the coarse run's own largest one, fitted to whole steps per frame; the
    reference's states are carried over to the coarse particles (:class:`FineToCoarse`)."""
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
    prepared = Prepared(
        case, twin, state, frame_dt / substeps, substeps, reference, len(reference.sizes), frames
    )
    body_id = twin.body_id.cpu().numpy()
    with engine.io.open(case.results[case.reference]) as fine:
        fine_body = fine.arrays(0)["body_id"].astype(np.int64)
        carry = FineToCoarse(state["x"].cpu().numpy(), body_id, fine.points(0), fine_body)
        for frame in range(frames + 1):
            carried = carry.state(fine.points(frame), fine.arrays(frame)["velocity"])
            prepared.starts.append(carried)
    prepared.first = max(0, first_touch(prepared.starts, body_id, sim.grid.dx) - LEAD)
    prepared.weights = contact_weights(reference, twin.gravity.cpu().numpy(), frame_dt)
    return prepared


def contact_weights(reference: Reference, gravity: np.ndarray, frame_dt: float) -> np.ndarray:
    """Per output frame ``(F,)`` m/s: the largest change of a body's velocity over the next
    frame in the reference that gravity does not explain (what contact does then; zero in free
    flight, the impact's speed change at an impact, ``|g| frame_dt`` at rest on a floor)."""
    change = np.diff(reference.velocity, axis=0) - gravity * frame_dt  # (F - 1, B, d)
    return np.append(np.linalg.norm(change, axis=2).max(1), 0.0)


def first_touch(states: list[dict], body_id: np.ndarray, dx: float) -> int:
    """The first frame where particles of two bodies come within two cells of each other (the
    reach of two B-spline stencils), else 0 (one body: it touches colliders from the start)."""
    body = torch.as_tensor(body_id)
    if len(body.unique()) < 2:
        return 0
    apart = body[:, None] != body[None, :]
    for frame, state in enumerate(states):
        distance = torch.cdist(state["x"], state["x"])
        if bool((distance[apart] <= 2 * dx).any()):
            return frame
    return 0


def roll_frames(prepared: Prepared, state: dict, frames: range, origin=None, since=None):
    """Roll ``state`` over ``frames`` (output frame numbers, consecutive); returns the mean
    squared body error over them, the end state, and the centroids at frame 0 (or, with
    ``since`` a frame, the error of what changed since that frame, from ``state`` then)."""
    twin, total = prepared.twin, 0.0
    rest = prepared.state["x"]
    if since is not None:
        origin, _, turned, _ = body_motion(
            state["x"], state["v"], twin.body_id, rest, prepared.bodies
        )
        since = (since, 0.0 if turned is None else turned)
    elif origin is None:
        origin = body_motion(rest, prepared.state["v"], twin.body_id, rest, prepared.bodies)[0]
    for frame in frames:
        for _ in range(prepared.substeps):
            state = twin.step(state, prepared.dt)
        motion = body_motion(state["x"], state["v"], twin.body_id, rest, prepared.bodies)
        total = total + motion_error(motion, origin, prepared.reference, frame, since=since).mean()
    return total / max(1, len(frames)), state, origin


def fit_normalisation(model: ContactGNN, cases: list[Prepared]) -> None:
    """Fit the feature scales to the features of one built-in step from the reference's states
    (every :data:`NORMALISATION_STRIDE` th frame from the first contact's lead on)."""
    kept = []
    with torch.no_grad():
        for prepared in cases:
            for frame in range(prepared.first, prepared.frames, NORMALISATION_STRIDE):
                model.collect = []
                prepared.twin.step(prepared.start(frame), prepared.dt)
                kept += model.collect
    model.collect = None
    if kept:
        model.fit_normalisation(*(torch.cat([k[i] for k in kept]).cpu() for i in range(3)))


@dataclass
class EpochLog:
    """Per epoch: the mean training window loss and the validation windows' loss; the
    built-in (uncorrected) loss of the validation windows."""

    losses: list[float] = field(default_factory=list)
    training: list[float] = field(default_factory=list)
    built_in: float | None = None
    seconds: float = 0.0


def window_starts(prepared: Prepared, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The output frames a window may start from (the first contact's lead on, leaving room
    for the whole window) and the chance of each: half of the draws in proportion to what
    contact does in the window (:func:`contact_weights`, summed over its frames), so that
    impacts are drawn often, and half uniformly, so that steady contact (sliding, resting),
    whose small errors add up over a roll-out, is drawn too."""
    starts = np.arange(prepared.first, max(prepared.first + 1, prepared.frames - window + 1))
    weights = np.array([prepared.weights[s : s + window].sum() for s in starts])
    weights = weights + weights.mean() + 1e-12
    return starts, weights / weights.sum()


def window_loss(prepared: Prepared, start: int, window: int, pushed: int = 0):
    """The loss of one window of ``window`` frames from output frame ``start``, reached from
    the reference's state ``pushed`` frames earlier by the coarse run itself (with its
    contact model, without gradients: the pushforward of Brandstetter et al. 2022, so that the
    network also learns on the states its own corrections lead to)."""
    pushed = min(pushed, start)
    state = prepared.start(start - pushed)
    if pushed:
        with torch.no_grad():
            _, state, _ = roll_frames(prepared, state, range(start - pushed + 1, start + 1))
    frames = range(start + 1, min(start + 1 + window, prepared.frames + 1))
    return roll_frames(prepared, state, frames, since=start)[0]


def built_in_loss(prepared: Prepared, start: int, window: int) -> float:
    """The built-in contact's loss on the window of ``window`` frames from the reference's
    state at ``start``."""
    model, prepared.twin.contact_model = prepared.twin.contact_model, None
    try:
        with torch.no_grad():
            return float(window_loss(prepared, start, window))
    finally:
        prepared.twin.contact_model = model


def set_scales(cases: list[Prepared], config) -> None:
    """Each case's :attr:`Prepared.scale`: with :attr:`ContactTrainingConfig.relative`, the
    built-in contact's mean loss on its validation windows (at least :data:`FLOOR`), else 1."""
    for prepared in cases:
        starts = checked_starts(prepared, config.window)
        losses = [built_in_loss(prepared, int(start), config.window) for start in starts]
        prepared.scale = max(float(np.mean(losses)), FLOOR) if config.relative else 1.0


def scaled_loss(prepared: Prepared, start: int, config, pushed: int = 0):
    """:func:`window_loss` over the case's :attr:`Prepared.scale`."""
    return window_loss(prepared, start, config.window, pushed) / prepared.scale


def epoch(model, cases, optimiser, config, order, rng, pushforward, counter=None, done=0):
    """One pass over the cases in ``order``, :attr:`ContactTrainingConfig.windows` windows
    each at random start frames, each reached through up to ``pushforward`` frames of the
    coarse run's own (drawn uniformly); the mean window loss."""
    total, count = 0.0, 0
    for index in order:
        prepared = cases[index]
        starts, chances = window_starts(prepared, config.window)
        drawn = rng.choice(starts, size=min(config.windows, len(starts)), replace=False, p=chances)
        for start in drawn:
            pushed = int(rng.integers(0, pushforward + 1))
            loss = scaled_loss(prepared, int(start), config, pushed)
            if not torch.isfinite(loss):
                continue  # a diverged window: nothing to learn from it
            if loss.requires_grad:  # else no contact in this window: nothing to learn
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
            total, count = total + float(loss.detach()), count + 1
        if counter is not None:
            done += 1
            counter.update(done, f"loss {total / max(1, count):.3e}")
    return total / max(1, count)


def checked_starts(prepared: Prepared, window: int) -> np.ndarray:
    """The validation windows' start frames: the :data:`CHECKED` most likely ones, no two
    overlapping."""
    starts, chances = window_starts(prepared, window)
    kept: list[int] = []
    for start in starts[np.argsort(-chances, kind="stable")]:
        if all(abs(start - other) >= window for other in kept):
            kept.append(int(start))
        if len(kept) == CHECKED:
            break
    return np.array(sorted(kept))


def validation_loss(model, cases: list[Prepared], config, built_in: bool = False) -> float:
    """The mean loss of the validation windows (:func:`scaled_loss`), each reached through
    :attr:`ContactTrainingConfig.pushforward` frames of the run's own, with the network (or,
    ``built_in``, without: the built-in coarse contact)."""
    losses = []
    with torch.no_grad():
        for prepared in cases:
            prepared.twin.contact_model = None if built_in else model
            for start in checked_starts(prepared, config.window):
                loss = scaled_loss(prepared, int(start), config, config.pushforward)
                losses.append(float(loss))
            prepared.twin.contact_model = model
    return sum(losses) / max(1, len(losses))


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
    began = time.perf_counter()
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
    set_scales(prepared, config)
    if resume and checkpoint.is_file():
        log, best = resume_contact(checkpoint, model, optimiser)
    else:
        fit_normalisation(model, prepared)
        log.built_in = validation_loss(model, prepared, config, built_in=True)
        best = None
    started = began - log.seconds  # the budget counts the preparation too
    with Counter("train contact", config.epochs * len(prepared), "cases", quiet) as counter:
        last = 0.0  # s, the last epoch's length: no epoch starts that would end past the budget
        while len(log.losses) < config.epochs:
            if time.perf_counter() - started + last > 60 * config.minutes:
                break
            begun = time.perf_counter()
            rng = np.random.default_rng([config.seed, len(log.losses)])  # the same on resume
            order = rng.permutation(len(prepared))
            done = len(log.losses) * len(prepared)
            model.noise = config.noise
            pushforward = config.pushforward if len(log.losses) >= config.teacher_epochs else 0
            log.training.append(
                epoch(model, prepared, optimiser, config, order, rng, pushforward, counter, done)
            )
            model.noise = 0.0
            log.losses.append(validation_loss(model, prepared, config))
            if log.losses[-1] == min(log.losses):
                best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log.seconds, last = time.perf_counter() - started, time.perf_counter() - begun
            save_checkpoint(checkpoint, model, optimiser, log, best)
    if best is not None:
        model.load_state_dict(best)
    record = {
        "data": [str(Path(f).resolve()) for f in folders],
        "cases": len(prepared),
        "settings": asdict(config),
        "built_in_loss": log.built_in,
        "case_scales": [case.scale for case in prepared],
        "losses": log.losses,
        "training_losses": log.training,
        "kept_epoch": 1 + int(np.argmin(log.losses)) if log.losses else None,
        "minutes": log.seconds / 60,
        "method": "solver in the loop from the reference's states: windows of "
        f"{config.window} output frames through the torch twin, starting from the "
        "highest resolution's state carried over to the coarse particles, loss on what each "
        "window changes"
        + (", over the case's built-in loss" if config.relative else "")
        + "; the epoch with the lowest validation loss is kept",
    }
    save_contact_gnn(model, out, record)
    plot_contact_losses(log, out.with_name(out.stem + "_loss.png"))
    return log


def save_checkpoint(path: Path, model, optimiser, log: EpochLog, best: dict) -> None:
    """The training state after an epoch, with the best epoch's weights (written to a
    temporary file, then renamed)."""
    state = {
        "model": model.state_dict(),
        "best": best,
        "optimiser": optimiser.state_dict(),
        "losses": log.losses,
        "training": log.training,
        "built_in": log.built_in,
        "seconds": log.seconds,
    }
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, temporary)
    temporary.replace(path)


def resume_contact(path: Path, model, optimiser) -> tuple[EpochLog, dict]:
    """Load a checkpoint's training state and best weights; :class:`TrainingError` if it is of
    other settings."""
    try:
        saved = torch.load(path, weights_only=True, map_location=next(model.parameters()).device)
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        log = EpochLog(
            list(saved["losses"]), list(saved["training"]), saved["built_in"], saved["seconds"]
        )
        return log, saved["best"]
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
    epochs = range(1, len(log.losses) + 1)
    axes.semilogy(epochs, log.training, marker=".", label="coarse + GNN, training windows")
    axes.semilogy(epochs, log.losses, marker="o", label="coarse + GNN, validation windows")
    if log.built_in is not None:
        axes.axhline(log.built_in, color="grey", linestyle="--", label="built-in, validation")
    axes.set_xlabel("epoch")
    axes.set_ylabel("body motion error per window frame (squared)")
    axes.set_title("contact training")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
