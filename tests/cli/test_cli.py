"""The `engine` command: run, validate, schema; clean errors; readable partial output."""

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points

import numpy as np

import engine.io
from engine.cli import main

SMALL = """\
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.04
frame_dt = 0.01

[output]
path = "out/small.vtkhdf"
fields = ["velocity", "material_id", "body_id", "J", "F", "stress", "C", "mass", "volume"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e4

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.2, 0.2]
"""


def test_run_writes_every_frame_with_the_requested_fields(scene_file, capsys):
    path = scene_file(SMALL)
    assert main(["run", str(path)]) == 0
    summary = capsys.readouterr()
    assert "5 frames" in summary.out and "particle-steps/s" in summary.out
    result = engine.io.open(path.parent / "out" / "small.vtkhdf")
    assert result.n_frames == 5
    np.testing.assert_allclose(result.times, [0, 0.01, 0.02, 0.03, 0.04], atol=1e-9)
    arrays = result.arrays(-1)
    n = len(result.points(-1))
    assert arrays["F"].shape == (n, 2, 2) and arrays["stress"].shape == (n, 2, 2)
    assert arrays["velocity"].shape == (n, 2) and arrays["material_id"].dtype.kind == "i"
    diag = result.diagnostics()
    assert diag["momentum"].shape == (5, 2)
    assert np.all(diag["mass"] == diag["mass"][0])
    assert "bulk_modulus" in result.scene_text
    assert result.metadata["engine_version"]
    assert "frame 4/4" in summary.err  # plain log lines when not on a terminal


def test_quiet_prints_nothing(scene_file, capsys):
    assert main(["run", str(scene_file(SMALL)), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_set_overrides_and_string_values(scene_file, tmp_path):
    path = scene_file(SMALL)
    target = tmp_path / "elsewhere.vtkhdf"
    assert (
        main(
            [
                "run",
                str(path),
                "-q",
                "--set",
                "simulation.end_time=0.02",
                "--set",
                f'output.path="{target}"',
            ]
        )
        == 0
    )
    assert engine.io.open(target).n_frames == 3


def test_validate_and_schema(scene_file, capsys):
    assert main(["validate", str(scene_file(SMALL))]) == 0
    assert "valid (2D, 1 materials, 1 bodies" in capsys.readouterr().out
    assert main(["schema"]) == 0
    assert "simulation" in json.loads(capsys.readouterr().out)["properties"]


def test_invalid_scene_exits_2_with_a_message(scene_file, capsys):
    code = main(["run", str(scene_file(SMALL.replace("density = 1000.0", "density = 0")))])
    err = capsys.readouterr().err
    assert code == 2
    assert "scene.toml:14: materials.water.density" in err and "Traceback" not in err


def test_blow_up_stops_with_body_time_and_advice(scene_file, capsys):
    """A fixed dt far above the CFL limit stops the run and keeps earlier frames."""
    unstable = SMALL.replace("frame_dt = 0.01", "frame_dt = 0.01\ndt = 0.005").replace(
        "bulk_modulus = 1.0e4", "bulk_modulus = 1.0e6"
    )
    path = scene_file(unstable)
    assert main(["run", str(path), "-q", "--set", "simulation.max_retries=0"]) == 1
    err = capsys.readouterr().err
    assert "CFL condition violated" in err and "in body 0" in err and "t = " in err
    assert "fix: use dt <=" in err
    assert engine.io.open(path.parent / "out" / "small.vtkhdf").n_frames >= 1


def test_particles_leaving_the_domain_are_reported(scene_file, capsys):
    fast = SMALL.replace("max = [0.2, 0.2]", "max = [0.2, 0.2]\nvelocity = [0.0, 100.0]")
    fast = fast.replace("frame_dt = 0.01", "frame_dt = 0.01\ndt = 0.005")
    assert main(["run", str(scene_file(fast)), "-q", "--set", "simulation.max_retries=0"]) == 1
    err = capsys.readouterr().err
    assert "particles left the domain in body 0 at t = 0.005 s" in err
    assert "enlarge simulation.domain" in err


def start_long_run(scene_file, stderr, *changes: tuple[str, str]) -> tuple:
    """``engine run`` of 5 s of SMALL, with ``(old, new)`` text ``changes``, in a child process
    that handles SIGINT as in a terminal; its scene path and process."""
    long_run = SMALL.replace("end_time = 0.04", "end_time = 5.0")
    for old, new in changes:
        long_run = long_run.replace(old, new)
    path = scene_file(long_run)
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", str(path), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return path, process


def test_killed_run_leaves_every_finished_frame_readable(scene_file):
    """SIGKILL in the middle of a run: the file opens and holds intact frames."""
    path, process = start_long_run(
        scene_file, subprocess.DEVNULL, ("frame_dt = 0.01", "frame_dt = 0.002")
    )
    output = path.parent / "out" / "small.vtkhdf"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if output.exists():
                try:
                    if engine.io.open(output).n_frames >= 4:
                        break
                except OSError:
                    pass  # the writer holds the file for a moment each frame
            time.sleep(0.05)
        time.sleep(0.013)  # land somewhere inside the stepping or writing of a frame
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    result = engine.io.open(output)
    assert result.n_frames >= 4
    for index in range(result.n_frames):
        assert np.all(np.isfinite(result.points(index)))
        assert len(result.arrays(index)["velocity"]) == len(result.points(index))
    assert np.all(np.diff(result.times) > 0)


def test_engine_console_script_is_installed():
    out = subprocess.run(["engine", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "validate", "schema", "bench"):
        assert command in out


CTRL_C_DURING_IMPORTS = """
import os, signal, sys
from importlib.abc import MetaPathFinder

class CtrlCWhileImporting(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "engine.scene.errors":  # imported halfway through engine.cli
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCWhileImporting())
from engine.console import main
sys.argv = ["engine", "validate", "nowhere.toml"]
sys.exit(main())
"""


def test_ctrl_c_while_the_command_line_imports_is_one_line():
    """SIGINT in the middle of ``import engine.cli`` (the first tenth of a second of every
    command) ended in a KeyboardInterrupt traceback: now "interrupted" and exit code 130."""
    entry = [e for e in entry_points(group="console_scripts") if e.name == "engine"]
    assert [e.value for e in entry] == ["engine.console:main"]
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_IMPORTS],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted\n"


def test_an_existing_result_is_not_overwritten_silently(scene_file, capsys):
    path = scene_file(SMALL)
    assert main(["run", str(path), "-q"]) == 0
    output = path.parent / "out" / "small.vtkhdf"
    written = output.stat().st_mtime_ns
    assert main(["run", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "output.path" in err and "already holds a result" in err and "--overwrite" in err
    assert output.stat().st_mtime_ns == written  # untouched
    assert main(["run", str(path), "-q", "--overwrite"]) == 0
    assert output.stat().st_mtime_ns != written


def test_the_summary_counts_only_this_run_and_a_finished_run_is_complete(
    scene_file, tmp_path, capsys
):
    """After a resume the rate counts the steps this process took, not those before the
    checkpoint; resuming a finished run says it is complete."""
    path = scene_file(SMALL.replace("[output]", "[output]\ncheckpoint_every = 2"))
    crash = tmp_path / "crash.py"
    crash.write_text(
        "from engine.hooks import hookimpl\n\n@hookimpl\ndef engine_frame(simulation, frame):\n"
        "    if frame == 3:\n        raise RuntimeError('power cut')\n"
    )
    assert main(["run", str(path), "-q", "--plugin", str(crash)]) == 1  # checkpoint: frame 2
    assert main(["run", str(path), "--resume", "--overwrite"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("resumed after frame 2: 5 frames, ")
    resumed = int(summary.split(" steps,")[0].split()[-1])
    assert main(["run", str(path), "--overwrite"]) == 0
    total = int(capsys.readouterr().out.split(" steps,")[0].split()[-1])
    assert 0 < resumed < total  # only the steps after frame 2
    assert main(["resume", str(path.parent / "out" / "small.vtkhdf")]) == 0
    assert "is already complete (5 frames); nothing to resume" in capsys.readouterr().out


def test_dt_records_the_step_the_solver_chose(scene_file):
    """The last step of a frame is cut short to land on the frame time; dt is the chosen one."""
    path = scene_file(SMALL.replace("frame_dt = 0.01", "frame_dt = 0.01\ndt = 0.0003"))
    assert main(["run", str(path), "-q"]) == 0
    diagnostics = engine.io.open(path.parent / "out" / "small.vtkhdf").diagnostics()
    np.testing.assert_allclose(diagnostics["dt"][1:], 3e-4)  # 0.01 / 3e-4 is not whole
    np.testing.assert_allclose(diagnostics["dt_min"][1:], 3e-4)
    np.testing.assert_allclose(diagnostics["dt_max"][1:], 3e-4)


def test_ctrl_c_stops_between_steps_and_says_how_to_resume(scene_file):
    """SIGINT while the run steps (it was lost inside Taichi's calls): exit 130 and advice."""
    path, process = start_long_run(
        scene_file, subprocess.PIPE, ("[output]", "[output]\ncheckpoint_every = 1")
    )
    output = path.parent / "out" / "small.vtkhdf"
    deadline = time.time() + 120
    while time.time() < deadline and not (path.parent / "out" / "small_checkpoint.h5").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"continue with: engine resume {output}" in err and "Traceback" not in err
