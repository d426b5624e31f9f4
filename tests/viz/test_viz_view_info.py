"""engine view (its per-frame update, and the error without a display) and engine info."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import pyvista as pv
from viz_results import results_fixture  # noqa: F401 (the `results` fixture)

import engine.io
from engine.cli import main
from engine.viz import VizError
from engine.viz.display import prefer_egl_without_display
from engine.viz.stage import Stage, Style
from engine.viz.view import Player, view


@pytest.fixture
def no_display(monkeypatch):
    if sys.platform in ("darwin", "win32"):
        pytest.skip("a display is assumed on macOS and Windows")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_view_without_display_says_what_to_do(results, no_display, capsys):
    with pytest.raises(VizError, match="no display available"):
        view(results["box_2d"])
    assert main(["view", str(results["box_2d"]), "--field", "J"]) == 2
    err = capsys.readouterr().err
    assert "error: no display available; use `engine render out.vtkhdf -o movie.mp4`" in err
    assert "Traceback" not in err


def test_view_checks_the_field_first(results, no_display, capsys):
    assert main(["view", str(results["box_2d"]), "--field", "nope"]) == 2
    assert "has no field 'nope'" in capsys.readouterr().err


def test_player_updates_every_frame_offscreen(results):
    prefer_egl_without_display()
    plotter = pv.Plotter(off_screen=True, window_size=[200, 150])
    result = engine.io.open(results["mesh_3d"])
    surface = engine.io.open(results["mesh_3d"].with_name("mesh_3d_surface.vtkhdf"))
    player = Player(Stage(plotter, result, Style()))
    player.stage.show(-1)
    player.attach(fps=24)
    try:
        player.go_to(0)
        assert player.stage.frame == 0 and player.slider.GetRepresentation().GetValue() == 0
        np.testing.assert_allclose(player.stage.particles.points, result.points(0), atol=1e-6)
        np.testing.assert_allclose(player.stage.surface_mesh.points, surface.points(0), atol=1e-6)
        player.tick()  # paused: stays
        assert player.stage.frame == 0
        player.set_playing(True)
        player.tick()
        assert player.stage.frame == 1
        assert player.button.GetRepresentation().GetState() == 1
        np.testing.assert_allclose(player.stage.surface_mesh.points, surface.points(1), atol=1e-6)
        player.step(-2)  # wraps to the last frame
        assert player.stage.frame == 2
        speed = np.linalg.norm(result.arrays(2)["velocity"], axis=1)
        np.testing.assert_allclose(player.stage.particles["speed [m/s]"], speed, rtol=1e-6)

        player.next_field()
        assert player.stage.style.field == "velocity"
        assert list(plotter.scalar_bars.keys()) == ["velocity [m/s]"]
        n_points = player.stage.particles.n_points
        player.toggle_spheres()
        assert player.stage.particles.n_points > 10 * n_points  # glyphs
        player.scale_points(2.0)
        assert player.stage.style.point_size == 10.0
        assert plotter.screenshot(return_img=True).shape == (150, 200, 3)
    finally:
        plotter.close()


def test_info_prints_frames_fields_counts_and_diagnostics(results, tmp_path, capsys):
    plot = tmp_path / "plots" / "diagnostics.png"
    assert main(["info", str(results["box_2d"]), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    n = len(engine.io.open(results["box_2d"]).points(0))
    for expected in [
        "frames: 4, t = 0 to 0.03 s",
        "velocity: (N, 2) float32",
        "stress: (N, 2, 2) float32",
        "body_id: (N,) int32",
        f"particles: {n} first, {n} last",
        f"body 0: {n} first, {n} last",
        "largest relative drift",
        "kinetic energy:",
        'model = "fluid"',
        f"wrote {plot}",
    ]:
        assert expected in out
    image = pv.read(plot)
    assert image.dimensions[0] > 300


def test_info_names_the_surface_file(results, capsys):
    assert main(["info", str(results["mesh_3d"])]) == 0
    assert "surface: mesh_3d_surface.vtkhdf, 3 frames" in capsys.readouterr().out


def test_info_bad_input(results, tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.vtkhdf")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", str(results["box_2d"]), "--plot", str(tmp_path / "plot.txt")]) == 2
    assert "name it .png" in capsys.readouterr().err


def test_info_plot_that_cannot_be_written_is_an_error_before_drawing(results, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder\n")
    cases = [(a_file / "d.png", str(a_file))]
    if sys.platform == "linux":  # /proc takes no new folders, even from root
        cases.append(("/proc/nope/d.png", "/proc/nope"))
    for plot, named in cases:
        assert main(["info", str(results["box_2d"]), "--plot", str(plot)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
        assert named in captured.err and "Traceback" not in captured.err
        assert captured.out == ""
