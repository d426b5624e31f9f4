"""System identification (``engine identify``): fit a built-in material's parameters to an
observed trajectory through the torch twin.

The observation is an engine result file. With the full state stored (``velocity``, ``C`` and
``F``), the loss is the teacher-forced one of training: the chain of one-frame windows along
the observation, each starting from the observed state (and the material's plastic state
carried along); with positions alone, one roll-out of every frame from the scene's initial
state. Parameters are positive and fitted in log space by L-BFGS.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.diff.train import (
    TrainingError,
    WindowLoss,
    loss_reporter,
    minimise,
    observed_scene,
    observed_steps,
    read_observation,
    substeps_per_frame,
    usable_device,
)
from engine.diff.twin import TorchTwin
from engine.progress import Counter
from engine.solver.simulation import Simulation


def fit_parameters(
    twin: TorchTwin,
    material: str,
    names: Sequence[str],
    objective: Callable[[], torch.Tensor],
    iterations: int = 30,
    counter: Counter | None = None,
) -> dict[str, float]:
    """Fit the parameters ``names`` of ``material`` in ``twin.params`` to minimise
    ``objective()`` (which rolls the twin). Optimised in log space (the parameters are
    positive) by L-BFGS on the objective relative to its value at the start; the twin keeps
    the fitted values (SI units), which are returned. ``counter``, if given, shows the
    iterations and the loss."""
    params = twin.params[material]
    logs = {name: params[name].detach().log().clone().requires_grad_() for name in names}

    def at_logs() -> torch.Tensor:
        for name, log in logs.items():
            params[name] = log.exp()
        return objective()

    with torch.no_grad():
        scale = float(at_logs())
    report = loss_reporter(counter, scale) if counter is not None else None
    minimise(
        list(logs.values()),
        lambda: at_logs() / scale,
        iterations,
        lr=1.0,
        precise=True,
        on_evaluation=report,
    )
    fitted = {name: float(log.detach().exp()) for name, log in logs.items()}
    for name, value in fitted.items():
        params[name] = torch.tensor(value, dtype=twin.dtype, device=twin.device)
    return fitted


def trajectory_mismatch(
    twin: TorchTwin, start: dict[str, torch.Tensor], observed: Sequence[torch.Tensor], dt: float
) -> Callable[[], torch.Tensor]:
    """The mean squared distance (m²) between a roll-out of the twin from ``start`` and
    ``observed[k]``, the positions ``(N, d)`` after ``k + 1`` steps of ``dt`` (s)."""

    def mismatch() -> torch.Tensor:
        state, loss = start, 0.0
        for target in observed:
            state = twin.step(state, dt)
            loss = loss + ((state["x"] - target) ** 2).mean()
        return loss / len(observed)

    return mismatch


@dataclass
class Identification:
    """What ``engine identify`` found: per parameter, the start and fitted values (SI), and the
    loss (position error over the body's size, squared) before and after."""

    material: str
    start: dict[str, float]
    fitted: dict[str, float]
    loss_before: float
    loss_after: float
    seconds: float


def identify(
    result_path: str | Path,
    starts: Mapping[str, float | None],
    material: str | None = None,
    iterations: int = 30,
    device: str = "cpu",
    quiet: bool = False,
) -> Identification:
    """Fit the parameters named in ``starts`` of ``material`` (default: the scene's first) to
    the trajectory in ``result_path``, each starting from its value in ``starts`` or, where
    that is None, from the value in the result's scene; the iterations and the loss show on
    stderr unless ``quiet``."""
    usable_device(device)
    observation, result = read_observation(Path(result_path), device)
    loaded, material = observed_scene(result, material)
    sim = Simulation(loaded)
    twin = TorchTwin(sim, device=device)
    params = twin.params[material]
    fittable = [key for key in params if key != "density"]  # the density is in the masses
    for name, value in starts.items():
        if name not in fittable:
            raise TrainingError(
                f"material {material!r} has no parameter {name!r} to fit; choose from {fittable}"
            )
        if value is not None:
            params[name] = torch.tensor(float(value), dtype=twin.dtype, device=twin.device)
        if not float(params[name]) > 0:
            raise TrainingError(f"--fit {name}: start from a positive value, e.g. {name}=1.0e4")
    start = {name: float(params[name]) for name in starts}
    frame_dt, observed_dt = observed_steps(observation, result)
    substeps = substeps_per_frame(frame_dt, observed_dt)
    if all("F" in state for state in observation.states):
        objective = WindowLoss(twin, observation, 1, substeps, frame_dt).carry_history
    else:  # positions only: every frame from the scene's initial state
        observation.states[0] = twin.initial_state(sim)
        whole = WindowLoss(twin, observation, len(observation.states) - 1, substeps, frame_dt)
        objective = functools.partial(whole, 0)
    started = time.perf_counter()
    with Counter("identify, L-BFGS", iterations, "iterations", quiet) as counter:
        with torch.no_grad():
            before = float(objective())
        counter.update(0, f"loss {before:.3e}")
        fitted = fit_parameters(twin, material, list(starts), objective, iterations, counter)
    with torch.no_grad():
        after = float(objective())
    seconds = time.perf_counter() - started
    return Identification(material, start, fitted, before, after, seconds)
