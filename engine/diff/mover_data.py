"""Frames of engine runs as data for output-mesh movers: the particles of a frame, the B-spline
kernel estimate over them (:class:`engine.output.sampling.KernelSampler`, the sampling the
engine's output meshes use), and the monitor of their density on the lattice the engine samples
it on (:func:`engine.output.monitor.monitor_shape`).

From a result file (``engine train mover``) the particles' masses come from seeding the scene
the file records once more (a result stores positions, not masses); from a running simulation
(``engine experiment mover``) they are read from it.

Held out: every :data:`HOLD_OUT` th frame of a run (frame ``i`` with ``i % HOLD_OUT ==
HOLD_OUT - 1``) is never trained on; the experiment measures the mover on those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.diff.train import TrainingError, open_observed
from engine.hooks.records import Monitor
from engine.output.lattice import uniform_nodes
from engine.output.monitor import build_monitor, monitor_shape
from engine.output.sampling import KernelSampler
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

HOLD_OUT = 4


def held_out(frame: int) -> bool:
    """Whether frame number ``frame`` of a run is held out of training."""
    return frame % HOLD_OUT == HOLD_OUT - 1


@dataclass
class MeshFrame:
    """One frame of a run: where it comes from (``source``, ``frame``, ``time`` s), the domain
    ``(d,)`` m, the kernel estimate over its particles, their velocities ``(N, d)`` m/s, and the
    density monitor (:class:`Monitor`, on the lattice of :func:`monitor_shape`)."""

    source: str
    frame: int
    time: float
    domain: np.ndarray
    sampler: KernelSampler
    velocity: np.ndarray
    monitor: Monitor

    def density(self, points: np.ndarray) -> np.ndarray:
        """The kernel estimate of the density ``(M,)`` kg/m^3 at ``points`` ``(M, d)`` m."""
        return self.sampler.sample(points, np.zeros((len(self.velocity), 0)))[0]

    def velocity_at(self, points: np.ndarray) -> np.ndarray:
        """The kernel's mass-weighted velocity ``(M, d)`` m/s at ``points`` (0 where no
        particle reaches)."""
        return self.sampler.sample(points, self.velocity)[1]


def mesh_frame(
    source: str,
    frame: int,
    time: float,
    particles: tuple[np.ndarray, np.ndarray, np.ndarray],
    sim: Simulation,
    nodes: tuple[int, ...],
    alpha: float,
) -> MeshFrame:
    """The :class:`MeshFrame` of particles ``(x (N, d) m, mass (N,) kg, v (N, d) m/s)`` in the
    domain and grid of ``sim``, its monitor for a mesh of ``nodes`` at strength ``alpha``."""
    x, mass, v = particles
    domain = np.asarray(sim.scene.simulation.domain, float)
    sampler = KernelSampler(x, mass, sim.grid.dx, domain)
    shape = monitor_shape(nodes, tuple(sim.grid.cells))
    density = sampler.sample(uniform_nodes(domain, shape), np.zeros((len(x), 0)))[0]
    monitor = build_monitor(density.reshape(shape), domain, alpha)
    return MeshFrame(source, frame, time, domain, sampler, np.asarray(v, float), monitor)


def result_frames(path: Path, nodes: int, alpha: float, keep=lambda frame: True) -> list[MeshFrame]:
    """The frames ``i`` of the particle result at ``path`` for which ``keep(i)``, their
    monitors for a mesh of ``nodes`` per axis; a file that is no particle result of a scene
    that still loads is a :class:`TrainingError`."""
    result = open_observed(Path(path))
    if result.kind != "particles":
        raise TrainingError(f"{path} holds a {result.kind}, not particles: pass a run's result")
    scene = Path(result.metadata.get("scene_file", path))
    sim = Simulation(load_scene(scene, text=result.scene_text))
    mass = sim.numpy("mass").astype(np.float64).copy()
    lattice, frames = (nodes,) * sim.dim, []
    with result:
        for i in range(result.n_frames):
            if not keep(i):
                continue
            x = result.points(i)
            if len(x) != len(mass):
                raise TrainingError(f"{path} frame {i} has {len(x)} particles, seeded {len(mass)}")
            v = result.arrays(i).get("velocity", np.zeros_like(x))
            frame = mesh_frame(
                str(path), i, float(result.times[i]), (x, mass, v), sim, lattice, alpha
            )
            frames.append(frame)
    return frames
