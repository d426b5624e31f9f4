"""The `advect` mesh mover: a mesh body's surface follows the body and is written each frame."""

from pathlib import Path

import numpy as np

import engine.io
from engine.cli import main

BUNNY = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "bunny_blob.obj"

SCENE = f"""
[simulation]
dim = 3
domain = [1.0, 1.0, 1.0]
resolution = 20
end_time = 0.2
frame_dt = 0.1
gravity = [0.0, 0.0, 0.0]

[materials.rubber]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 5.0e4

[[bodies]]
material = "rubber"
shape = "mesh"
mesh = "{BUNNY}"
position = [0.4, 0.5, 0.5]
velocity = [0.5, 0.0, 0.0]
"""


def test_surface_moves_with_a_translating_body(scene_file, tmp_path):
    assert (
        main(
            [
                "run",
                str(scene_file(SCENE)),
                "-q",
                "--set",
                f'output.path="{tmp_path / "bunny.vtkhdf"}"',
            ]
        )
        == 0
    )
    surface = engine.io.open(tmp_path / "bunny_surface.vtkhdf")
    particles = engine.io.open(tmp_path / "bunny.vtkhdf")
    assert surface.kind == "surface" and surface.n_frames == 3
    shift = surface.points(-1) - surface.points(0)
    np.testing.assert_allclose(shift, np.tile([0.1, 0.0, 0.0], (len(shift), 1)), atol=2e-3)
    np.testing.assert_array_equal(surface.faces(0), surface.faces(-1))
    body_shift = particles.points(-1).mean(axis=0) - particles.points(0).mean(axis=0)
    np.testing.assert_allclose(shift.mean(axis=0), body_shift, atol=2e-3)


def test_mover_none_writes_no_surface(scene_file, tmp_path):
    scene = SCENE + 'mover = "none"\n'
    assert (
        main(
            [
                "run",
                str(scene_file(scene)),
                "-q",
                "--set",
                f'output.path="{tmp_path / "bunny.vtkhdf"}"',
            ]
        )
        == 0
    )
    assert not (tmp_path / "bunny_surface.vtkhdf").exists()
