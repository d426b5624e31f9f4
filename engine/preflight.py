"""Checks before a run starts: refuse what would fail an hour in (no output, disk, memory)."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from engine.scene.loaded import LoadedScene
from engine.solver.kernels import BLOCK, PAD
from engine.solver.material_table import MaterialTable

#: Bytes per particle in memory, a generous bound (3D, f64, every array, plus output copies).
PARTICLE_BYTES = 1200
#: Bytes per grid node (momentum and mass, FLIP copy, f64).
NODE_BYTES = 64
#: Frames whose worth of free disk the run must find before it starts.
FRAMES_OF_DISK = 3
#: Particle-steps per second assumed by the estimate: this engine's 3D solid on a 2-core CPU
#: (README, "Performance"); GPUs and many cores are faster, so estimates there are high.
PRIOR_RATE = 2.0e6
#: Seconds each step costs whatever the particle count (kernel launches, health checks),
#: measured on small scenes on the same CPU.
STEP_OVERHEAD = 1.0e-3
#: Estimated wall-clock seconds above which a run is warned about before it starts.
LONG_RUN = 3600.0


def estimate_particles(loaded: LoadedScene) -> int:
    """Upper bound on the particle count: each body's bounding box filled at its density."""
    scene = loaded.scene
    dim = scene.simulation.dim
    dx = max(scene.simulation.domain) / scene.simulation.resolution
    total = 0.0
    for body in scene.bodies:
        lower, upper = loaded.registry.shapes[body.shape].bounds(body, loaded.base_dir, dim)
        total += float(np.prod(np.maximum(np.asarray(upper) - lower, 0) / dx + 1)) * (
            body.particles_per_cell
        )
    return int(total)


def estimate_grid_nodes(loaded: LoadedScene) -> int:
    """Grid nodes the sparse grid stores at the start (:mod:`engine.solver.sparse_grid`): the
    blocks of nodes that each body's bounding box reaches, a quarter more for the pool's
    headroom, and never more than the whole grid. The pool grows as the particles spread (a
    dam break's water over the floor): a run that fills the domain ends near the dense
    figure, ``prod(nodes per axis)``."""
    sim = loaded.scene.simulation
    dim = sim.dim
    dx = max(sim.domain) / sim.resolution
    dense = [size / dx + 2 * PAD + 2 for size in sim.domain]
    reached = 0
    for body in loaded.scene.bodies:
        lower, upper = loaded.registry.shapes[body.shape].bounds(body, loaded.base_dir, dim)
        first = np.floor((np.asarray(lower) / dx + PAD - 1) / BLOCK)
        last = np.floor((np.asarray(upper) / dx + PAD + 2) / BLOCK)
        reached += int(np.prod(last - first + 1))
    nodes = 1.25 * reached * BLOCK**dim
    return int(min(nodes, np.prod(dense)))


def block_count(loaded: LoadedScene) -> int:
    """Blocks of nodes over the whole grid: the sparse grid keeps two int32 each (its slot in
    the pool, and the mark of the next-block count)."""
    sim = loaded.scene.simulation
    dx = max(sim.domain) / sim.resolution
    return int(np.prod([math.ceil((size / dx + 2 * PAD + 2) / BLOCK) for size in sim.domain]))


def node_bytes(loaded: LoadedScene) -> int:
    """Bytes per grid node: the shared field, and with body contact one field per body
    (momentum, mass and mass gradient, f64) and the bodies' volume at the node (one f64)."""
    sim = loaded.scene.simulation
    bodies = len(loaded.scene.bodies) if sim.body_contact else 0
    return NODE_BYTES + bodies * 8 * (2 * sim.dim + 1) + (8 if bodies else 0)


def frame_bytes(loaded: LoadedScene, particles: int) -> int:
    """Bytes one output frame takes at most (uncompressed): the particles' and the output
    meshes' (:func:`mesh_frame_bytes`)."""
    per_particle = 8 * (3 + 1 + 2)  # points, vertex cell
    per_particle += 8 * 9 * len(loaded.scene.output.fields)  # a tensor per field at most
    return particles * per_particle + mesh_frame_bytes(loaded)


def mesh_frame_bytes(loaded: LoadedScene) -> int:
    """Bytes one output frame of every ``[[output.meshes]]`` file takes at most (uncompressed):
    per node its point, the monitor and each field (a tensor at most, f64); per cell its node
    ids, offset (int64) and type (one byte), rewritten every frame."""
    total = 0
    for mesh in loaded.scene.output.meshes:
        nodes = math.prod(mesh.nodes)
        cells = math.prod(n - 1 for n in mesh.nodes)
        total += nodes * 8 * (3 + 1 + 9 * len(mesh.fields))
        total += cells * (8 * 2 ** len(mesh.nodes) + 8 + 1)
    return total


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, estimated before it starts from its first step: ``steps`` at
    the starting dt (a lower bound when bodies speed up), ``seconds`` of wall-clock time at
    :data:`PRIOR_RATE` plus :data:`STEP_OVERHEAD` per step, and ``output_bytes`` for every
    frame (an upper bound)."""

    particles: int
    steps: int
    seconds: float
    output_bytes: int

    def __str__(self) -> str:
        return (
            f"about {self.steps:,} steps of {self.particles:,} particles, "
            f"{_duration(self.seconds)} on a 2-core CPU, "
            f"output up to {self.output_bytes / 2**30:.2f} GiB"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def first_dt(loaded: LoadedScene) -> float:
    """The step the run starts with (s): the fixed dt, or the CFL step at the bodies' initial
    speeds and the materials' wave speeds, bounded as the solver bounds it."""
    sim = loaded.scene.simulation
    if sim.dt != "auto":
        return float(sim.dt)
    dx = max(sim.domain) / sim.resolution
    table = MaterialTable(loaded.scene, loaded.registry, loaded.base_dir, dx)
    speed = max(float(np.linalg.norm(body.velocity or [0.0])) for body in loaded.scene.bodies)
    dt = sim.cfl * dx / (speed + table.wave_speed)
    return min(dt, sim.cfl * table.critical_dt, sim.max_dt)


def estimate(loaded: LoadedScene) -> Estimate:
    sim = loaded.scene.simulation
    particles = estimate_particles(loaded)
    frames = max(1, math.ceil(sim.end_time / sim.frame_dt - 1e-9))
    steps = frames * max(1, math.ceil(min(sim.frame_dt, sim.end_time) / first_dt(loaded) - 1e-9))
    return Estimate(
        particles,
        steps,
        steps * (particles / PRIOR_RATE + STEP_OVERHEAD),
        (frames + 1) * frame_bytes(loaded, particles),
    )


def preflight(loaded: LoadedScene, output: Path, assume_yes: bool = False) -> Estimate:
    """Raise :class:`SceneError` if the output cannot be written or the run cannot fit; return
    the cost estimate. A run whose whole output exceeds the free disk is refused unless
    ``assume_yes``."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output.parent, prefix=".engine-write-test"):
            pass
    except OSError as error:
        raise loaded.error(
            ("output", "path"),
            f"cannot write to {output.parent} ({error.strerror})",
            "choose a folder you can write to, e.g. --set 'output.path=\"out/result.vtkhdf\"'",
        ) from None
    particles = estimate_particles(loaded)
    need = particles * PARTICLE_BYTES + estimate_grid_nodes(loaded) * node_bytes(loaded)
    need += 8 * block_count(loaded)  # the sparse grid's slot and mark of each block of nodes
    available = psutil.virtual_memory().available
    if need > available:
        raise loaded.error(
            ("simulation", "resolution"),
            f"about {particles:,} particles and {estimate_grid_nodes(loaded):,} grid nodes need "
            f"about {need / 2**30:.1f} GiB of memory; {available / 2**30:.1f} GiB are free",
            "lower simulation.resolution or particles_per_cell, or shrink the bodies",
        )
    disk = shutil.disk_usage(output.parent).free
    if FRAMES_OF_DISK * frame_bytes(loaded, particles) > disk:
        raise loaded.error(
            ("output", "path"),
            f"{disk / 2**20:.0f} MiB free in {output.parent} is less than the first "
            f"{FRAMES_OF_DISK} frames need",
            "free some disk, write elsewhere, or output fewer fields or mesh nodes",
        )
    cost = estimate(loaded)
    if cost.output_bytes > disk and not assume_yes:
        raise loaded.error(
            ("simulation", "frame_dt"),
            f"the whole output needs up to {cost.output_bytes / 2**30:.2f} GiB and "
            f"{output.parent} has {disk / 2**30:.2f} GiB free",
            "raise frame_dt, output fewer fields, free some disk, or pass --yes to start anyway",
        )
    return cost
