"""``engine view``: an interactive window over a result's frames.

A slider picks the frame, a check box (or the space bar) plays and pauses, and keys change the
look: ``n`` the next colour field, ``b`` points or sphere glyphs, up/down the point size,
left/right one frame. Surfaces and colliders follow each frame's time.
"""

from __future__ import annotations

from pathlib import Path

import pyvista as pv

from engine.viz import VizError, color
from engine.viz.display import has_display
from engine.viz.results import open_result
from engine.viz.stage import Stage, Style, parse_camera

NO_DISPLAY = (
    "no display available; use `engine render out.vtkhdf -o movie.mp4` "
    "(or run `engine view` where DISPLAY or WAYLAND_DISPLAY is set)"
)
#: One key a line, at the middle of the right edge: clear of the slider, bar, legend and time.
KEYS_HELP = "space: play/pause\nleft/right: frame\nn: field\nb: spheres\nup/down: size"


class Player:
    """What the window's widgets and keys do to a :class:`Stage`.

    Attributes:
        stage: the drawn result.
        playing: whether timer ticks advance the frame.
        slider: the frame slider widget, kept in step by :meth:`go_to` (None until attached).
        button: the play check box widget, kept in step by :meth:`set_playing`.
    """

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.playing = False
        self.slider = None
        self.button = None
        self.fields = color.color_fields(stage.result.fields)

    def go_to(self, i: int) -> None:
        """Show frame ``i`` (wrapping around) and move the slider to it."""
        self.stage.show(i)
        if self.slider is not None:
            self.slider.GetRepresentation().SetValue(self.stage.frame)
        self.stage.plotter.render()

    def step(self, by: int) -> None:
        """Show the frame ``by`` frames on (negative: back)."""
        self.go_to(self.stage.frame + by)

    def tick(self, _count: int = 0) -> None:
        """Timer callback: the next frame while playing."""
        if self.playing:
            self.step(1)

    def set_playing(self, playing: bool) -> None:
        """Play or pause, keeping the check box in step."""
        self.playing = bool(playing)
        if self.button is not None:
            self.button.GetRepresentation().SetState(int(self.playing))

    def next_field(self) -> None:
        """Colour by the next of the result's colour fields."""
        k = self.fields.index(self.stage.style.field)
        self.stage.restyle(field=self.fields[(k + 1) % len(self.fields)])
        self.stage.plotter.render()

    def toggle_spheres(self) -> None:
        """Switch between points and sphere glyphs."""
        self.stage.restyle(spheres=not self.stage.style.spheres)
        self.stage.plotter.render()

    def scale_points(self, factor: float) -> None:
        """Multiply the point size (pixels) by ``factor``."""
        self.stage.restyle(point_size=max(1.0, self.stage.style.point_size * factor))
        self.stage.plotter.render()

    def attach(self, fps: float) -> None:
        """Add the slider, play box, keys and playback timer to the stage's plotter."""
        plotter = self.stage.plotter
        self.slider = plotter.add_slider_widget(
            lambda value: self.go_to(round(value)),
            rng=[0, self.stage.result.n_frames - 1],
            value=self.stage.frame,
            title="frame",
            fmt="%.0f",
            interaction_event="always",
            pointa=(0.35, 0.92),
            pointb=(0.95, 0.92),
        )
        self.button = plotter.add_checkbox_button_widget(self.set_playing, size=30)
        plotter.add_text("play", position=(45, 15), font_size=10)
        plotter.add_text(KEYS_HELP, position="right_edge", font_size=8)
        plotter.add_key_event("space", lambda: self.set_playing(not self.playing))
        plotter.add_key_event("Right", lambda: self.step(1))
        plotter.add_key_event("Left", lambda: self.step(-1))
        plotter.add_key_event("n", self.next_field)
        plotter.add_key_event("b", self.toggle_spheres)
        plotter.add_key_event("Up", lambda: self.scale_points(1.25))
        plotter.add_key_event("Down", lambda: self.scale_points(0.8))
        plotter.add_timer_event(max_steps=2**31 - 1, duration=int(1000 / fps), callback=self.tick)


def view(
    result_path: str | Path,
    field: str = color.SPEED,
    camera: str | None = None,
    cmap: str | None = None,
    color_range: str = color.ROBUST,
    point_size: float = 5.0,
    spheres: bool = False,
    fps: float = 24.0,
) -> None:
    """Open a window on ``result_path``, starting at its last frame; returns when it closes.

    Arguments as for :func:`engine.viz.render.render`.

    Raises:
        VizError: unreadable result, unknown field, colour map or range, bad camera, or no
            display.
    """
    result = open_result(result_path)
    color.check_field(result, field)
    color.check_cmap(cmap)
    color.check_range(color_range)
    view_from = parse_camera(camera, result.dim)
    if not has_display():
        raise VizError(NO_DISPLAY)
    plotter = pv.Plotter(title=f"engine view {result.path.name}", theme=pv.themes.DocumentTheme())
    player = Player(
        Stage(plotter, result, Style(field, cmap, None, color_range, point_size, spheres))
    )
    player.stage.show(-1)
    player.stage.set_camera(view_from)
    player.attach(fps)
    plotter.show()
