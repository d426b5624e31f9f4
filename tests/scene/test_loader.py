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


MESH_BODY_2D = GOOD.split("[[bodies]]")[0].replace("fluid", "neo_hookean").replace(
    "bulk_modulus = 1.0e5", "youngs_modulus = 1.0e5"
) + ('[[bodies]]\nmaterial = "water"\nshape = "mesh"\nmesh = "bunny.obj"\n')


@pytest.mark.parametrize("extra", ["", "min = [0.2, 0.2]\nmax = [0.6, 0.6]\n"])
def test_a_mesh_body_in_2d_says_it_needs_3d(scene_file, extra):
    error = problems(scene_file, MESH_BODY_2D + extra)
    assert [issue.path for issue in error.issues] == [("bodies", 0, "shape")]
    text = str(error)
    assert "scene.toml:15: bodies[0].shape: mesh bodies need dim = 3" in text
    assert "fix: use box, sphere or cylinder in 2D, or set simulation.dim = 3" in text
    assert "2D shapes from outlines are not supported yet" in text
    assert "Extra inputs" not in text and "`min`" not in text  # no merged or bogus hints


def test_a_key_of_another_shape_names_the_shapes_that_take_it(scene_file):
    error = problems(scene_file, GOOD.replace("max = [0.3, 0.3]", "max = [0.3, 0.3]\nradius = 0.1"))
    (issue,) = error.issues
    assert issue.path == ("bodies", 0, "radius") and issue.line == 18
    assert issue.message == "`radius` is a key of shape sphere/cylinder, not box"
    assert issue.fix == "remove `radius`, or change shape to sphere or cylinder"


def test_a_key_of_another_material_model_names_the_model(scene_file):
    steel = GOOD.replace(
        'model = "fluid"\ndensity = 1000.0\nbulk_modulus = 1.0e5',
        'model = "fixed_corotated"\ndensity = 1000.0\nyoungs_modulus = 1e5\nyield_stress = 1e3',
    )
    (issue,) = problems(scene_file, steel).issues
    assert issue.path == ("materials", "water", "yield_stress")
    assert issue.message == "`yield_stress` is a key of model von_mises, not fixed_corotated"
    assert issue.fix == "remove `yield_stress`, or change model to von_mises"
    sand = GOOD.replace("bulk_modulus = 1.0e5", "bulk_modulus = 1.0e5\nfriction_angle = 30.0")
    (issue,) = problems(scene_file, sand).issues
    assert issue.message == "`friction_angle` is a key of model sand, not fluid"


COLLIDER_SCENE = """\
[simulation]
dim = {dim}
domain = [{ones}]
resolution = 16
end_time = 0.1
frame_dt = 0.01

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "sphere"
center = [{halves}]
radius = 0.1

[[colliders]]
type = "plane"
point = [{zeros}]
normal = [{up}]
velocity = [{zeros}]
"""


@pytest.mark.parametrize(
    ("dim", "fix"),
    [
        (3, "remove `velocity`, or change type to mesh"),
        (2, "remove `velocity` (mesh colliders need dim = 3)"),
    ],
)
def test_a_key_of_another_collider_type_names_the_type(scene_file, dim, fix):
    values = {
        name: ", ".join([value] * dim)
        for name, value in (("ones", "1.0"), ("halves", "0.5"), ("zeros", "0.0"))
    }
    up = ", ".join(["0.0", "1.0", "0.0"][:dim])
    (issue,) = problems(scene_file, COLLIDER_SCENE.format(dim=dim, up=up, **values)).issues
    assert issue.path == ("colliders", 0, "velocity") and issue.line == 23
    assert issue.message == "`velocity` is a key of mesh colliders, not plane colliders"
    assert issue.fix == fix
