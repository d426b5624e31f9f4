"""Per-particle output fields and per-frame diagnostics, as NumPy arrays read from a simulation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.solver.simulation import Simulation


def state_variable(sim: Simulation, name: str) -> np.ndarray:
    """``(N,)`` values of a material state variable; 0 for particles whose material lacks it."""
    state = sim.numpy("state")
    material_id = sim.numpy("material_id")
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
    return sim.numpy("tau") / np.linalg.det(sim.numpy("F"))[:, None, None]


FIELDS: dict[str, Callable[[Simulation], np.ndarray]] = {
    "velocity": lambda s: s.numpy("v"),
    "material_id": lambda s: s.numpy("material_id"),
    "body_id": lambda s: s.numpy("body_id"),
    "J": lambda s: np.linalg.det(s.numpy("F")),
    "F": lambda s: s.numpy("F"),
    "stress": _cauchy_stress,
    "C": lambda s: s.numpy("C"),
    "mass": lambda s: s.numpy("mass"),
    "volume": lambda s: s.numpy("volume") * np.linalg.det(s.numpy("F")),
}


def particle_fields(sim: Simulation, names: list[str]) -> dict[str, np.ndarray]:
    """The requested output fields by name: base fields, plugin particle fields, material state."""
    out = {}
    for name in names:
        if name in FIELDS:
            out[name] = FIELDS[name](sim)
        elif name in sim.fields:
            out[name] = sim.numpy(name)
        else:
            out[name] = state_variable(sim, name)
    return out


def diagnostics(sim: Simulation) -> dict[str, float | np.ndarray]:
    """Time (s), steps, the step the solver chose in the last frame (s) and its smallest and
    largest there (the frame's last step, cut short to land on the frame time, is not one of
    them), mass (kg), momentum (kg m/s, ``(d,)``), kinetic energy (J)."""
    mass = sim.numpy("mass").astype(np.float64)
    v = sim.numpy("v").astype(np.float64)
    return {
        "time": sim.time,
        "step": float(sim.step_count),
        "dt": sim.chosen_dt[0],
        "dt_min": sim.chosen_dt[1],
        "dt_max": sim.chosen_dt[2],
        "mass": float(mass.sum()),
        "momentum": (mass[:, None] * v).sum(axis=0),
        "kinetic_energy": float(0.5 * (mass * (v * v).sum(axis=1)).sum()),
    }
