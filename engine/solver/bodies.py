"""Turn a scene's bodies into particles: positions, velocities, masses, ids (NumPy, vectorised)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.registry import Registry


@dataclass
class SeededParticles:
    """Initial particle arrays, N particles in d dimensions."""

    x: np.ndarray  # (N, d) m
    v: np.ndarray  # (N, d) m/s
    mass: np.ndarray  # (N,) kg
    volume: np.ndarray  # (N,) m^3
    material_id: np.ndarray  # (N,) int32, index into the scene's materials
    body_id: np.ndarray  # (N,) int32, index into the scene's bodies

    def __len__(self) -> int:
        return len(self.x)


class EmptyBodyError(ValueError):
    """A body whose shape holds no particle at the chosen resolution."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"body {index} received no particles")


def initial_velocity(body, x: np.ndarray) -> np.ndarray:
    """Velocity ``(N, d)`` m/s of a rigid motion: linear plus spin about the body's centroid."""
    dim = x.shape[1]
    v = np.zeros_like(x)
    if body.velocity is not None:
        v += np.asarray(body.velocity)
    if body.angular_velocity is None:
        return v
    arm = x - x.mean(axis=0)
    if dim == 2:
        omega = float(body.angular_velocity)
        v += omega * np.stack([-arm[:, 1], arm[:, 0]], axis=1)
    else:
        v += np.cross(np.asarray(body.angular_velocity, float), arm)
    return v


def seed_bodies(scene, dx: float, base_dir: Path, registry: Registry) -> SeededParticles:
    """Seed every body of a validated scene, sorted by grid cell (neighbours share grid nodes)."""
    dim = scene.simulation.dim
    rng = np.random.default_rng(scene.simulation.seed)
    names = list(scene.materials)
    parts: list[SeededParticles] = []
    for index, body in enumerate(scene.bodies):
        spacing = dx / body.particles_per_cell ** (1.0 / dim)
        x = registry.shapes[body.shape].seed(body, spacing, rng, base_dir)
        if len(x) == 0:
            raise EmptyBodyError(index)
        count = len(x)
        volume = np.full(count, spacing**dim)
        density = scene.materials[body.material].density
        parts.append(
            SeededParticles(
                x=x,
                v=initial_velocity(body, x),
                mass=density * volume,
                volume=volume,
                material_id=np.full(count, names.index(body.material), np.int32),
                body_id=np.full(count, index, np.int32),
            )
        )
    joined = SeededParticles(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in SeededParticles.__annotations__)
    )
    cell = np.floor(joined.x / dx).astype(np.int64)
    order = np.lexsort(cell.T[::-1])
    return SeededParticles(*(getattr(joined, f)[order] for f in SeededParticles.__annotations__))
