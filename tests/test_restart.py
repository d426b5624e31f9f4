"""Nothing lost: checkpoints, exact resume, SIGKILL at random moments, rollback, preflight."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import engine.io
from engine.cli import main
from engine.solver.checkpoint import read_checkpoint

SCENE = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 24
end_time = 0.12
frame_dt = 0.01

[output]
path = "out/run.vtkhdf"
fields = ["velocity", "F", "plastic_J", "rest_position"]
checkpoint_every = 3

[materials.snow]
model = "snow"
density = 400.0
youngs_modulus = 2.0e4

[[bodies]]
material = "snow"
shape = "sphere"
center = [0.25, 0.3]
radius = 0.1
velocity = [0.5, -1.0]
"""

CRASH = """
from engine.hooks import hookimpl

@hookimpl
def engine_frame(simulation, frame):
    if frame == 8:
        raise RuntimeError("power cut")
"""


def frames_of(path):
    result = engine.io.open(path)
    return [(result.points(i), result.arrays(i)) for i in range(result.n_frames)], result


def assert_same_run(first, second):
    (frames_a, result_a), (frames_b, result_b) = frames_of(first), frames_of(second)
    assert len(frames_a) == len(frames_b)
    np.testing.assert_array_equal(result_a.times, result_b.times)
    for (points_a, arrays_a), (points_b, arrays_b) in zip(frames_a, frames_b, strict=True):
        np.testing.assert_array_equal(points_a, points_b)  # bitwise on the CPU
        for name in arrays_a:
            np.testing.assert_array_equal(arrays_a[name], arrays_b[name])


@pytest.fixture
def reference(scene_file, tmp_path):
    """The uninterrupted run."""
    path = scene_file(SCENE)
    target = tmp_path / "reference.vtkhdf"
    assert main(["run", str(path), "-q", "--set", f'output.path="{target}"']) == 0
    return path, target


def test_resume_after_a_crash_gives_the_same_frames(reference, tmp_path, capsys):
    scene, uninterrupted = reference
    crash = tmp_path / "crash.py"
    crash.write_text(CRASH)
    assert main(["run", str(scene), "-q", "--plugin", str(crash)]) == 1
    output = tmp_path / "out" / "run.vtkhdf"
    assert engine.io.open(output).n_frames == 8  # frames 0..7 written before the crash
    assert main(["run", str(scene), "-q", "--resume"]) == 0  # from the checkpoint at frame 6
    assert_same_run(output, uninterrupted)


def test_a_run_is_also_checkpointed_by_wall_clock_time(reference, tmp_path):
    """A run that dies before its first checkpoint by frame count still resumes: a checkpoint
    also follows any frame that ends output.checkpoint_seconds after the last one."""
    scene, uninterrupted = reference
    crash = tmp_path / "crash.py"
    crash.write_text(CRASH)
    by_time = ["--set", "output.checkpoint_every=1000", "--set", "output.checkpoint_seconds=1e-6"]
    assert main(["run", str(scene), "-q", "--plugin", str(crash), *by_time]) == 1
    checkpoint, _ = read_checkpoint(tmp_path / "out" / "run_checkpoint.h5")
    assert checkpoint.frame == 7  # the last frame before the crash, not a multiple of 1000
    assert main(["run", str(scene), "-q", "--resume", *by_time]) == 0
    assert_same_run(tmp_path / "out" / "run.vtkhdf", uninterrupted)


def test_engine_resume_reads_scene_and_plugins_from_the_result(reference, tmp_path):
    scene, uninterrupted = reference
    assert main(["run", str(scene), "-q", "--set", "simulation.end_time=0.12"]) == 0
    output = tmp_path / "out" / "run.vtkhdf"
    assert main(["resume", str(output), "-q"]) == 0  # nothing left but the last frame again
    assert_same_run(output, uninterrupted)


def test_resume_refuses_a_changed_scene_or_a_missing_checkpoint(scene_file, capsys):
    path = scene_file(SCENE)
    assert main(["run", str(path), "-q", "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["run", str(path), "-q"]) == 0
    assert main(["run", str(path), "-q", "--resume", "--set", "simulation.seed=3"]) == 2
    assert "the scene changed since the checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_at_random_moments_never_costs_finished_frames(scene_file, tmp_path):
    """Kill the run at random moments, many times; every time the file opens with intact
    frames and --resume carries on; the finished run equals the uninterrupted one."""
    scene = scene_file(SCENE)
    longer = ["--set", "simulation.end_time=1.0"]  # 100 frames, about 3 s of work
    uninterrupted = tmp_path / "reference.vtkhdf"
    assert main(["run", str(scene), "-q", *longer, "--set", f'output.path="{uninterrupted}"']) == 0
    output = tmp_path / "out" / "run.vtkhdf"
    rng = random.Random(7)
    command = [sys.executable, "-m", "engine.cli", "run", str(scene), "-q", *longer]
    kills = 0
    checkpoint = tmp_path / "out" / "run_checkpoint.h5"
    for attempt in range(10):
        resume = ["--resume"] if attempt and checkpoint.exists() else ["--overwrite"]
        process = subprocess.Popen(command + resume)
        time.sleep(rng.uniform(1.2, 3.5))  # start-up takes about 1.1 s
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        if output.exists():
            result = engine.io.open(output)
            for index in range(result.n_frames):
                assert np.all(np.isfinite(result.points(index)))
                assert len(result.arrays(index)["F"]) == len(result.points(index))
        if process.returncode == 0:
            break
    assert kills >= 3
    if not output.exists() or engine.io.open(output).n_frames < 101:
        # on a loaded machine every kill may have come before the first checkpoint
        resume = ["--resume"] if checkpoint.exists() else ["--overwrite"]
        assert main(["run", str(scene), "-q", *resume, *longer]) == 0
    assert_same_run(output, uninterrupted)


def test_unstable_steps_are_rolled_back_with_smaller_dt(scene_file, capsys):
    stiff = SCENE.replace("frame_dt = 0.01", "frame_dt = 0.01\ndt = 0.005").replace(
        "youngs_modulus = 2.0e4", "youngs_modulus = 2.0e6"
    )
    assert main(["run", str(scene_file(stiff)), "--set", "simulation.max_retries=6"]) == 0
    err = capsys.readouterr().err
    assert "warning: CFL condition violated" in err and "retrying from t = 0 s with dt x 0.5" in err


def test_unwritable_output_is_refused_before_the_run(scene_file, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    path = scene_file(SCENE)
    assert main(["run", str(path), "--set", f'output.path="{blocker / "x.vtkhdf"}"']) == 2
    err = capsys.readouterr().err
    assert "output.path: cannot write to" in err and "fix:" in err


def test_scene_too_big_for_memory_is_refused_before_the_run(scene_file, capsys):
    huge = SCENE.replace("dim = 2", "dim = 3").replace("[0.5, 0.5]", "[0.5, 0.5, 0.5]")
    huge = (
        huge.replace("resolution = 24", "resolution = 2000")
        .replace("center = [0.25, 0.3]", "center = [0.25, 0.3, 0.25]")
        .replace("velocity = [0.5, -1.0]", "velocity = [0.5, -1.0, 0.0]")
    )
    assert main(["run", str(scene_file(huge))]) == 2
    err = capsys.readouterr().err
    assert "simulation.resolution" in err and "GiB of memory" in err


def test_too_little_disk_is_refused_before_the_run(scene_file, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    assert main(["run", str(scene_file(SCENE))]) == 2
    assert "is less than the first 3 frames need" in capsys.readouterr().err


def test_the_cost_is_estimated_before_the_run(scene_file):
    """A modulus typed a million times too stiff: millions of steps, warned before the run."""
    stiff = SCENE.replace("youngs_modulus = 2.0e4", "youngs_modulus = 2.0e12").replace(
        "end_time = 0.12", "end_time = 1.0"
    )
    path = scene_file(stiff)
    from engine.preflight import estimate
    from engine.scene.loader import load_scene

    cost = estimate(load_scene(path))
    assert cost.steps > 1e6 and cost.seconds > 3600
    normal = estimate(load_scene(scene_file(SCENE, name="normal.toml")))
    assert normal.steps < 1e4 and normal.seconds < 3600


def test_the_run_warns_when_its_measured_rate_means_a_long_run(scene_file, monkeypatch, capsys):
    """The estimate before the run assumes a rate; once two frames ran, the run's own rate
    is checked against the same limit (here lowered to 1 ms so that a short run trips it)."""
    import engine.runner

    monkeypatch.setattr(engine.runner, "LONG_RUN", 1e-3)
    assert main(["run", str(scene_file(SCENE))]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: at the rate measured over the last frame (") == 1


def test_an_output_that_will_not_fit_the_disk_is_refused_unless_yes(
    scene_file, monkeypatch, capsys
):
    import shutil

    from engine.preflight import estimate_particles, frame_bytes
    from engine.scene.loader import load_scene

    path = scene_file(SCENE)
    loaded = load_scene(path)
    free = 4 * frame_bytes(loaded, estimate_particles(loaded))  # 3 frames fit, 13 do not
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(free, 0, free))
    assert main(["run", str(path), "-q"]) == 2
    assert "the whole output needs up to" in capsys.readouterr().err
    assert main(["run", str(path), "-q", "--yes"]) == 0


MESH = """
[[output.meshes]]
name = "fields"
nodes = [65, 33]
"""


def test_the_output_meshes_are_in_the_disk_estimate(scene_file, monkeypatch, capsys):
    """Each mesh frame: 65 x 33 nodes of a point, the monitor and two fields (a tensor at most,
    f64) and 64 x 32 quads of four node ids, an offset and a type; a disk on which the particles'
    first frames would fit but the mesh's do not is refused."""
    import shutil

    from engine.preflight import estimate, estimate_particles, frame_bytes
    from engine.scene.loader import load_scene

    plain = load_scene(scene_file(SCENE, name="plain.toml"))
    path = scene_file(SCENE.replace("[materials.snow]", MESH + "\n[materials.snow]"))
    meshed = load_scene(path)
    per_frame = 65 * 33 * 8 * (3 + 1 + 9 * 2) + 64 * 32 * (8 * 4 + 8 + 1)
    assert estimate(meshed).output_bytes - estimate(plain).output_bytes == 13 * per_frame
    free = 4 * frame_bytes(plain, estimate_particles(plain))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(free, 0, free))
    assert main(["run", str(path), "-q"]) == 2
    assert "is less than the first 3 frames need" in capsys.readouterr().err
