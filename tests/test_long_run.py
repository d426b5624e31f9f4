"""A long run keeps mass constant and memory flat (no growth per frame)."""

import pytest

from engine.cli import main

SCENE = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 32
end_time = 3.0
frame_dt = 0.01

[output]
path = "out/long.vtkhdf"
fields = ["velocity", "J"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 2.0e4
viscosity = 0.01

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.2, 0.3]

[plugins]
load = ["memory_probe.py"]
"""

PROBE = """
import psutil
from engine.hooks import hookimpl

@hookimpl
def engine_frame(simulation, frame):
    return {"rss": float(psutil.Process().memory_info().rss)}
"""


@pytest.mark.slow
def test_300_frames_keep_mass_constant_and_memory_flat(scene_file, tmp_path):
    (tmp_path / "memory_probe.py").write_text(PROBE)
    assert main(["run", str(scene_file(SCENE)), "-q"]) == 0
    import engine.io

    diagnostics = engine.io.open(tmp_path / "out" / "long.vtkhdf").diagnostics()
    assert len(diagnostics["mass"]) == 301
    assert diagnostics["mass"].max() == diagnostics["mass"].min()
    rss = diagnostics["rss"]
    growth = rss[-1] - rss[100]  # after warm-up (compilation, caches)
    assert growth < 20 * 2**20, f"memory grew {growth / 2**20:.1f} MiB over 200 frames"
