"""The shipped contact networks (assets/models/contact_2d.pt, contact_3d.pt) against the
built-in contact at the coarse resolution on held-out scenes of `engine experiment contact`:
they beat it on the held-out ramp family (a collider family none of the training sweeps holds);
on the held-out drops (the example scenes scenes/contact_gnn_2d.toml and contact_gnn_3d.toml)
they do not, since the training data's frictional planes are `separate` (README "Learning
contact": the 2D disk gains energy at the domain's top wall, the 3D sphere is no closer), and
that failure is pinned as a strict xfail, so a network that fixes it must be recorded here.
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


#: The held-out ramp of each dimension, by its name in the experiment.
RAMPS = {2: "ramp", 3: "ramp_3d"}
#: The margin "beats" asks for: measured 0.70 (2D) and 0.79 (3D) of the coarse error.
MARGIN = 0.9


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
def test_shipped_network_beats_the_built_in_coarse_contact_on_the_held_out_ramp(dim):
    coarse, corrected = trajectory_errors(RAMPS[dim], dim)
    assert corrected < MARGIN * coarse


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="trained on separate planes, the networks no longer beat the coarse drop: measured "
    "0.2225 against 0.1988 (2D), 0.2491 against 0.2453 (3D); README 'Learning contact'",
)
@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_network_beats_the_built_in_coarse_contact_on_the_held_out_drop(dim):
    coarse, corrected = trajectory_errors(DROPS[dim][0], dim)
    assert corrected < 0.8 * coarse


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
