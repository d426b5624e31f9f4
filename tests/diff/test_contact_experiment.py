"""The metrics of `engine experiment contact` on motions whose answers are known by hand, and
its held-out slide against Coulomb's law."""

from dataclasses import replace

import numpy as np
import pytest

from engine.cli import main
from engine.diff.contact_experiment import (
    SCENES,
    Motion,
    best_rotations,
    build,
    compare,
    one_frame_error,
    restitution,
    rotation_error,
    simulate,
    sliding,
    targets,
)
from engine.geometry.rotation import rotation_matrix

TIMES = np.arange(11) * 0.01


def falling_ball(rebound: float, offset: float = 0.0) -> Motion:
    """One body (size 0.1 m) falling at 2 m/s onto a floor at frame 5, leaving at ``rebound``
    times that speed, shifted by ``offset`` m after the impact; a resting floor body."""
    vy = np.where(np.arange(11) < 5, -2.0, 2.0 * rebound)
    y = np.concatenate([[0.0], np.cumsum(vy[1:] * 0.01)]) + np.where(np.arange(11) >= 5, offset, 0)
    centroids = np.zeros((11, 2, 2))
    centroids[:, 1, 1] = 0.5 + y
    velocities = np.zeros((11, 2, 2))
    velocities[:, 1, 1] = vy
    return Motion(TIMES, centroids, velocities, np.zeros((11, 2)), np.array([1.0, 0.1]), 1.0)


def test_restitution_and_sliding_by_hand():
    ball = falling_ball(0.6)
    moving = np.array([False, True])
    assert restitution(ball, moving) == pytest.approx(0.6)
    assert sliding(ball, moving) == pytest.approx(abs(ball.centroids[-1, 1, 1] - 0.5))


def test_restitution_is_the_first_rebound_not_a_later_faster_fall():
    """A ball that leaves the floor at 0.6 of its 2 m/s impact speed, then comes down at 3 m/s
    (off the domain's top wall, faster than it first fell): the restitution is still 0.6."""
    ball = falling_ball(0.6)
    ball.velocities[8:, 1, 1] = -3.0
    assert restitution(ball, np.array([False, True])) == pytest.approx(0.6)
    ball.velocities[5:, 1, 1] = -1.0  # it never leaves the floor
    assert restitution(ball, np.array([False, True])) == 0.0


def test_compare_counts_only_moving_bodies_relative_to_their_size():
    reference, run = falling_ball(0.8), falling_ball(0.8, offset=0.01)
    metrics = compare(run, reference, "restitution")
    assert metrics["trajectory"] == pytest.approx(0.01 / 0.1 * 6 / 11)  # 6 of 11 frames off
    assert metrics["early"] == pytest.approx(0.1)  # the impact frame on: all 0.01 m off
    assert metrics["restitution_error"] == pytest.approx(0.0)
    assert compare(falling_ball(0.5), reference, "restitution")["restitution_error"] == (
        pytest.approx(0.3)
    )


def test_targets_are_ratios_of_mean_errors_and_costs():
    class Report:
        group = "in ranges"
        metrics = {
            "coarse": {"trajectory": 0.2, "cost": 1.0, "one_frame": 0.4},
            "coarse + GNN": {"trajectory": 0.05, "cost": 2.0, "one_frame": 0.1},
            "2x": {"trajectory": 0.1, "cost": 8.0, "one_frame": 0.2},
        }

    got = targets([Report()])
    assert got == {
        "gnn_over_coarse": 0.25,
        "gnn_over_2x": 0.5,
        "cost_gnn_over_2x": 0.25,
        "one_frame_gnn_over_coarse": 0.25,
    }


def test_one_frame_error_is_small_against_the_run_itself_and_counts_what_contact_does():
    """From a run's own states, carried over to its own particles (an affine fit to each
    particle's nearest neighbours at rest: a smoothing), one frame on stays close to the run."""
    drop = SCENES["drop"]
    itself = simulate(drop, 1, None, particles=True)
    assert len(itself.particles) == len(itself.times) and itself.rest.shape[1] == 2
    assert one_frame_error(drop, 1, None, itself) < 0.1


def test_3d_rotations_are_fitted_per_body_and_compared_by_their_angle():
    rng = np.random.default_rng(3)
    start = rng.normal(size=(40, 3))
    body_id = np.repeat([0, 1], 20)
    turn = rotation_matrix(0.7 * np.array([1.0, 2.0, 2.0]) / 3.0)  # 0.7 rad
    x = start.copy()
    x[body_id == 1] = start[body_id == 1] @ turn.T + [0.3, -1.0, 2.0]  # turned and moved
    fitted = best_rotations(x, start, body_id, 2)
    assert np.allclose(fitted[0], np.eye(3)) and np.allclose(fitted[1], turn)
    assert rotation_error(fitted[None], np.eye(3)[None, None])[0] == pytest.approx([0.0, 0.7])
    wrapped = rotation_error(np.array([[3.0]]), np.array([[-3.0]]))  # 2D: angles, wrapped
    assert wrapped[0, 0] == pytest.approx(2 * np.pi - 6)


def test_3d_scenes_are_the_3d_experiments(capsys):
    assert {name for name, s in SCENES.items() if s.dim == 3} == {
        "drop_3d",
        "throw_3d",
        "ramp_3d",
        "drop_fast_3d",
    }
    assert main(["experiment", "contact", "--scene", "drop_3d", "--weights", __file__]) == 2
    assert "not a 2D scene: add --dim 3" in capsys.readouterr().err


def slide_after(boundary: str, seconds: float = 0.3) -> tuple[float, float]:
    """The experiment's held-out slide (1.2 m/s down a slope of atan(2.0 / 9.661) = 11.7
    degrees, mu = 0.5, at the coarse 40 cells, gravity switched on at once, so the box rings on
    the slope) with its plane's ``boundary``: the distance the box slid (m) and its speed (m/s)
    after ``seconds``."""
    held_out = SCENES["slide"]
    held_out = replace(held_out, settings={**held_out.settings, "colliders[0].boundary": boundary})
    sim = build(held_out, 1, None)
    mass = sim.numpy("mass")
    start = sim.numpy("x")[:, 0] @ mass / mass.sum()
    sim.advance_to(seconds)
    slid = sim.numpy("x")[:, 0] @ mass / mass.sum() - start
    return float(slid), float(sim.numpy("v")[:, 0] @ mass / mass.sum())


def test_the_held_out_slide_brakes_as_coulomb_says_and_a_slip_plane_brakes_it_too_hard():
    """The box decelerates at g_n mu - g_t = 0.5 x 9.661 - 2.0 = 2.83 m/s^2 (Coulomb's law of
    dry friction, as in tests/solver/test_friction.py): after 0.3 s it has slid 1.2 x 0.3 -
    2.83 x 0.3^2 / 2 = 0.2326 m at 1.2 - 2.83 x 0.3 = 0.351 m/s. On a ``separate`` plane (the
    family's) it does, within 3 % and 0.03 m/s (measured 0.2310 m and 0.364 m/s; 0.231 m,
    0.35 m/s at 80 and 160 cells). A ``slip`` plane holds the ringing box back as it rises,
    with no friction then, while its friction counts every push: it has all but stopped, 0.152
    m down at 0.016 m/s (0.128 m at 80 cells), which is why the contact families' frictional
    colliders are ``separate``."""
    decel = 0.5 * 9.661 - 2.0
    slid, speed = slide_after("separate")
    assert slid == pytest.approx(1.2 * 0.3 - decel * 0.3**2 / 2, rel=0.03)
    assert speed == pytest.approx(1.2 - decel * 0.3, abs=0.03)
    held_slid, held_speed = slide_after("slip")
    assert held_slid < 0.7 * slid and held_speed < 0.1
