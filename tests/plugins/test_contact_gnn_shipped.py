"""The shipped contact network (assets/models/contact_2d.pt) beats the built-in contact at the
coarse resolution on a held-out scene: the `drop` scene of `engine experiment contact` (the
example scene scenes/contact_gnn_2d.toml; none of the training sweeps' draws). Reference: the
built-in contact at four times the resolution, the experiment's reference; measure: each moving
body's centroid trajectory error over its size, mean over frames (README "Learning contact")."""

from pathlib import Path

import pytest

from engine.diff.contact_experiment import SCENES, compare, simulate

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "assets" / "models" / "contact_2d.pt"


@pytest.mark.slow
def test_shipped_network_beats_the_built_in_coarse_contact_on_a_held_out_drop():
    drop = SCENES["drop"]
    reference = simulate(drop, 4, None)
    coarse = compare(simulate(drop, 1, None), reference, drop.measure)
    corrected = compare(simulate(drop, 1, WEIGHTS), reference, drop.measure)
    assert corrected["trajectory"] < 0.8 * coarse["trajectory"]


def test_the_example_scene_is_the_held_out_drop_with_the_shipped_network():
    import tomllib

    scene = tomllib.loads((ROOT / "scenes" / "contact_gnn_2d.toml").read_text())
    assert scene["simulation"]["contact"] == "gnn"
    assert (ROOT / "scenes" / scene["contact"]["weights"]).resolve() == WEIGHTS
    disk = scene["bodies"][1]
    assert disk["radius"] == SCENES["drop"].settings["bodies[1].radius"]
    assert disk["velocity"] == SCENES["drop"].settings["bodies[1].velocity"]
    assert (
        scene["simulation"]["body_friction"] == SCENES["drop"].settings["simulation.body_friction"]
    )
