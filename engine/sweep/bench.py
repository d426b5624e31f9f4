"""Sweep benchmark: 8 small runs on 2 Ray workers against the same runs one after another.

Both sides start a process per run (``engine run`` one after another; Ray workers with
``max_calls=1``), and the parallel side includes starting Ray. Prints the wall times and ratio.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 128
end_time = 0.6
frame_dt = 0.1

[output]
fields = ["velocity"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 2.0e5
viscosity = 1.0e-3

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.3, 0.5]
"""


def sweep_file(runs: int) -> str:
    values = ", ".join(f"{1.0e-3 * (1 + i)}" for i in range(runs))
    return (
        '[sweep]\nscene = "base.toml"\noutput_dir = "parallel"\n\n'
        f'[[axes]]\nkey = "materials.water.viscosity"\nvalues = [{values}]\n'
    )


def engine_command() -> list[str]:
    """The ``engine`` console script of this interpreter; else the interpreter running the CLI
    with ``-P``. Not ``python -m engine.cli`` as such: it puts the current folder first on the
    import path, and a folder named ``engine`` there would be imported instead of the package.
    """
    script = shutil.which("engine", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-P", "-m", "engine.cli"]


def run_sweep_benchmark(runs: int = 8, workers: int = 2) -> dict:
    """Time both ways in a temporary folder; return seconds and their ratio."""
    engine = engine_command()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "base.toml").write_text(SCENE)
        (root / "sweep.toml").write_text(sweep_file(runs))
        started = time.perf_counter()
        for index in range(runs):
            subprocess.run(
                [
                    *engine,
                    "run",
                    str(root / "base.toml"),
                    "-q",
                    "--set",
                    f"materials.water.viscosity={1.0e-3 * (1 + index)}",
                    "--set",
                    f'output.path="{root / "sequential" / f"run{index}.vtkhdf"}"',
                ],
                check=True,
            )
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [*engine, "sweep", str(root / "sweep.toml"), "--workers", str(workers), "--quiet"],
            check=True,
        )
        parallel = time.perf_counter() - started
    result = {
        "runs": runs,
        "workers": workers,
        "sequential_s": sequential,
        "sweep_s": parallel,
        "ratio": parallel / sequential,
    }
    print(
        f"{runs} runs: one after another {sequential:.1f} s, sweep on {workers} workers "
        f"{parallel:.1f} s, ratio {result['ratio']:.2f}"
    )
    return result
