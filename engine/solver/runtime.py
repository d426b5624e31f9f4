"""The process's one Taichi runtime: started once, restarted only when arch or precision change."""

from __future__ import annotations

import contextlib
import io
import os

import taichi as ti

#: Environment variable capping the CPU threads of the Taichi runtime.
CPU_THREADS = "ENGINE_CPU_THREADS"
_current: tuple[str, str] | None = None
_on_restart: list = []


def on_restart(callback) -> None:
    """Register a function called after the runtime restarts (to drop compiled kernels)."""
    _on_restart.append(callback)


def ensure_runtime(arch: str = "cpu", precision: str = "f32") -> None:
    """Start Taichi for ``arch`` ("cpu" or "gpu") and ``precision`` ("f32" or "f64") if needed."""
    global _current
    wanted = (arch, precision)
    if _current == wanted:
        return
    threads = {}
    if os.environ.get(CPU_THREADS):  # set by sweep workers to the CPUs a run was given
        threads = {"cpu_max_num_threads": max(1, int(float(os.environ[CPU_THREADS])))}
    with contextlib.redirect_stdout(io.StringIO()):  # ti.init prints "Starting on arch=..."
        ti.init(
            arch=ti.cpu if arch == "cpu" else ti.gpu,
            default_fp=ti.f32 if precision == "f32" else ti.f64,
            log_level=ti.WARN,
            random_seed=0,
            **threads,
        )
    _current = wanted
    for callback in _on_restart:
        callback()
