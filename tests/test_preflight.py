"""The memory estimate before a run (engine/preflight.py) follows the sparse grid: the nodes
of the blocks the bodies reach, not the domain's."""

import pytest

from engine.preflight import estimate_grid_nodes
from engine.solver.kernels import BLOCK
from engine.solver.simulation import Simulation

BALL = """
[simulation]
dim = 3
domain = {domain}
resolution = {resolution}
end_time = 0.1
frame_dt = 0.05
dt = "auto"

[materials.rubber]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e5
poisson_ratio = 0.3

[[bodies]]
material = "rubber"
shape = "sphere"
center = [0.3, 0.3, 0.3]
radius = 0.15
"""


@pytest.mark.parametrize("width", [1.0, 4.0])
def test_the_grid_estimate_covers_the_pool_and_not_the_domain(load, width):
    """The same ball at dx = 1/16 m in a 1 m and a 4 m domain: the same estimate, which covers
    the rows the simulation's pool holds after its first step, and is far below the dense
    grid of the 4 m domain (71^3 nodes)."""
    loaded = load(BALL.format(domain=[width] * 3, resolution=round(16 * width)))
    estimate = estimate_grid_nodes(loaded)
    ball = load(BALL.format(domain=[1.0] * 3, resolution=16))
    assert estimate == estimate_grid_nodes(ball)
    sim = Simulation(loaded)
    sim.step(1e-4)
    assert sim.sparse.active * BLOCK**3 <= estimate <= 2 * sim.sparse.rows
    assert estimate < 0.1 * 71**3 or width == 1.0
