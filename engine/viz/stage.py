"""Everything drawn for one result in one PyVista plotter, updated in place frame by frame.

Shared by ``engine render`` (off screen) and ``engine view`` (a window): particles as points or
sphere glyphs coloured by a field, the mesh movers' surface, the output meshes' cell edges
(``[[output.meshes]]``, as moved in the nearest frame), the obstacles at the frame's time
(mesh colliders see-through, so the bodies they touch stay visible), a scalar bar (for id fields
a legend of the scene's names) and a time label. Text is sized and placed from the window size
so that it stays inside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvista as pv
from matplotlib.colors import ListedColormap
from scipy.spatial import cKDTree

from engine.io import Result
from engine.viz import VizError, color
from engine.viz.results import nearest_frame, open_meshes, open_surface
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

PARTICLES, SURFACE, BAR_TITLE = "particles", "surface", "bar title"  # actor names
#: Opacity of mesh colliders: a press plate or a container must not hide the body inside.
COLLIDER_OPACITY = 0.3


@dataclass
class Style:
    """How particles are drawn.

    Attributes:
        field: the colour field (see :mod:`engine.viz.color`).
        cmap: a matplotlib colour map name; None: viridis, and for id fields tab10.
        clim: (low, high) colour range in the field's unit; None: set by ``color_range``.
        color_range: without ``clim``: ``robust`` (2nd to 98th percentile over all frames),
            ``global`` (smallest to largest over all frames) or ``frame`` (each frame's own).
        point_size: point diameter in pixels (points mode).
        spheres: draw sphere glyphs (radius half the particle spacing) instead of points.
    """

    field: str = color.SPEED
    cmap: str | None = None
    clim: tuple[float, float] | None = None
    color_range: str = color.ROBUST
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
        output_meshes: each output mesh (by name) as drawn: its cells' edges.
    """

    def __init__(self, plotter: pv.Plotter, result: Result, style: Style) -> None:
        color.check_field(result, style.field)
        self.plotter, self.result, self.style = plotter, result, style
        self.surface = open_surface(result)
        self.meshes = open_meshes(result)
        self.output_meshes = {name: pv.UnstructuredGrid() for name in self.meshes}
        self.geometry = SceneGeometry.from_result(result)
        self.radius = _glyph_radius(result.points(0), self.geometry.domain)
        self.fixed = {style.field: style.clim} if style.clim else {}
        self.ranges: dict[tuple[str, str], tuple[float, float]] = {}
        self.names: dict[str, list[str]] = {}
        self.font = _font_px(plotter.window_size)
        width, height = plotter.window_size
        self.time_label = _add_label(
            plotter, (self.font / width, 1 - self.font / height), self.font, "time"
        )
        self.time_label.prop.justification_vertical = "top"
        self.particles = pv.PolyData()
        self.surface_mesh = pv.PolyData()
        self.frame = -1
        plotter.add_mesh(self.geometry.outline, color="black", line_width=1)
        for plane in self.geometry.planes:
            if plane.n_points:
                opacity = 0.5 if plane.n_faces else 1.0
                plotter.add_mesh(plane, color="saddlebrown", line_width=3, opacity=opacity)
        for mover in self.geometry.movers:
            plotter.add_mesh(
                mover.mesh, color="silver", opacity=COLLIDER_OPACITY, smooth_shading=True
            )

    def show(self, i: int) -> None:
        """Draw frame ``i``: particles, surface, output meshes, obstacles and time label at its
        time."""
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
        for name, mesh in self.meshes.items():
            k = nearest_frame(mesh, time)
            grid = mesh.frame(k)
            self.output_meshes[name].shallow_copy(grid)
            if f"mesh {name}" not in self.plotter.actors:
                self.plotter.add_mesh(
                    self.output_meshes[name],
                    style="wireframe",
                    color="dimgray",
                    opacity=0.6,
                    line_width=1,
                    name=f"mesh {name}",
                )
        self.geometry.at(time)
        self.time_label.input = f"t = {time:.3f} s"
        self.frame = i

    def restyle(self, **changes: object) -> None:
        """Change :class:`Style` attributes (e.g. ``field="J"``) and redraw the current frame."""
        # a scalar bar placed by hand is not removed with its actor: remove it first
        self.plotter.remove_scalar_bar(color.title(self.style.field), render=False)
        self.plotter.remove_actor(PARTICLES)
        for key, value in changes.items():
            setattr(self.style, key, value)
        color.check_field(self.result, self.style.field)
        self.show(max(self.frame, 0))

    def clim(self, values: np.ndarray) -> tuple[float, float]:
        """The colour range of the current field, ``values`` being the frame's (see
        :class:`Style`); ranges over all frames are computed once per field and mode."""
        field, mode = self.style.field, self.style.color_range
        if field in self.fixed:
            return self.fixed[field]
        if mode == color.FRAME:
            return color.value_range(values)
        if (field, mode) not in self.ranges:
            robust = mode == color.ROBUST
            self.ranges[field, mode] = color.color_range(self.result, field, robust)
        return self.ranges[field, mode]

    def categories(self) -> list[str]:
        """The names of the current id field's values (see :func:`engine.viz.color.categories`)."""
        field = self.style.field
        if field not in self.names:
            self.names[field] = color.categories(self.result, field)
        return self.names[field]

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
        values = color.scalars(self.result.arrays(i), self.style.field)
        cloud = pv.PolyData(_as_3d(self.result.points(i)))
        cloud.point_data[name] = values
        if self.style.spheres:
            sphere = pv.Sphere(radius=self.radius, theta_resolution=8, phi_resolution=8)
            cloud = cloud.glyph(geom=sphere, scale=False, orient=False)
        self.particles.shallow_copy(cloud)
        categorical = self.style.field in color.CATEGORICAL
        if PARTICLES in self.plotter.actors:
            if not categorical:
                self.plotter.update_scalar_bar_range(self.clim(values), name)
            return
        self.plotter.add_mesh(
            self.particles,
            scalars=name,
            point_size=self.style.point_size,
            render_points_as_spheres=not self.style.spheres,
            style="surface" if self.style.spheres else "points",
            name=PARTICLES,
            **(self._by_category(name) if categorical else self._by_value(name, values)),
        )
        self._finish_bar(name, categorical)

    def _finish_bar(self, name: str, categorical: bool) -> None:
        """Put the bar's title half a line above it (VTK's own can overlap the labels):
        centred, or for an id field's legend from its left end, with the names right of it."""
        bar = self.plotter.scalar_bars[name]
        bar.SetTitle("")
        if categorical:
            bar.SetTextPositionToPrecedeScalarBar()
        x, y = bar.GetPosition()
        gap = 0.5 * self.font / self.plotter.window_size[1]
        position = (x if categorical else x + bar.GetWidth() / 2, y + bar.GetHeight() + gap)
        label = _add_label(self.plotter, position, self.font, BAR_TITLE, name)
        label.prop.justification_horizontal = "left" if categorical else "center"

    def _by_value(self, name: str, values: np.ndarray) -> dict:
        """``add_mesh`` arguments: a colour map over :meth:`clim`, a scalar bar at the bottom."""
        return {
            "cmap": self.style.cmap or "viridis",
            "clim": self.clim(values),
            "scalar_bar_args": _bar_args(name, self.font, self.plotter.window_size),
        }

    def _by_category(self, name: str) -> dict:
        """``add_mesh`` arguments: one colour per id, a legend of the names at the left."""
        names = self.categories()
        n = len(names)
        return {
            "cmap": ListedColormap(color.category_colors(n, self.style.cmap)),
            "clim": (-0.5, n - 0.5),
            "n_colors": n,
            "annotations": dict(enumerate(names)),
            "scalar_bar_args": _legend_args(name, n, self.font, self.plotter.window_size),
        }


def _font_px(window_size: list[int]) -> int:
    """Text height in pixels for a (width, height) window: 1/40 of its height, at least 10."""
    return max(10, round(window_size[1] / 40))


def _add_label(
    plotter: pv.Plotter, position: tuple[float, float], font: int, name: str, text: str = " "
) -> pv.Text:
    """Text ``font`` pixels high at ``position`` (0 to 1 across and up the window), named
    ``name`` (replacing an earlier one)."""
    label = plotter.add_text(text, position=position, viewport=True, name=name, render=False)
    label.prop.font_size = font
    return label


def _bar_args(title: str, font: int, window_size: list[int]) -> dict:
    """A horizontal scalar bar centred at the bottom, for ``font``-pixel text.

    It spans the middle 60 % of the width, so the end labels (centred on the bar's ends) keep
    a fifth of the width to the image's edges; its box holds the labels and the bar.
    """
    height = window_size[1]
    return {
        "title": title,
        "fmt": "%.3g",
        "n_labels": 3,
        "position_x": 0.2,
        "width": 0.6,
        "position_y": font / height,
        "height": 2.5 * font / height,
        "label_font_size": font,
    }


def _legend_args(title: str, n: int, font: int, window_size: list[int]) -> dict:
    """A vertical bar of ``n`` swatches a line in from the left, centred in height."""
    width, height = window_size
    tall = min(1.8 * font * n / height, 0.8)
    return {
        "title": title,
        "n_labels": 0,
        "vertical": True,
        "position_x": font / width,
        "width": 1.5 * font / width,
        "position_y": 0.5 - tall / 2,
        "height": tall,
        "label_font_size": font,
    }


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
