"""Tests for engine.geometry.seeding."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from engine.geometry.seeding import (
    MeshError,
    lattice_in_box,
    load_mesh,
    mesh_contains,
    seed_box,
    seed_cylinder,
    seed_mesh,
    seed_sphere,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_lattice_is_cell_centred():
    pts = lattice_in_box(np.array([0.0, 0.0]), np.array([0.3, 0.2]), 0.1, rng(), 0.0)
    assert pts.shape == (6, 2)
    np.testing.assert_allclose(pts.min(axis=0), [0.05, 0.05])
    np.testing.assert_allclose(pts.max(axis=0), [0.25, 0.15])


def test_box_count_2d():
    lo, hi = np.array([0.0, 0.0]), np.array([1.0, 0.5])
    pts = seed_box(lo, hi, 0.1, rng(), 0.0)
    assert pts.shape == (50, 2)
    assert np.all((pts >= lo) & (pts <= hi))


def test_box_count_3d():
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.5, 0.3])
    pts = seed_box(lo, hi, 0.1, rng(), 0.0)
    assert pts.shape == (150, 3)
    assert np.all((pts >= lo) & (pts <= hi))


def test_box_with_jitter_stays_inside():
    lo, hi = np.array([-0.2, 0.1, 0.0]), np.array([0.2, 0.4, 0.1])
    pts = seed_box(lo, hi, 0.02, rng(3), 1.0)
    assert np.all((pts >= lo) & (pts <= hi))
    assert abs(len(pts) - 20 * 15 * 5) <= 3


@pytest.mark.parametrize("jitter", [0.0, 0.6])
def test_sphere_volume(jitter):
    s = 0.01
    r = 10 * s
    c = np.array([0.3, -0.2, 0.5])
    pts = seed_sphere(c, r, s, rng(1), jitter)
    assert len(pts) * s**3 == pytest.approx(4 / 3 * np.pi * r**3, rel=0.03)
    assert np.all(np.linalg.norm(pts - c, axis=1) <= r)


@pytest.mark.parametrize("jitter", [0.0, 0.6])
def test_disk_area(jitter):
    s = 0.01
    r = 10 * s
    c = np.array([0.5, 0.5])
    pts = seed_sphere(c, r, s, rng(1), jitter)
    assert pts.shape[1] == 2
    assert len(pts) * s**2 == pytest.approx(np.pi * r**2, rel=0.03)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cylinder_3d_extent(axis):
    s, r, h = 0.01, 0.1, 0.3
    c = np.array([0.5, 0.4, 0.3])
    pts = seed_cylinder(c, r, h, axis, s, rng(), 0.0)
    ext = pts.max(axis=0) - pts.min(axis=0)
    others = [a for a in range(3) if a != axis]
    assert ext[axis] == pytest.approx(h - s, abs=1e-9)  # cell-centred: h - spacing
    np.testing.assert_allclose(ext[others], 2 * r - s, atol=1e-9)
    np.testing.assert_allclose(pts.mean(axis=0), c, atol=1e-9)
    assert len(pts) * s**3 == pytest.approx(np.pi * r**2 * h, rel=0.03)


@pytest.mark.parametrize("axis", [0, 1])
def test_cylinder_2d_is_rectangle(axis):
    s, r, h = 0.01, 0.1, 0.3
    c = np.array([0.5, 0.4])
    pts = seed_cylinder(c, r, h, axis, s, rng(), 0.0)
    ext = pts.max(axis=0) - pts.min(axis=0)
    assert ext[axis] == pytest.approx(h - s, abs=1e-9)
    assert ext[1 - axis] == pytest.approx(2 * r - s, abs=1e-9)
    assert len(pts) == 30 * 20


def test_cylinder_bad_axis():
    with pytest.raises(ValueError):
        seed_cylinder(np.zeros(2), 0.1, 0.2, 2, 0.01, rng(), 0.0)


def test_jitter_reproducible():
    c = np.zeros(3)
    a = seed_sphere(c, 0.1, 0.01, rng(42), 0.5)
    b = seed_sphere(c, 0.1, 0.01, rng(42), 0.5)
    d = seed_sphere(c, 0.1, 0.01, rng(43), 0.5)
    np.testing.assert_array_equal(a, b)
    assert a.shape != d.shape or not np.array_equal(a, d)


def test_jitter_amplitude():
    lo, hi = np.zeros(3), np.ones(3) * 0.1
    base = lattice_in_box(lo, hi, 0.01, rng(), 0.0)
    jit = lattice_in_box(lo, hi, 0.01, rng(5), 0.4)
    off = np.abs(jit - base)
    assert off.max() <= 0.2 * 0.01 + 1e-15
    assert off.max() > 0.15 * 0.01


def test_seed_mesh_box_exact():
    mesh = trimesh.creation.box(extents=[0.2, 0.1, 0.15])
    pts = seed_mesh(mesh, 0.01, rng(), 0.0)
    assert len(pts) == 20 * 10 * 15


@pytest.mark.parametrize("jitter", [0.0, 0.7])
def test_seed_mesh_volume(jitter):
    s = 0.01
    for mesh in [
        trimesh.creation.box(extents=[0.2, 0.1, 0.15]),
        trimesh.creation.icosphere(subdivisions=3, radius=0.1),
    ]:
        pts = seed_mesh(mesh, s, rng(2), jitter)
        assert len(pts) * s**3 == pytest.approx(mesh.volume, rel=0.03)


def test_mesh_contains_matches_sphere():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.1)
    p = rng(7).uniform(-0.12, 0.12, size=(5000, 3))
    r = np.linalg.norm(p, axis=1)
    clear = np.abs(r - 0.1) > 1e-3  # icosphere vs sphere differ slightly near the surface
    inside = mesh_contains(mesh, p)
    np.testing.assert_array_equal(inside[clear], (r < 0.1)[clear])


def test_load_mesh_transform(tmp_path):
    path = tmp_path / "cube.obj"
    trimesh.creation.box(extents=[1.0, 1.0, 1.0]).export(path)
    mesh = load_mesh(path, scale=[2.0, 1.0, 1.0], position=[1.0, 2.0, 3.0], rotation_deg=[0, 0, 90])
    # scale x by 2, rotate 90 deg about z (x -> y), translate
    np.testing.assert_allclose(mesh.bounds[1] - mesh.bounds[0], [1.0, 2.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), [1.0, 2.0, 3.0], atol=1e-9)
    # vertex (0.5, 0.5, 0.5) -> scaled (1, 0.5, 0.5) -> rotated (-0.5, 1, 0.5) -> moved
    target = np.array([0.5, 3.0, 3.5])
    assert np.min(np.linalg.norm(mesh.vertices - target, axis=1)) < 1e-9
    assert mesh.is_watertight and mesh.volume == pytest.approx(2.0)


def test_load_mesh_uniform_scale(tmp_path):
    path = tmp_path / "ball.stl"
    trimesh.creation.icosphere(subdivisions=2, radius=1.0).export(path)
    mesh = load_mesh(path, scale=0.1)
    np.testing.assert_allclose(mesh.bounds[1] - mesh.bounds[0], [0.2, 0.2, 0.2], rtol=1e-6)


def test_load_mesh_garbage_raises(tmp_path):
    path = tmp_path / "broken_thing.obj"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(MeshError, match="broken_thing.obj"):
        load_mesh(path, 1.0, [0, 0, 0], [0, 0, 0])


def test_load_mesh_missing_raises(tmp_path):
    with pytest.raises(MeshError, match="nothing_here.obj"):
        load_mesh(tmp_path / "nothing_here.obj", 1.0, [0, 0, 0], [0, 0, 0])


def test_load_mesh_open_mesh_raises(tmp_path):
    box = trimesh.creation.box(extents=[1.0, 1.0, 1.0])
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)
    path = tmp_path / "open_box.stl"
    open_box.export(path)
    with pytest.raises(MeshError, match=r"open_box\.stl.*watertight"):
        load_mesh(path, 1.0, [0, 0, 0], [0, 0, 0])
    assert issubclass(MeshError, ValueError)
