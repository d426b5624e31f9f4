"""Everything drawn for one result in one PyVista plotter, updated in place frame by frame.

Shared by ``engine render`` (off screen) and ``engine view`` (a window): particles as points or
sphere glyphs coloured by a field, the mesh movers' surface, the obstacles at the frame's time,
a scalar bar and a time label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvista as pv
from scipy.spatial import cKDTree

from engine.io import Result
from engine.viz import VizError, color
from engine.viz.results import nearest_frame, open_surface
from engine.viz.scene_geometry import SceneGeometry

#: Camera presets: the direction from the domain's centre to the camera, and the up direction.
#: +y is up (gravity's default axis) except looking down onto the xz plane; ``iso`` looks from
#: +x, +z and somewhat above.
CAMERAS = {
    "iso": ((1.0, 0.6, 1.4), (0.0, 1.0, 0.0)),
    "xy": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "xz": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "yz": ((-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}

PARTICLES, SURFACE = "particles", "surface"  # actor names


@dataclass
class Style:
    """How particles are drawn.

    Attributes:
        field: the colour field (see :mod:`engine.viz.color`).
        cmap: a matplotlib colour map name.
        clim: (low, high) colour range in the field's unit; None: its range over all frames.
        point_size: point diameter in pixels (points mode).
        spheres: draw sphere glyphs (radius half the particle spacing) instead of points.
    """

    field: str = color.SPEED
    cmap: str = "viridis"
    clim: tuple[float, float] | None = None
    point_size: float = 5.0
    spheres: bool = False


def parse_camera(camera: str | None, dim: int) -> str | list[tuple[float, float, float]]:
    """A preset name, or ``"x,y,z;fx,fy,fz;ux,uy,uz"`` as [position, focal point, view up] (m).

    None picks ``xy`` for 2D results and ``iso`` for 3D ones.
    """
    if camera is None:
        return "xy" if dim == 2 else "iso"
    if camera in CAMERAS:
        return camera
    try:
        vectors = [tuple(float(c) for c in part.split(",")) for part in camera.split(";")]
    except ValueError:
        vectors = []
    if len(vectors) != 3 or any(len(v) != 3 for v in vectors):
        raise VizError(
            f"bad camera {camera!r}; use one of {', '.join(CAMERAS)} or "
            "'x,y,z;fx,fy,fz;ux,uy,uz' (position; focal point; view up)"
        )
    return vectors


class Stage:
    """One result drawn in ``plotter``; :meth:`show` moves everything to frame ``i``.

    Attributes:
        frame: the frame shown (-1 before the first :meth:`show`).
        particles: the particle points or glyphs, with the colour values as point data.
        surface_mesh: the mesh movers' surface, empty if the result has none.
    """

    def __init__(self, plotter: pv.Plotter, result: Result, style: Style) -> None:
        color.check_field(result, style.field)
        self.plotter, self.result, self.style = plotter, result, style
        self.surface = open_surface(result)
        self.geometry = SceneGeometry.from_result(result)
        self.radius = _glyph_radius(result.points(0), self.geometry.domain)
        self.clims = {style.field: style.clim} if style.clim else {}
        self.particles = pv.PolyData()
        self.surface_mesh = pv.PolyData()
        self.frame = -1
        plotter.add_mesh(self.geometry.outline, color="black", line_width=1)
        for plane in self.geometry.planes:
            if plane.n_points:
                opacity = 0.5 if plane.n_faces else 1.0
                plotter.add_mesh(plane, color="saddlebrown", line_width=3, opacity=opacity)
        for mover in self.geometry.movers:
            plotter.add_mesh(mover.mesh, color="silver", smooth_shading=True)

    def show(self, i: int) -> None:
        """Draw frame ``i``: particles, surface, obstacles and time label at its time."""
        i = i % self.result.n_frames
        time = float(self.result.times[i])
        self._show_particles(i)
        if self.surface is not None:
            k = nearest_frame(self.surface, time)
            vertices = _as_3d(self.surface.points(k))
            self.surface_mesh.shallow_copy(
                pv.PolyData.from_regular_faces(vertices, self.surface.faces(k))
            )
            if SURFACE not in self.plotter.actors:
                self.plotter.add_mesh(
                    self.surface_mesh, color="lightgrey", opacity=0.35, name=SURFACE
                )
        self.geometry.at(time)
        self.plotter.add_text(
            f"t = {time:.3f} s", position="upper_left", font_size=12, name="time", render=False
        )
        self.frame = i

    def restyle(self, **changes: object) -> None:
        """Change :class:`Style` attributes (e.g. ``field="J"``) and redraw the current frame."""
        self.plotter.remove_actor(PARTICLES)
        for key, value in changes.items():
            setattr(self.style, key, value)
        color.check_field(self.result, self.style.field)
        self.show(max(self.frame, 0))

    def clim(self) -> tuple[float, float]:
        """The colour range of the current field: as given, else over all frames (cached)."""
        field = self.style.field
        if field not in self.clims:
            self.clims[field] = color.color_range(self.result, field)
        return self.clims[field]

    def set_camera(self, camera: str | list[tuple[float, float, float]]) -> None:
        """Point the camera: a preset framing the domain, or [position, focal point, up]."""
        if isinstance(camera, str):
            centre = self.geometry.domain / 2
            direction, up = CAMERAS[camera]
            self.plotter.camera_position = [tuple(centre + direction), tuple(centre), up]
            bounds = [float(v) for size in self.geometry.domain for v in (0.0, size)]
            self.plotter.reset_camera(bounds=bounds)
            self.plotter.camera.zoom(0.85)  # room for the scalar bar and the time label
        else:
            self.plotter.camera_position = camera
            self.plotter.reset_camera_clipping_range()

    def _show_particles(self, i: int) -> None:
        name = color.title(self.style.field)
        cloud = pv.PolyData(_as_3d(self.result.points(i)))
        cloud.point_data[name] = color.scalars(self.result.arrays(i), self.style.field)
        if self.style.spheres:
            sphere = pv.Sphere(radius=self.radius, theta_resolution=8, phi_resolution=8)
            cloud = cloud.glyph(geom=sphere, scale=False, orient=False)
        self.particles.shallow_copy(cloud)
        if PARTICLES not in self.plotter.actors:
            self.plotter.add_mesh(
                self.particles,
                scalars=name,
                cmap=self.style.cmap,
                clim=self.clim(),
                point_size=self.style.point_size,
                render_points_as_spheres=not self.style.spheres,
                style="surface" if self.style.spheres else "points",
                scalar_bar_args={"title": name, "fmt": "%.3g", "n_labels": 3},
                name=PARTICLES,
            )


def _glyph_radius(points: np.ndarray, domain: np.ndarray) -> float:
    """Half the median nearest-neighbour distance of (N, d) ``points`` (m)."""
    if len(points) < 2:
        return 0.01 * float(domain.max())
    distances, _ = cKDTree(points).query(points, k=2)
    return 0.5 * float(np.median(distances[:, 1]))


def _as_3d(points: np.ndarray) -> np.ndarray:
    """(N, d) points padded with zeros to (N, 3)."""
    padded = np.zeros((len(points), 3))
    padded[:, : points.shape[1]] = points
    return padded
