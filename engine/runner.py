"""Run a loaded scene: step frame by frame, write each frame, call lifecycle hooks, report."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time as clock
from collections.abc import Callable
from pathlib import Path

import numpy as np
import taichi as ti

from engine import __version__, interrupts
from engine.hooks.calls import PluginError, call_each
from engine.hooks.records import RunSummary
from engine.output.contact_data import ContactRecorder, contact_data_path
from engine.output.vtkhdf import SurfaceWriter, surface_path
from engine.output_meshes import OutputMeshes
from engine.preflight import LONG_RUN, preflight
from engine.progress import Progress
from engine.scene.loaded import LoadedScene
from engine.solver.bodies import EmptyBodyError
from engine.solver.checkpoint import (
    capture,
    checkpoint_path,
    read_checkpoint,
    restore,
    write_checkpoint,
)
from engine.solver.fields import diagnostics, particle_fields
from engine.solver.runtime import ArchUnavailable
from engine.solver.simulation import Simulation, SimulationError


def frame_count(end_time: float, frame_dt: float) -> int:
    """Number of output frames after the initial one."""
    return max(1, math.ceil(end_time / frame_dt - 1e-9))


def output_path(loaded: LoadedScene) -> Path:
    """The result file, resolved against the scene's folder."""
    return loaded.resolve(loaded.scene.output.path)


class FrameWriter:
    """Writes the particles (with the writer the output suffix selects), any moved surfaces and
    the output meshes (:class:`engine.output_meshes.OutputMeshes`).

    With ``resume_after`` frames, the existing files are reopened and continued after them, and
    the output meshes' movers continue from ``mesh_state`` (a checkpoint's).
    """

    def __init__(
        self,
        loaded: LoadedScene,
        sim: Simulation,
        resume_after: int = 0,
        mesh_state: dict | None = None,
    ) -> None:
        self.sim = sim
        self.fields = list(loaded.scene.output.fields)
        self.path = output_path(loaded)
        metadata = {
            "engine_version": __version__,
            "taichi_version": ".".join(str(p) for p in ti.__version__),
            "scene_file": str(loaded.path),
            "plugins": json.dumps(list(loaded.plugins)),
            "arch_requested": sim.hardware.requested,
            "arch": sim.arch,
            "torch_device": sim.device if sim.store.backend == "torch" else "none",
        }
        writer = next(w for w in loaded.registry.writers.values() if self.path.suffix in w.suffixes)
        self.surfaces = None
        self.meshes = OutputMeshes(loaded, sim, self.path, metadata, resume_after)
        if resume_after:
            self.meshes.set_state(mesh_state or {})
            self.particles = writer.resume(self.path, resume_after)
            if sim.movers:
                self.surfaces = SurfaceWriter.resume(surface_path(self.path), resume_after)
            return
        self.particles = writer.create(self.path, sim.dim, loaded.text, metadata)
        if sim.movers:
            self.surfaces = SurfaceWriter(surface_path(self.path), 3, loaded.text, metadata)

    def write(self, extra: dict) -> None:
        """Append the current state as one frame; ``extra`` diagnostics come from plugins."""
        sim = self.sim
        values = {**diagnostics(sim), **extra}
        self.particles.write_frame(
            sim.time, sim.numpy("x"), particle_fields(sim, self.fields), values
        )
        if self.surfaces is not None:
            faces = np.concatenate(
                [m.faces + o for m, o in zip(sim.movers, self._offsets(), strict=True)]
            )
            self.surfaces.write_frame(
                sim.time,
                np.concatenate([m.vertices() for m in sim.movers]),
                faces,
                {"body_id": np.concatenate([m.body_id for m in sim.movers])},
            )
        self.meshes.write(sim)

    def _offsets(self) -> list[int]:
        counts = [len(m.body_id) for m in self.sim.movers]
        return list(np.cumsum([0, *counts[:-1]]))

    @property
    def n_frames(self) -> int:
        return self.particles.n_frames

    def checkpoint(self, frame: int):
        """The full state after ``frame``: the simulation's and the output meshes' movers'."""
        return dataclasses.replace(capture(self.sim, frame), meshes=self.meshes.state())

    def close(self) -> None:
        """Let the writers drop what they only need while writing (e.g. shadow copies)."""
        for writer in (self.particles, self.surfaces):
            if writer is not None and hasattr(writer, "close"):
                writer.close()
        self.meshes.close()


class FrameProbes:
    """The diagnostics ``engine_frame`` hooks return, checked before they reach the file: a dict
    (or None) of finite numbers or 1-D arrays, each of one shape in every frame, with a name no
    other plugin and no built-in diagnostic uses."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.owner = dict.fromkeys(diagnostics(sim), "the engine")  # name -> who returns it
        self.shapes: dict[str, tuple[int, ...]] = {}

    def __call__(self, frame: int) -> dict:
        out = {}
        manager = self.sim.registry.manager
        for plugin, values in call_each(manager, "engine_frame", simulation=self.sim, frame=frame):
            if not isinstance(values, dict):
                raise PluginError(
                    plugin,
                    "engine_frame",
                    f"returned a {type(values).__name__} ({_excerpt(values)})",
                    "return a dict {name: number or 1-D array}, or None",
                )
            for name, value in values.items():
                out[name] = self._checked(plugin, str(name), value)
        return out

    def _checked(self, plugin: str, name: str, value) -> float | np.ndarray:
        def refuse(what: str, fix: str) -> PluginError:
            return PluginError(plugin, "engine_frame", f"diagnostic {name!r} {what}", fix)

        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise refuse(f"is {_excerpt(value)}", "return a number or a 1-D array") from None
        if array.ndim > 1 or not np.all(np.isfinite(array)):
            raise refuse("is not a finite number or 1-D array", "return finite numbers")
        if self.owner.setdefault(name, plugin) != plugin:
            raise refuse(f"is also returned by {self.owner[name]}", "give it a name of its own")
        if self.shapes.setdefault(name, array.shape) != array.shape:
            raise refuse(
                f"has shape {array.shape} where earlier frames had {self.shapes[name]}",
                "return the same number of values every frame (pad them, or split them into "
                "diagnostics of their own)",
            )
        return array if array.ndim else float(array)


def _excerpt(value, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _after_step(progress: Progress, frame: int, frames: int, sim: Simulation) -> None:
    interrupts.check()  # Ctrl-C stops the run here, between two steps
    progress.tick(frame, frames, sim)


def advance_with_rollback(
    sim: Simulation, target: float, frame: int, log, on_step: Callable[[], None] | None = None
) -> None:
    """Step to ``target`` (s); on NaN, escape or CFL violation, restore the frame's start state
    and retry with dt halved, up to ``simulation.max_retries`` times; the next frame starts at
    the normal dt again (a step a torch contact model's corrections made fail was already done
    again without them, see :meth:`Simulation.step`). ``on_step`` is called after every step
    (progress within a frame)."""
    retries = sim.scene.simulation.max_retries
    start = capture(sim, frame) if retries else None
    scale = 1.0
    for attempt in range(retries + 1):
        try:
            sim.advance_to(target, dt_scale=scale, on_step=on_step)
            return
        except SimulationError as error:
            if attempt == retries:
                if retries:
                    error.fix += f" (already retried {retries} times, halving dt each time)"
                raise
            restore(sim, start)
            if sim.contact_stage is not None:
                sim.contact_stage.pending.clear()  # the records of the steps undone
            scale /= 2
            log(
                f"warning: {error.what} at t = {error.time:.6g} s; retrying from "
                f"t = {sim.time:.6g} s with dt x {scale:g} ({attempt + 1}/{retries})"
            )


def run_scene(
    loaded: LoadedScene, quiet: bool = False, resume: bool = False, assume_yes: bool = False
) -> RunSummary:
    """Simulate a scene to its end time, appending one output frame per ``frame_dt``.

    Every ``output.checkpoint_every`` frames, or after a frame that ends
    ``output.checkpoint_seconds`` of wall-clock time after the last checkpoint, the full state
    goes to ``<output>_checkpoint.h5``;
    Before it starts, the cost is estimated and logged (a warning above an hour); a run whose
    output would not fit the free disk is refused unless ``assume_yes``. ``resume`` continues
    from it (the frames after it are recomputed, and come out the same).
    Raises :class:`engine.solver.simulation.SimulationError` when the run cannot go on and
    :class:`engine.hooks.calls.PluginError` when a plugin fails; frames written before stay
    readable.
    """
    config = loaded.scene.simulation
    started = clock.perf_counter()
    path = output_path(loaded)
    cost = preflight(loaded, path, assume_yes)
    log = (lambda message: None) if quiet else (lambda message: print(message, file=sys.stderr))
    log(f"estimate: {cost}")
    if cost.seconds > LONG_RUN:
        log(
            f"warning: this run may take {cost}; check dt, the moduli (stiffer materials need "
            "smaller steps) and the resolution, or stop it with Ctrl-C"
        )
    checkpoint = read_resume_point(loaded, path) if resume else None
    frames = frame_count(config.end_time, config.frame_dt)
    if checkpoint is not None and checkpoint.frame >= frames:  # nothing left to compute
        particles, wall = len(checkpoint.arrays["x"]), clock.perf_counter() - started
        return RunSummary(path, frames + 1, 0, particles, wall, resumed_after=checkpoint.frame)
    try:
        sim = Simulation(loaded)
    except EmptyBodyError as error:
        raise loaded.error(
            ("bodies", error.index),
            "this body's shape holds no particles at this resolution",
            "enlarge the body, or raise particles_per_cell or simulation.resolution",
        ) from None
    except ArchUnavailable as error:
        raise loaded.error(("simulation", "arch"), error.what, error.fix) from None
    manager = loaded.registry.manager
    first = 1
    if checkpoint is not None:
        restore(sim, checkpoint)
        first = checkpoint.frame + 1
    call_each(manager, "engine_run_start", simulation=sim)
    output = FrameWriter(
        loaded,
        sim,
        resume_after=first if checkpoint is not None else 0,
        mesh_state=checkpoint.meshes if checkpoint is not None else None,
    )
    recorder = _contact_recorder(loaded, sim, path, checkpoint)
    probes = FrameProbes(sim)
    if checkpoint is None:
        output.write(probes(0))
    steps_before = sim.step_count
    progress = Progress(config.end_time, quiet, sys.stderr, sim.time, steps_before, LONG_RUN)
    every, saved = loaded.scene.output.checkpoint_every, checkpoint_path(path)
    seconds, last_saved = loaded.scene.output.checkpoint_seconds, clock.perf_counter()
    summary = None
    try:
        with interrupts.deferred():
            for frame in range(first, frames + 1):
                target = min(frame * config.frame_dt, config.end_time)
                tick = functools.partial(_after_step, progress, frame, frames, sim)
                advance_with_rollback(sim, target, frame, log, tick)
                output.write(probes(frame))
                if recorder is not None:
                    _record_contact(recorder, sim)
                due = clock.perf_counter() - last_saved >= seconds
                if frame % every == 0 or frame == frames or due:
                    write_checkpoint(saved, output.checkpoint(frame), loaded.text)
                    last_saved = clock.perf_counter()
                progress.update(frame, frames, sim.time, sim.step_count)
        wall = clock.perf_counter() - started
        summary = RunSummary(
            output.path,
            output.n_frames,
            sim.step_count - steps_before,
            sim.n_particles,
            wall,
            arch=sim.arch,
            device=sim.device if sim.store.backend == "torch" else None,
            resumed_after=checkpoint.frame if checkpoint is not None else None,
            contact_fallbacks=sim.contact_stage.fallbacks if sim.contact_stage else 0,
        )
    finally:
        progress.close()
        output.close()
        if recorder is not None:
            recorder.close()
        call_each(manager, "engine_run_end", simulation=sim, summary=summary)
    return summary


def _contact_recorder(loaded: LoadedScene, sim: Simulation, path: Path, checkpoint):
    """The contact-data file of the run (``output.contact_data``), or None."""
    mode = loaded.scene.output.contact_data
    if mode == "none":
        return None
    resume_time = checkpoint.scalars["time"] if checkpoint is not None else None
    return ContactRecorder(
        contact_data_path(path), sim.dim, sim.contact_bodies, sim.grid.dx, mode, resume_time
    )


def _record_contact(recorder: ContactRecorder, sim: Simulation) -> None:
    """This frame's contact records: every step's (``"step"``) or its last step's."""
    stage = sim.contact_stage
    records = stage.pending if stage.recording == "step" else [stage.record(sim)]
    for record in records:
        recorder.write(record)
    stage.pending.clear()


def refuse_to_overwrite(loaded: LoadedScene) -> None:
    """A :class:`SceneError` if the scene's output file already holds a result: ``engine run``
    replaces one only when told to (``--overwrite``), or continues it (``--resume``)."""
    path = output_path(loaded)
    if path.exists():
        raise loaded.error(
            ("output", "path"),
            f"{path} already holds a result",
            "pass --overwrite to replace it or --resume to continue it, or set another "
            "output.path (e.g. --set 'output.path=\"out/other.vtkhdf\"')",
        )


def resume_advice(path: Path) -> str:
    """What an interrupted run's user can do next, with the command to type."""
    kept = f"frames written so far stay readable in {path}"
    if checkpoint_path(path).exists():
        return f"{kept}; continue with: engine resume {path}"
    return f"{kept}; no checkpoint was written yet, so run it again from the start"


def read_resume_point(loaded: LoadedScene, path: Path):
    """The checkpoint to resume from; a :class:`SceneError` if there is none or it differs."""
    saved = checkpoint_path(path)
    if not saved.exists():
        raise loaded.error(
            ("output", "path"),
            f"no checkpoint to resume from ({saved} does not exist)",
            "run without --resume to start from the beginning",
        )
    checkpoint, scene_text = read_checkpoint(saved)
    if scene_text != loaded.text:
        raise loaded.error(
            (),
            f"the scene changed since the checkpoint in {saved} was written",
            "resume with the same scene and --set options, or start again without --resume",
        )
    return checkpoint
