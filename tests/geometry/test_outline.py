"""2D outlines: reading SVG and DXF, seeding, the exact signed distance field, and the scene
errors for outlines that cannot be used."""

from pathlib import Path

import numpy as np
import pytest

from engine.geometry.outline import (
    OutlineError,
    load_outline,
    outline_contains,
    outline_problems,
    place_outline,
    points_outline,
)
from engine.geometry.sdf import outline_sdf
from engine.geometry.seeding import seed_outline
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "outlines"
SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
TRIANGLE = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def grid_points(grid) -> np.ndarray:
    """(nx * ny, 2) positions of an SDFGrid's samples, in the order of ``values.ravel()``, m."""
    axes = [grid.origin[a] + grid.spacing * np.arange(n) for a, n in enumerate(grid.shape)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)


# --- reading -----------------------------------------------------------------------------------


def test_the_svg_and_dxf_assets_load_as_closed_loops():
    """trimesh.load_path reads both (SVG through svg.path and lxml; DXF needs nothing more)."""
    (ramp,) = load_outline(ASSETS / "ramp.svg")
    np.testing.assert_allclose(ramp, [[0, 150], [600, 550], [600, 600], [0, 600]])
    (wedge,) = load_outline(ASSETS / "wedge.dxf")
    np.testing.assert_allclose(wedge, [[-0.08, 0.0], [0.08, 0.0], [0.0, 0.12]])


def test_an_svg_in_mm_with_y_down_is_placed_in_metres_with_y_up():
    (ramp,) = place_outline(load_outline(ASSETS / "ramp.svg"), [0.001, -0.001], [0.0, 0.6])
    np.testing.assert_allclose(ramp, [[0, 0.45], [0.6, 0.05], [0.6, 0.0], [0, 0.0]], atol=1e-12)


def test_placement_scales_then_rotates_counter_clockwise_then_moves():
    (loop,) = place_outline(points_outline([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0]]), 2.0, [5, 5], 90)
    np.testing.assert_allclose(loop, [[5, 7], [5, 9], [3, 7]], atol=1e-12)


def test_an_open_svg_path_is_refused(tmp_path):
    path = tmp_path / "open.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><path d="M 0 0 L 10 0 L 10 10"/></svg>'
    )
    with pytest.raises(OutlineError, match="open path"):
        load_outline(path)


def test_points_close_implicitly_and_a_repeated_first_point_is_dropped():
    (implicit,) = points_outline(SQUARE)
    (explicit,) = points_outline([*SQUARE, SQUARE[0]])
    np.testing.assert_array_equal(implicit, explicit)


@pytest.mark.parametrize(
    ("points", "kind"),
    [
        ([], "few"),
        ([[0.0, 0.0], [1.0, 0.0]], "few"),
        ([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]], "few"),  # a repeated point is one corner
        ([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], "crossing"),  # a bow tie
        ([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [1.0, 0.0], [0.0, 2.0]], "crossing"),  # touching
        ([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], "flat"),
    ],
)
def test_unusable_outlines_are_named(points, kind):
    ((found, message),) = outline_problems(points_outline(points))
    assert found == kind and message.startswith("the outline")


def test_a_hole_inside_an_outline_is_fine_and_is_outside():
    square = points_outline(SQUARE)
    hole = [np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])]
    assert outline_problems(square + hole) == []
    inside = outline_contains(square + hole, np.array([[0.1, 0.1], [0.5, 0.5], [1.5, 0.5]]))
    assert inside.tolist() == [True, False, False]


# --- seeding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "area"),
    [
        (TRIANGLE, 0.5),
        ([[0, 0], [1, 0], [1, 0.3], [0.3, 0.3], [0.3, 1], [0, 1]], 1 - 0.7 * 0.7),  # an L
    ],
)
def test_seeded_particles_fill_the_polygon_area(points, area):
    """Particle count x spacing² is the polygon's area (shoelace), within 2 %."""
    spacing = 0.01
    pts = seed_outline(points_outline(points), spacing, np.random.default_rng(0), jitter=0.3)
    assert len(pts) * spacing**2 == pytest.approx(area, rel=0.02)
    assert outline_contains(points_outline(points), pts).all()


# --- signed distance ---------------------------------------------------------------------------


def test_square_sdf_is_the_exact_box_distance():
    """Analytic: inside -min(x, 1 - x, y, 1 - y); outside the norm of the excess over [0, 1]²."""
    grid = outline_sdf(points_outline(SQUARE), spacing=0.05, margin=0.2)
    p = grid_points(grid)
    excess = np.maximum(np.maximum(-p, p - 1.0), 0.0)
    inside = np.all((p > 0) & (p < 1), axis=1)
    expected = np.where(
        inside, -np.min(np.concatenate([p, 1 - p], axis=1), axis=1), np.linalg.norm(excess, axis=1)
    )
    np.testing.assert_allclose(grid.values.ravel(), expected, atol=1e-6)
    assert grid.values.shape == grid.shape and len(grid.shape) == 2


def test_triangle_sdf_matches_the_distances_to_its_edges():
    """Inside the right triangle (0, 0), (1, 0), (0, 1): -min(x, y, (1 - x - y) / sqrt 2);
    outside at chosen points: beyond the hypotenuse along its normal, and past a corner."""
    grid = outline_sdf(points_outline(TRIANGLE), spacing=0.02, margin=0.5)
    p = grid_points(grid)
    x, y = p[:, 0], p[:, 1]
    inside = (x > 0) & (y > 0) & (x + y < 1)
    analytic = -np.minimum(np.minimum(x, y), (1 - x - y) / np.sqrt(2))
    np.testing.assert_allclose(grid.values.ravel()[inside], analytic[inside], atol=1e-6)
    values = dict(zip(map(tuple, np.round(p, 6)), grid.values.ravel(), strict=True))
    assert values[(0.7, 0.7)] == pytest.approx(0.4 / np.sqrt(2), abs=1e-6)
    assert values[(-0.3, -0.4)] == pytest.approx(0.5, abs=1e-6)
    assert values[(1.3, -0.4)] == pytest.approx(0.5, abs=1e-6)


# --- scene errors ------------------------------------------------------------------------------

SCENE = """\
[simulation]
dim = {dim}
domain = [{domain}]
resolution = 16
end_time = 0.1
frame_dt = 0.01

[materials.jelly]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = 1.0e5

[[bodies]]
material = "jelly"
{body}

[[colliders]]
{collider}
"""
BODY = 'shape = "outline"\npoints = [[0.4, 0.5], [0.6, 0.5], [0.5, 0.7]]'
FLOOR = 'type = "outline"\npoints = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.0, 0.1]]'


def outline_scene(body: str = BODY, collider: str = FLOOR, dim: int = 2) -> str:
    return SCENE.format(dim=dim, domain=", ".join(["1.0"] * dim), body=body, collider=collider)


def issue_of(scene_file, text: str):
    with pytest.raises(SceneError) as caught:
        load_scene(scene_file(text))
    (issue,) = caught.value.issues
    return issue


def test_a_good_outline_scene_loads(scene_file):
    load_scene(scene_file(outline_scene()))


OPEN_SVG = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M 0 0 L 1 0 L 1 1"/></svg>'


@pytest.mark.parametrize(
    ("body", "collider", "path", "message", "fix"),
    [
        (
            'shape = "outline"\npoints = [[0.4, 0.5], [0.6, 0.5]]',
            FLOOR,
            ("bodies", 0, "points"),
            "the outline has 2 distinct points, at least 3 needed",
            "give at least 3 corners",
        ),
        (
            BODY,
            'type = "outline"\npoints = [[0.0, 0.0], [1.0, 0.1], [1.0, 0.0], [0.0, 0.1]]',
            ("colliders", 0, "points"),
            "the outline intersects itself: the edge from [0, 0] to [1, 0.1] meets the edge "
            "from [1, 0] to [0, 0.1]",
            "list the corners in order around the outline, once",
        ),
        (
            'shape = "outline"\npath = "open.svg"',
            FLOOR,
            ("bodies", 0, "path"),
            "outline file 'open.svg' has an open path (its inside is undefined)",
            "whose paths are all closed (SVG: end each path with Z",
        ),
        (
            'shape = "outline"\npath = "nowhere.dxf"',
            FLOOR,
            ("bodies", 0, "path"),
            "does not exist",
            "give an SVG or DXF file",
        ),
        (
            'shape = "outline"\npoints = [[0.9, 0.5], [1.2, 0.5], [1.0, 0.7]]',
            FLOOR,
            ("bodies", 0),
            "body 0 reaches x = 1.2 m, beyond the domain [0, 1] m along x",
            "move or shrink the body (points, scale, rotation, position)",
        ),
        (
            BODY,
            'type = "outline"\npath = "ramp.svg"',  # in mm, without its scale
            ("colliders", 0),
            "collider 0 reaches x = 600 m and y = 150 m and y = 600 m, beyond the domain",
            "move or shrink the collider (points, position, scale)",
        ),
        (
            'shape = "outline"',
            FLOOR,
            ("bodies", 0, "points"),
            "an outline needs `points` or `path`",
            "give points = [[x, y], ...] (m)",
        ),
    ],
)
def test_a_bad_outline_names_its_key_and_the_fix(scene_file, body, collider, path, message, fix):
    scene_file(OPEN_SVG, "open.svg")
    scene_file((ASSETS / "ramp.svg").read_text(), "ramp.svg")
    issue = issue_of(scene_file, outline_scene(body, collider))
    assert issue.path == path
    assert message in issue.message
    assert fix in issue.fix


@pytest.mark.parametrize(
    ("body", "collider", "path", "message", "fix"),
    [
        (
            BODY,
            'type = "plane"\npoint = [0.0, 0.0, 0.0]\nnormal = [0.0, 1.0, 0.0]',
            ("bodies", 0, "shape"),
            "outline bodies need dim = 2",
            'use shape = "mesh" (a closed triangle mesh) in 3D, or set simulation.dim = 2',
        ),
        (
            'shape = "sphere"\ncenter = [0.5, 0.5, 0.5]\nradius = 0.1',
            FLOOR,
            ("colliders", 0, "type"),
            "outline colliders need dim = 2",
            'use type = "mesh" (a closed triangle mesh) in 3D, or set simulation.dim = 2',
        ),
    ],
)
def test_an_outline_in_3d_says_it_needs_2d(scene_file, body, collider, path, message, fix):
    issue = issue_of(scene_file, outline_scene(body, collider, dim=3))
    assert (issue.path, issue.message, issue.fix) == (path, message, fix)
