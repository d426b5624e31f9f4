"""The shipped contact networks (assets/models/contact_2d.pt, contact_3d.pt) beat the built-in
contact at the coarse resolution on a held-out scene: the `drop` scenes of `engine experiment
contact` (the example scenes scenes/contact_gnn_2d.toml and contact_gnn_3d.toml; none of the
training sweeps' draws). Reference: the built-in contact at four times the resolution, the
experiment's reference; measure: each moving body's centroid trajectory error over its size,
mean over frames (README "Learning contact")."""

import tomllib
from pathlib import Path

import pytest

from engine.diff.contact_experiment import SCENES, compare, simulate
from engine.scene.loader import parse_override

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "assets" / "models"
#: The held-out drop of each dimension: (its name in the experiment, the example scene).
DROPS = {2: ("drop", "contact_gnn_2d.toml"), 3: ("drop_3d", "contact_gnn_3d.toml")}


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_network_beats_the_built_in_coarse_contact_on_a_held_out_drop(dim):
    drop = SCENES[DROPS[dim][0]]
    reference = simulate(drop, 4, None)
    coarse = compare(simulate(drop, 1, None), reference, drop.measure)
    corrected = compare(simulate(drop, 1, MODELS / f"contact_{dim}d.pt"), reference, drop.measure)
    assert corrected["trajectory"] < 0.8 * coarse["trajectory"]


def value_at(tree: dict, key: str):
    """The value of a scene key such as ``bodies[1].velocity`` (as ``--set`` reads it) in a
    parsed scene."""
    for part in parse_override(f"{key}=0")[0]:
        tree = tree[part]
    return tree


@pytest.mark.parametrize("dim", [2, 3])
def test_the_example_scene_is_the_held_out_drop_with_the_shipped_network(dim):
    name, example = DROPS[dim]
    scene = tomllib.loads((ROOT / "scenes" / example).read_text())
    assert scene["simulation"]["contact"] == "gnn"
    weights = (ROOT / "scenes" / scene["contact"]["weights"]).resolve()
    assert weights == MODELS / f"contact_{dim}d.pt"
    for key, value in SCENES[name].settings.items():
        assert value_at(scene, key) == value, key
