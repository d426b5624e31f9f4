"""Sweeps on a local Ray: expansion, manifest, retries after a killed worker, resumability,
and the torch dataset over the results."""

import json

import pytest
import torch

from engine.scene.errors import SceneError
from engine.sweep.dataset import SweepFrames, SweepTrajectories
from engine.sweep.execute import run_sweep
from engine.sweep.spec import load_sweep

SCENE = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.04
frame_dt = 0.01

[output]
fields = ["velocity", "J"]

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.2, 0.2]
max = [0.3, 0.3]
"""

KILLER = """
import os, signal
from pathlib import Path
from engine.hooks import hookimpl

@hookimpl
def engine_frame(simulation, frame):
    marker = Path(simulation.scene.output.path + ".killed")
    if frame == 2 and not marker.exists():
        marker.write_text("once")
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run, the first time only
"""


def write_sweep(folder, axes: str, extra: str = "") -> object:
    (folder / "base.toml").write_text(SCENE + extra)
    (folder / "sweep.toml").write_text(
        f'[sweep]\nscene = "base.toml"\noutput_dir = "out"\nretries = 1\nsamples = 2\n{axes}'
    )
    return load_sweep(folder / "sweep.toml")


AXES = """
[[axes]]
key = "materials.jelly.youngs_modulus"
values = [1.0e4, 2.0e4]

[[axes]]
key = "bodies[0].velocity"
values = [[0.0, 0.0], [0.5, 0.0]]

[[axes]]
key = "materials.jelly.density"
uniform = [500.0, 2000.0]
log = true
"""


def test_axes_expand_into_a_product_with_seeded_samples(tmp_path):
    sweep = write_sweep(tmp_path, AXES)
    assert len(sweep.runs) == 2 * 2 * 2
    densities = {run.params["materials.jelly.density"] for run in sweep.runs}
    assert len(densities) == 2 and all(500 <= d <= 2000 for d in densities)
    assert [run.id for run in write_sweep(tmp_path, AXES).runs] == [run.id for run in sweep.runs]
    linspace = write_sweep(
        tmp_path, '[[axes]]\nkey = "simulation.end_time"\nlinspace = [0.02, 0.04, 3]\n'
    )
    assert [run.params["simulation.end_time"] for run in linspace.runs] == [0.02, 0.03, 0.04]


def test_bad_sweep_files_are_reported(tmp_path):
    with pytest.raises(SceneError, match="exactly one of values, linspace or uniform"):
        write_sweep(tmp_path, '[[axes]]\nkey = "seed"\nvalues = [1]\nuniform = [0, 1]\n')
    with pytest.raises(SceneError, match="Extra inputs"):
        write_sweep(tmp_path, '[[axes]]\nkey = "seed"\nvalus = [1]\n')


def test_small_sweep_with_a_killed_worker_and_a_failing_run(tmp_path):
    (tmp_path / "killer.py").write_text(KILLER)
    axes = '[[axes]]\nkey = "materials.jelly.youngs_modulus"\nvalues = [1.0e4, 2.0e4, -1.0]\n'
    sweep = write_sweep(tmp_path, axes, extra='\n[plugins]\nload = ["killer.py"]\n')
    manifest = run_sweep(sweep, workers=2, quiet=True)
    records = {r["params"]["materials.jelly.youngs_modulus"]: r for r in manifest.runs.values()}
    for modulus in (1.0e4, 2.0e4):  # killed once each, retried, done
        record = records[modulus]
        assert record["status"] == "done" and record["attempts"] == 2
        assert "worker lost" in record["errors"][0]
        assert record["seconds"] > 0
    bad = records[-1.0]
    assert bad["status"] == "failed" and bad["attempts"] == 2
    assert "youngs_modulus" in bad["error"] and "greater than 0" in bad["error"]
    saved = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert saved["runs"] == manifest.runs

    again = run_sweep(load_sweep(tmp_path / "sweep.toml"), workers=2, quiet=True)
    for modulus in (1.0e4, 2.0e4):  # finished runs are skipped on a re-run
        record = next(
            r
            for r in again.runs.values()
            if r["params"]["materials.jelly.youngs_modulus"] == modulus
        )
        assert record["attempts"] == 2

    trajectories = SweepTrajectories(tmp_path / "out", fields=("velocity", "J"))
    assert len(trajectories) == 2
    item = trajectories[0]
    assert item["positions"].shape == (5, item["positions"].shape[1], 2)
    assert item["velocity"].shape == item["positions"].shape and item["J"].ndim == 2
    assert item["positions"].dtype == torch.float32
    frames = SweepFrames(tmp_path / "out")
    assert len(frames) == 2 * 4
    pair = frames[3]
    assert pair["positions"].shape == pair["next_positions"].shape


def test_engine_sweep_command_runs_and_summarises(tmp_path, capsys):
    from engine.cli import main

    write_sweep(tmp_path, '[[axes]]\nkey = "simulation.seed"\nvalues = [1, 2]\n')
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 done, 0 failed of 2 runs" in out
    assert len(list((tmp_path / "out").glob("run_*.vtkhdf"))) == 2


def test_the_readme_sweep_example_expands_into_valid_scenes(tmp_path):
    from readme_blocks import ROOT, blocks

    from engine.scene.loader import load_scene

    example = next(block for block in blocks("toml") if "[sweep]" in block)
    (tmp_path / "scenes").symlink_to(ROOT / "scenes")
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "sweep.toml").write_text(example)
    sweep = load_sweep(tmp_path / "sweeps" / "sweep.toml")
    assert len(sweep.runs) == 2 * 3 * 3
    for run in sweep.runs[:3]:
        scene = load_scene(sweep.scene, run.overrides).scene
        assert scene.materials["water"].viscosity == run.params["materials.water.viscosity"]
        assert scene.simulation.gravity[1] == run.params["simulation.gravity[1]"]
