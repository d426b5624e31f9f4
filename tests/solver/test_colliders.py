"""Walls, planes and mesh colliders: contact conditions and Coulomb friction."""

from pathlib import Path

import numpy as np
import pytest

from engine.solver.simulation import Simulation

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "meshes"

SLIDER = """
[simulation]
dim = 2
domain = [2.0, 0.5]
resolution = 128
end_time = 1.0
frame_dt = 0.05
boundary = "slip"

[materials.block]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = 2.0e5
poisson_ratio = 0.3

[[bodies]]
material = "block"
shape = "box"
min = [0.2, 0.1]
max = [0.4, 0.2]
velocity = [1.0, 0.0]
jitter = 0.0

[[colliders]]
type = "plane"
point = [0.0, 0.1]
normal = [0.0, 1.0]
boundary = "{condition}"
friction = 0.3
"""


def test_block_sliding_on_a_plane_decelerates_at_mu_g(load):
    """Coulomb friction: a block sliding at 1 m/s decelerates at mu g until it stops.

    Analytic: v(t) = v0 - mu g t (mu = 0.3, g = 9.81 m/s^2), so v(0.2 s) = 0.41 m/s; it stops at
    t = 0.34 s after sliding v0^2 / (2 mu g) = 0.170 m. Tolerance 10 %. It never sinks into the
    plane by more than a grid cell.
    """
    sim = Simulation(load(SLIDER.format(condition="separate")))
    x0 = sim.x.to_numpy()[:, 0].mean()
    sim.advance_to(0.2)
    v = sim.v.to_numpy()[:, 0].mean()
    assert v == pytest.approx(1.0 - 0.3 * 9.81 * 0.2, rel=0.1)
    sim.advance_to(0.6)
    distance = sim.x.to_numpy()[:, 0].mean() - x0
    assert distance == pytest.approx(1.0 / (2 * 0.3 * 9.81), rel=0.1)
    assert abs(sim.v.to_numpy()[:, 0].mean()) < 0.02
    assert sim.x.to_numpy()[:, 1].min() > 0.1 - sim.grid.dx


PRESS = f"""
[simulation]
dim = 3
domain = [0.4, 0.4, 0.4]
resolution = 32
end_time = 1.0
frame_dt = 0.05
boundary = "separate"

[materials.clay]
model = "von_mises"
density = 1500.0
youngs_modulus = 2.0e5
yield_stress = 5.0e3

[[bodies]]
material = "clay"
shape = "box"
min = [0.15, 0.0, 0.15]
max = [0.25, 0.1, 0.25]

[[colliders]]
type = "mesh"
mesh = "{ASSETS / "press_plate.stl"}"
position = [0.2, 0.14, 0.2]
velocity = [0.0, -0.2, 0.0]
boundary = "sticky"
"""


def test_moving_mesh_collider_squashes_a_block_without_tunnelling(load):
    """A 4 cm thick plate moving down at 0.2 m/s for 0.25 s: the block ends below the plate."""
    sim = Simulation(load(PRESS))
    sim.advance_to(0.25)
    plate_bottom = 0.14 - 0.02 - 0.2 * 0.25  # centre - half thickness - travel = 0.07 m
    y = sim.x.to_numpy()[:, 1]
    assert y.max() <= plate_bottom + sim.grid.dx
    assert y.max() < 0.08  # squashed from 0.10 m
    width = np.ptp(sim.x.to_numpy()[:, 0])
    assert width > 0.105  # and spread sideways (volume is kept)


def test_static_mesh_collider_holds_a_falling_ball(load):
    shelf = PRESS.replace("velocity = [0.0, -0.2, 0.0]", "velocity = [0.0, 0.0, 0.0]").replace(
        'boundary = "sticky"', 'boundary = "separate"'
    )
    shelf = shelf.replace(
        'shape = "box"\nmin = [0.15, 0.0, 0.15]\nmax = [0.25, 0.1, 0.25]',
        'shape = "sphere"\ncenter = [0.2, 0.3, 0.2]\nradius = 0.05',
    )
    sim = Simulation(load(shelf))
    sim.advance_to(0.5)
    plate_top = 0.14 + 0.02
    y = sim.x.to_numpy()[:, 1]
    assert y.min() >= plate_top - sim.grid.dx  # resting on the plate, not through it
    assert y.max() < 0.3  # it did fall onto it


def test_slip_plane_keeps_a_block_from_lifting_off(load):
    """`slip` removes normal motion both ways: a block thrown upward stays on the plane."""
    sim = Simulation(load(SLIDER.format(condition="slip").replace("[1.0, 0.0]", "[0.0, 2.0]")))
    sim.advance_to(0.1)
    assert sim.x.to_numpy()[:, 1].min() < 0.1 + sim.grid.dx


def depth_into_press(load, text: str) -> float:
    """How far (cells) the highest particle stands above the plate's bottom face after the
    press has moved down for 0.25 s (the plate is sticky: it carries what it touches)."""
    sim = Simulation(load(text))
    sim.advance_to(0.25)
    plate_bottom = 0.14 - 0.02 - 0.2 * 0.25
    return (sim.numpy("x")[:, 1].max() - plate_bottom) / sim.grid.dx


def test_two_bodies_pressed_by_a_mesh_collider_go_no_deeper_than_one(load):
    """With body contact, the nodes two bodies share skipped the mesh collider: two blocks side
    by side under the press went 0.26 cells into the plate. Now the pair stands where one block
    of the same size does, within 0.03 cell, and outside the plate (measured: the highest
    particles 0.175 and 0.177 cell below its face; 0.129 and 0.119 inside it while the nodes
    less than a cell in front of a collider were free)."""
    assert depth_into_press(load, PRESS) < 0.0  # one block alone stays out of the plate too
    halves = 'min = [0.1, 0.0, 0.15]\nmax = [0.2, 0.1, 0.25]\n\n[[bodies]]\nmaterial = "clay"\n'
    halves += 'shape = "box"\nmin = [0.2, 0.0, 0.15]\nmax = [0.3, 0.1, 0.25]'
    block = "min = [0.15, 0.0, 0.15]\nmax = [0.25, 0.1, 0.25]"
    pair = PRESS.replace(block, halves).replace(
        'boundary = "separate"', 'boundary = "separate"\nbody_contact = true', 1
    )
    one = PRESS.replace(block, "min = [0.1, 0.0, 0.15]\nmax = [0.3, 0.1, 0.25]")
    assert depth_into_press(load, pair) <= depth_into_press(load, one) + 0.03
