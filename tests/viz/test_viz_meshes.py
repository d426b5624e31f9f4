"""engine render, view and info show the output meshes written beside a result."""

import numpy as np
import pytest
import pyvista as pv

import engine.io
from engine.cli import main
from engine.viz.display import prefer_egl_without_display
from engine.viz.stage import Stage, Style

SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.02
frame_dt = 0.01

[output]
path = "out/box.vtkhdf"

[[output.meshes]]
name = "fields"
nodes = [5, 4]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.2, 0.2]
max = [0.5, 0.5]
"""


@pytest.fixture
def result(scene_file, tmp_path):
    assert main(["run", str(scene_file(SCENE)), "-q"]) == 0
    return tmp_path / "out" / "box.vtkhdf"


def test_the_stage_draws_each_mesh_at_the_frame_and_render_writes_it(result, tmp_path, capsys):
    prefer_egl_without_display()
    plotter = pv.Plotter(off_screen=True, window_size=[200, 150])
    stage = Stage(plotter, engine.io.open(result), Style())
    stage.show(-1)
    mesh = engine.io.open(result.with_name("box_mesh_fields.vtkhdf"))
    drawn = stage.output_meshes["fields"]
    assert drawn.n_cells == 12 and "mesh fields" in plotter.actors
    np.testing.assert_allclose(drawn.points[:, :2], mesh.points(-1))
    plotter.close()
    assert main(["render", str(result), "-o", str(tmp_path / "last.png"), "--quiet"]) == 0
    assert (tmp_path / "last.png").stat().st_size > 0
    assert main(["render", str(mesh.path), "-o", str(tmp_path / "x.png")]) == 2
    assert "is a mesh file; give the particle file beside it (box.vtkhdf)" in (
        capsys.readouterr().err
    )
