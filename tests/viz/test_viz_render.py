"""engine render: images show the particles where the data put them, movies have every frame,
labels stay inside the image, outputs are checked before drawing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import pyvista as pv
from viz_results import ROOT, results_fixture  # noqa: F401 (the `results` fixture)

import engine.io
from engine.cli import main
from engine.viz import VizError
from engine.viz.color import category_colors, value_range
from engine.viz.display import prefer_egl_without_display
from engine.viz.render import render
from engine.viz.scene_geometry import SceneGeometry
from engine.viz.stage import Stage, Style

SIZE = (320, 240)
WHITE = 255


def particle_pixels(result_path, i: int, camera: str) -> tuple[np.ndarray, pv.Plotter]:
    """Mask (H, W) of the pixels the particles of frame ``i`` cover, and the plotter used."""
    prefer_egl_without_display()
    plotter = pv.Plotter(off_screen=True, window_size=list(SIZE))
    stage = Stage(plotter, engine.io.open(result_path), Style(point_size=6))
    stage.show(i)
    stage.set_camera(camera)
    plotter.remove_scalar_bar()  # its labels are redrawn when the particles hide
    with_particles = plotter.screenshot(return_img=True)
    plotter.actors["particles"].visibility = False
    plotter.render()
    without = plotter.screenshot(return_img=True)
    return np.any(with_particles != without, axis=2), plotter


def projected(plotter: pv.Plotter, point: np.ndarray) -> np.ndarray:
    """(column, row) image coordinates of a world point (m), rows counted from the top."""
    renderer = plotter.renderer
    renderer.SetWorldPoint(*point, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    return np.array([x, SIZE[1] - 1 - y])


def centroid(mask: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(mask)
    return np.array([columns.mean(), rows.mean()])


@pytest.mark.parametrize(("name", "camera"), [("box_2d", "xy"), ("mesh_3d", "iso")])
def test_particles_are_drawn_where_the_data_put_them(results, name, camera):
    result = engine.io.open(results[name])
    centres = []
    for i in (0, -1):
        mask, plotter = particle_pixels(results[name], i, camera)
        world = np.zeros(3)
        world[: result.dim] = result.points(i).mean(axis=0)
        expected = projected(plotter, world)
        plotter.close()
        assert mask.sum() > 50
        np.testing.assert_allclose(centroid(mask), expected, atol=4.0)
        centres.append(expected)
    if name == "box_2d":  # thrown to +x: moves right on screen, not up or down
        shift = centres[1] - centres[0]
        assert shift[0] > 5 and abs(shift[1]) < 2


def test_png_is_not_blank_and_colours_follow_the_field(results, tmp_path):
    images = {}
    for field in ("speed", "material_id"):
        out = tmp_path / f"{field}.png"
        assert render(results["box_2d"], out, field=field, window_size=SIZE, quiet=True) == [out]
        images[field] = imageio.imread(out)[..., :3]
    speed = images["speed"]
    assert speed.shape == (SIZE[1], SIZE[0], 3)
    background = np.all(speed == WHITE, axis=2)
    assert 0.005 < 1 - background.mean() < 0.5
    assert np.any(speed != images["material_id"], axis=2).sum() > 50


def test_movies_and_png_series_have_one_image_per_frame(results, tmp_path):
    gif = tmp_path / "movie.gif"
    render(results["box_2d"], gif, window_size=SIZE, quiet=True)
    assert imageio.mimread(gif).__len__() == 4
    mp4 = tmp_path / "movie.mp4"
    render(results["mesh_3d"], mp4, field="stress", spheres=True, window_size=SIZE, quiet=True)
    with imageio.get_reader(mp4, format="FFMPEG") as reader:
        assert sum(1 for _ in reader) == 3
    series = render(results["box_2d"], tmp_path / "f.png", frames=slice(1, None), quiet=True)
    assert [p.name for p in series] == ["f_0001.png", "f_0002.png", "f_0003.png"]
    assert all(p.is_file() for p in series)


def test_cli_render_writes_the_file(results, tmp_path, capsys):
    out = tmp_path / "sub" / "last.png"
    args = ["render", str(results["mesh_3d"]), "-o", str(out), "--frames", "-1", "--quiet"]
    assert main(args + ["--camera", "1.5,1.2,1.5;0.3,0.3,0.3;0,1,0", "--size", "160", "120"]) == 0
    assert imageio.imread(out).shape[:2] == (120, 160)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "a.avi"], "name the output .mp4 or .gif"),
        (["-o", "a.png", "--field", "pressure"], "choose one of: speed, velocity, material_id"),
        (["-o", "a.png", "--frames", "7"], "has 4 frames (0 to 3)"),
        (["-o", "a.png", "--frames", "1:b"], "bad frame selection '1:b'"),
        (["-o", "a.png", "--camera", "top"], "bad camera 'top'"),
        (["-o", "a.png", "--clim", "1", "0"], "give LOW < HIGH"),
        (["-o", "a.png", "--cmap", "nope"], "unknown colour map 'nope'"),
    ],
)
def test_cli_render_bad_input_is_an_error_with_a_fix(results, tmp_path, capsys, args, message):
    assert main(["render", str(results["box_2d"]), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_cli_render_refuses_files_that_are_not_particle_results(results, tmp_path, capsys):
    surface = results["mesh_3d"].with_name("mesh_3d_surface.vtkhdf")
    not_hdf = tmp_path / "scene.toml"
    not_hdf.write_text("[simulation]\n")
    cases = [
        (tmp_path / "missing.vtkhdf", "does not exist"),
        (not_hdf, "cannot read"),
        (surface, "is a surface file"),
    ]
    for path, message in cases:
        assert main(["render", str(path), "-o", str(tmp_path / "a.png")]) == 2
        assert message in capsys.readouterr().err


def test_render_api_raises_viz_error(results, tmp_path):
    with pytest.raises(VizError, match="name the output"):
        render(results["box_2d"], tmp_path / "a.jpg")


def unwritable_outputs(tmp_path):
    """(output, what the error names) pairs that cannot be written, made under ``tmp_path``."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder\n")
    (tmp_path / "taken.png").mkdir()
    cases = [
        (a_file / "x.png", str(a_file)),
        (a_file / "deeper" / "x.gif", str(a_file)),
        (tmp_path / "taken.png", "is a folder"),
    ]
    if sys.platform == "linux":  # /proc takes no new files or folders, even from root
        cases += [(Path("/proc/nope/x.png"), "/proc/nope"), (Path("/proc/x.mp4"), "/proc")]
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes despite the modes
        locked, read_only = tmp_path / "locked", tmp_path / "read_only.png"
        locked.mkdir(mode=0o500)
        read_only.write_bytes(b"")
        read_only.chmod(0o400)
        cases += [(locked / "x.gif", str(locked)), (read_only, "read-only")]
    return cases


@pytest.fixture
def no_drawing(monkeypatch):
    """Fail the test if ``render`` starts drawing."""

    def stage(*args, **kwargs):
        raise AssertionError("drawing started before the output was checked")

    monkeypatch.setattr("engine.viz.render.Stage", stage)


def test_unwritable_outputs_are_one_line_errors_before_drawing(
    results, tmp_path, capsys, no_drawing
):
    for output, named in unwritable_outputs(tmp_path):
        assert main(["render", str(results["box_2d"]), "-o", str(output), "-q"]) == 2, output
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert named in err and "give" in err and "Traceback" not in err


def test_png_series_checks_every_file_it_will_write(results, tmp_path, capsys, no_drawing):
    (tmp_path / "f_0002.png").mkdir()
    args = ["render", str(results["box_2d"]), "-o", str(tmp_path / "f.png"), "--frames", "1:3"]
    assert main(args) == 2
    assert f"cannot write {tmp_path / 'f_0002.png'}: it is a folder" in capsys.readouterr().err
    assert not (tmp_path / "f_0001.png").exists()


def ink(image: np.ndarray) -> np.ndarray:
    """Mask (H, W) of the pixels that are not the white background."""
    return np.any(image[..., :3] != WHITE, axis=2)


@pytest.mark.parametrize("size", [(1024, 768), (400, 300)])
def test_labels_stay_inside_the_image(results, tmp_path, size):
    out = tmp_path / "stress.png"
    render(
        results["mesh_3d"], out, field="stress", clim=(0.0, 5.41e4), window_size=size, quiet=True
    )
    drawn = ink(imageio.imread(out))
    margin = 5  # pixels: nothing may touch the edges, as a cut-off label would
    edges = np.ones_like(drawn)
    edges[margin:-margin, margin:-margin] = False
    assert not np.any(drawn & edges)
    width, height = size
    assert drawn[: height // 10, : width // 5].sum() > 20  # the time label, top left
    bottom = drawn[-height // 6 :]
    assert bottom[:, -width // 5 :].sum() > 20  # the scalar bar's top label "5.41e+04"


def test_id_fields_are_named_from_the_scene(results):
    prefer_egl_without_display()
    result = engine.io.open(results["box_2d"])
    for field, name in [("material_id", "water"), ("body_id", "0: water")]:
        plotter = pv.Plotter(off_screen=True, window_size=list(SIZE))
        Stage(plotter, result, Style(field=field)).show(-1)
        table = plotter.scalar_bars[field].GetLookupTable()
        assert table.GetNumberOfAnnotatedValues() == 1 and table.GetAnnotation(0) == name
        assert table.GetNumberOfTableValues() == 1
        np.testing.assert_allclose(table.GetTableValue(0)[:3], category_colors(1)[0])
        plotter.close()


def bar_range(stage: Stage) -> tuple[float, float]:
    """The colour range the stage's scalar bar shows."""
    (bar,) = stage.plotter.scalar_bars.values()
    return tuple(bar.GetLookupTable().GetRange())


def test_colour_range_modes(results):
    prefer_egl_without_display()
    result = engine.io.open(results["box_2d"])
    speeds = [np.linalg.norm(result.arrays(i)["velocity"], axis=1) for i in range(4)]
    every = np.concatenate(speeds)
    expected = {
        "global": lambda i: (every.min(), every.max()),
        "robust": lambda i: tuple(np.percentile(every, [2, 98])),
        "frame": lambda i: value_range(speeds[i]),
    }
    assert Style().color_range == "robust"
    for mode, wanted in expected.items():
        for clim in (None, (0.5, 1.5)):
            plotter = pv.Plotter(off_screen=True, window_size=list(SIZE))
            stage = Stage(plotter, result, Style(clim=clim, color_range=mode))
            for i in (1, 3):
                stage.show(i)
                assert bar_range(stage) == pytest.approx(clim or wanted(i), rel=1e-6), (mode, i)
            plotter.close()
    assert value_range(speeds[1]) != value_range(speeds[3])


PLATE = """
[[colliders]]
type = "mesh"
mesh = "assets/meshes/press_plate.stl"
position = [0.3, 0.56, 0.3]
"""


def test_mesh_colliders_do_not_hide_the_body(results, monkeypatch):
    """A press plate between the camera (looking down) and the body: the body still shows."""
    with_plate = classmethod(lambda cls, result: cls(result.scene_text + PLATE, ROOT))
    monkeypatch.setattr(SceneGeometry, "from_result", with_plate)
    mask, plotter = particle_pixels(results["mesh_3d"], -1, "xz")
    without_particles = plotter.screenshot(return_img=True)
    plotter.close()
    assert mask.sum() > 50
    assert np.all(ink(without_particles)[mask])  # the plate is drawn over all of them
