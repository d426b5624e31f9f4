"""Checks before a run starts: refuse what would fail an hour in (no output, disk, memory)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import psutil

from engine.scene.loaded import LoadedScene
from engine.solver.kernels import PAD

#: Bytes per particle in memory, a generous bound (3D, f64, every array, plus output copies).
PARTICLE_BYTES = 1200
#: Bytes per grid node (momentum and mass, FLIP copy, f64).
NODE_BYTES = 64
#: Frames whose worth of free disk the run must find before it starts.
FRAMES_OF_DISK = 3


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
    sim = loaded.scene.simulation
    dx = max(sim.domain) / sim.resolution
    return int(np.prod([size / dx + 2 * PAD + 2 for size in sim.domain]))


def frame_bytes(loaded: LoadedScene, particles: int) -> int:
    """Bytes one output frame takes at most (uncompressed)."""
    per_particle = 8 * (3 + 1 + 2)  # points, vertex cell
    per_particle += 8 * 9 * len(loaded.scene.output.fields)  # a tensor per field at most
    return particles * per_particle


def preflight(loaded: LoadedScene, output: Path) -> None:
    """Raise :class:`SceneError` if the output cannot be written or the run cannot fit."""
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
    need = particles * PARTICLE_BYTES + estimate_grid_nodes(loaded) * NODE_BYTES
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
            "free some disk, write elsewhere, or output fewer fields",
        )
