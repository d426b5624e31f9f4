"""Health checks stop a broken run with what, where (body), when and what to change."""

import numpy as np
import pytest

from engine.solver.simulation import Simulation, SimulationError

TWO_BODIES = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.1
frame_dt = 0.01
precision = "{precision}"

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.1, 0.1]
max = [0.3, 0.3]

[[bodies]]
material = "jelly"
shape = "sphere"
center = [0.7, 0.5]
radius = 0.1
"""


def test_non_finite_values_are_caught_and_name_the_body(load):
    sim = Simulation(load(TWO_BODIES.format(precision="f32")))
    v = sim.v.to_numpy()
    body = sim.body_id.to_numpy()
    v[np.flatnonzero(body == 1)[0]] = np.nan
    sim.v.from_numpy(v)
    with pytest.raises(SimulationError, match="NaN or infinite") as caught:
        sim.step(1e-4)
    assert caught.value.body == 1
    assert "smaller dt" in str(caught.value) and "t = 0.0001 s" in str(caught.value)


@pytest.mark.parametrize("precision", ["f32", "f64"])
def test_the_step_reports_its_fastest_particle(load, precision):
    """The health report keeps the largest speed as its float's bits (one host sync a step)."""
    sim = Simulation(load(TWO_BODIES.format(precision=precision)))
    v = sim.v.to_numpy()
    v[np.flatnonzero(sim.body_id.to_numpy() == 1)[3]] = [1.5, -2.0]  # 2.5 m/s
    sim.v.from_numpy(v)
    sim.step(1e-4)
    speeds = np.linalg.norm(sim.v.to_numpy(), axis=1)
    assert 0.1 < sim.max_speed == pytest.approx(float(speeds.max()), rel=1e-6)


def test_double_precision_runs(load):
    sim = Simulation(load(TWO_BODIES.format(precision="f64")))
    assert sim.x.to_numpy().dtype == np.float64
    sim.advance_to(0.01)
    assert np.all(np.isfinite(sim.x.to_numpy()))
