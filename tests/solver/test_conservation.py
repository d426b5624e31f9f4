"""Conservation laws of the MLS-MPM transfers.

References: Jiang et al., "The affine particle-in-cell method", SIGGRAPH 2015 (APIC conserves
linear and angular momentum in the transfers); Hu et al., "A moving least squares material point
method", SIGGRAPH 2018 (MLS-MPM with internal forces from the stress, which sum to zero).
"""

import numpy as np
import pytest

from engine.solver.fields import diagnostics
from engine.solver.simulation import Simulation

FREE_BODY = """
[simulation]
dim = {dim}
domain = {domain}
resolution = 24
end_time = 1.0
frame_dt = 0.01
dt = "auto"
gravity = {zero}
transfer = "{transfer}"

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 2.0e4
poisson_ratio = 0.3

[[bodies]]
material = "jelly"
shape = "sphere"
center = {center}
radius = 0.15
velocity = {velocity}
angular_velocity = {spin}
"""


def free_body(dim: int, transfer: str = "apic") -> str:
    return FREE_BODY.format(
        dim=dim,
        domain=[1.0] * dim,
        zero=[0.0] * dim,
        transfer=transfer,
        center=[0.5] * dim,
        velocity=[0.3, -0.2, 0.1][:dim],
        spin=2.0 if dim == 2 else [0.0, 0.0, 2.0],
    )


@pytest.mark.parametrize(("dim", "transfer"), [(2, "apic"), (3, "apic"), (2, "flip")])
def test_momentum_is_conserved_without_gravity_or_walls(load, dim, transfer):
    """Linear momentum of a spinning, moving elastic ball stays constant to 1e-5 (relative)."""
    sim = Simulation(load(free_body(dim, transfer)))
    start = diagnostics(sim)["momentum"]
    sim.advance_to(0.1)
    end = diagnostics(sim)["momentum"]
    assert sim.step_count > 20
    assert np.linalg.norm(end - start) <= 1e-5 * np.linalg.norm(start)


def test_mass_is_constant_and_the_grid_receives_all_of_it(load):
    """Particle mass never changes, and particle-to-grid moves all of it (partition of unity)."""
    sim = Simulation(load(free_body(2)))
    mass = diagnostics(sim)["mass"]
    sim.advance_to(0.05)
    assert diagnostics(sim)["mass"] == pytest.approx(mass, rel=1e-12)
    grid_mass = float(sim.grid_nodes.to_numpy()[..., -1].astype(np.float64).sum())
    assert grid_mass == pytest.approx(mass, rel=1e-5)
