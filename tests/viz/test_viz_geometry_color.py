"""Obstacles posed as the solver poses them; colour values, ranges and id names; frames."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib import colormaps
from viz_results import ROOT, results_fixture  # noqa: F401 (the `results` fixture)

import engine.io
from engine.solver.colliders import MeshCollider
from engine.viz import VizError, color
from engine.viz.color import (
    categories,
    category_colors,
    color_range,
    scalars,
    value_range,
    von_mises,
)
from engine.viz.results import parse_frames, select_frames
from engine.viz.scene_geometry import SceneGeometry

MESH_SCENE = """
[simulation]
dim = 3
domain = [0.5, 0.4, 0.5]

[[colliders]]
type = "plane"
point = [0.0, 0.1, 0.0]
normal = [0.0, 1.0, 0.5]

[[colliders]]
type = "mesh"
mesh = "assets/meshes/press_plate.stl"
position = [0.25, 0.3, 0.25]
rotation = [0.0, 20.0, 0.0]
velocity = [0.0, -0.15, 0.05]
angular_velocity = [0.3, 1.0, 0.0]
"""


def test_mesh_collider_moves_like_the_solvers():
    geometry = SceneGeometry(MESH_SCENE, ROOT)
    (mover,) = geometry.movers
    rest = geometry.at(0.0)[-1].points.copy()
    solver = MeshCollider(
        sdf=SimpleNamespace(origin=np.zeros(3), spacing=1.0),
        condition=0,
        friction=0.0,
        centre0=mover.pivot,
        velocity=mover.velocity,
        angular_velocity=mover.angular_velocity,
    )
    time = 0.7
    posed = geometry.at(time)[-1].points
    row = solver.row(time)
    centre, rotation = row[6:9], row[9:18].reshape(3, 3)
    back_to_rest = (posed - centre) @ rotation + row[24:27]  # the kernel's inverse pose
    np.testing.assert_allclose(back_to_rest, rest, atol=1e-6)
    assert not np.allclose(posed, rest)


OUTLINE_SCENE = """
[simulation]
dim = 2
domain = [1.0, 0.6]

[[colliders]]
type = "outline"
path = "assets/outlines/wedge.dxf"
position = [0.5, 0.1]
rotation = 15.0
velocity = [0.1, -0.05]
angular_velocity = 0.8
"""


def test_outline_collider_is_a_closed_line_that_moves_like_the_solvers():
    geometry = SceneGeometry(OUTLINE_SCENE, ROOT)
    (mover,) = geometry.movers
    rest = geometry.at(0.0)[-1].points.copy()
    assert geometry.at(0.0)[-1].n_lines == 1 and np.all(rest[:, 2] == 0)
    solver = MeshCollider(
        sdf=SimpleNamespace(origin=np.zeros(2), spacing=1.0),
        condition=0,
        friction=0.0,
        centre0=mover.pivot[:2],
        velocity=mover.velocity[:2],
        angular_velocity=mover.angular_velocity,
    )
    time = 0.7
    posed = geometry.at(time)[-1].points[:, :2]
    row = solver.row(time)
    centre, rotation = row[6:8], row[9:18].reshape(3, 3)[:2, :2]
    back_to_rest = (posed - centre) @ rotation + row[24:26]  # the kernel's inverse pose
    np.testing.assert_allclose(back_to_rest, rest[:, :2], atol=1e-6)
    assert not np.allclose(posed, rest[:, :2])


def test_planes_are_cut_to_the_domain():
    geometry = SceneGeometry(MESH_SCENE, ROOT)
    (plane,) = geometry.planes
    assert plane.n_faces == 1
    points = plane.points
    np.testing.assert_allclose(points @ np.array([0.0, 1.0, 0.5]), 0.1, atol=1e-6)
    assert np.all(points >= -1e-9) and np.all(points <= geometry.domain + 1e-9)
    assert geometry.outline.n_lines == 12


def test_2d_plane_is_a_segment_on_the_domain_boundary():
    text = (
        "[simulation]\ndim = 2\ndomain = [2.0, 1.0]\n"
        '[[colliders]]\ntype = "plane"\npoint = [0.0, 0.2]\nnormal = [0.1, 1.0]\n'
    )
    geometry = SceneGeometry(text, ROOT)
    (segment,) = geometry.planes
    assert segment.n_lines == 1 and segment.n_points == 2
    np.testing.assert_allclose(sorted(map(tuple, segment.points)), [(0, 0.2, 0), (2, 0, 0)])
    assert geometry.outline.n_lines == 4
    assert geometry.movers == []


def test_von_mises_is_the_uniaxial_stress_and_zero_under_pressure():
    for d in (2, 3):
        uniaxial = np.zeros((1, d, d))
        uniaxial[0, 0, 0] = -250.0
        np.testing.assert_allclose(von_mises(uniaxial), [250.0])
        np.testing.assert_allclose(von_mises(-1e5 * np.eye(d)[None]), [0.0], atol=1e-9)
    shear = np.zeros((1, 3, 3))
    shear[0, 0, 1] = shear[0, 1, 0] = 10.0
    np.testing.assert_allclose(von_mises(shear), [np.sqrt(3) * 10.0])


def test_scalars_reduce_vectors_and_tensors():
    arrays = {"velocity": np.array([[3.0, 4.0]]), "F": 2 * np.eye(2)[None], "J": np.array([0.9])}
    assert scalars(arrays, "speed") == pytest.approx([5.0])
    assert scalars(arrays, "velocity") == pytest.approx([5.0])
    assert scalars(arrays, "F") == pytest.approx([np.sqrt(8.0)])
    assert scalars(arrays, "J") == pytest.approx([0.9])


def test_color_range_spans_all_frames_and_unknown_fields_list_the_choices(results):
    result = engine.io.open(results["box_2d"])
    low, high = color_range(result, "speed")
    every = np.concatenate([np.linalg.norm(r.arrays["velocity"], axis=1) for r in result])
    assert (low, high) == pytest.approx((every.min(), every.max()))
    assert high - low > 1e-3
    assert color_range(result, "material_id") == (-0.5, 0.5)
    with pytest.raises(VizError, match="choose one of: speed, velocity, material_id, body_id"):
        color_range(result, "pressure")


def test_frame_selections(results):
    result = engine.io.open(results["box_2d"])
    assert parse_frames("-1") == -1 and parse_frames("1:3") == slice(1, 3)
    assert parse_frames("::2") == slice(None, None, 2)
    assert select_frames(result, -1) == [3]
    assert select_frames(result, parse_frames("::2")) == [0, 2]
    for bad in ("x", "1:2:0", "1:2:3:4"):
        with pytest.raises(VizError, match="bad frame selection"):
            parse_frames(bad)
    with pytest.raises(VizError, match="select nothing"):
        select_frames(result, slice(5, 9))


def test_robust_range_is_percentiles_over_all_frames(results, monkeypatch):
    result = engine.io.open(results["box_2d"])
    every = np.concatenate([np.linalg.norm(r.arrays["velocity"], axis=1) for r in result])
    robust = color_range(result, "speed", robust=True)
    assert robust == pytest.approx(np.percentile(every, [2, 98]))
    low, high = color_range(result, "speed")
    assert low <= robust[0] < robust[1] <= high
    monkeypatch.setattr(color, "SAMPLES_PER_FRAME", 7)  # sampled frames keep their extremes
    assert color_range(result, "speed") == pytest.approx((low, high))
    assert color_range(result, "speed", robust=True) == pytest.approx(robust, rel=0.05)


def test_value_range_of_degenerate_values():
    mostly_one = np.array([1.0] * 99 + [5.0])
    assert value_range(mostly_one, robust=True) == (1.0, 5.0)  # percentiles equal: min, max
    assert value_range(np.array([2.0, 2.0]), robust=True) == (1.5, 2.5)
    assert value_range(np.zeros(0)) == (0.0, 1.0)


ID_SCENE = """
[materials.water]
model = "fluid"

[materials.jelly]
model = "fixed_corotated"

[[bodies]]
material = "jelly"

[[bodies]]
material = "water"
"""


def test_categories_name_materials_and_bodies_in_file_order():
    arrays = {"material_id": np.array([1, 0]), "body_id": np.array([0, 2, 1])}
    result = SimpleNamespace(
        path="fake.vtkhdf",
        scene_text=ID_SCENE,
        fields=list(arrays),
        n_frames=1,
        arrays=lambda i: arrays,
    )
    assert categories(result, "material_id") == ["water", "jelly"]
    assert categories(result, "body_id") == ["0: jelly", "1: water", "2"]  # 2: not in the scene
    assert categories(result, "speed") is None


def test_category_colors_are_distinct():
    assert category_colors(3) == [tuple(c) for c in colormaps["tab10"].colors[:3]]
    assert len(set(category_colors(15))) == 15
    assert category_colors(2, "viridis") == [tuple(colormaps["viridis"](x)[:3]) for x in (0.0, 1.0)]
