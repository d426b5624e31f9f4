"""The process's one Taichi runtime, and which hardware it actually got.

``simulation.arch`` asks for ``"cpu"``, ``"gpu"`` (the first GPU backend that starts: CUDA,
Vulkan, Metal on macOS, OpenGL; the CPU, with a warning, when none does) or ``"cuda"``
(CUDA or an error). Taichi's own GPU start-up can take the process down (its OpenGL probe
segfaults on machines without a display or GPU), so GPU backends are probed in a child process
first; this process then starts only on a backend that worked there. The runtime is started
once and restarted only when the resolved backend or the precision change.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass

import taichi as ti

#: Environment variable capping the CPU threads of the Taichi runtime.
CPU_THREADS = "ENGINE_CPU_THREADS"
#: GPU backends ``arch = "gpu"`` tries, in order (Metal exists only on macOS).
GPU_BACKENDS = ("cuda", "vulkan", *(("metal",) if sys.platform == "darwin" else ()), "opengl")
CPU_ARCHES = ("x64", "arm64")
PROBE_TIMEOUT = 120.0  # s

_current: tuple[str, str] | None = None  # (Taichi arch name, precision) of the running runtime
_probed: dict[tuple[str, ...], tuple[str | None, str]] = {}
_on_restart: list = []


class ArchUnavailable(RuntimeError):
    """The hardware a scene asks for is not here: what is missing, and what to change."""

    def __init__(self, what: str, fix: str) -> None:
        self.what, self.fix = what, fix
        super().__init__(f"{what}\n    fix: {fix}")


class ArchFallbackWarning(UserWarning):
    """``arch = "gpu"`` found no GPU backend and runs on the CPU."""


@dataclass(frozen=True)
class Hardware:
    """What runs the kernels: the ``requested`` arch and Taichi's ``arch`` (``"x64"``,
    ``"arm64"``, ``"cuda"``, ``"vulkan"``, ``"metal"``, ``"opengl"``)."""

    requested: str
    arch: str

    @property
    def on_cpu(self) -> bool:
        return self.arch in CPU_ARCHES

    @property
    def torch_device(self) -> str:
        """Where torch views of the particle arrays belong: ``"cuda"`` when Taichi runs on CUDA
        (the kernels then read torch's memory in place), else ``"cpu"``."""
        return "cuda" if self.arch == "cuda" else "cpu"


def on_restart(callback) -> None:
    """Register a function called after the runtime restarts (to drop compiled kernels)."""
    _on_restart.append(callback)


_PROBE = """
import contextlib, io, sys
import taichi as ti
for name in sys.argv[1:]:
    print("try", name, flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
        ti.init(arch=getattr(ti, name), log_level=ti.ERROR)
    got = ti.lang.impl.current_cfg().arch.name
    print("got", name, got, flush=True)
    if got == name:
        break
"""


def probe_backends(backends: tuple[str, ...]) -> tuple[str | None, str]:
    """The first of ``backends`` that Taichi starts on, tried in a child process, and a note
    on the others: ``("cuda", "")``, or ``(None, "cuda: not available; opengl: crashed ...")``.
    Cached per process."""
    if backends in _probed:
        return _probed[backends]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *backends],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
        output, code = done.stdout, done.returncode
    except subprocess.TimeoutExpired as error:
        output, code = error.stdout or "", None
        output = output.decode() if isinstance(output, bytes) else output
    found, notes, starting = None, [], None
    for line in output.splitlines():
        kind, name, *got = line.split()
        if kind == "try":
            starting = name
            continue
        starting = None
        if got == [name]:
            found = name
        else:
            notes.append(f"{name}: not available")
    if found is None and starting is not None:  # the child died while starting this backend
        how = "timed out" if code is None else f"crashed ({_exit(code)})"
        notes.append(f"{starting}: Taichi's start-up {how}")
    _probed[backends] = (found, "; ".join(notes))
    return _probed[backends]


def _exit(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def _start(arch: str, precision: str) -> None:
    """Start (or restart) Taichi on ``arch`` (a Taichi arch name) unless it already runs so."""
    global _current
    wanted = (getattr(ti, arch).name, precision)  # "cpu" is the host's arch, e.g. "x64"
    if _current == wanted:
        return
    threads = {}
    if os.environ.get(CPU_THREADS):  # set by sweep workers to the CPUs a run was given
        threads = {"cpu_max_num_threads": max(1, int(float(os.environ[CPU_THREADS])))}
    with contextlib.redirect_stdout(io.StringIO()):  # ti.init prints "Starting on arch=..."
        ti.init(
            arch=getattr(ti, arch),
            default_fp=ti.f32 if precision == "f32" else ti.f64,
            log_level=ti.WARN,
            random_seed=0,
            **threads,
        )
    _current = (ti.lang.impl.current_cfg().arch.name, precision)
    for callback in _on_restart:
        callback()


def ensure_runtime(arch: str = "cpu", precision: str = "f32") -> Hardware:
    """Start Taichi for ``arch`` (``"cpu"``, ``"gpu"`` or ``"cuda"``) and ``precision``
    (``"f32"`` or ``"f64"``) if needed; return what runs.

    ``"gpu"`` without a usable GPU backend warns (:class:`ArchFallbackWarning`) and runs on the
    CPU; ``"cuda"`` without CUDA raises :class:`ArchUnavailable`.
    """
    if arch == "cpu":
        _start("cpu", precision)
        return Hardware(arch, _current[0])
    backends = ("cuda",) if arch == "cuda" else GPU_BACKENDS
    found, note = probe_backends(backends)
    if found is None and arch == "cuda":
        raise ArchUnavailable(
            f'arch = "cuda", but Taichi cannot start on CUDA here ({note})',
            'run on a machine with an NVIDIA GPU and its driver, or use arch = "gpu" (any GPU, '
            'else the CPU) or arch = "cpu"',
        )
    if found is None:
        warnings.warn(
            f'arch = "gpu": no GPU backend started ({note}); running on the CPU. '
            'Set arch = "cpu" to skip the search, or arch = "cuda" to require CUDA.',
            ArchFallbackWarning,
            stacklevel=2,
        )
    _start(found or "cpu", precision)
    return Hardware(arch, _current[0])
