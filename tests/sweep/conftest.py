"""Shared by the sweep tests: a tiny 2D base scene (resolution 16, two frames) and a sweep file
around it, written to the test's folder."""

from pathlib import Path

import pytest

SCENE = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.02
frame_dt = 0.01

[output]
fields = ["velocity", "J"]

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.2, 0.2]
max = [0.3, 0.3]
"""

TWO_RUNS = '[[axes]]\nkey = "materials.jelly.youngs_modulus"\nvalues = [1.0e4, 2.0e4]\n'


@pytest.fixture
def write_sweep(tmp_path):
    """``write(axes, scene_extra="", sweep_extra="")``: ``base.toml`` (:data:`SCENE` plus
    ``scene_extra``) and ``sweep.toml`` (its ``[sweep]`` table, then ``axes``); returns the
    sweep file's path."""

    def write(axes: str = TWO_RUNS, scene_extra: str = "", sweep_extra: str = "") -> Path:
        (tmp_path / "base.toml").write_text(SCENE + scene_extra)
        path = tmp_path / "sweep.toml"
        path.write_text(
            f'[sweep]\nscene = "base.toml"\noutput_dir = "out"\nretries = 1\n{sweep_extra}\n{axes}'
        )
        return path

    return write
