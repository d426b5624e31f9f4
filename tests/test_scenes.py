"""Every example scene validates and runs (for two frames here; about a minute in full)."""

import tomllib
from pathlib import Path

import numpy as np
import pytest

import engine.io
from engine.cli import main

SCENES = sorted((Path(__file__).resolve().parents[1] / "scenes").glob("*.toml"))


def test_the_examples_are_all_here():
    names = {path.stem for path in SCENES}
    assert {
        "dam_break_2d",
        "jelly_in_water_3d",
        "sand_collapse_2d",
        "snowball_3d",
        "plasticine_press_3d",
        "mesh_body_3d",
    } <= names


@pytest.mark.parametrize("scene", SCENES, ids=[path.stem for path in SCENES])
def test_example_runs_two_frames(scene, tmp_path):
    frame_dt = tomllib.loads(scene.read_text())["simulation"]["frame_dt"]
    output = tmp_path / f"{scene.stem}.vtkhdf"
    code = main(
        [
            "run",
            str(scene),
            "--quiet",
            "--set",
            f"simulation.end_time={2 * frame_dt}",
            "--set",
            f'output.path="{output}"',
        ]
    )
    assert code == 0
    result = engine.io.open(output)
    assert result.n_frames == 3
    first, last = result.points(0), result.points(-1)
    # a few hundred particles at least: the coarse 3D contact example, a sphere 4.5 cells
    # across, has the fewest
    assert len(first) > 150 and np.all(np.isfinite(last))
    assert np.abs(last - first).max() > 0  # something moved
    assert set(result.fields) == set(tomllib.loads(scene.read_text())["output"]["fields"])


def test_same_scene_and_seed_give_the_same_result(tmp_path):
    """Bitwise on the CPU: the scatter is one ordered pass and the rest is per-particle."""
    scene = next(path for path in SCENES if path.stem == "dam_break_2d")
    results = []
    for run in range(2):
        output = tmp_path / f"run{run}.vtkhdf"
        assert (
            main(
                [
                    "run",
                    str(scene),
                    "-q",
                    "--set",
                    "simulation.end_time=0.03",
                    "--set",
                    f'output.path="{output}"',
                ]
            )
            == 0
        )
        results.append(engine.io.open(output))
    for frame in range(results[0].n_frames):
        np.testing.assert_array_equal(results[0].points(frame), results[1].points(frame))
        np.testing.assert_array_equal(
            results[0].arrays(frame)["velocity"], results[1].arrays(frame)["velocity"]
        )
