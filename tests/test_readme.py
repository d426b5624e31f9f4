"""The README's documented commands, scene and Python examples run as written."""

import shlex

from readme_blocks import README, ROOT, blocks, write_documented_files

import engine.io
from engine.cli import main
from engine.materials import BUILTIN_MATERIALS


def test_ci_runs_exactly_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    install, tests = blocks("bash")[0].strip(), blocks("bash")[1].strip()
    assert install.startswith("pip install -e") and "engine run scenes/" in install
    assert tests == "python -m pytest"
    assert install in ci.splitlines() and tests in ci.splitlines()


def test_documented_engine_commands_run(tmp_path, monkeypatch):
    write_documented_files(tmp_path)
    (tmp_path / "scenes").symlink_to(ROOT / "scenes")
    monkeypatch.chdir(tmp_path)
    commands = [
        line
        for block in blocks("bash")
        for line in block.splitlines()
        if line.startswith("engine ")
    ]
    assert any(c.startswith("engine run") for c in commands)
    for command in commands:
        args = shlex.split(command)[1:]
        if args[0] == "run":  # keep it short and out of the source tree
            args += [
                "--quiet",
                "--overwrite",  # every documented run writes the same file here
                "--set",
                "simulation.end_time=0.02",
                "--set",
                f'output.path="{tmp_path / "readme.vtkhdf"}"',
            ]
        assert main(args) == 0, command
    probe = engine.io.open(tmp_path / "readme.vtkhdf").diagnostics()["front_position"]
    assert probe[-1] > probe[0] > 0.2  # the documented probe recorded the water's front


def test_documented_scene_is_valid_and_the_python_example_reads_its_result(tmp_path, monkeypatch):
    scene = next(block for block in blocks("toml") if "[simulation]" in block)
    path = tmp_path / "readme_scene.toml"
    path.write_text(scene)
    assert main(["run", str(path), "--quiet", "--set", "simulation.end_time=0.02"]) == 0
    example = blocks("python")[0].replace(
        "scenes/out/dam_break_2d.vtkhdf", str(tmp_path / "out" / "dam_break_2d.vtkhdf")
    )
    namespace: dict = {}
    exec(example, namespace)
    assert namespace["result"].n_frames == 3
    assert namespace["velocity"].shape[1] == 2


def test_every_material_is_documented():
    for cls in BUILTIN_MATERIALS:
        assert f"| `{cls.name}` |" in README


def test_documented_twin_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    example = next(block for block in blocks("python") if "TorchTwin" in block)
    namespace: dict = {}
    exec(example, namespace)
    assert namespace["E"].grad is not None and bool(namespace["E"].grad.isfinite())
