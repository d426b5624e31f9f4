"""Particle seeding inside simple shapes, closed triangle meshes and closed 2D outlines.

All lengths are in metres. Points are returned as ``(N, d)`` float64 arrays, ``d`` being 2 or 3.

Every seeder starts from a cell-centred lattice (:func:`lattice_in_box`) covering the shape's
bounding box, optionally jittered, and keeps the points that the shape contains. The test is made
on the jittered points, so a seeded shape is filled exactly; points lying on a boundary may go
either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh

from engine.geometry.outline import Loops, outline_bounds, outline_contains

__all__ = [
    "MeshError",
    "lattice_in_box",
    "load_mesh",
    "mesh_contains",
    "ray_crossings",
    "seed_box",
    "seed_cylinder",
    "seed_mesh",
    "seed_outline",
    "seed_sphere",
]

# Slightly tilted, near-axis ray directions used for containment tests. Near-axis rays have thin
# bounding boxes (few candidate triangles, fast); the tilt avoids exact hits on the edges of
# axis-aligned meshes (e.g. the diagonal of a box face) for points on a regular lattice.
_RAY_DIRECTIONS = np.array(
    [
        [0.01234567, 0.00712345, 1.0],
        [1.0, 0.01357913, 0.00824682],
        [0.00931415, 1.0, 0.01161803],
    ]
)
_RAY_DIRECTIONS /= np.linalg.norm(_RAY_DIRECTIONS, axis=1, keepdims=True)


class MeshError(ValueError):
    """A mesh file that cannot be used (unreadable, empty, or not watertight)."""


def _as_vec(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if v.size not in (2, 3):
        raise ValueError(f"{name} must have 2 or 3 components, got {v.size}")
    return v


def _check_spacing(spacing: float, jitter: float) -> None:
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0 m, got {spacing}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be in [0, 1], got {jitter}")


def lattice_in_box(
    lo: np.ndarray,
    hi: np.ndarray,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Cell-centred lattice points filling the box ``[lo, hi)``.

    Parameters
    ----------
    lo, hi : (d,) array, m
        Box corners, ``d`` = 2 or 3.
    spacing : float, m
        Lattice spacing (one point per ``spacing**d`` of volume).
    rng : numpy Generator
        Source of the jitter noise (not drawn from when ``jitter == 0``).
    jitter : float in [0, 1]
        Each coordinate is displaced by uniform noise in ``[-jitter/2, jitter/2] * spacing``.

    Returns
    -------
    (N, d) float64 array, m. The first point is ``lo + spacing/2`` (before jitter); along each
    axis there are as many points as fit with ``lo + (k + 1/2) * spacing < hi``.
    """
    lo = _as_vec(lo, "lo")
    hi = _as_vec(hi, "hi")
    if lo.shape != hi.shape:
        raise ValueError(f"lo and hi differ in dimension: {lo.shape} vs {hi.shape}")
    _check_spacing(spacing, jitter)
    d = lo.size
    # number of k >= 0 with (k + 0.5) * spacing < L; the small tolerance absorbs round-off in L/s
    counts = np.ceil((hi - lo) / spacing - 0.5 - 1e-9).astype(np.int64)
    counts = np.maximum(counts, 0)
    if np.any(counts == 0):
        return np.zeros((0, d))
    axes = [lo[a] + (np.arange(counts[a]) + 0.5) * spacing for a in range(d)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    if jitter > 0:
        pts = pts + rng.uniform(-0.5 * jitter, 0.5 * jitter, size=pts.shape) * spacing
    return pts


def seed_box(
    lo: np.ndarray,
    hi: np.ndarray,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Points filling the axis-aligned box ``[lo, hi]`` (m); returns (N, d), d = len(lo)."""
    lo = _as_vec(lo, "lo")
    hi = _as_vec(hi, "hi")
    pts = lattice_in_box(lo, hi, spacing, rng, jitter)
    keep = np.all((pts >= lo) & (pts <= hi), axis=1)
    return pts[keep]


def seed_sphere(
    center: np.ndarray,
    radius: float,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Points filling a ball (3D) or disk (2D) of ``radius`` (m) around ``center`` (m).

    Returns (N, d), d = len(center).
    """
    c = _as_vec(center, "center")
    if not radius > 0:
        raise ValueError(f"radius must be > 0 m, got {radius}")
    pts = lattice_in_box(c - radius, c + radius, spacing, rng, jitter)
    keep = np.sum((pts - c) ** 2, axis=1) <= radius * radius
    return pts[keep]


def seed_cylinder(
    center: np.ndarray,
    radius: float,
    height: float,
    axis: int,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Points filling an axis-aligned cylinder; returns (N, d), d = len(center).

    ``center`` (m) is the middle of the cylinder, ``height`` (m) its length along ``axis`` and
    ``radius`` (m) its radius. In 2D a cylinder seen from the side is a rectangle of width
    ``2 * radius`` across and ``height`` along ``axis`` (0 or 1).
    """
    c = _as_vec(center, "center")
    d = c.size
    if axis not in range(d):
        raise ValueError(f"axis must be in 0..{d - 1} for a {d}D cylinder, got {axis}")
    if not radius > 0 or not height > 0:
        raise ValueError(f"radius and height must be > 0 m, got {radius}, {height}")
    half = np.full(d, float(radius))
    half[axis] = 0.5 * height
    pts = lattice_in_box(c - half, c + half, spacing, rng, jitter)
    rel = pts - c
    keep = np.abs(rel[:, axis]) <= 0.5 * height
    across = np.delete(rel, axis, axis=1)
    keep &= np.sum(across**2, axis=1) <= radius * radius
    return pts[keep]


def ray_crossings(
    mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct surface crossings of the rays ``origins + t * direction`` (t > 0).

    ``origins`` is (N, 3), m; ``direction`` a (3,) unit vector. Hits of one ray at the same
    distance (a ray through a shared edge or vertex reports each adjacent triangle) are counted
    once. Returns ``(index_ray, t)``: (H,) int ray index and (H,) float distance along the ray, m.
    """
    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
    n = len(origins)
    dirs = np.ascontiguousarray(np.broadcast_to(direction, (n, 3)))
    _, index_ray, locations = mesh.ray.intersects_id(
        origins, dirs, multiple_hits=True, return_locations=True
    )
    index_ray = np.asarray(index_ray, dtype=np.int64)
    if len(index_ray) == 0:
        return index_ray, np.zeros(0)
    t = np.einsum("ij,j->i", np.asarray(locations) - origins[index_ray], direction)
    order = np.lexsort((t, index_ray))
    ray_s, t_s = index_ray[order], t[order]
    tol = 1e-9 * max(float(mesh.scale), 1e-12)
    first = np.ones(len(ray_s), dtype=bool)
    first[1:] = (ray_s[1:] != ray_s[:-1]) | (np.diff(t_s) > tol)
    return ray_s[first], t_s[first]


def _ray_hit_counts(
    mesh: trimesh.Trimesh, origins: np.ndarray, direction: np.ndarray
) -> np.ndarray:
    """Number of distinct crossings (see :func:`ray_crossings`) per ray; (N,) int."""
    index_ray, _ = ray_crossings(mesh, origins, direction)
    return np.bincount(index_ray, minlength=len(origins))


def mesh_contains(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Whether each point (N, 3), m, is inside the closed mesh; returns (N,) bool.

    A faster, more robust stand-in for ``mesh.contains`` without Embree: parity of crossings of a
    near-axis ray cast both ways; where the two directions disagree, two more near-axis lines
    vote. Points on the surface may go either way.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    result = np.zeros(len(points), dtype=bool)
    lo, hi = mesh.bounds
    in_aabb = np.all((points >= lo) & (points <= hi), axis=1)
    idx = np.flatnonzero(in_aabb)
    if idx.size == 0:
        return result
    p = points[idx]
    fwd = _ray_hit_counts(mesh, p, _RAY_DIRECTIONS[0])
    bwd = _ray_hit_counts(mesh, p, -_RAY_DIRECTIONS[0])
    inside = (fwd % 2) == 1
    agree = (fwd % 2) == (bwd % 2)
    # a ray that leaves without crossing anything is strong evidence of being outside
    free = (fwd == 0) | (bwd == 0)
    inside[~agree & free] = False
    broken = np.flatnonzero(~agree & ~free)
    if broken.size:
        pb = p[broken]
        votes = (fwd[broken] % 2) + (bwd[broken] % 2)
        for direction in _RAY_DIRECTIONS[1:]:
            votes += _ray_hit_counts(mesh, pb, direction) % 2
            votes += _ray_hit_counts(mesh, pb, -direction) % 2
        inside[broken] = votes >= 4  # majority of 6
    result[idx] = inside
    return result


def seed_mesh(
    mesh: trimesh.Trimesh,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Points filling the inside of a closed (watertight) triangle mesh; returns (N, 3), m.

    The lattice covers ``mesh.bounds``; containment of the jittered points is tested with
    :func:`mesh_contains` (ray parity, equivalent to ``mesh.contains``).
    """
    if len(mesh.faces) == 0:
        raise MeshError("cannot seed an empty mesh")
    lo, hi = mesh.bounds
    pts = lattice_in_box(lo, hi, spacing, rng, jitter)
    if len(pts) == 0:
        return pts
    return pts[mesh_contains(mesh, pts)]


def seed_outline(
    loops: Loops,
    spacing: float,
    rng: np.random.Generator,
    jitter: float,
) -> np.ndarray:
    """Points filling a closed 2D outline (its loops, m, inside by the even-odd rule; see
    :mod:`engine.geometry.outline`); returns (N, 2), m."""
    lo, hi = outline_bounds(loops)
    pts = lattice_in_box(lo, hi, spacing, rng, jitter)
    return pts[outline_contains(loops, pts)]


def load_mesh(
    path: Path | str,
    scale: float | Sequence[float] = 1.0,
    position: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    rotation_deg: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
) -> trimesh.Trimesh:
    """Load a closed triangle mesh and place it in the scene.

    Transform order: scale (uniform float or per-axis ``[sx, sy, sz]``, > 0) about the origin,
    then rotate about the origin by ``rotation_deg = [rx, ry, rz]`` degrees (extrinsic X, then Y,
    then Z: ``R = Rz @ Ry @ Rx``), then translate by ``position`` (m).

    Raises :class:`MeshError` naming the file if it cannot be read, holds no triangles, or is not
    watertight (volume seeding needs a closed surface).
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise MeshError(f"mesh file '{path}' does not exist; check the path in the scene file")
    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as exc:  # trimesh raises many types for malformed files
        raise MeshError(
            f"cannot read mesh file '{name}' ({type(exc).__name__}: {exc}); "
            "export it as a valid OBJ/STL/PLY triangle mesh"
        ) from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise MeshError(
            f"mesh file '{name}' contains no triangles; export it as a valid OBJ/STL/PLY "
            "triangle mesh"
        )
    if not mesh.is_watertight:
        raise MeshError(
            f"mesh '{name}' is not watertight (it has holes or open edges), so its inside is "
            "undefined; use a closed mesh, or repair it first, e.g. with trimesh.repair.fill_holes "
            "/ trimesh.repair.fix_normals, or in a mesh editor"
        )

    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size == 1:
        s = np.repeat(s, 3)
    if s.size != 3 or np.any(s <= 0):
        raise ValueError(f"scale must be a positive number or 3 positive numbers, got {scale}")
    pos = np.asarray(position, dtype=np.float64).reshape(3)
    ang = np.radians(np.asarray(rotation_deg, dtype=np.float64).reshape(3))

    transform = trimesh.transformations.euler_matrix(ang[0], ang[1], ang[2], axes="sxyz")
    transform[:3, :3] = transform[:3, :3] @ np.diag(s)
    transform[:3, 3] = pos
    mesh = mesh.copy()
    mesh.apply_transform(transform)
    if mesh.volume < 0:  # inward-facing normals: flip so "inside" is the enclosed volume
        mesh.invert()
    return mesh
