"""The README's "Write your own plugin" package installs, registers through its entry point and
runs its scene, exactly as written."""

import os
import subprocess
import sys

import numpy as np
from readme_blocks import write_documented_files

import engine.io


def test_documented_plugin_package_installs_and_runs(tmp_path):
    files = write_documented_files(tmp_path)
    package = files["engine-mooney/pyproject.toml"].parent
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(package),
        ],
        check=True,
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    listing = subprocess.run(
        [sys.executable, "-m", "engine.cli", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mooney 0.1.0" in listing and "mooney_rivlin, torch_stvk" in listing
    output = tmp_path / "two_solids.vtkhdf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            str(files["engine-mooney/two_solids.toml"]),
            "--quiet",
            "--set",
            f'output.path="{output}"',
            "--set",
            'output.fields=["velocity", "stress", "body_id"]',
        ],
        env=env,
        check=True,
    )
    result = engine.io.open(output)
    assert result.n_frames == 7
    last = result.arrays(-1)
    assert np.all(np.isfinite(last["stress"]))
    for body in (0, 1):  # both solids fell under gravity
        chosen = last["body_id"] == body
        drop = result.points(0)[chosen, 1].mean() - result.points(-1)[chosen, 1].mean()
        assert drop > 0.05
