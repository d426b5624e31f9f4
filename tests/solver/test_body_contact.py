"""Contact between bodies (`simulation.body_contact`): one grid field per body and the contact
model at their interfaces (Bardenhagen et al. 2000, J. Comput. Phys. 180, multi-field MPM contact).
On a single shared grid, touching bodies stick together (no slip); with body contact a block slides
over another one freely, or with Coulomb friction between them."""

import pytest

from engine.solver.simulation import Simulation

STACK = """
[simulation]
dim = 2
domain = [1.5, 0.5]
resolution = 96
end_time = 1.0
frame_dt = 0.01
boundary = "slip"
body_contact = {contact}
body_friction = {friction}

[materials.rubber]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 2.0e5
poisson_ratio = 0.3

[[bodies]]                 # resting on the frictionless floor
material = "rubber"
shape = "box"
min = [0.2, 0.0]
max = [0.8, 0.1]
jitter = 0.0

[[bodies]]                 # sliding on top of it
material = "rubber"
shape = "box"
min = [0.3, 0.1]
max = [0.5, 0.2]
velocity = [1.0, 0.0]
jitter = 0.0
"""


def speeds(sim):
    v, body = sim.numpy("v"), sim.numpy("body_id")
    return v[body == 0, 0].mean(), v[body == 1, 0].mean()


@pytest.mark.parametrize("contact", ["true", "false"])
def test_a_block_slides_over_another_only_with_body_contact(load, contact):
    """Frictionless body contact: the top block keeps most of its speed (MPM's numerical drag
    at 96 cells costs under 25 % in 0.2 s), conserving momentum; on one shared grid the
    interface does not slip and the top block loses much more."""
    sim = Simulation(load(STACK.format(contact=contact, friction=0.0)))
    momentum = (sim.numpy("mass") * sim.numpy("v")[:, 0]).sum()
    sim.advance_to(0.2)
    bottom, top = speeds(sim)
    assert (sim.numpy("mass") * sim.numpy("v")[:, 0]).sum() == pytest.approx(momentum, rel=1e-4)
    if contact == "true":
        assert top > 0.7 and bottom < 0.15
        y, body = sim.numpy("x")[:, 1], sim.numpy("body_id")
        assert y[body == 1].min() > 0.1 - sim.grid.dx  # resting on the bottom block, not in it
    else:
        assert top < 0.6


def launched_top_speeds(load, friction: float) -> list[float]:
    """Top-block speeds at t = 0.2 and 0.3 s: settled under gravity, launched at 0.15 s."""
    sim = Simulation(
        load(
            STACK.format(contact="true", friction=friction).replace(
                "velocity = [1.0, 0.0]", "velocity = [0.0, 0.0]"
            )
        )
    )
    sim.advance_to(0.15)
    v, body = sim.numpy("v"), sim.numpy("body_id")
    v[body == 1, 0] += 1.0
    sim.store.assign(sim.v, v)
    out = []
    for t in (0.2, 0.3):
        sim.advance_to(t)
        out.append(speeds(sim)[1])
    return out


def test_friction_between_bodies_adds_mu_g_of_deceleration(load):
    """Coulomb friction mu = 0.3 between the blocks: once the launch transient has passed
    (from 0.05 s after it), the sliding top block slows by mu g = 2.94 m/s^2 more than without
    friction (within 15 %)."""
    rough, smooth = launched_top_speeds(load, 0.3), launched_top_speeds(load, 0.0)
    extra = ((rough[0] - rough[1]) - (smooth[0] - smooth[1])) / 0.1
    assert extra == pytest.approx(0.3 * 9.81, rel=0.15), extra
