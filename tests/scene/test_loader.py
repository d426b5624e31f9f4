"""Scene validation: every problem names the file, the line, the key path and a fix."""

import json
import textwrap

import pytest
from readme_blocks import ROOT, blocks

from engine.cli import main
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
        ("radius = 0.1", "radius = 0.5", ":19: bodies[1]", "beyond the domain"),
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
    assert (
        "fix: use box, sphere, cylinder or outline (a polygon) in 2D, or set simulation.dim = 3"
        in text
    )
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


def collider_scene(dim: int) -> str:
    """COLLIDER_SCENE in ``dim`` dimensions: a unit domain, a sphere in its middle, a floor."""
    values = {
        name: ", ".join([value] * dim)
        for name, value in (("ones", "1.0"), ("halves", "0.5"), ("zeros", "0.0"))
    }
    up = ", ".join(["0.0", "1.0", "0.0"][:dim])
    return COLLIDER_SCENE.format(dim=dim, up=up, **values)


@pytest.mark.parametrize(
    ("dim", "fix"),
    [
        (3, "remove `velocity`, or change type to mesh"),
        (2, "remove `velocity`, or change type to outline"),
    ],
)
def test_a_key_of_another_collider_type_names_the_type(scene_file, dim, fix):
    (issue,) = problems(scene_file, collider_scene(dim)).issues
    assert issue.path == ("colliders", 0, "velocity") and issue.line == 23
    assert issue.message == "`velocity` is a key of mesh/outline colliders, not plane colliders"
    assert issue.fix == fix


def floor_scene(dim: int) -> str:
    """A valid scene in ``dim`` dimensions: collider_scene without the floor's stray velocity."""
    return collider_scene(dim).rsplit("velocity =", 1)[0]


SECTIONS = GOOD.split("\n\n")  # simulation, materials, body 0, body 1
#: Valid scenes by name (a test id reads better than a whole scene).
SCENES = {
    "good": GOOD,
    "one_body": "\n\n".join(SECTIONS[:3]),
    "floor": floor_scene(2),
    "floor_3d": floor_scene(3),
}


@pytest.mark.parametrize(
    ("scene", "old", "new", "path", "message", "fix"),
    [
        (
            "good",
            'shape = "box"',
            'shape = "boxx"',
            ("bodies", 0, "shape"),
            "unknown shape 'boxx'",
            "did you mean `box`? use one of: box, sphere, cylinder, mesh, outline",
        ),
        (
            "good",
            'model = "fluid"',
            'model = "fluidd"',
            ("materials", "water", "model"),
            "unknown model 'fluidd'",
            "did you mean `fluid`? use one of: ",
        ),
        (
            "floor",
            'type = "plane"',
            'type = "plaen"',
            ("colliders", 0, "type"),
            "unknown type 'plaen'",
            "did you mean `plane`? use one of: plane, mesh, outline",
        ),
        (
            "good",
            "dim = 2",
            'dim = 2\nboundary = "slipp"',
            ("simulation", "boundary"),
            "unknown boundary 'slipp'",
            "did you mean `slip`? use one of: sticky, slip, separate",
        ),
        (
            "good",
            "dim = 2",
            'dim = "2"',
            ("simulation", "dim"),
            "unknown dim '2'",
            "write 2 without",
        ),
    ],
)
def test_a_misspelt_shape_model_type_or_choice_asks_did_you_mean(
    scene_file, scene, old, new, path, message, fix
):
    (issue,) = problems(scene_file, SCENES[scene].replace(old, new, 1)).issues
    assert (issue.path, issue.message) == (path, message)
    assert issue.fix.startswith(fix)


def test_a_misspelt_model_lists_every_model(scene_file):
    (issue,) = problems(scene_file, GOOD.replace('"fluid"', '"fluidd"')).issues
    assert all(name in issue.fix for name in ("fixed_corotated", "sand", "von_mises", "fluid"))


@pytest.mark.parametrize(
    ("scene", "old", "new", "path"),
    [
        ("good", 'shape = "box"', 'shpe = "box"', ("bodies", 0, "shape")),
        ("good", 'model = "fluid"', 'mdoel = "fluid"', ("materials", "water", "model")),
        ("floor", 'type = "plane"', 'tpye = "plane"', ("colliders", 0, "type")),
    ],
)
def test_a_misspelt_tag_key_says_it_is_missing_and_suggests_it(scene_file, scene, old, new, path):
    (issue,) = problems(scene_file, SCENES[scene].replace(old, new, 1)).issues
    tag, typo = old.split(" =")[0], new.split(" =")[0]
    assert issue.path == path
    assert issue.message == f"the `{tag}` key is missing"
    assert issue.fix.startswith(f"did you mean `{tag}` for `{typo}`? rename it `{tag}` (one of: ")


def test_a_missing_tag_key_lists_the_values(scene_file):
    (issue,) = problems(scene_file, GOOD.replace('shape = "box"\n', "", 1)).issues
    assert issue.fix == "add `shape = ...` with one of: box, sphere, cylinder, mesh, outline"


@pytest.mark.parametrize(
    ("text", "what"), [("", "the file is empty"), ("# a scene, one day\n\n", "only comments")]
)
def test_an_empty_file_is_one_issue_with_a_scene_to_start_from(scene_file, load, text, what):
    (issue,) = problems(scene_file, text).issues
    assert what in issue.message and "no [simulation] table" in issue.message
    assert "= ...`" not in issue.fix and "engine schema" in issue.fix
    shown = textwrap.dedent(issue.fix.split("\n", 1)[1])
    assert load(shown).scene.simulation.dim == 2  # the scene it shows is valid


@pytest.mark.parametrize(
    ("kept", "path", "fix"),
    [
        (
            SECTIONS[1:],
            ("simulation",),
            "add a [simulation] table with dim, domain, resolution, end_time and frame_dt",
        ),
        (SECTIONS[:2], ("bodies",), "add one or more [[bodies]] tables"),
        (SECTIONS[:1] + SECTIONS[2:], ("materials",), "add one or more [materials.<name>] tables"),
    ],
)
def test_a_missing_table_is_told_in_table_syntax(scene_file, kept, path, fix):
    (issue,) = problems(scene_file, "\n\n".join(kept)).issues
    assert issue.path == path and issue.message == "required table is missing"
    assert issue.fix.startswith(fix)


def test_a_missing_key_says_what_it_is(scene_file):
    (issue,) = problems(scene_file, GOOD.replace("resolution = 32\n", "")).issues
    assert issue.message == "required key is missing"
    assert issue.fix == "add `resolution = ...` to this table (Grid cells along the longest side)"


@pytest.mark.parametrize(
    ("scene", "old", "new", "message", "fix"),
    [
        (
            "good",
            "max = [0.3, 0.3]",
            "max = [1.2, 0.3]",
            "body 0 reaches x = 1.2 m, beyond the domain [0, 1] m along x",
            "move or shrink the body (min, max), or enlarge simulation.domain to [1.2, 1.0]",
        ),
        (
            "good",
            "min = [0.0, 0.0]",
            "min = [-0.1, -0.2]",
            "body 0 reaches x = -0.1 m and y = -0.2 m, beyond the domain [0, 1] m along x and "
            "[0, 1] m along y",
            "move or shrink the body (min, max); the domain starts at 0 on every axis",
        ),
        (
            "floor_3d",
            "center = [0.5, 0.5, 0.5]",
            "center = [0.5, 0.5, 0.95]",
            "body 0 reaches z = 1.05 m, beyond the domain [0, 1] m along z",
            "move or shrink the body (center, radius), or enlarge simulation.domain to "
            "[1.0, 1.0, 1.05]",
        ),
    ],
)
def test_a_body_outside_the_domain_says_where_and_what_to_change(
    scene_file, scene, old, new, message, fix
):
    (issue,) = problems(scene_file, SCENES[scene].replace(old, new)).issues
    assert (issue.path, issue.message, issue.fix) == (("bodies", 0), message, fix)


def test_a_domain_of_negative_size_is_one_issue(scene_file):
    (issue,) = problems(scene_file, GOOD.replace("[1.0, 1.0]", "[-1.0, 1.0]")).issues
    assert issue.path == ("simulation", "domain")
    assert issue.message == "domain sizes must be positive, got [-1.0, 1.0]"


@pytest.mark.parametrize(
    ("old", "new", "path", "shown"),
    [
        ("domain = [1.0, 1.0]", "domain = [inf, 1.0]", ("simulation", "domain", 0), "inf"),
        ("end_time = 0.1", "end_time = inf", ("simulation", "end_time"), "inf"),
        ("density = 1000.0", "density = nan", ("materials", "water", "density"), "nan"),
        ("radius = 0.1", "radius = -inf", ("bodies", 1, "radius"), "-inf"),
        ("center = [0.6, 0.6]", "center = [0.6, nan]", ("bodies", 1, "center", 1), "nan"),
    ],
)
def test_nan_and_inf_are_refused_as_such(scene_file, old, new, path, shown):
    (issue,) = problems(scene_file, GOOD.replace(old, new)).issues
    assert issue.path == path and issue.message == f"{shown} is not a finite number"


@pytest.mark.parametrize("dt", ["0.0", "-0.001"])
def test_a_step_that_is_not_positive_is_refused(scene_file, dt):
    (issue,) = problems(
        scene_file, GOOD.replace("frame_dt = 0.01", f"frame_dt = 0.01\ndt = {dt}")
    ).issues
    assert (
        issue.path == ("simulation", "dt")
        and issue.message == f"dt = {float(dt)} s is not positive"
    )


@pytest.mark.parametrize(
    ("dim", "spin", "message"),
    [
        (3, "[1.0, 2.0]", "angular_velocity has 2 components but dim = 3"),
        (3, "1.0", "in 3D angular_velocity is a vector (rad/s about x, y and z), not one number"),
        (2, "[1.0]", "in 2D angular_velocity is one number (rad/s), not a list"),
    ],
)
def test_an_angular_velocity_of_the_wrong_form_is_refused(scene_file, dim, spin, message):
    scene = floor_scene(dim).replace("radius = 0.1", f"radius = 0.1\nangular_velocity = {spin}")
    (issue,) = problems(scene_file, scene).issues
    assert (issue.path, issue.message) == (("bodies", 0, "angular_velocity"), message)


@pytest.mark.parametrize(
    ("scene", "old", "new", "path", "message"),
    [
        (
            "good",
            "[0.6, 0.6]",
            '[0.6, "a"]',
            ("bodies", 1, "center", 1),
            "expected a number, got 'a'",
        ),
        (
            "good",
            "frame_dt = 0.01",
            'frame_dt = 0.01\ndt = "fast"',
            ("simulation", "dt"),
            "expected a number or 'auto', got 'fast'",
        ),
        ("good", "= 32", "= 32.5", ("simulation", "resolution"), "expected an integer, got 32.5"),
        (
            "good",
            "domain = [1.0, 1.0]",
            "domain = 1.0",
            ("simulation", "domain"),
            "expected a list of numbers, got 1.0",
        ),
        (
            "good",
            "[simulation]",
            "[[simulation]]",
            ("simulation",),
            "expected a [simulation] table, got a list of tables",
        ),
        (
            "one_body",
            "[[bodies]]",
            "[bodies]",
            ("bodies",),
            "expected [[bodies]] tables, got a table",
        ),
    ],
)
def test_a_value_of_the_wrong_type_says_what_was_expected_and_given(
    scene_file, scene, old, new, path, message
):
    (issue,) = problems(scene_file, SCENES[scene].replace(old, new, 1)).issues
    assert (issue.path, issue.message) == (path, message)


def test_vector_lengths_and_reversed_corners_name_the_axes(scene_file):
    (issue,) = problems(scene_file, GOOD.replace("[1.0, 1.0]", "[1.0]")).issues
    assert issue.message == "domain has 1 component but dim = 2"
    assert issue.fix == "give exactly 2 numbers, one per axis (x, y)"
    (issue,) = problems(scene_file, GOOD.replace("max = [0.3, 0.3]", "max = [0.3, 0.0]")).issues
    assert issue.message == "max must exceed min on every axis (it does not along y)"


def test_an_undefined_material_suggests_a_close_name(scene_file):
    (issue,) = problems(
        scene_file, GOOD.replace('material = "water"', 'material = "watr"', 1)
    ).issues
    assert issue.fix == "did you mean `water`? use one of: water, or define [materials.watr]"


@pytest.mark.parametrize(
    ("assignment", "path", "message", "fix"),
    [
        ("=3", (), "no key before `=` (--set =3)", "write KEY=VALUE"),
        (
            "bodies.5.radius=0.1",
            ("bodies", 5),
            "no such entry: bodies has 2 entries",
            "use an index from 0 to 1",
        ),
        (
            "simulation.dim.x=3",
            ("simulation", "dim"),
            "a single value, with no keys inside",
            "set simulation.dim itself",
        ),
        ("bodies.radius=0.1", ("bodies",), "a list of entries, not a table", "bodies[0]"),
        (
            "simulation.domain=[1.0, 1.0",
            ("simulation", "domain"),
            "not valid TOML",
            "write the value as a scene file would",
        ),
        (
            "simulation.resolution=high",
            ("simulation", "resolution"),
            "expected an integer, got 'high' (set with --set)",
            "write an integer",
        ),
        (
            "simulation.end_time=nan",
            ("simulation", "end_time"),
            "nan is not a finite number (set with --set)",
            "write a finite number",
        ),
    ],
)
def test_a_bad_set_names_its_key_and_the_fix(scene_file, assignment, path, message, fix):
    (issue,) = problems(scene_file, GOOD, (assignment,)).issues
    assert issue.path == path and message in issue.message and fix in issue.fix


def test_the_readme_errors_example_is_what_validate_says(tmp_path, monkeypatch, capsys):
    command, *shown = next(b for b in blocks("text") if "engine validate" in b).splitlines()
    scene = (ROOT / "scenes" / "dam_break_2d.toml").read_text()
    scene = scene.replace("resolution = 128", "resolutoin = 128")
    (tmp_path / "dam_break_2d.toml").write_text(scene.replace("= 1000.0", "= -1000.0"))
    monkeypatch.chdir(tmp_path)
    assert "resolutoin = 128" in command and main(["validate", "dam_break_2d.toml"]) == 2
    assert capsys.readouterr().err.splitlines() == shown
