"""A command that needs a missing optional extra stops at once with one line naming the extra.

Each extra is hidden in-process: ``sys.modules[name] = None`` makes ``import name`` fail even
when the module is already imported. The commands must stop at the extra check, before reading
their (here nonexistent) inputs.
"""

from __future__ import annotations

import sys

import pytest

from engine.cli import main
from engine.extras import EXTRAS, MissingExtra, require

TORCH_SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.01
frame_dt = 0.01

[output]
path = "out.vtkhdf"

[materials.jelly]
model = "torch_neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4
poisson_ratio = 0.3

[[bodies]]
material = "jelly"
shape = "box"
min = [0.4, 0.4]
max = [0.6, 0.6]
"""

#: (extra, the command's arguments; ``{tmp}`` is the test's temporary folder)
COMMANDS = [
    ("view", ["render", "{tmp}/r.vtkhdf", "-o", "{tmp}/r.png"]),
    ("view", ["view", "{tmp}/r.vtkhdf"]),
    ("view", ["info", "{tmp}/r.vtkhdf", "--plot", "{tmp}/p.png"]),
    ("torch", ["train", "constitutive", "{tmp}/r.vtkhdf", "--out", "{tmp}/w.pt"]),
    ("torch", ["identify", "{tmp}/r.vtkhdf", "--fit", "youngs_modulus"]),
    ("torch", ["experiment", "materials", "--quick", "--out", "{tmp}/experiments"]),
    ("torch", ["bench", "--only", "torch_law", "--steps", "1"]),
    ("sweep", ["sweep", "{tmp}/sweep.toml"]),
    ("sweep", ["sweep-bench", "--runs", "1", "--workers", "1"]),
]


def hide(monkeypatch, extra: str) -> None:
    for module in EXTRAS[extra]:
        monkeypatch.setitem(sys.modules, module, None)


def assert_one_line_naming(capsys, code: int, extra: str) -> str:
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert f'"{extra}" extra' in lines[0]
    assert f'pip install "mpm-engine[{extra}]"' in lines[0]
    assert f'pip install -e ".[{extra}]"' in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "argv"),
    COMMANDS,
    ids=[" ".join(a for a in argv[:3] if "{" not in a) for _, argv in COMMANDS],
)
def test_a_missing_extra_stops_the_command_with_one_line(
    extra, argv, tmp_path, monkeypatch, capsys
):
    hide(monkeypatch, extra)
    code = main([arg.format(tmp=tmp_path) for arg in argv])
    line = assert_one_line_naming(capsys, code, extra)
    assert f"engine {argv[0]}" in line
    assert "is not installed" in line
    assert list(tmp_path.iterdir()) == []  # stopped before doing anything


def test_plain_info_needs_no_extra(tmp_path, monkeypatch, capsys):
    """Without ``--plot`` info draws nothing: it goes on to the (missing) result file."""
    hide(monkeypatch, "view")
    assert main(["info", str(tmp_path / "r.vtkhdf")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "needs the" not in err


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_scene_with_a_torch_material_needs_torch_to_run(command, tmp_path, monkeypatch, capsys):
    """``run`` stops before the simulation starts; ``validate`` checks the scene only, which
    needs no torch."""
    scene = tmp_path / "scene.toml"
    scene.write_text(TORCH_SCENE)
    hide(monkeypatch, "torch")
    code = main([command, str(scene)])
    if command == "validate":
        assert code == 0
        assert "valid" in capsys.readouterr().out
        return
    line = assert_one_line_naming(capsys, code, "torch")
    assert "material 'jelly' (model torch_neo_hookean)" in line
    assert not (tmp_path / "out.vtkhdf").exists()


@pytest.mark.parametrize("extra", list(EXTRAS))
def test_every_extra_is_installed_here(extra):
    require(extra, "the test")


def test_a_module_that_fails_to_import_counts_as_missing(monkeypatch):
    """A broken install (the import raises) is named with its reason, still on one line."""

    def broken(name, *args, **kwargs):
        raise OSError("libGL.so.1: cannot open shared object file\nsecond line")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(MissingExtra) as caught:
        require("view", "engine render")
    assert caught.value.extra == "view"
    assert caught.value.module == "pyvista"
    message = str(caught.value)
    assert "\n" not in message
    assert "pyvista: cannot be imported (OSError: libGL.so.1" in message
