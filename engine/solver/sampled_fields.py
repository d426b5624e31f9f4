"""The fields an output mesh samples from the particles, at any points (NumPy in, NumPy out).

``density`` (kg/m^3) is the B-spline kernel estimate of the particles' mass; ``velocity``
(m/s, ``(M, d)``), ``pressure`` (Pa, ``-tr(sigma) / d`` of the Cauchy stress) and material
state variables (``plastic_J``, ``volume_correction``, ...; 0 for particles whose material has
none) are the kernel's mass-weighted averages (see :mod:`engine.output.sampling`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.output.sampling import KernelSampler
from engine.solver.fields import FIELDS, state_variable
from engine.solver.simulation import Simulation

DENSITY = "density"


def _pressure(sim: Simulation) -> np.ndarray:
    """``-tr(sigma) / d`` (Pa, ``(N,)``) of each particle's Cauchy stress."""
    return -np.trace(FIELDS["stress"](sim), axis1=1, axis2=2) / sim.dim


PER_PARTICLE: dict[str, Callable[[Simulation], np.ndarray]] = {
    "velocity": lambda sim: sim.numpy("v"),
    "pressure": _pressure,
}


def sample_fields(
    sim: Simulation, points: np.ndarray, names: list[str] | tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The fields ``names`` at ``points`` ``(M, d)`` m, by name: ``(M,)`` scalars, ``(M, d)``
    velocity; one pass of the kernel over the particles for all of them."""
    sampler = KernelSampler(
        sim.numpy("x"), sim.numpy("mass"), sim.grid.dx, sim.scene.simulation.domain
    )
    averaged = [name for name in dict.fromkeys(names) if name != DENSITY]
    columns = [
        np.asarray(
            PER_PARTICLE[name](sim) if name in PER_PARTICLE else state_variable(sim, name)
        ).reshape(sim.n_particles, -1)
        for name in averaged
    ]
    values = np.concatenate(columns, axis=1) if columns else np.zeros((sim.n_particles, 0))
    density, averages = sampler.sample(points, values)
    out, start = {}, 0
    for name, column in zip(averaged, columns, strict=True):
        width = column.shape[1]
        block = averages[:, start : start + width]
        out[name] = block if name == "velocity" else block[:, 0]
        start += width
    if DENSITY in names:
        out[DENSITY] = density
    return {name: out[name] for name in names}
