"""The CPU's coloured particle-to-grid scatter (engine/solver/scatter_order.py).

References: the block colouring of parallel particle-to-grid transfers, as in Hu et al., "A
moving least squares material point method", SIGGRAPH 2018 (its CPU implementation partitions the
grid into blocks and scatters blocks of one colour in parallel); the B-spline weights are those
of the solver (quadratic, Steffen et al. 2008). The checks are exact: a permutation, the block
of every particle, the nodes' mass against a plain numpy scatter to float round-off, and the same
bits on one and two threads.
"""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from water_block import water_block

from engine.solver.kernels import BLOCK, PAD
from engine.solver.simulation import Simulation


def dam(dim: int) -> str:
    return water_block(dim, low=[0.05] * dim, high=[0.45, 0.7, 0.45][:dim])


def lower_nodes(x: np.ndarray, dx: float, shape: tuple[int, ...]) -> np.ndarray:
    """Each particle's stencil lower node ``(N, d)``, as ``particle_stencil`` clamps it."""
    upper = np.array(shape) - 3
    return np.clip(np.floor(x / dx + PAD - 0.5).astype(int), 0, upper)


@pytest.mark.parametrize("dim", [2, 3])
def test_particles_are_listed_block_by_block_and_colour_by_colour(load, dim):
    """After the particles have moved, ``order`` is a permutation, blocks come in increasing
    order with their particles in increasing row, and the colour lists hold exactly the
    occupied blocks, each under its parity colour."""
    sim = Simulation(load(dam(dim)))
    for _ in range(15):
        sim.step(sim.stable_dt())
    order = sim.scatter_order
    order.refresh(sim.x, sim.grid.dx)
    x = sim.x.to_numpy()
    shape = sim.grid.shape
    blocks = np.array(order.blocks)
    block = lower_nodes(x, sim.grid.dx, shape) // BLOCK
    flat = np.ravel_multi_index(block.T, blocks)
    rows = order.order.to_numpy()
    start = order.start.to_numpy()

    assert sorted(rows) == list(range(len(x)))
    assert np.array_equal(rows, np.lexsort((np.arange(len(x)), flat)))
    assert np.array_equal(
        start, np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=blocks.prod()))])
    )
    colour_start = order.colour_start.to_numpy()
    listed = order.colour_blocks.to_numpy()
    occupied = np.unique(flat)
    for colour in range(2**dim):
        mine = listed[colour_start[colour] : colour_start[colour + 1]]
        index = np.array(np.unravel_index(mine, blocks)).T
        parity = sum((index[:, axis] % 2) << axis for axis in range(dim))
        assert np.all(parity == colour)
        assert np.all(np.diff(mine) > 0)
    assert np.array_equal(np.sort(listed[: colour_start[-1]]), occupied)


@pytest.mark.parametrize("dim", [2, 3])
def test_coloured_scatter_puts_every_particles_mass_where_a_plain_scatter_does(load, dim):
    """The grid's mass after particle-to-grid equals a numpy scatter of the particles' masses
    with the solver's quadratic B-spline weights, to float round-off (1e-5 relative to the
    largest node mass): no particle is missed or scattered twice."""
    sim = Simulation(load(dam(dim)))
    for _ in range(10):
        sim.step(sim.stable_dt())
    dx = sim.grid.dx
    sim.list_grid()
    sim.scatter(sim.stable_dt())
    scattered = sim.grid_at(sim.grid_nodes)[..., dim]

    x, mass = sim.x.to_numpy(), sim.mass.to_numpy()
    shape = sim.grid.shape
    base = lower_nodes(x, dx, shape)
    fx = x / dx + PAD - base
    weights = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
    expected = np.zeros(shape)
    for offset in itertools.product(range(3), repeat=dim):
        weight = np.prod([weights[o][:, axis] for axis, o in enumerate(offset)], axis=0)
        np.add.at(expected, tuple((base + offset).T), weight * mass)
    assert np.abs(scattered - expected).max() <= 1e-5 * expected.max()


RUN_STEPS = """
import json, sys
import numpy as np
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation
sim = Simulation(load_scene(sys.argv[1]))
for _ in range(40):
    sim.step(sim.stable_dt())
print(json.dumps({"x": sim.x.to_numpy().tobytes().hex(), "v": sim.v.to_numpy().tobytes().hex()}))
"""


@pytest.mark.slow
def test_cpu_runs_are_bitwise_the_same_on_one_and_two_threads(scene_file):
    """A 2D dam break, 40 steps, run on 1 and on 2 threads (``ENGINE_CPU_THREADS``, one process
    each): the particles' positions and velocities agree to the last bit."""
    path = scene_file(dam(2))
    results = []
    for threads in ("1", "2"):
        env = {**os.environ, "ENGINE_CPU_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", RUN_STEPS, str(path)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
