"""Tests for engine.geometry.sdf and the bundled meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from engine.geometry.sdf import SDFGrid, mesh_sdf, sample_sdf
from engine.geometry.seeding import load_mesh, seed_mesh

MESHES = Path(__file__).resolve().parents[2] / "assets" / "meshes"
SPACING = 0.01
RADIUS = 0.1


@pytest.fixture(scope="module")
def sphere_sdf() -> SDFGrid:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    return mesh_sdf(mesh, SPACING, margin=0.03)


def test_grid_layout(sphere_sdf):
    g = sphere_sdf
    assert g.values.dtype == np.float32
    assert g.values.ndim == 3
    np.testing.assert_allclose(g.origin, -RADIUS - 0.03, atol=1e-6)
    assert np.all(g.upper >= RADIUS + 0.03 - 1e-9)


@pytest.mark.parametrize("region", ["inside", "outside"])
def test_sdf_matches_sphere(sphere_sdf, region):
    rs = np.random.default_rng(0)
    d = rs.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    r = rs.uniform(0.0, RADIUS, 4000) if region == "inside" else rs.uniform(RADIUS, 0.125, 4000)
    p = d * r[:, None]
    dist, _ = sample_sdf(sphere_sdf, p)
    np.testing.assert_allclose(dist, r - RADIUS, atol=0.5 * SPACING)


def test_sdf_sign(sphere_sdf):
    g = sphere_sdf
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    corners = corners * 0.13
    d_center, _ = sample_sdf(g, np.zeros((1, 3)))
    d_corners, _ = sample_sdf(g, corners)
    assert d_center[0] < -0.09
    assert np.all(d_corners > 0.1)
    assert g.values[0, 0, 0] > 0 and g.values[tuple(np.array(g.values.shape) // 2)] < 0


def test_sdf_gradient_direction(sphere_sdf):
    rs = np.random.default_rng(1)
    p = rs.uniform(-0.125, 0.125, size=(4000, 3))
    r = np.linalg.norm(p, axis=1)
    p = p[(r > 0.03) & (r < 0.125)]
    _, grad = sample_sdf(sphere_sdf, p)
    cos = np.sum(grad * p, axis=1) / (np.linalg.norm(grad, axis=1) * np.linalg.norm(p, axis=1))
    assert cos.min() > 0.95
    # near the surface the gradient of a distance field has unit length
    near = np.abs(np.linalg.norm(p, axis=1) - RADIUS) < 2 * SPACING
    np.testing.assert_allclose(np.linalg.norm(grad[near], axis=1), 1.0, atol=0.1)


def test_sample_sdf_reproduces_nodes_and_fd_gradient(sphere_sdf):
    g = sphere_sdf
    ijk = np.array([[3, 4, 5], [10, 10, 10], [0, 0, 0], [g.values.shape[0] - 1, 2, 7]])
    d, _ = sample_sdf(g, g.origin + g.spacing * ijk)
    np.testing.assert_allclose(d, g.values[tuple(ijk.T)], rtol=1e-6, atol=1e-9)
    # the gradient is the derivative of the interpolant: compare with central differences
    p = np.random.default_rng(2).uniform(-0.1, 0.1, size=(200, 3))
    _, grad = sample_sdf(g, p)
    eps = 1e-6
    fd = np.stack(
        [
            (sample_sdf(g, p + eps * e)[0] - sample_sdf(g, p - eps * e)[0]) / (2 * eps)
            for e in np.eye(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(grad, fd, atol=1e-3)


def test_sample_sdf_outside_box(sphere_sdf):
    g = sphere_sdf
    p = np.array([[1.0, 0.0, 0.0], [0.0, -0.5, 0.2]])
    dist, grad = sample_sdf(g, p)
    q = np.clip(p, g.origin, g.upper)
    d_box = np.linalg.norm(p - q, axis=1)
    d_q, _ = sample_sdf(g, q)
    np.testing.assert_allclose(dist, d_q + d_box)
    assert np.all(dist > d_box)
    assert grad[0, 0] > 1.0  # pointing away from the box


def test_box_sdf_exact_near_surface():
    """Axis-aligned box: grid values equal the analytic box SDF (sign exact on grid planes)."""
    half = np.array([0.15, 0.02, 0.15])
    mesh = trimesh.creation.box(extents=2 * half)
    g = mesh_sdf(mesh, 0.3 / 40, margin=0.02)
    axes = [g.origin[a] + g.spacing * np.arange(n) for a, n in enumerate(g.values.shape)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    q = np.abs(pts) - half
    ref = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    v = g.values.reshape(-1)
    near = np.abs(ref) < 2 * g.spacing
    np.testing.assert_allclose(v[near], ref[near], atol=1e-6)
    np.testing.assert_allclose(v, ref, atol=0.3 * g.spacing)


def test_bunny_blob_asset():
    mesh = load_mesh(MESHES / "bunny_blob.obj", 1.0, [0, 0, 0], [0, 0, 0])
    assert mesh.is_watertight and mesh.volume > 0
    ext = mesh.bounds[1] - mesh.bounds[0]
    assert 0.1 < ext.max() < 0.3
    assert (MESHES / "bunny_blob.obj").stat().st_size < 200_000
    # seeded particles lie inside the SDF's zero level set
    g = mesh_sdf(mesh, 0.01, margin=0.02)
    pts = seed_mesh(mesh, 0.01, np.random.default_rng(0), 0.5)
    assert len(pts) * 0.01**3 == pytest.approx(mesh.volume, rel=0.05)
    dist, _ = sample_sdf(g, pts)
    assert np.all(dist < 0.5 * g.spacing)
    assert np.mean(dist < 0) > 0.9


def test_press_plate_asset():
    mesh = load_mesh(MESHES / "press_plate.stl", 1.0, [0, 0, 0], [0, 0, 0])
    assert mesh.is_watertight
    np.testing.assert_allclose(mesh.bounds, [[-0.15, -0.02, -0.15], [0.15, 0.02, 0.15]], atol=1e-6)
