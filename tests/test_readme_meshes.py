"""The README's output-mesh scene runs as written and writes its mesh file."""

import numpy as np
from readme_blocks import write_documented_files

import engine.io
from engine.cli import main


def test_documented_output_mesh_scene_runs(tmp_path):
    scene = write_documented_files(tmp_path)["mesh_fields_2d.toml"]
    assert main(["run", str(scene), "--quiet", "--set", "simulation.end_time=0.05"]) == 0
    mesh = engine.io.open(tmp_path / "out" / "mesh_fields_2d_mesh_fields.vtkhdf")
    assert mesh.n_frames == 2 and len(mesh.points(-1)) == 33 * 33
    assert mesh.fields == ["density", "velocity", "pressure", "monitor"]
    assert np.all(mesh.diagnostics()["fallback"] == 0)
    assert np.all(mesh.arrays(-1)["density"] >= 0)
