"""Closed 2D outlines (polygons): reading, placing, checking, containment and exact distance.

An outline is a list of closed loops, each an ``(n, 2)`` float64 array of vertices in metres,
the last vertex joined back to the first (the first is not repeated). Its inside is the even-odd
union of the loops: a loop inside another is a hole. All tests are vectorised over points and
segments (chunked so that ``points x segments`` stays bounded), never a Python loop per point.

Loops come from a scene's ``points`` (one loop; a repeated first point at the end is dropped, an
unrepeated one is joined implicitly) or from an SVG or DXF file read with
``trimesh.load_path``, where every path must be closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "OutlineError",
    "load_outline",
    "outline_bounds",
    "outline_contains",
    "outline_distance",
    "outline_problems",
    "outline_segments",
    "place_outline",
    "points_outline",
]

Loops = list[np.ndarray]

#: Point-segment pairs evaluated per chunk (memory: about 100 bytes each).
_CHUNK_PAIRS = 2_000_000
#: Outline file formats, by suffix (what ``trimesh.load_path`` reads).
FILE_SUFFIXES = (".svg", ".dxf")


class OutlineError(ValueError):
    """An outline that cannot be used (unreadable file, open path, too few points, ...)."""


def points_outline(points: Sequence[Sequence[float]]) -> Loops:
    """One loop from a scene's ``points`` list ``(n, 2)``, m; a repeated first point is dropped.

    Raises :class:`OutlineError` if a point does not have 2 coordinates.
    """
    try:
        loop = np.asarray(points, dtype=np.float64)
    except ValueError as exc:  # ragged lists
        raise OutlineError("every point needs 2 coordinates [x, y]") from exc
    if loop.size == 0:
        return [np.zeros((0, 2))]
    if loop.ndim != 2 or loop.shape[1] != 2:
        raise OutlineError("every point needs 2 coordinates [x, y]")
    return [_without_repeats(loop)]


def _without_repeats(loop: np.ndarray) -> np.ndarray:
    """``loop`` (n, 2) without consecutive duplicate vertices (including last == first)."""
    if len(loop) == 0:
        return loop
    following = np.roll(loop, -1, axis=0)
    keep = np.any(loop != following, axis=1)
    if not keep.any():
        return loop[:1]
    return loop[keep]


def load_outline(path: Path | str) -> Loops:
    """The closed loops of an SVG or DXF file, in the file's units (``trimesh.load_path``).

    Curves (arcs, Béziers, splines) are discretised by trimesh. SVG coordinates are used as
    they are (user units, no viewBox scaling): SVG's y axis points down, so a drawing appears
    mirrored top to bottom unless placed with a negative y scale (:func:`place_outline`).

    Raises :class:`OutlineError` naming the file if it is missing, unreadable, holds no path,
    or holds an open path (its inside would be undefined).
    """
    import trimesh  # deferred: trimesh's path module imports slowly

    path = Path(path)
    if not path.is_file():
        raise OutlineError(f"outline file '{path}' does not exist; check the path in the scene")
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise OutlineError(f"outline file '{path.name}' is not an SVG or DXF file")
    try:
        drawing = trimesh.load_path(path)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise OutlineError(
            f"cannot read outline file '{path.name}' ({type(exc).__name__}: {exc})"
        ) from exc
    entities = list(getattr(drawing, "entities", []))
    if not entities:
        raise OutlineError(f"outline file '{path.name}' holds no path")
    if not all(entity.closed for entity in entities):
        raise OutlineError(f"outline file '{path.name}' has an open path (its inside is undefined)")
    return [_without_repeats(np.asarray(loop, dtype=np.float64)) for loop in drawing.discrete]


def place_outline(
    loops: Loops,
    scale: float | Sequence[float] = 1.0,
    position: Sequence[float] = (0.0, 0.0),
    rotation_deg: float = 0.0,
) -> Loops:
    """``loops`` scaled (a number or ``[sx, sy]``, non-zero; a negative factor mirrors, e.g.
    ``[0.001, -0.001]`` reads an SVG drawn in mm, y down, as metres, y up) about the origin,
    then rotated counter-clockwise by ``rotation_deg`` degrees about the origin, then moved by
    ``position`` (m): the order of :func:`engine.geometry.seeding.load_mesh`, with one angle."""
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(-1), (2,))
    if np.any(s == 0):
        raise OutlineError(f"scale must be a non-zero number or 2 non-zero numbers, got {scale}")
    angle = np.radians(rotation_deg)
    c, n = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -n], [n, c]])
    shift = np.asarray(position, dtype=np.float64).reshape(2)
    return [(loop * s) @ rotation.T + shift for loop in loops]


def outline_segments(loops: Loops) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of every loop: start points (S, 2) and end points (S, 2), m."""
    starts = np.concatenate(loops)
    ends = np.concatenate([np.roll(loop, -1, axis=0) for loop in loops])
    return starts, ends


def outline_bounds(loops: Loops) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners (2,) each, m."""
    every = np.concatenate(loops)
    return every.min(axis=0), every.max(axis=0)


def _chunks(n_points: int, n_segments: int):
    """Slices of ``range(n_points)`` holding at most ``_CHUNK_PAIRS`` point-segment pairs."""
    size = max(1, _CHUNK_PAIRS // max(1, n_segments))
    for start in range(0, n_points, size):
        yield slice(start, min(start + size, n_points))


def outline_contains(loops: Loops, points: np.ndarray) -> np.ndarray:
    """Whether each point (N, 2), m, is inside the outline (even-odd rule); (N,) bool.

    A horizontal ray to +x crosses edge ``a -> b`` when exactly one end lies above the point
    (half-open, so a ray through a vertex counts once) and the crossing is right of the point.
    Points on an edge may go either way.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a, b = outline_segments(loops)
    inside = np.zeros(len(points), dtype=bool)
    for chunk in _chunks(len(points), len(a)):
        px, py = points[chunk, 0:1], points[chunk, 1:2]
        straddles = (a[:, 1] > py) != (b[:, 1] > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        crossings = np.count_nonzero(straddles & (px < x_cross), axis=1)
        inside[chunk] = crossings % 2 == 1
    return inside


def outline_distance(loops: Loops, points: np.ndarray) -> np.ndarray:
    """Exact (unsigned) distance, m, from each point (N, 2) to the nearest edge; (N,) float64."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a, b = outline_segments(loops)
    edge = b - a
    length2 = np.maximum((edge**2).sum(axis=1), 1e-300)
    out = np.empty(len(points))
    for chunk in _chunks(len(points), len(a)):
        rel = points[chunk, None, :] - a  # (n, S, 2)
        t = np.clip((rel * edge).sum(axis=2) / length2, 0.0, 1.0)
        off = rel - t[:, :, None] * edge
        out[chunk] = np.sqrt((off**2).sum(axis=2).min(axis=1))
    return out


def _edge_places(loops: Loops) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per edge (S,) int each: its loop, its index within the loop, and the loop's size."""
    sizes = np.array([len(loop) for loop in loops])
    loop_id = np.repeat(np.arange(len(loops)), sizes)
    local = np.concatenate([np.arange(size) for size in sizes])
    return loop_id, local, sizes[loop_id]


def _crossing_pairs(loops: Loops) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of edges of ``loops`` that touch or cross, other than
    neighbours in one loop (which share a vertex); (P, 2) int, edges numbered as in
    :func:`outline_segments`."""
    a, b = outline_segments(loops)
    loop_id, local, size = _edge_places(loops)
    scale = float(np.abs(np.concatenate([a, b])).max()) or 1.0
    tol = 1e-12 * scale * scale

    def orient(p, q, r):  # sign of the cross product (q - p) x (r - p), 0 within tol
        cross = (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )
        return np.where(np.abs(cross) <= tol, 0, np.sign(cross))

    found = [np.zeros((0, 2), int)]
    for chunk in _chunks(len(a), len(a)):
        ai, bi = a[chunk, None, :], b[chunk, None, :]
        o1, o2 = orient(ai, bi, a[None]), orient(ai, bi, b[None])
        o3, o4 = orient(a[None], b[None], ai), orient(a[None], b[None], bi)
        hit = (o1 * o2 <= 0) & (o3 * o4 <= 0)
        # collinear pairs meet only where their extents overlap on both axes
        collinear = (o1 == 0) & (o2 == 0)
        lo_i, hi_i = np.minimum(ai, bi), np.maximum(ai, bi)
        lo_j, hi_j = np.minimum(a, b)[None], np.maximum(a, b)[None]
        slack = 1e-12 * scale
        overlap = np.all((lo_i <= hi_j + slack) & (lo_j <= hi_i + slack), axis=2)
        hit &= ~collinear | overlap
        gap = np.abs(local[chunk, None] - local[None])  # within a loop: 1 or size - 1 next
        same_loop = loop_id[chunk, None] == loop_id[None]
        hit &= ~(same_loop & ((gap <= 1) | (gap == size[None] - 1)))
        i, j = np.nonzero(hit)
        i = i + chunk.start
        found.append(np.stack([i, j], axis=1)[i < j])
    return np.concatenate(found)


def _signed_area(loop: np.ndarray) -> float:
    """Shoelace area of a loop (n, 2), m²: positive when counter-clockwise."""
    x, y = loop[:, 0], loop[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def outline_problems(loops: Loops) -> list[tuple[str, str]]:
    """What makes ``loops`` unusable as a closed outline, as ``(kind, message)``: ``"few"``,
    fewer than 3 distinct points in a loop; ``"crossing"``, edges that cross or touch (other than
    neighbours at their shared vertex); ``"flat"``, a loop enclosing no area. Empty when the
    outline is fine; else the first problem found, alone."""
    if not loops or any(len(loop) < 3 for loop in loops):
        count = min((len(loop) for loop in loops), default=0)
        plural = "" if count == 1 else "s"
        return [("few", f"the outline has {count} distinct point{plural}, at least 3 needed")]
    pairs = _crossing_pairs(loops)
    if len(pairs):
        a, b = outline_segments(loops)
        i, j = pairs[0]
        message = (
            f"the outline intersects itself: the edge from {_point(a[i])} to {_point(b[i])} "
            f"meets the edge from {_point(a[j])} to {_point(b[j])}"
        )
        return [("crossing", message)]
    lo, hi = outline_bounds(loops)
    size = float(np.max(hi - lo))
    if any(abs(_signed_area(loop)) <= 1e-12 * size * size for loop in loops):
        return [("flat", "the outline encloses no area (its points lie on one line)")]
    return []


def _point(p: np.ndarray) -> str:
    return f"[{p[0]:.4g}, {p[1]:.4g}]"
