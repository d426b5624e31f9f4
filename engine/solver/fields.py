"""Per-particle output fields and per-frame diagnostics, as NumPy arrays read from a simulation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.solver.simulation import Simulation


def _state_variable(sim: Simulation, name: str) -> np.ndarray:
    """``(N,)`` values of a material state variable; 0 for particles whose material lacks it."""
    state = sim.state.to_numpy()
    material_id = sim.material_id.to_numpy()
    out = np.zeros(sim.n_particles, state.dtype)
    for row, cls in enumerate(sim.material_classes):
        names = [var for var, _ in cls.state_vars]
        if name in names:
            chosen = material_id == row
            out[chosen] = state[chosen, names.index(name)]
    return out


def _cauchy_stress(sim: Simulation) -> np.ndarray:
    """Cauchy stress ``sigma = tau / J`` (Pa, ``(N, d, d)``) of the current deformation."""
    sim.refresh_stress()
    J = np.linalg.det(sim.F.to_numpy())
    return sim.tau.to_numpy() / J[:, None, None]


FIELDS: dict[str, Callable[[Simulation], np.ndarray]] = {
    "velocity": lambda s: s.v.to_numpy(),
    "material_id": lambda s: s.material_id.to_numpy(),
    "body_id": lambda s: s.body_id.to_numpy(),
    "J": lambda s: np.linalg.det(s.F.to_numpy()),
    "F": lambda s: s.F.to_numpy(),
    "stress": _cauchy_stress,
    "C": lambda s: s.C.to_numpy(),
    "mass": lambda s: s.mass.to_numpy(),
    "volume": lambda s: s.volume.to_numpy() * np.linalg.det(s.F.to_numpy()),
}


def particle_fields(sim: Simulation, names: list[str]) -> dict[str, np.ndarray]:
    """The requested output fields by name (see :data:`engine.scene.schema.BASE_FIELDS`)."""
    return {name: FIELDS.get(name, lambda s, n=name: _state_variable(s, n))(sim) for name in names}


def diagnostics(sim: Simulation) -> dict[str, float | np.ndarray]:
    """Time (s), steps, last dt (s), mass (kg), momentum (kg m/s, ``(d,)``), kinetic energy (J)."""
    mass = sim.mass.to_numpy().astype(np.float64)
    v = sim.v.to_numpy().astype(np.float64)
    return {
        "time": sim.time,
        "step": float(sim.step_count),
        "dt": sim.dt,
        "mass": float(mass.sum()),
        "momentum": (mass[:, None] * v).sum(axis=0),
        "kinetic_energy": float(0.5 * (mass * (v * v).sum(axis=1)).sum()),
    }
