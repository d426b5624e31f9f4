"""Run a loaded scene: step frame by frame, write each frame, report progress and a summary."""

from __future__ import annotations

import math
import sys
import time as clock
from dataclasses import dataclass
from pathlib import Path

import taichi as ti

from engine import __version__
from engine.output.vtkhdf import ParticleWriter
from engine.progress import Progress
from engine.scene.loader import LoadedScene
from engine.solver.bodies import EmptyBodyError
from engine.solver.fields import diagnostics, particle_fields
from engine.solver.simulation import Simulation


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did."""

    output: Path
    frames: int
    steps: int
    particles: int
    wall_time: float  # s

    @property
    def particle_steps_per_second(self) -> float:
        return self.particles * self.steps / max(self.wall_time, 1e-9)

    def __str__(self) -> str:
        return (
            f"{self.frames} frames, {self.steps} steps, {self.particles} particles in "
            f"{self.wall_time:.1f} s "
            f"({self.particle_steps_per_second / 1e6:.2f} M particle-steps/s)"
            f" -> {self.output}"
        )


def frame_count(end_time: float, frame_dt: float) -> int:
    """Number of output frames after the initial one."""
    return max(1, math.ceil(end_time / frame_dt - 1e-9))


def output_path(loaded: LoadedScene) -> Path:
    """The result file, resolved against the scene's folder."""
    return loaded.resolve(loaded.scene.output.path)


def write_frame(writer: ParticleWriter, sim: Simulation, fields: list[str]) -> None:
    """Append the simulation's current state as one output frame."""
    writer.write_frame(sim.time, sim.x.to_numpy(), particle_fields(sim, fields), diagnostics(sim))


def run_scene(loaded: LoadedScene, quiet: bool = False) -> RunSummary:
    """Simulate a scene to its end time, appending one output frame per ``frame_dt``.

    Raises :class:`engine.solver.simulation.SimulationError` when the run cannot go on; frames
    written before stay readable.
    """
    scene = loaded.scene
    sim_cfg = scene.simulation
    started = clock.perf_counter()
    try:
        sim = Simulation(loaded)
    except EmptyBodyError as error:
        raise loaded.error(
            ("bodies", error.index),
            "this body's shape holds no particles at this resolution",
            "enlarge the body, or raise particles_per_cell or simulation.resolution",
        ) from None
    path = output_path(loaded)
    metadata = {
        "engine_version": __version__,
        "taichi_version": ".".join(str(p) for p in ti.__version__),
        "scene_file": str(loaded.path),
    }
    writer = ParticleWriter(path, sim.dim, loaded.text, metadata)
    fields = list(scene.output.fields)
    write_frame(writer, sim, fields)
    frames = frame_count(sim_cfg.end_time, sim_cfg.frame_dt)
    progress = Progress(sim_cfg.end_time, sim.n_particles, quiet=quiet, stream=sys.stderr)
    steps = 0
    try:
        for frame in range(1, frames + 1):
            steps += sim.advance_to(min(frame * sim_cfg.frame_dt, sim_cfg.end_time))
            write_frame(writer, sim, fields)
            progress.update(frame, frames, sim.time, sim.step_count)
    finally:
        progress.close()
    return RunSummary(path, writer.n_frames, steps, sim.n_particles, clock.perf_counter() - started)
