"""Small results made once per test session for the visualisation tests."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]

#: A 2D box of water thrown to +x at 2 m/s above a tilted plane, falling: 4 frames, 0 to 0.03 s.
BOX_2D = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.03
frame_dt = 0.01

[output]
path = "box_2d.vtkhdf"
fields = ["velocity", "material_id", "body_id", "J", "stress"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 2.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.2, 0.4]
max = [0.45, 0.65]
velocity = [2.0, 0.0]

[[colliders]]
type = "plane"
point = [0.0, 0.1]
normal = [0.2, 1.0]
"""


@functools.cache
def _make(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    scene = folder / "box_2d.toml"
    scene.write_text(BOX_2D)
    assert main(["run", str(scene), "-q"]) == 0
    mesh = folder / "mesh_3d.vtkhdf"
    overrides = ["simulation.end_time=0.04", "simulation.resolution=20", f'output.path="{mesh}"']
    args = ["run", str(ROOT / "scenes" / "mesh_body_3d.toml"), "-q"]
    assert main(args + [a for o in overrides for a in ("--set", o)]) == 0
    return {"box_2d": folder / "box_2d.vtkhdf", "mesh_3d": mesh}


@pytest.fixture(scope="session", name="results")
def results_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``box_2d`` (2D fluid box, 4 frames) and ``mesh_3d`` (mesh body with a surface file and
    a plane collider, 3 frames), run once per session."""
    return _make(tmp_path_factory.getbasetemp() / "viz_results")
