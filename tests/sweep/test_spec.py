"""Sweep files, their runs and the checks made before Ray starts (no Ray is started here)."""

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from engine.cli import main
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene
from engine.sweep.manifest import DONE, Manifest
from engine.sweep.spec import load_sweep

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


def line_of(path: Path, text: str) -> int:
    """The 1-based line of ``path`` that holds ``text``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def sweep_error(path: Path) -> str:
    with pytest.raises(SceneError) as caught:
        load_sweep(path)
    return str(caught.value)


@pytest.fixture
def no_ray(monkeypatch):
    """Ray as if not started, and starting it fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)


def test_axes_expand_into_a_product_with_seeded_samples(write_sweep):
    sweep = load_sweep(write_sweep(AXES, sweep_extra="samples = 2"))
    assert len(sweep.runs) == 2 * 2 * 2
    densities = {run.params["materials.jelly.density"] for run in sweep.runs}
    assert len(densities) == 2 and all(500 <= d <= 2000 for d in densities)
    again = load_sweep(write_sweep(AXES, sweep_extra="samples = 2"))
    assert [run.id for run in again.runs] == [run.id for run in sweep.runs]
    linspace = load_sweep(
        write_sweep('[[axes]]\nkey = "simulation.end_time"\nlinspace = [0.02, 0.04, 3]\n')
    )
    assert [run.params["simulation.end_time"] for run in linspace.runs] == [0.02, 0.03, 0.04]


def test_bad_sweep_files_are_told_with_the_sweep_files_line(write_sweep):
    path = write_sweep('[[axes]]\nkey = "simulation.seed"\nvalues = [1]\nuniform = [0, 1]\n')
    message = sweep_error(path)
    assert message.startswith(f"sweep file {path} has 1 problem")
    assert f"sweep.toml:{line_of(path, '[[axes]]')}: axes[0]: " in message
    assert "exactly one of values, linspace or uniform" in message

    path = write_sweep('[[axes]]\nkey = "simulation.seed"\nvalus = [1]\n')
    message = sweep_error(path)
    assert f"sweep.toml:{line_of(path, 'valus')}: axes[0].valus: " in message
    assert "did you mean `values`?" in message

    path = write_sweep(sweep_extra="samples = 0")
    assert f"sweep.toml:{line_of(path, 'samples')}: sweep.samples: " in sweep_error(path)

    path = write_sweep('[[axes]]\nkey = "simulation.seed=1"\nvalues = [1]\n')
    assert f"sweep.toml:{line_of(path, 'key =')}: axes[0].key: " in sweep_error(path)

    path = write_sweep('[[axes]\nkey = "simulation.seed"\n')
    assert f"sweep.toml:{line_of(path, '[[axes]')}: (top level): not valid TOML" in sweep_error(
        path
    )


def test_axes_that_would_repeat_a_run_are_refused(write_sweep):
    path = write_sweep(
        '[[axes]]\nkey = "simulation.seed"\nvalues = [1, 2, 1]\n\n'
        '[[axes]]\nkey = "bodies[0].velocity"\nvalues = [[0.0, 0.0]]\n\n'
        '[[axes]]\nkey = "bodies.0.velocity"\nlinspace = [0.0, 0.0, 2]\n'
    )
    message = sweep_error(path)
    assert f"sweep.toml:{line_of(path, '[1, 2, 1]')}: axes[0].values: 1 comes twice" in message
    assert "axes[2].key: `bodies.0.velocity` is set by axes[1] already" in message
    assert "axes[2].linspace: 0.0 comes twice" in message


def test_runs_are_validated_before_ray_starts(write_sweep, no_ray, capsys):
    path = write_sweep('[[axes]]\nkey = "materials.jelly.youngs_modulu"\nvalues = [1.0e4, 2.0e4]\n')
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"sweep file {path} has 1 problem" in err
    assert f"sweep.toml:{line_of(path, 'key =')}: axes[0].key: base.toml: " in err
    assert "materials.jelly.youngs_modulu" in err and "in 2 of 2 runs" in err
    assert "did you mean `youngs_modulus`?" in err
    assert not (path.parent / "out").exists()  # no manifest of runs that cannot run

    path = write_sweep('[[axes]]\nkey = "materials.jelly.youngs_modulus"\nvalues = [1e4, -1.0]\n')
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert "materials.jelly.youngs_modulus" in err and "greater than 0" in err
    assert "in 1 of 2 runs" in err and "youngs_modulus = -1.0" in err

    path.write_text(path.read_text().replace('"base.toml"', '"nowhere.toml"'))
    with pytest.raises(SceneError) as caught:
        from engine.sweep.execute import run_sweep

        run_sweep(load_sweep(path))
    assert f"sweep.toml:{line_of(path, 'nowhere')}: sweep.scene: nowhere.toml" in str(caught.value)
    assert "cannot read" in str(caught.value)


def test_values_reach_the_scene_as_toml_tables_too(write_sweep):
    body = 'material = "jelly", shape = "box", min = [0.1, 0.1], max = [0.2, {top}]'
    values = ", ".join("{" + body.format(top=top) + "}" for top in (0.25, 0.3))
    sweep = load_sweep(write_sweep(f'[[axes]]\nkey = "bodies[0]"\nvalues = [{values}]\n'))
    for run, top in zip(sweep.runs, (0.25, 0.3), strict=True):
        scene = load_scene(sweep.scene, sweep.overrides(run)).scene
        assert scene.bodies[0].max == [0.2, top]
        assert scene.output.path == str(sweep.output_file(run))


def test_counts_are_of_this_sweeps_runs(tmp_path):
    path = tmp_path / "manifest.json"
    old = Manifest(path, tmp_path / "sweep.toml", tmp_path / "base.toml")
    old.add("run_old", {"simulation.seed": 0}, tmp_path / "run_old.vtkhdf")
    old.update("run_old", status=DONE)
    manifest = Manifest(path, tmp_path / "sweep.toml", tmp_path / "base.toml")
    manifest.add("run_new", {"simulation.seed": 1}, tmp_path / "run_new.vtkhdf")
    assert manifest.counts()[DONE] == 0 and manifest.counts()["pending"] == 1
    assert "run_old" in json.loads(path.read_text())["runs"]  # kept, not counted


@pytest.mark.parametrize("script", [True, False], ids=["console script", "python -P"])
def test_the_bench_runs_the_engine_past_an_engine_folder(tmp_path, monkeypatch, script):
    from engine.sweep.bench import engine_command

    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text('raise ImportError("not the engine")\n')
    monkeypatch.chdir(tmp_path)
    if not script:
        monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    command = engine_command()
    assert (command[0] == sys.executable) is not script
    done = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("engine ")


def readme_sweep(folder: Path) -> Path:
    """The README's sweep example in ``folder/sweeps``, with ``folder/scenes`` the project's."""
    from readme_blocks import ROOT, blocks

    example = next(block for block in blocks("toml") if "[sweep]" in block)
    (folder / "scenes").symlink_to(ROOT / "scenes")
    (folder / "sweeps").mkdir()
    (folder / "sweeps" / "sweep.toml").write_text(example)
    return folder / "sweeps" / "sweep.toml"


def test_the_readme_sweep_example_expands_into_valid_scenes(tmp_path):
    sweep = load_sweep(readme_sweep(tmp_path))
    assert len(sweep.runs) == 2 * 3 * 3
    for run in sweep.runs[:3]:
        scene = load_scene(sweep.scene, sweep.overrides(run)).scene
        assert scene.materials["water"].viscosity == run.params["materials.water.viscosity"]
        assert scene.simulation.gravity[1] == run.params["simulation.gravity[1]"]


def test_the_readme_validation_example_is_what_the_command_says(tmp_path, no_ray, capsys):
    from readme_blocks import blocks

    path = readme_sweep(tmp_path)
    path.write_text(path.read_text().replace("water.viscosity", "water.viscosty"))
    with contextlib.chdir(tmp_path):
        assert main(["sweep", "sweeps/sweep.toml"]) == 2
    shown = next(block for block in blocks("text") if "sweep file" in block)
    assert capsys.readouterr().err == shown
