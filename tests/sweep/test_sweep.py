"""Sweeps on one local Ray (2 CPUs, started once, from a folder that holds a folder named
``engine``): retries after a killed worker, a failing run told on the console, Ctrl-C,
resuming, the progress bar's last state and the torch datasets over the results."""

import contextlib
import json
import re

import pytest
import ray
import torch

from engine.cli import main
from engine.scene.errors import SceneError
from engine.sweep.dataset import SweepFrames, SweepTrajectories
from engine.sweep.execute import run_sweep, start_ray
from engine.sweep.spec import load_sweep

PLUGIN = """
import os, signal
from pathlib import Path
from engine.hooks import hookimpl

@hookimpl
def engine_run_start(simulation):  # before the first step: the attempts that end here are quick
    if simulation.scene.materials["jelly"].youngs_modulus > 1.5e4:
        raise RuntimeError("this run cannot succeed")
    marker = Path(simulation.scene.output.path + ".killed")
    if not marker.exists():
        marker.write_text("once")
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run, the first time only
"""


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    """One Ray for the module, started from a folder whose ``engine`` folder must not hide the
    package from the workers (Ray puts the driver's folder first on their import path)."""
    folder = tmp_path_factory.mktemp("cwd")
    (folder / "engine").mkdir()
    (folder / "engine" / "__init__.py").write_text('raise ImportError("not the engine")\n')
    with contextlib.chdir(folder):
        assert start_ray(workers=2)
    yield
    ray.shutdown()


def manifest_runs(path) -> dict:
    """``{youngs_modulus: record}`` from the sweep's manifest.json."""
    runs = json.loads((path.parent / "out" / "manifest.json").read_text())["runs"]
    return {r["params"]["materials.jelly.youngs_modulus"]: r for r in runs.values()}


def last_bar(err: str) -> str:
    """The progress bar as it was drawn last."""
    return [part for part in re.split(r"[\r\n]", err) if "queued" in part][-1]


def test_a_killed_worker_is_retried_and_a_failing_run_is_told(write_sweep, tmp_path, capsys):
    (tmp_path / "killer.py").write_text(PLUGIN)
    path = write_sweep(scene_extra='\n[plugins]\nload = ["killer.py"]\n')
    assert main(["sweep", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "1 done, 1 failed of 2 runs" in out
    assert "failed after 2 attempts" in err and "this run cannot succeed" in err
    assert "done 1, failed 1, running 0, queued 0" in last_bar(err)
    records = manifest_runs(path)
    good, bad = records[1.0e4], records[2.0e4]
    assert good["status"] == "done" and good["attempts"] == 2 and good["seconds"] > 0
    assert "worker lost" in good["errors"][0]
    assert bad["status"] == "failed" and bad["attempts"] == 2 and len(bad["errors"]) == 2

    trajectories = SweepTrajectories(path.parent / "out", fields=("velocity", "J"))
    assert len(trajectories) == 1
    item = trajectories[0]
    assert item["positions"].shape == (3, item["positions"].shape[1], 2)
    assert item["velocity"].shape == item["positions"].shape and item["J"].ndim == 2
    assert item["positions"].dtype == torch.float32
    frames = SweepFrames(path.parent / "out")
    assert len(frames) == 2
    assert frames[1]["positions"].shape == frames[1]["next_positions"].shape


def test_ctrl_c_leaves_queued_runs_pending_and_a_rerun_resumes(write_sweep, monkeypatch, capsys):
    path = write_sweep(sweep_extra="[sweep.resources]\ncpus = 2")  # one run at a time

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ray, "wait", interrupt)
        assert main(["sweep", str(path)]) == 130
    assert "again to resume" in capsys.readouterr().err
    first, second = manifest_runs(path).values()
    assert (first["status"], first["attempts"]) == ("interrupted", 1)
    assert (second["status"], second["attempts"], second["started"]) == ("pending", 0, None)

    path.write_text(path.read_text().replace("cpus = 2", "cpus = 1"))  # the same runs, 2 at once
    assert main(["sweep", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "2 done, 0 failed of 2 runs" in out
    assert "2/2" in last_bar(err) and "done 2, failed 0, running 0, queued 0" in last_bar(err)
    assert [r["attempts"] for r in manifest_runs(path).values()] == [1, 1]
    assert len(list((path.parent / "out").glob("run_*.vtkhdf"))) == 2

    assert main(["sweep", str(path), "--quiet"]) == 0  # finished runs are skipped
    assert [r["attempts"] for r in manifest_runs(path).values()] == [1, 1]


def test_runs_the_cluster_cannot_hold_stop_the_sweep(write_sweep, monkeypatch):
    path = write_sweep(sweep_extra="[sweep.resources]\ngpus = 1")
    real_wait = ray.wait

    def wait(refs, **kwargs):  # a run that cannot be placed would be waited for forever
        ready, rest = real_wait(refs, **kwargs, timeout=30)
        assert ready, "a run was submitted that the cluster cannot place"
        return ready, rest

    monkeypatch.setattr(ray, "wait", wait)
    with pytest.raises(SceneError) as caught:
        run_sweep(load_sweep(path), quiet=True)
    line = path.read_text().splitlines().index("gpus = 1") + 1
    assert f"sweep.toml:{line}: sweep.resources.gpus: a run asks for 1 GPU" in str(caught.value)
    assert {r["status"] for r in manifest_runs(path).values()} == {"pending"}
