"""The plugin contract: discovery, built-ins through hooks, stages, lifecycle, errors, tracing."""

import numpy as np
import pytest
from readme_blocks import README

import engine.io
from engine.cli import main
from engine.discovery import make_plugin_manager
from engine.hooks import specs
from engine.hooks.calls import PluginError
from engine.registry import Registry
from engine.solver.simulation import Simulation

SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.03
frame_dt = 0.01

[output]
path = "out/hooks.vtkhdf"
fields = ["velocity", "rest_position"]

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.3, 0.3]
max = [0.5, 0.5]
"""

LIFECYCLE = """
import taichi as ti
from engine.hooks import hookimpl
from engine.hooks.records import StageHook

calls = []


@ti.kernel
def halve(v: ti.types.ndarray(dtype=ti.math.vec2, ndim=1)):
    for p in v:
        v[p] *= 0.5


@hookimpl
def engine_register_stages(simulation):
    return [StageHook("halve", "{stage}", lambda sim, dt: (calls.append("step"), halve(sim.v)))]


@hookimpl
def engine_run_start(simulation):
    calls.append("start")


@hookimpl
def engine_frame(simulation, frame):
    calls.append(f"frame {frame}")
    return {"mean_speed": float(abs(simulation.numpy("v")).mean())}


@hookimpl
def engine_run_end(simulation, summary):
    calls.append("end" if summary else "failed")
"""


def test_every_hook_is_documented_in_the_readme():
    hooks = [name for name in dir(specs) if name.startswith("engine_")]
    assert len(hooks) == 11
    for name in hooks:
        assert f"`{name}(" in README, name


def test_builtins_and_builtin_plugins_come_through_the_hooks():
    registry = Registry.collect(make_plugin_manager())
    assert registry.provider[("materials", "fluid")] == "engine.builtins"
    assert registry.provider[("contact_models", "coulomb")] == "engine.builtins"
    assert registry.provider[("mesh_movers", "advect")] == "surface_mover"  # an entry point
    assert registry.provider[("materials", "torch_neo_hookean")] == "torch_materials"


def test_stage_and_lifecycle_hooks_run_in_order(scene_file, tmp_path):
    plugin = tmp_path / "lifecycle.py"
    plugin.write_text(LIFECYCLE.replace("{stage}", "after_grid_to_particle"))
    scene = scene_file(SCENE + '\n[plugins]\nload = ["lifecycle.py"]\n')
    assert main(["run", str(scene), "-q"]) == 0
    import sys

    calls = sys.modules["engine_local_plugin_lifecycle"].calls
    assert calls[0] == "start" and calls[1] == "frame 0" and calls[-1] == "end"
    assert calls.count("step") > 3 and "frame 3" in calls
    result = engine.io.open(tmp_path / "out" / "hooks.vtkhdf")
    speeds = result.diagnostics()["mean_speed"]
    assert speeds.shape == (4,) and speeds[-1] < 0.05  # halving every step kills gravity's pull
    np.testing.assert_allclose(result.arrays(-1)["rest_position"], result.points(0), atol=1e-6)


def test_unknown_stage_is_a_plugin_error(load, tmp_path):
    (tmp_path / "lifecycle.py").write_text(LIFECYCLE.replace("{stage}", "after_lunch"))
    with pytest.raises(PluginError, match="unknown stage 'after_lunch'"):
        Simulation(load(SCENE + '\n[plugins]\nload = ["lifecycle.py"]\n'))


def test_plugin_that_fails_to_import_is_named_and_other_commands_work(scene_file, tmp_path, capsys):
    (tmp_path / "broken.py").write_text("import numpy\nraise RuntimeError('no licence key')\n")
    scene = scene_file(SCENE + '\n[plugins]\nload = ["broken.py"]\n')
    assert main(["run", str(scene)]) == 3
    err = capsys.readouterr().err
    assert "broken.py" in err and "import" in err and "no licence key" in err
    assert main(["validate", str(scene_file(SCENE, name="other.toml"))]) == 0


def test_hook_that_raises_stops_the_run_naming_plugin_and_hook(scene_file, tmp_path, capsys):
    (tmp_path / "probe.py").write_text(
        "from engine.hooks import hookimpl\n\n@hookimpl\ndef engine_frame(simulation, frame):\n"
        "    if frame == 2:\n        raise KeyError('front')\n"
    )
    scene = scene_file(SCENE + '\n[plugins]\nload = ["probe.py"]\n')
    assert main(["run", str(scene), "-q"]) == 1
    err = capsys.readouterr().err
    assert "plugin '" in err and "probe.py', engine_frame: KeyError: 'front'" in err
    assert engine.io.open(tmp_path / "out" / "hooks.vtkhdf").n_frames == 2  # kept


def test_duplicate_names_are_an_error_naming_both_plugins(tmp_path):
    (tmp_path / "again.py").write_text(
        "from engine.hooks import hookimpl\nfrom engine.materials.fluid import Fluid\n\n"
        "@hookimpl\ndef engine_register_materials():\n    return [Fluid]\n"
    )
    with pytest.raises(PluginError, match="'fluid' is registered by both") as error:
        Registry.collect(make_plugin_manager([str(tmp_path / "again.py")]))
    assert "'engine.builtins'" in str(error.value) and "again.py'" in str(error.value)


def test_broken_installed_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch, capsys):
    info = tmp_path / "broken_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[engine]\nbroken_dist = no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.collect(make_plugin_manager())
    assert "fluid" in registry.materials
    assert "plugin 'broken_dist' failed to load" in capsys.readouterr().err


def test_trace_hooks_and_plugins_listing(scene_file, capsys):
    assert main(["run", str(scene_file(SCENE)), "-q", "--trace-hooks"]) == 0
    trace = capsys.readouterr().err
    assert "hook engine_register_materials <- engine.builtins: [fixed_corotated" in trace
    assert "hook engine_register_materials -> " in trace  # the plugins, in pluggy's call order
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert "engine.builtins" in listing and "mesh movers: advect" in listing


def test_a_material_that_breaks_the_contract_is_refused(tmp_path):
    (tmp_path / "odd.py").write_text(
        "from engine.hooks import hookimpl\n\nclass Odd:\n    name = 'odd'\n\n"
        "@hookimpl\ndef engine_register_materials():\n    return [Odd]\n"
    )
    with pytest.raises(PluginError, match="'odd' is not a Material or TorchMaterial subclass"):
        Registry.collect(make_plugin_manager([str(tmp_path / "odd.py")]))


ORDERED = """
import numpy as np
from engine.hooks import hookimpl
from engine.hooks.records import ParticleField, StageHook


def field(name):
    return ParticleField(name, (), "1", "a test field", lambda x, body: np.zeros(len(x)))


@hookimpl({when})
def engine_register_particle_fields():
    return [field("{name}")]


@hookimpl({when})
def engine_register_stages(simulation):
    return [StageHook("{name}", "after_grid_update", lambda sim, dt: None)]
"""


def test_tryfirst_and_trylast_are_honoured_for_registration_and_stage_hooks(load, tmp_path):
    """pluggy's order: tryfirst, then the others (the last registered first), trylast last."""
    for name, when in (("early", "tryfirst=True"), ("plain", ""), ("late", "trylast=True")):
        (tmp_path / f"{name}.py").write_text(ORDERED.format(when=when, name=name))
    # registered late first, so a walk in registration order would come out backwards
    plugins = '\n[plugins]\nload = ["late.py", "plain.py", "early.py"]\n'
    loaded = load(SCENE + plugins)
    fields = list(loaded.registry.particle_fields)
    assert fields.index("early") < fields.index("plain") < fields.index("late")
    assert fields.index("early") < fields.index("rest_position") < fields.index("late")
    stages = [hook.name for hook in Simulation(loaded).stages["after_grid_update"]]
    assert stages == ["early", "plain", "late"]


WRAPPER = """
from engine.hooks import hookimpl

calls = []


@hookimpl(wrapper=True)
def engine_register_particle_fields():
    calls.append("before")
    results = yield
    calls.append(len(results))
    return results
"""


def test_hook_wrappers_wrap_the_call_instead_of_being_called_as_implementations(tmp_path):
    (tmp_path / "wrapper.py").write_text(WRAPPER)
    registry = Registry.collect(make_plugin_manager([str(tmp_path / "wrapper.py")]))
    import sys

    assert sys.modules["engine_local_plugin_wrapper"].calls == ["before", 1]
    assert list(registry.particle_fields) == ["rest_position"]
    assert registry.provider[("particle_fields", "rest_position")] == "engine.builtins"


MISTAKES = {
    "returns_a_string": (
        "@hookimpl\ndef engine_frame(simulation, frame):\n    return 'hello'\n",
        1,
        "engine_frame: returned a str ('hello')",
        "return a dict",
    ),
    "length_changes": (
        "@hookimpl\ndef engine_frame(simulation, frame):\n"
        "    return {'bins': [1.0] * (frame + 1)}\n",
        1,
        "diagnostic 'bins' has shape (2,) where earlier frames had (1,)",
        "the same number of values every frame",
    ),
    "takes_a_built_in_name": (
        "@hookimpl\ndef engine_frame(simulation, frame):\n    return {'mass': 1.0}\n",
        1,
        "diagnostic 'mass' is also returned by the engine",
        "a name of its own",
    ),
    "misspelt_hook": (
        "@hookimpl\ndef engine_fram(simulation, frame):\n    return None\n",
        3,
        "engine_fram: there is no such hook",
        "did you mean engine_frame?",
    ),
    "misnamed_argument": (
        "@hookimpl\ndef engine_frame(sim, frame):\n    return None\n",
        3,
        "engine_frame: takes sim, which the hook does not pass",
        "engine_frame(simulation, frame)",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_plugin_mistakes_are_one_message_naming_plugin_hook_and_fix(
    mistake, scene_file, tmp_path, capsys
):
    source, code, what, fix = MISTAKES[mistake]
    plugin = tmp_path / f"{mistake}.py"
    plugin.write_text("from engine.hooks import hookimpl\n\n" + source)
    assert main(["run", str(scene_file(SCENE)), "-q", "--plugin", str(plugin)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(f"error: plugin '{plugin}'")
    assert what in err and "fix: " in err and fix in err


def test_a_hook_named_function_without_hookimpl_is_warned_about(tmp_path, capsys):
    (tmp_path / "bare.py").write_text("def engine_frame(simulation, frame):\n    return None\n")
    with pytest.warns(UserWarning, match="defines engine_frame without @hookimpl"):
        make_plugin_manager([str(tmp_path / "bare.py")])
