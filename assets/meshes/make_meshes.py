"""Build the example meshes in this folder (run once; the outputs are committed).

    python assets/meshes/make_meshes.py

Writes:
- ``bunny_blob.obj``: a closed organic "bunny-like" blob about 0.2 m across: an icosphere whose
  vertices are displaced radially by smooth bumps (body, head, two ears). A radial displacement
  of a sphere stays star-shaped, hence watertight and free of self-intersections, without needing
  a boolean engine.
- ``press_plate.stl``: a closed box 0.3 x 0.04 x 0.3 m centred at the origin, used as a press
  plate collider.
- ``ramp_wedge.stl``: a ramp for the 3D contact scenes, placed in the domain as it is (position
  0): a convex block over x in [-0.05, 0.55] m and z in [-0.05, 0.35] m whose top falls from
  y = 0.16 m at x = 0 to y = 0.06 m at x = 0.5 (11.3 degrees), bottom at y = -0.05 m.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

HERE = Path(__file__).resolve().parent


def _bump(u: np.ndarray, direction: list[float], width: float) -> np.ndarray:
    """Smooth bump on the unit sphere: exp(-|u - d|^2 / width), d a unit direction."""
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    return np.exp(-np.sum((u - d) ** 2, axis=1) / width)


def make_bunny_blob() -> trimesh.Trimesh:
    """Radially displaced icosphere, ~0.2 m across, y up."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    u = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)
    r = 0.075 * (
        1.0
        + 0.25 * _bump(u, [-1.0, -0.3, 0.0], 0.6)  # rounded haunch
        + 0.35 * _bump(u, [1.0, 0.55, 0.0], 0.25)  # head
        + 0.75 * _bump(u, [0.45, 1.0, 0.25], 0.03)  # ear
        + 0.70 * _bump(u, [0.45, 1.0, -0.25], 0.03)  # ear
        + 0.20 * _bump(u, [-1.0, 0.2, 0.0], 0.05)  # tail
        - 0.15 * _bump(u, [0.0, -1.0, 0.0], 0.5)  # flattened belly
    )
    mesh = trimesh.Trimesh(vertices=u * r[:, None], faces=sphere.faces, process=True)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    return mesh


def make_press_plate() -> trimesh.Trimesh:
    """Closed box 0.3 x 0.04 x 0.3 m centred at the origin."""
    return trimesh.creation.box(extents=[0.3, 0.04, 0.3])


def make_ramp_wedge() -> trimesh.Trimesh:
    """The convex hull of a block whose top slopes down along x (see the module docstring)."""

    def top(x: float) -> float:
        return 0.16 - 0.2 * x  # m: 0.1 m of fall over 0.5 m

    xs, zs = (-0.05, 0.55), (-0.05, 0.35)
    corners = [[x, y, z] for x in xs for y in (-0.05, top(x)) for z in zs]
    return trimesh.convex.convex_hull(np.array(corners))


def main() -> None:
    for name, mesh in [
        ("bunny_blob.obj", make_bunny_blob()),
        ("press_plate.stl", make_press_plate()),
        ("ramp_wedge.stl", make_ramp_wedge()),
    ]:
        assert mesh.is_watertight, name
        assert mesh.is_winding_consistent, name
        assert mesh.volume > 0, name
        path = HERE / name
        if path.suffix == ".obj":
            mesh.export(path, include_normals=False, digits=6)
        else:
            mesh.export(path)
        back = trimesh.load(path, force="mesh")
        assert back.is_watertight, name
        ext = back.bounds[1] - back.bounds[0]
        print(
            f"{name}: {len(back.vertices)} vertices, {len(back.faces)} faces, "
            f"extent {np.round(ext, 4)} m, volume {back.volume:.6f} m^3, "
            f"{path.stat().st_size / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
