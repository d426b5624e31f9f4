"""The monge_ampere output-mesh mover on analytic monitors: it equidistributes them (the spread
of monitor x cell area falls far below the uniform mesh's), never inverts a cell, keeps boundary
nodes on their faces, settles, starts later frames from the last; and the interpolation error
it is measured by."""

import time

import numpy as np
import pytest
from engine_plugins.monge_ampere import MongeAmpereMover

from engine.hooks.records import OutputMeshSpec
from engine.output.lattice import corner_jacobians, mesh_problem, uniform_nodes
from engine.output.mesh_quality import equidistribution_spread, finer, interpolation_error
from engine.output.monitor import build_monitor

NODES = (33, 33)
DOMAIN = np.ones(2)
WIDTH = 0.05  # m, of the fronts


def curved_front(points: np.ndarray) -> np.ndarray:
    """A tanh front along a sine: x = 0.5 + 0.1 sin(2 pi y)."""
    x, y = points[..., 0], points[..., 1]
    return np.tanh((x - 0.5 - 0.1 * np.sin(2 * np.pi * y)) / WIDTH)


def ring(points: np.ndarray) -> np.ndarray:
    """A tanh step across the circle of radius 0.25 about the centre."""
    return np.tanh((np.linalg.norm(points - 0.5, axis=-1) - 0.25) / WIDTH)


def monitor_of(field, alpha: float, shape=(129, 129), domain=DOMAIN):
    return build_monitor(field(uniform_nodes(domain, shape)).reshape(shape), domain, alpha)


def mover(nodes=NODES, domain=DOMAIN) -> MongeAmpereMover:
    return MongeAmpereMover(OutputMeshSpec(None, nodes, domain, uniform_nodes(domain, nodes)))


@pytest.mark.parametrize(
    ("field", "uniform_spread", "moved_spread"),
    [(curved_front, 1.786, 0.060), (ring, 1.352, 0.095)],
)
def test_analytic_monitors_are_equidistributed_without_inverted_cells(
    field, uniform_spread, moved_spread
):
    """alpha = 3 on 33 x 33 nodes: the spread falls 30 and 14 times (measured)."""
    monitor = monitor_of(field, 3.0)
    xi = uniform_nodes(DOMAIN, NODES)
    ma = mover()
    points = ma.move(monitor)
    assert equidistribution_spread(xi, NODES, monitor.at) == pytest.approx(uniform_spread, 0.01)
    spread = equidistribution_spread(points, NODES, monitor.at)
    assert spread < moved_spread * 1.05 and spread < uniform_spread / 10
    assert mesh_problem(points, NODES, DOMAIN) is None  # boundary nodes on their faces
    assert corner_jacobians(points, NODES).min() > 0
    assert ma.residuals[-1] < 0.01 * ma.residuals[0]  # settled
    smallest = np.diff(np.unique(points[:, 0].round(12))).min()
    assert smallest < 0.2 / (NODES[0] - 1)  # nodes gathered at the front


def test_a_later_frame_starts_from_the_last_and_state_round_trips():
    monitor = monitor_of(ring, 3.0)
    first = mover()
    points = first.move(monitor)
    cold = len(first.residuals)
    started = time.perf_counter()
    again = first.move(monitor)
    assert len(first.residuals) < cold / 10  # measured: 11 steps against 1000
    assert time.perf_counter() - started < 0.5
    np.testing.assert_allclose(again, points, atol=1e-3 / 32)
    resumed = mover()
    resumed.set_state(first.state())
    np.testing.assert_array_equal(resumed.move(monitor), first.move(monitor))


def test_a_uniform_monitor_leaves_the_mesh_uniform_and_3d_works():
    flat = build_monitor(np.zeros((17, 17)), DOMAIN, 1.0)
    np.testing.assert_allclose(mover().move(flat), uniform_nodes(DOMAIN, NODES), atol=1e-12)
    nodes, domain = (9, 9, 9), np.array([1.0, 1.0, 0.5])
    monitor = monitor_of(
        lambda p: np.tanh((np.linalg.norm(p - [0.5, 0.5, 0.25], axis=-1) - 0.2) / 0.1),
        2.0,
        (33, 33, 17),
        domain,
    )
    points = mover(nodes, domain).move(monitor)
    assert mesh_problem(points, nodes, domain) is None
    uniform = equidistribution_spread(uniform_nodes(domain, nodes), nodes, monitor.at)
    assert equidistribution_spread(points, nodes, monitor.at) < 0.5 * uniform


def test_interpolation_error_against_a_4x_finer_mesh():
    """The issue's error measure on the curved front: the moved mesh's error is 0.64 of the
    uniform mesh's at the same node count (measured); a field the nodes resolve exactly
    (linear) has none."""
    fine = uniform_nodes(DOMAIN, finer(NODES))
    assert len(fine) == 129 * 129
    reference = curved_front(fine)
    xi = uniform_nodes(DOMAIN, NODES)
    moved = mover().move(monitor_of(curved_front, 3.0))
    uniform_error = interpolation_error(xi, curved_front(xi), fine, reference)
    moved_error = interpolation_error(moved, curved_front(moved), fine, reference)
    assert moved_error < 0.7 * uniform_error
    linear = fine @ [1.0, -2.0]
    assert interpolation_error(moved, moved @ [1.0, -2.0], fine, linear) < 1e-12


SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 32
end_time = 0.1
frame_dt = 0.05

[output]
path = "out/dam.vtkhdf"

[[output.meshes]]
name = "uniform"
nodes = [17, 17]

[[output.meshes]]
name = "classical"
nodes = [17, 17]
mover = "monge_ampere"

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.4, 0.6]
"""


def test_in_a_run_it_gathers_nodes_at_the_free_surface(scene_file, tmp_path):
    """A dam break with the density as monitor: every frame equidistributes it better than the
    uniform mesh beside it, and none falls back."""
    import engine.io
    from engine.cli import main

    assert main(["run", str(scene_file(SCENE)), "-q"]) == 0
    uniform = engine.io.open(tmp_path / "out" / "dam_mesh_uniform.vtkhdf").diagnostics()
    classical = engine.io.open(tmp_path / "out" / "dam_mesh_classical.vtkhdf").diagnostics()
    assert np.all(classical["fallback"] == 0)
    assert np.all(classical["equidistribution"] < 0.5 * uniform["equidistribution"])
