"""Scene validation: every problem names the file, the line, the key path and a fix."""

import json

import pytest

from engine.discovery import make_plugin_manager
from engine.registry import Registry
from engine.scene.errors import SceneError
from engine.scene.loader import apply_override, load_scene, parse_override
from engine.scene.locate import find_line, key_lines
from engine.scene.schema import scene_model

GOOD = """\
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 32
end_time = 0.1
frame_dt = 0.01

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.3, 0.3]

[[bodies]]
material = "water"
shape = "sphere"
center = [0.6, 0.6]
radius = 0.1
"""


def problems(scene_file, text: str, overrides=()) -> SceneError:
    with pytest.raises(SceneError) as caught:
        load_scene(scene_file(text), overrides)
    return caught.value


def test_a_good_scene_loads(load):
    loaded = load(GOOD)
    assert loaded.scene.simulation.resolution == 32
    assert [b.shape for b in loaded.scene.bodies] == ["box", "sphere"]


def test_unknown_key_names_line_and_suggests_the_spelling(scene_file):
    error = problems(scene_file, GOOD.replace("resolution = 32", "resolutoin = 32"))
    text = str(error)
    assert "scene.toml:4: simulation.resolutoin" in text
    assert "did you mean `resolution`" in text
    assert "simulation.resolution" in text  # and the missing key is reported too


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        ("density = 1000.0", "density = -5.0", ":10: materials.water.density", "> 0"),
        ("resolution = 32", 'resolution = "fine"', ":4: simulation.resolution", "integer"),
        ('model = "fluid"', 'model = "lava"', ":9: materials.water.model", "fixed_corotated"),
        ('shape = "box"', 'shape = "cone"', ":15: bodies[0].shape", "sphere"),
        (
            'material = "water"\nshape = "sphere"',
            'material = "air"\nshape = "sphere"',
            ":20: bodies[1].material",
            "define [materials.air]",
        ),
        ("max = [0.3, 0.3]", "max = [0.3, 1.3]", ":13: bodies[0]", "enlarge simulation.domain"),
        ("max = [0.3, 0.3]", "max = [0.3, 0.3, 0.3]", ":17: bodies[0].max", "exactly 2"),
        ("radius = 0.1", "radius = 0.5", ":19: bodies[1]", "outside the domain"),
        ("frame_dt = 0.01", "frame_dt = 1.0", ":6: simulation.frame_dt", "at most end_time"),
    ],
)
def test_bad_values_are_reported_with_line_key_and_fix(scene_file, old, new, where, words):
    text = str(problems(scene_file, GOOD.replace(old, new, 1)))
    assert where in text
    assert words in text
    assert "fix:" in text
    assert "Traceback" not in text


def test_poisson_ratio_of_one_half_is_refused(scene_file):
    solid = GOOD.replace(
        'model = "fluid"\ndensity = 1000.0\nbulk_modulus = 1.0e5',
        'model = "neo_hookean"\ndensity = 1000.0\nyoungs_modulus = 1e5\npoisson_ratio = 0.5',
    )
    text = str(problems(scene_file, solid))
    assert "materials.water.poisson_ratio" in text and "< 0.5" in text


def test_missing_mesh_file_names_the_file(scene_file):
    scene = GOOD.replace("dim = 2", "dim = 3").replace("[1.0, 1.0]", "[1.0, 1.0, 1.0]")
    scene = scene.split("[[bodies]]")[0] + (
        '[[bodies]]\nmaterial = "water"\nshape = "mesh"\nmesh = "nowhere/rabbit.obj"\n'
    )
    text = str(problems(scene_file, scene))
    assert "bodies[0].mesh" in text and "rabbit.obj" in text


def test_toml_syntax_error_gives_the_line(scene_file):
    text = str(problems(scene_file, GOOD.replace("dim = 2", "dim = = 2")))
    assert "scene.toml:2" in text and "not valid TOML" in text


def test_unknown_output_field_lists_the_allowed_ones(scene_file):
    text = str(problems(scene_file, GOOD + '\n[output]\nfields = ["velocity", "vorticity"]\n'))
    assert "output.fields[1]" in text and "plastic_J" in text


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(SceneError, match="cannot read"):
        load_scene(tmp_path / "absent.toml")


def test_overrides_are_read_as_toml(load):
    loaded = load(
        GOOD,
        (
            "simulation.end_time=0.05",
            'output.path="o.vtkhdf"',
            "bodies[1].radius=0.05",
            "simulation.boundary=slip",
        ),
    )
    scene = loaded.scene
    assert scene.simulation.end_time == 0.05
    assert scene.output.path == "o.vtkhdf"
    assert scene.bodies[1].radius == 0.05
    assert scene.simulation.boundary == "slip"
    assert "end_time = 0.05" in loaded.text


def test_bad_override_is_reported(scene_file):
    text = str(problems(scene_file, GOOD, ("simulation.resolution=-3",)))
    assert "simulation.resolution" in text and "--set" in text
    with pytest.raises(SceneError, match="KEY=VALUE"):
        load_scene(scene_file(GOOD), ("simulation.resolution",))


def test_parse_override_paths():
    assert parse_override("bodies.0.velocity=[1, 2]") == (("bodies", 0, "velocity"), [1, 2])
    assert parse_override("simulation.arch=gpu") == (("simulation", "arch"), "gpu")
    data = {"bodies": [{}]}
    apply_override(data, ("bodies", 0, "velocity"), [1.0, 2.0])
    assert data == {"bodies": [{"velocity": [1.0, 2.0]}]}


def test_key_lines_count_array_tables():
    lines = key_lines(GOOD)
    assert lines[("bodies", 1)] == 19
    assert find_line(lines, ("bodies", 1, "radius")) == 23
    assert find_line(lines, ("bodies", 1, "velocity")) == 19


def test_json_schema_covers_every_table():
    schema = scene_model(Registry.collect(make_plugin_manager())).model_json_schema()
    text = json.dumps(schema)
    for key in ("simulation", "materials", "bodies", "colliders", "output", "friction_angle"):
        assert key in text
