"""``engine train constitutive``: fit a ``neural`` material to one observed trajectory.

The observation is an engine result file whose frames hold positions and, where
``output.fields`` stored them, the full state (``velocity``, ``C`` and ``F``). With the full
state, training uses teacher forcing: each sample starts from the observed state at a frame and
rolls the torch twin, with the neural law in place of the material, over a window of frames,
with the observed run's own step where the result records it. The loss is the mean squared
error of positions, and of velocities times the frame interval, over the window, relative to
the body's size squared. The law's plastic state (its history, which no observation holds) is
carried along the observation frame by frame (:meth:`WindowLoss.carry_history`), and every
window starts from it. With positions only, every window starts from the scene's initial
state at frame 0. Stage one fits the law's prior scalars alone (L-BFGS over the chain of
one-frame windows);
stage two trains everything with Adam, and the better of the two (mean loss over every
longest window) is kept. Windows grow from one frame to ``max_window`` over the
epochs, visited in a shuffled order, with a cosine-decaying learning rate; a window whose loss is
not finite is skipped. Each epoch writes a checkpoint (``--resume`` continues from it), and the
loss curve goes to a PNG beside the weights.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import engine.io
from engine.diff.neural_law import build_law, save_neural_law
from engine.diff.twin import TorchTwin
from engine.output.vtkhdf import SURFACE
from engine.progress import Counter
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

NEEDED = ("velocity", "C", "F")
MODULI_ITERATIONS = 40  # L-BFGS iterations of stage one (the moduli alone)


class TrainingError(ValueError):
    """Input that cannot be trained on, with what to change."""


@dataclass
class Observation:
    """Frames of one trajectory (float64 tensors): states and positions per frame."""

    times: np.ndarray  # (T,) s
    states: list[dict[str, torch.Tensor]]  # per frame: x, and v, C, F where stored
    size: float  # m, the body's extent (the loss is relative to it)


def result_beside(path: Path) -> str:
    """What to pass instead of ``path``, which holds no particle frames: the result a checkpoint
    or surface file was written beside, or any result of ``engine run``."""
    for tail in ("_checkpoint.h5", "_surface.vtkhdf"):
        if path.name.endswith(tail):
            return f"pass the result beside it, {path.with_name(path.name[: -len(tail)])}.vtkhdf"
    return "pass the .vtkhdf result file `engine run` wrote"


def open_observed(path: Path) -> engine.io.Result:
    """The particle result file at ``path``, with at least two frames; anything else is a
    :class:`TrainingError` saying what to pass instead."""
    try:
        result = engine.io.open(path)
    except (OSError, KeyError) as error:
        reason = (
            "no such file"
            if not path.exists()
            else "an HDF5 file without an engine run's frames"
            if isinstance(error, KeyError)
            else str(error)
        )
        raise TrainingError(
            f"{path} is not an engine result file ({reason}); {result_beside(path)}"
        ) from None
    if result.kind == SURFACE:
        raise TrainingError(f"{path} holds a moving surface, not particles; {result_beside(path)}")
    if result.n_frames < 2:
        raise TrainingError(
            f"{path} has {result.n_frames} finished frames and at least 2 are needed; run the "
            "scene longer (or to its end)"
        )
    return result


def read_observation(
    path: Path, device: str | torch.device = "cpu"
) -> tuple[Observation, engine.io.Result]:
    """Positions of every frame, and the full state where the result stores it (on ``device``);
    a file that is no particle result with two frames or more is a :class:`TrainingError`."""
    result = open_observed(path)
    full = all(name in result.fields for name in NEEDED)
    states = []
    for index in range(result.n_frames):
        state = {"x": torch.as_tensor(result.points(index), dtype=torch.float64, device=device)}
        if full:
            arrays = result.arrays(index)
            state |= {
                key: torch.as_tensor(arrays[name], dtype=torch.float64, device=device)
                for key, name in (("v", "velocity"), ("C", "C"), ("F", "F"))
            }
        states.append(state)
    extent = result.points(0).max(axis=0) - result.points(0).min(axis=0)
    return Observation(result.times, states, float(extent.max())), result


@dataclass
class TrainingConfig:
    """How to train: the law's architecture and scale, the schedule and the optimiser."""

    architecture: str = "invariant"  # or "mlp" (the unconstrained baseline)
    stress_scale: float = 1.0e4  # Pa: the network's output unit and the untrained law's modulus
    epochs: int = 20
    max_window: int = 4  # frames; windows grow from 1 to this over the epochs
    learning_rate: float = 1e-3
    seed: int = 0  # of the networks' initial weights
    device: str = "cpu"  # torch device of the twin and the law: "cuda" trains on a GPU

    def window(self, epoch: int) -> int:
        return min(self.max_window, 1 + epoch * self.max_window // max(1, self.epochs))


@dataclass
class WindowLoss:
    """Teacher-forced loss of one window: from the observed state at a frame, ``window`` frames
    of ``substeps`` twin steps each; squared position error plus squared velocity error times
    the frame interval, per particle, averaged over the window, over the body's size squared."""

    twin: TorchTwin
    observation: Observation
    window: int
    substeps: int
    frame_dt: float  # s

    def __call__(self, start: int) -> torch.Tensor:
        return self.roll(start, self.observation.states[start], self.window)[0]

    def roll(self, start: int, state: dict, frames: int) -> tuple[torch.Tensor, dict]:
        """The loss of ``frames`` frames from ``state`` at frame ``start``, and the twin's state
        at their end."""
        loss, dt = 0.0, self.frame_dt / self.substeps
        for offset in range(1, frames + 1):
            for _ in range(self.substeps):
                state = self.twin.step(state, dt)
            target = self.observation.states[start + offset]
            error = ((state["x"] - target["x"]) ** 2).sum(-1).mean()
            if "v" in target:
                error = error + self.frame_dt**2 * ((state["v"] - target["v"]) ** 2).sum(-1).mean()
            loss = loss + error / self.observation.size**2
        return loss / frames, state

    def mean(self, starts: list[int]) -> torch.Tensor:
        """The loss averaged over the windows from ``starts`` that fit in the observation."""
        last = len(self.observation.states) - self.window
        fitting = [start for start in starts if start < last]
        return sum(self(start) for start in fitting) / max(1, len(fitting))

    def carry_history(self) -> torch.Tensor:
        """The law's plastic state along the observation, and the mean one-frame loss on the way.

        The plastic state (e.g. the volume a body gained by coming apart) is the law's own, so
        no observation holds it: from frame 0, each frame's observed state, with the plastic
        state the previous frame's step ended with, is stepped over one frame. Every frame's
        plastic state is stored in the observation (detached), where windows start from it;
        gradients of the returned loss flow along the chain. Needs the full state at every
        frame (``velocity``, ``C`` and ``F`` in the result).
        """
        states, total = self.observation.states, 0.0
        state = states[0]
        for start in range(len(states) - 1):
            loss, end = self.roll(start, state, 1)
            states[start + 1]["state"] = end["state"].detach()
            state, total = {**states[start + 1], "state": end["state"]}, total + loss
        return total / (len(states) - 1)


def loss_reporter(counter: Counter, scale: float = 1.0) -> Callable[[int, float], None]:
    """A :func:`minimise` ``on_evaluation`` that shows the iteration and the best loss so far,
    times ``scale``, on ``counter``."""
    return lambda iteration, loss: counter.update(iteration, f"loss {loss * scale:.3e}")


def minimise(
    leaves: list[torch.Tensor],
    objective: Callable[[], torch.Tensor],
    iterations: int,
    lr: float = 1.0,
    precise: bool = False,
    on_evaluation: Callable[[int, float], None] | None = None,
) -> None:
    """L-BFGS with a strong-Wolfe line search on ``objective()`` over ``leaves`` (in place).

    A value that is not finite is a wall to the line search, not a NaN; if the search fails or
    ends no better than it started, the leaves are put back. ``precise`` runs until round-off
    (gradient 1e-12, change 1e-14) instead of torch's default tolerances. ``on_evaluation`` is
    called after every evaluation with the iteration (0 for the first guess) and the lowest
    finite value so far."""
    tolerances = {"tolerance_grad": 1e-12, "tolerance_change": 1e-14} if precise else {}
    optimiser = torch.optim.LBFGS(
        leaves, lr=lr, max_iter=iterations, line_search_fn="strong_wolfe", **tolerances
    )
    lowest = math.inf

    def closure() -> torch.Tensor:
        nonlocal lowest
        optimiser.zero_grad()
        loss = objective()
        if on_evaluation is not None:
            if torch.isfinite(loss):
                lowest = min(lowest, float(loss.detach()))
            on_evaluation(optimiser.state[leaves[0]].get("n_iter", 0), lowest)
        if not torch.isfinite(loss):  # a step too far: report a wall, not a NaN, to the search
            return loss.new_tensor(1e30)
        loss.backward()
        return loss

    saved = [leaf.detach().clone() for leaf in leaves]
    with torch.no_grad():
        before = float(objective())
    try:
        optimiser.step(closure)
        with torch.no_grad():
            after = float(objective())
    except (RuntimeError, ValueError, IndexError):  # a line search that lost its bracket
        after = math.inf
    if not after <= before:  # diverged or no better: keep the first guess
        with torch.no_grad():
            for leaf, value in zip(leaves, saved, strict=True):
                leaf.copy_(value)


def fit_moduli(
    law: torch.nn.Module, objective: Callable[[], torch.Tensor], quiet: bool = False
) -> None:
    """Stage one: fit the law's ``prior_*`` scalars (moduli, mix, yield) alone, by L-BFGS on
    ``objective()``, showing the iterations and the loss unless ``quiet``; a law without them
    (the ``mlp`` baseline) is left as is."""
    priors = [p for name, p in law.named_parameters() if name.startswith("prior_")]
    if priors:
        label = "stage one, L-BFGS on the law's moduli"
        with Counter(label, MODULI_ITERATIONS, "iterations", quiet) as counter:
            minimise(
                priors, objective, MODULI_ITERATIONS, 0.5, on_evaluation=loss_reporter(counter)
            )


def observed_steps(observation: Observation, result: engine.io.Result) -> tuple[float, float]:
    """The frame interval and the largest step the observed run took (its own CFL step where
    the result records it), s."""
    frame_dt = float(np.diff(observation.times).mean())
    return frame_dt, float(np.max(result.diagnostics().get("dt", [frame_dt])))


def substeps_per_frame(frame_dt: float, dt: float) -> int:
    """The number of steps no longer than ``dt`` that make up one frame of ``frame_dt``."""
    return max(1, math.ceil(frame_dt / dt - 1e-6))


def keep_the_better(
    law: torch.nn.Module,
    stage_one: dict,
    objective: Callable[[], torch.Tensor],
    quiet: bool = False,
) -> str:
    """Keep whichever of the trained law and its stage-one state has the lower ``objective()``
    (no gradients), showing both losses unless ``quiet``; returns ``"stage two"`` or
    ``"stage one"``."""

    def mean_loss() -> float:
        with torch.no_grad():
            loss = float(objective())
        return loss if math.isfinite(loss) else math.inf

    trained = {key: value.clone() for key, value in law.state_dict().items()}
    label = "keeping the better law, loss over the longest windows"
    with Counter(label, 2, "laws", quiet) as counter:
        trained_loss = mean_loss()
        counter.update(1, f"stage two {trained_loss:.3e}")
        law.load_state_dict(stage_one)
        stage_one_loss = mean_loss()
        counter.update(2, f"stage one {stage_one_loss:.3e}")
    if stage_one_loss < trained_loss:
        return "stage one"
    law.load_state_dict(trained)
    return "stage two"


def estimated_wave_speed(law, dim: int, density: float, strain: float = 1e-3) -> float:
    """P-wave speed (m/s) of ``law`` at small uniaxial strain: ``sqrt(M / density)`` with the
    largest |d tau_xx / d eps| over tension and compression."""
    with torch.no_grad():
        moduli = []
        for sign in (1.0, -1.0):
            F = torch.eye(dim, dtype=torch.float64, device=law_device(law))[None].clone()
            F[0, 0, 0] += sign * strain
            moduli.append(abs(float(law.kirchhoff(F)[0, 0, 0])) / strain)
    return math.sqrt(max(moduli) / density)


def observed_scene(result: engine.io.Result, material: str | None) -> tuple:
    """The scene the observed run was started with, in f64, and the material to fit:
    ``material``, or the scene's first; one the scene lacks is a :class:`TrainingError`."""
    loaded = load_scene(
        result.metadata["scene_file"], ['simulation.precision="f64"'], text=result.scene_text
    )
    names = list(loaded.scene.materials)
    material = material or names[0]
    if material not in names:
        raise TrainingError(f"no material {material!r} in the scene; choose from {names}")
    return loaded, material


def check_window(window: int, frames: int) -> None:
    """Raise a :class:`TrainingError` naming the fix if windows of ``window`` frames do not fit
    in an observation of ``frames`` frames."""
    if window > frames - 1:
        raise TrainingError(
            f"--window {window} is longer than the observation, which has {frames - 1} frame "
            f"intervals; use --window {frames - 1} or less"
        )


def usable_device(device: str) -> None:
    """Raise a :class:`TrainingError` naming the fix if torch cannot use ``device``."""
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise TrainingError(
            f"--device {device!r} is not usable here ({str(error).splitlines()[0]}); use "
            "--device cpu, or install a torch build for that device"
        ) from None


def law_device(law: torch.nn.Module) -> torch.device:
    """The device the law's parameters live on."""
    return next(law.parameters()).device


def resume_from(
    checkpoint: Path,
    law: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    shuffle: torch.Generator,
) -> tuple[list[float], dict]:
    """Load the training state saved in ``checkpoint`` into the law, optimiser, schedule and
    shuffle; return the losses so far and the stage-one state. A checkpoint written with other
    settings (another architecture) or a damaged one is a :class:`TrainingError`."""
    try:
        saved = torch.load(checkpoint, weights_only=True, map_location=law_device(law))
        law.load_state_dict(saved["law"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        shuffle.set_state(saved["shuffle"].cpu())
        return list(saved["losses"]), saved["stage_one"]
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        reason = (  # torch's own text for an unpicklable file suggests loading it unsafely
            "not a training checkpoint"
            if isinstance(error, pickle.UnpicklingError)
            else (str(error).splitlines() or [type(error).__name__])[0]
        )
        raise TrainingError(
            f"cannot resume from {checkpoint} ({reason}): it was written with other settings "
            "(e.g. --architecture) or is damaged; drop --resume to start over"
        ) from None


def train_constitutive(
    result_path: str | Path,
    out: str | Path,
    material: str | None = None,
    config: TrainingConfig | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> list[float]:
    """Train a law on ``result_path``; write ``out`` (.pt), its sidecar and loss PNG.

    Nothing of the observed material is read but its density; the untrained law is a corotated
    linear solid of modulus ``config.stress_scale``. Returns the loss per epoch.
    """
    config = config or TrainingConfig()
    usable_device(config.device)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    observation, result = read_observation(Path(result_path), config.device)
    check_window(config.max_window, len(observation.states))
    loaded, material = observed_scene(result, material)
    sim = Simulation(loaded)
    torch.manual_seed(config.seed)
    law = build_law(config.architecture, config.stress_scale, sim.dim).double().to(config.device)
    twin = TorchTwin(sim, laws={material: law}, device=config.device)
    density = loaded.scene.materials[material].density
    if "F" not in observation.states[0]:  # positions only: start from the scene's initial state
        observation.states[0] = twin.initial_state(sim)
    optimiser = torch.optim.Adam(law.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs, 0.0)
    shuffle = torch.Generator().manual_seed(config.seed)
    frames = len(observation.states)
    checkpoint = out.with_suffix(".ckpt")
    losses: list[float] = []
    if resume and checkpoint.exists():
        losses, stage_one = resume_from(checkpoint, law, optimiser, schedule, shuffle)
    frame_dt, observed_dt = observed_steps(observation, result)
    fastest = max(
        float(state["v"].norm(dim=1).max()) for state in observation.states if "v" in state
    )
    starts = [i for i, state in enumerate(observation.states[:-1]) if "F" in state]
    full = all("F" in state for state in observation.states)
    started = time.perf_counter()

    def windows(window: int) -> WindowLoss:
        """The loss of windows of ``window`` frames, stepped at the law's current CFL step."""
        speed = fastest + estimated_wave_speed(law, sim.dim, density)
        cfl_step = loaded.scene.simulation.cfl * sim.grid.dx / speed
        substeps = substeps_per_frame(frame_dt, min(cfl_step, observed_dt))
        return WindowLoss(twin, observation, window, substeps, frame_dt)

    def full_windows() -> torch.Tensor:
        """The mean loss of every longest window, from the law's history along the run."""
        window_loss = windows(config.max_window)
        if full:
            window_loss.carry_history()
        return window_loss.mean(starts)

    if not losses:
        one_frame = windows(1)
        fit_moduli(law, one_frame.carry_history if full else lambda: one_frame.mean(starts), quiet)
        stage_one = {key: value.clone() for key, value in law.state_dict().items()}
    counter = Counter("stage two, Adam on the whole law", config.epochs, "epochs", quiet)
    for epoch in range(len(losses), config.epochs):
        window_loss = windows(config.window(epoch))
        if full:
            with torch.no_grad():
                window_loss.carry_history()  # where the law's history stands at each frame
        total, used = 0.0, 0
        order = torch.randperm(len(starts), generator=shuffle).tolist()
        for start in [starts[i] for i in order if starts[i] + window_loss.window < frames]:
            optimiser.zero_grad()
            loss = window_loss(start)
            if not torch.isfinite(loss):
                continue  # the law blew this window up: no usable gradient, skip it
            loss.backward()
            if not torch.isfinite(torch.nn.utils.clip_grad_norm_(law.parameters(), 1.0)):
                continue
            optimiser.step()
            total, used = total + float(loss.detach()), used + 1
        if used == 0:
            raise TrainingError(f"epoch {epoch + 1}: every window diverged; lower --lr")
        losses.append(total / used)
        schedule.step()
        counter.update(epoch + 1, f"loss {losses[-1]:.3e}, window {window_loss.window}")
        torch.save(
            {
                "law": law.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "shuffle": shuffle.get_state(),
                "losses": losses,
                "stage_one": stage_one,
            },
            checkpoint,
        )
    counter.close()
    kept = keep_the_better(law, stage_one, full_windows, quiet)
    record = {
        "trained_on": str(Path(result_path).resolve()),
        "scene": str(result.metadata["scene_file"]),
        "scene_text": result.scene_text,  # the observed run's scene, in full
        "material": material,
        "observed_material": loaded.scene.materials[material].model_dump(),
        "frames": frames,
        "time_span": float(observation.times[-1] - observation.times[0]),
        "particles": int(observation.states[0]["x"].shape[0]),
        "epochs": len(losses),
        "max_window": config.max_window,
        "learning_rate": config.learning_rate,
        "stress_scale": config.stress_scale,
        "final_loss": losses[-1] if losses else None,
        "kept": kept,
        "training_seconds": round(time.perf_counter() - started, 1),
        "wave_speed": estimated_wave_speed(law, sim.dim, density),
    }
    save_neural_law(out, law, record)
    plot_losses(losses, out.with_suffix(".png"))
    return losses


def plot_losses(losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.semilogy(range(1, len(losses) + 1), losses)
    axes.set_xlabel("epoch")
    axes.set_ylabel("position error / size²")
    axes.set_title("constitutive training")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
