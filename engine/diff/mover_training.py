"""``engine train mover``: train the learned output-mesh mover (:mod:`engine.diff.mover_net`)
on frames of engine runs, with no optimal-mesh data.

Data: the frames of particle result files (dam break, sand collapse, jelly in water, ...), each
frame's density sampled by the engine's kernel estimate and turned into the monitor on the
engine's monitor lattice (:mod:`engine.diff.mover_data`); every :data:`HOLD_OUT` th frame is
held out (its loss is reported each epoch, never trained on). Augmented by mirroring the
monitor across the domain's axes (the domain maps onto itself).

Loss (Hu et al. 2024's data-free mover), at the mesh's nodes, lengths in units of the domain's
largest side:

- **equidistribution**: the Monge-Ampere residual ``r = m(x) det(I + H(phi)) / theta - 1``,
  ``theta`` the monitor's mean over the domain (so that ``m`` integrated over the moved cells is
  ``m``'s integral over the domain), ``m(x)`` the monitor interpolated at the moved nodes
  (bilinear, as :attr:`Monitor.at`); the mean of ``r^2``;
- **convexity**: ``mean(relu(EIGEN_FLOOR - lambda_min(I + H))^2)`` at the nodes, plus
  ``mean(relu(JACOBIAN_FLOOR - J / J_0)^2)`` over the cells' corner Jacobians ``J`` (``J_0`` the
  uniform cell's), times ``convexity``: the map stays the gradient of a convex potential and
  no cell inverts;
- no boundary term: boundary nodes slide along their faces by construction.

Each epoch ends with a checkpoint (``--resume`` continues it); the loss curve PNG and the JSON
sidecar (data, settings, losses, minutes, rollbacks) are written beside the weights. An epoch
whose loss is not finite or above :data:`BLOW_UP` times the lowest so far is rolled back: the
weights and the optimiser's state go back to those before the last step, and training goes on
from there with the next epoch's mirroring (at most :data:`MOST_ROLLBACKS` times; then it stops
with the weights of the last good epoch). A rolled-back epoch's training loss is logged as NaN
(``null`` in the sidecar).
"""

from __future__ import annotations

import copy
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.diff.mover_data import HOLD_OUT, MeshFrame, held_out, result_frames
from engine.diff.mover_net import (
    JACOBIAN_FLOOR,
    MoverNet,
    MoverNetConfig,
    interpolate,
    lattice_points,
    save_mover_net,
    trapezoid_mean,
)
from engine.diff.train import TrainingError, usable_device
from engine.output.lattice import corner_jacobians
from engine.output.lattice_derivatives import lattice_derivatives
from engine.progress import Counter

#: The smallest eigenvalue of ``I + H(phi)`` the convexity term leaves unpenalised.
EIGEN_FLOOR = 0.1
#: An epoch's loss above this multiple of the lowest so far is a divergence, rolled back.
BLOW_UP = 10.0
#: Rollbacks after which training stops (with the last good epoch's weights).
MOST_ROLLBACKS = 20


@dataclass
class MoverTrainingConfig:
    """How to train: the mesh, the monitor, the network's size, the schedule, the budget."""

    nodes: int = 33  # per axis
    alpha: float = 1.0  # the monitor's strength
    hidden: int = 16
    steps: int = MoverNetConfig.steps  # the unrolled solver's damped fixed-point steps
    epochs: int = 2000  # full-batch steps
    learning_rate: float = 5e-3
    convexity: float = 3.0
    minutes: float = 30.0  # the training stops after the epoch that passes this
    seed: int = 0
    device: str = "cpu"


@dataclass
class Batch:
    """Frames on one domain: their monitors on the monitor lattice ``(B, *shape)``, the
    domain's extent ``(d,)`` in units of its largest side, the mesh's ``nodes`` per axis."""

    lattice: torch.Tensor
    extent: np.ndarray
    nodes: tuple[int, ...]

    def mirrored(self, axes: list[int]) -> Batch:
        """The batch mirrored across the domain's ``axes``."""
        flipped = torch.flip(self.lattice, [1 + a for a in axes]) if axes else self.lattice
        return Batch(flipped, self.extent, self.nodes)


def batches(frames: list[MeshFrame], nodes: tuple[int, ...], device: str) -> list[Batch]:
    """The frames grouped by domain and monitor lattice, as tensors on ``device``."""
    groups: dict[tuple, list[MeshFrame]] = {}
    for frame in frames:
        groups.setdefault((tuple(frame.domain), frame.monitor.shape), []).append(frame)
    out = []
    for (domain, _), members in groups.items():
        values = np.stack([f.monitor.values for f in members])
        lattice = torch.as_tensor(values, dtype=torch.float64, device=device)
        out.append(Batch(lattice, np.asarray(domain) / max(domain), nodes))
    return out


def losses(net: MoverNet, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The equidistribution residual's mean square and the convexity penalty (unweighted) of
    ``net`` on ``batch``: on ``I + H(phi)``'s least eigenvalue at the nodes, and on the cells'
    corner Jacobians over the uniform cell's (below :data:`JACOBIAN_FLOOR`)."""
    dim, nodes = len(batch.extent), batch.nodes
    spacing = batch.extent / (np.asarray(nodes) - 1)
    phi = net.potential(batch.lattice, batch.extent, nodes)
    gradient, hessian = lattice_derivatives(phi, spacing)
    x = lattice_points(batch.extent, nodes, phi) + torch.stack(gradient, dim=-1)
    jacobian = torch.eye(dim, dtype=phi.dtype, device=phi.device) + hessian
    theta = trapezoid_mean(batch.lattice, dim).reshape(-1, *[1] * dim)
    density = interpolate(batch.lattice, x, batch.extent) * torch.linalg.det(jacobian)
    lowest = torch.linalg.eigvalsh(jacobian)[..., 0]
    corners = corner_jacobians(x.reshape(len(x), -1, dim), nodes) / float(np.prod(spacing))
    convexity = (torch.relu(EIGEN_FLOOR - lowest) ** 2).mean()
    convexity = convexity + (torch.relu(JACOBIAN_FLOOR - corners) ** 2).mean()
    return ((density / theta - 1.0) ** 2).mean(), convexity


@dataclass
class MoverLog:
    """Per epoch: the training loss and the held-out frames' loss; the untrained network's
    (the linearised Monge-Ampere prior's) held-out loss; wall time."""

    losses: list[float] = field(default_factory=list)
    held_out: list[float] = field(default_factory=list)
    prior: float | None = None
    seconds: float = 0.0
    rollbacks: int = 0

    def diverged(self, loss: float) -> bool:
        """Whether an epoch's ``loss`` is not finite or above :data:`BLOW_UP` times the lowest
        so far."""
        finite = [value for value in self.losses if np.isfinite(value)]
        return not np.isfinite(loss) or bool(finite) and loss > BLOW_UP * min(finite)


def total_loss(net: MoverNet, groups: list[Batch], convexity: float) -> torch.Tensor:
    """The loss over every batch, each weighted by its frame count."""
    count = sum(len(b.lattice) for b in groups)
    total = 0.0
    for batch in groups:
        equidistribution, convex = losses(net, batch)
        total = total + (equidistribution + convexity * convex) * len(batch.lattice) / count
    return total


def train_mover(
    results: list[Path],
    out: Path,
    config: MoverTrainingConfig,
    resume: bool = False,
    quiet: bool = False,
) -> MoverLog:
    """Train a :class:`MoverNet` on the frames of ``results``; write the weights to ``out``
    (with the sidecar, the loss curve ``<out>_loss.png`` and the checkpoint
    ``<out>.checkpoint``); return the losses."""
    usable_device(config.device)
    if not results:
        raise TrainingError("no result files: pass the .vtkhdf results of engine runs")
    dims = set()
    training, held = [], []
    for path in results:
        frames = result_frames(Path(path), config.nodes, config.alpha)
        dims.add(len(frames[0].domain))
        training += [f for f in frames if not held_out(f.frame)]
        held += [f for f in frames if held_out(f.frame)]
    if len(dims) > 1:
        raise TrainingError(f"the results mix {sorted(dims)}D runs: train one dimension at once")
    dim = dims.pop()
    nodes = (config.nodes,) * dim
    train_batches = batches(training, nodes, config.device)
    held_batches = batches(held, nodes, config.device) if held else []
    torch.manual_seed(config.seed)
    sizes = MoverNetConfig(dim, config.hidden, steps=config.steps)
    net = MoverNet(sizes).to(config.device, torch.float64).with_float32_cnn()
    if config.nodes < net.config.min_nodes:
        raise TrainingError(f"--nodes {config.nodes}: the network needs {net.config.min_nodes}")
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    checkpoint = out.with_name(out.name + ".checkpoint")
    log = MoverLog()
    if resume and checkpoint.is_file():
        log = resume_mover(checkpoint, net, optimiser, schedule)
    else:
        with torch.no_grad():
            log.prior = float(total_loss(net, held_batches or train_batches, config.convexity))
    started = time.perf_counter() - log.seconds
    before_step = _training_state(net, optimiser)
    with Counter("train mover", config.epochs, "epochs", quiet) as counter:
        while len(log.losses) < config.epochs and log.rollbacks <= MOST_ROLLBACKS:
            if (time.perf_counter() - started) / 60 > config.minutes:
                break
            rng = np.random.default_rng([config.seed, len(log.losses)])
            flips = [[a for a in range(dim) if rng.random() < 0.5] for _ in train_batches]
            optimiser.zero_grad()
            mirrored = [b.mirrored(f) for b, f in zip(train_batches, flips, strict=True)]
            loss = total_loss(net, mirrored, config.convexity)
            rolled_back = log.diverged(float(loss.detach()))
            if rolled_back:  # back to the weights before the step that blew up
                _restore(net, optimiser, before_step)
                log.rollbacks += 1
            else:
                before_step = _training_state(net, optimiser)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimiser.step()
            schedule.step()
            log.losses.append(float("nan") if rolled_back else float(loss.detach()))
            with torch.no_grad():
                held_loss = total_loss(net, held_batches, config.convexity) if held else loss
            log.held_out.append(float(held_loss))
            log.seconds = time.perf_counter() - started
            save_checkpoint(checkpoint, net, optimiser, schedule, log)
            note = f"loss {log.losses[-1]:.3e}, held out {log.held_out[-1]:.3e}"
            counter.update(len(log.losses), note)
    record = {
        "data": [str(Path(p).resolve()) for p in results],
        "training_frames": len(training),
        "held_out_frames": len(held),
        "held_out_rule": f"frame % {HOLD_OUT} == {HOLD_OUT - 1}",
        "monitor": "density",
        "settings": asdict(config),
        "prior_loss": log.prior,
        "losses": [value if np.isfinite(value) else None for value in log.losses],
        "held_out_losses": log.held_out,
        "minutes": log.seconds / 60,
        "rollbacks": log.rollbacks,
        "method": "data-free: Monge-Ampere equidistribution residual + convexity penalties on "
        "I + H(phi) and the cells' corner Jacobians; boundary sliding and identity on a "
        "constant monitor by construction",
    }
    save_mover_net(net, out, record)
    plot_mover_losses(log, out.with_name(out.stem + "_loss.png"))
    return log


def _training_state(net, optimiser) -> tuple[dict, dict]:
    """Copies of the weights and the optimiser's state, to roll back to."""
    return copy.deepcopy(net.state_dict()), copy.deepcopy(optimiser.state_dict())


def _restore(net, optimiser, state: tuple[dict, dict]) -> None:
    net.load_state_dict(state[0])
    optimiser.load_state_dict(state[1])


def save_checkpoint(path: Path, net, optimiser, schedule, log: MoverLog) -> None:
    """The training state after an epoch (written to a temporary file, then renamed)."""
    state = {
        "model": net.state_dict(),
        "optimiser": optimiser.state_dict(),
        "schedule": schedule.state_dict(),
        "losses": log.losses,
        "held_out": log.held_out,
        "prior": log.prior,
        "seconds": log.seconds,
        "rollbacks": log.rollbacks,
    }
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, temporary)
    temporary.replace(path)


def resume_mover(path: Path, net, optimiser, schedule) -> MoverLog:
    """Load a checkpoint's training state; :class:`TrainingError` if it is of other settings."""
    try:
        saved = torch.load(path, weights_only=True, map_location=next(net.parameters()).device)
        net.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        return MoverLog(
            list(saved["losses"]),
            list(saved["held_out"]),
            saved["prior"],
            float(saved["seconds"]),
            int(saved.get("rollbacks", 0)),
        )
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise TrainingError(
            f"cannot resume from {path} ({type(error).__name__}): it was written with other "
            "settings (--hidden) or is damaged; drop --resume"
        ) from None


def plot_mover_losses(log: MoverLog, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(log.losses) + 1)
    axes.semilogy(epochs, log.losses, label="training frames")
    axes.semilogy(epochs, log.held_out, label="held-out frames")
    if log.prior is not None:
        axes.axhline(log.prior, color="grey", linestyle="--", label="untrained (linearised MA)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("equidistribution residual^2 + convexity")
    axes.set_title("mover training")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
