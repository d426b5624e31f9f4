"""``engine train constitutive``: fit a ``neural`` material to one observed trajectory.

The observation is an engine result file whose frames hold positions and the full state
(``velocity``, ``C`` and ``F`` in ``output.fields``). Training uses teacher forcing: each sample
starts from the observed state at a frame and rolls the torch twin, with the neural law in place
of the material, over a window of frames; the loss is the mean squared position error over the
window, relative to the body's size squared. Windows grow from one frame to ``max_window`` over
the epochs. Each epoch writes a checkpoint (``--resume`` continues from it), and the loss curve
goes to a PNG beside the weights.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import engine.io
from engine.diff.twin import TorchTwin
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

NEEDED = ("velocity", "C", "F")


class TrainingError(ValueError):
    """Input that cannot be trained on, with what to change."""


@dataclass
class Observation:
    """Frames of one trajectory (float64 tensors): states and positions per frame."""

    times: np.ndarray  # (T,) s
    states: list[dict[str, torch.Tensor]]  # per frame: x, v, C, F
    size: float  # m, the body's extent (the loss is relative to it)


def read_observation(path: Path) -> tuple[Observation, engine.io.Result]:
    result = engine.io.open(path)
    missing = [name for name in NEEDED if name not in result.fields]
    if missing:
        raise TrainingError(
            f"{path} lacks the fields {missing}; rerun with output.fields including "
            '"velocity", "C" and "F"'
        )
    states = []
    for index in range(result.n_frames):
        arrays = result.arrays(index)
        states.append(
            {
                "x": torch.as_tensor(result.points(index), dtype=torch.float64),
                "v": torch.as_tensor(arrays["velocity"], dtype=torch.float64),
                "C": torch.as_tensor(arrays["C"], dtype=torch.float64),
                "F": torch.as_tensor(arrays["F"], dtype=torch.float64),
            }
        )
    extent = result.points(0).max(axis=0) - result.points(0).min(axis=0)
    return Observation(result.times, states, float(extent.max())), result


def train_constitutive(
    result_path: str | Path,
    out: str | Path,
    material: str | None = None,
    epochs: int = 20,
    max_window: int = 4,
    learning_rate: float = 1e-3,
    resume: bool = False,
    quiet: bool = False,
    seed: int = 0,
) -> list[float]:
    """Train a neural law on ``result_path``; write ``out`` (.pt), its sidecar and loss PNG.

    Returns the loss per epoch.
    """
    from plugins.neural_law_model import NeuralLaw, save_neural_law

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    observation, result = read_observation(Path(result_path))
    loaded = load_scene(
        result.metadata["scene_file"], ['simulation.precision="f64"'], text=result.scene_text
    )
    names = list(loaded.scene.materials)
    material = material or names[0]
    if material not in names:
        raise TrainingError(f"no material {material!r} in the scene; choose from {names}")
    sim = Simulation(loaded)
    twin = TorchTwin(sim)
    truth = loaded.scene.materials[material]
    torch.manual_seed(seed)  # the networks' initial weights
    law = NeuralLaw(stress_scale=float(getattr(truth, "youngs_modulus", 1.0e4))).double()
    twin.materials[material].law = law
    optimiser = torch.optim.Adam(law.parameters(), lr=learning_rate)
    checkpoint = out.with_suffix(".ckpt")
    losses: list[float] = []
    if resume and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=True)
        law.load_state_dict(saved["law"])
        optimiser.load_state_dict(saved["optimiser"])
        losses = list(saved["losses"])
    frame_dt = float(np.diff(observation.times).mean())
    dt = min(sim.stable_dt(), frame_dt)
    substeps = max(1, math.ceil(frame_dt / dt - 1e-9))
    dt = frame_dt / substeps
    frames = len(observation.states)
    bar = tqdm(range(len(losses), epochs), disable=quiet, file=sys.stderr, unit="epoch")
    for epoch in bar:
        window = min(max_window, 1 + epoch * max_window // max(1, epochs))  # grows
        total = 0.0
        for start in range(0, frames - window):
            optimiser.zero_grad()
            state = observation.states[start]
            loss = 0.0
            for offset in range(1, window + 1):
                for _ in range(substeps):
                    state = twin.step(state, dt)
                target = observation.states[start + offset]["x"]
                loss = loss + ((state["x"] - target) ** 2).mean() / observation.size**2
            loss = loss / window
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        losses.append(total / max(1, frames - window))
        bar.set_postfix_str(f"loss {losses[-1]:.3e}, window {window}")
        torch.save(
            {"law": law.state_dict(), "optimiser": optimiser.state_dict(), "losses": losses},
            checkpoint,
        )
    record = {
        "trained_on": str(Path(result_path).resolve()),
        "material": material,
        "frames": frames,
        "epochs": len(losses),
        "final_loss": losses[-1] if losses else None,
        "wave_speed": sim.materials.classes[names.index(material)].wave_speed(truth),
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
