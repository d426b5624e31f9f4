"""The shipped contact networks (assets/models/contact_2d.pt, contact_3d.pt) against the
built-in contact at the coarse resolution on held-out scenes of `engine experiment contact`
(README "Learning contact"): in 2D they beat it on the held-out drop (the example scene
scenes/contact_gnn_2d.toml), in 3D on the held-out mesh-ramp family (no mesh collider is in the
3D sweeps). Where they do not (the 2D polygon ramp, the 3D drop of scenes/contact_gnn_3d.toml)
the failure is pinned as a strict xfail, so a network that fixes it must be recorded here.
Reference: the built-in contact at four times the resolution, the experiment's reference;
measure: each moving body's centroid trajectory error over its size, mean over frames."""

import tomllib
from pathlib import Path

import pytest

from engine.diff.contact_experiment import SCENES, compare, simulate
from engine.scene.loader import parse_override

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "assets" / "models"
#: The held-out drop of each dimension: (its name in the experiment, the example scene).
DROPS = {2: ("drop", "contact_gnn_2d.toml"), 3: ("drop_3d", "contact_gnn_3d.toml")}


#: Per dimension, a held-out scene the shipped network beats (measured 0.37 of the coarse
#: error in the 2D drop, 0.71 on the 3D mesh ramp) and one it does not (1.13 on the 2D polygon
#: ramp, 1.02 in the 3D drop), by their names in the experiment.
BEATS = {2: "drop", 3: "ramp_3d"}
MISSES = {2: "ramp", 3: "drop_3d"}


def trajectory_errors(name: str, dim: int) -> tuple[float, float]:
    """The built-in coarse run's and the shipped network's trajectory errors on the
    experiment's held-out scene ``name``."""
    scene = SCENES[name]
    reference = simulate(scene, 4, None)
    coarse = compare(simulate(scene, 1, None), reference, scene.measure)
    corrected = compare(simulate(scene, 1, MODELS / f"contact_{dim}d.pt"), reference, scene.measure)
    return coarse["trajectory"], corrected["trajectory"]


@pytest.mark.slow
@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_network_beats_the_built_in_coarse_contact_on_a_held_out_scene(dim):
    coarse, corrected = trajectory_errors(BEATS[dim], dim)
    assert corrected < 0.8 * coarse


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured: no better than coarse there; README")
@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_network_does_not_yet_beat_the_coarse_run_on_another(dim):
    coarse, corrected = trajectory_errors(MISSES[dim], dim)
    assert corrected < coarse


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
