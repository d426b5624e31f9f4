"""Which hardware ran: the backend Taichi actually got, a GPU request that falls back to the
CPU with a warning, a CUDA request refused with the fix, and torch's device derived from
Taichi's real backend. These machines have no GPU; where one is present the GPU branches are
checked instead."""

import warnings

import h5py
import pytest

from engine.cli import main
from engine.solver import runtime
from engine.solver.runtime import (
    ArchFallbackWarning,
    ArchUnavailable,
    Hardware,
    ensure_runtime,
    probe_backends,
)
from engine.solver.storage import Storage

SCENE = """
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 16
end_time = 0.02
frame_dt = 0.01

[output]
path = "out/hardware.vtkhdf"

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.3, 0.3]
max = [0.5, 0.5]
"""

GPU, WHY_NOT = probe_backends(runtime.GPU_BACKENDS)
CUDA, _ = probe_backends(("cuda",))


def engine_attributes(path):
    with h5py.File(path, "r") as file:
        return {key: str(value) for key, value in file["engine"].attrs.items()}


def test_a_cpu_run_records_the_backend_that_ran(scene_file, tmp_path, capsys):
    assert main(["run", str(scene_file(SCENE))]) == 0
    summary = capsys.readouterr().out
    recorded = engine_attributes(tmp_path / "out" / "hardware.vtkhdf")
    assert recorded["arch"] in runtime.CPU_ARCHES and recorded["arch_requested"] == "cpu"
    assert recorded["torch_device"] == "none"  # Taichi ndarrays, no torch material
    assert f"on {recorded['arch']} ->" in summary


@pytest.mark.skipif(GPU is not None, reason="a GPU backend starts here")
def test_gpu_without_a_gpu_warns_and_runs_on_the_cpu(scene_file, tmp_path, capsys):
    before = runtime._current
    with pytest.warns(ArchFallbackWarning, match="no GPU backend started .*running on the CPU"):
        hardware = ensure_runtime("gpu", "f32")
    assert hardware.on_cpu and hardware.requested == "gpu" and hardware.torch_device == "cpu"
    if before is not None and before[1] == "f32":
        assert runtime._current == before  # the CPU runtime kept its compiled kernels
    assert "cuda: not available" in WHY_NOT  # each backend says why it did not start
    assert main(["run", str(scene_file(SCENE)), "--set", "simulation.arch=gpu"]) == 0
    err = capsys.readouterr().err
    assert 'warning: arch = "gpu": no GPU backend started' in err
    recorded = engine_attributes(tmp_path / "out" / "hardware.vtkhdf")
    assert recorded["arch_requested"] == "gpu" and recorded["arch"] in runtime.CPU_ARCHES


@pytest.mark.skipif(CUDA is not None, reason="CUDA starts here")
def test_cuda_without_cuda_is_refused_with_the_fix(scene_file, capsys):
    with pytest.raises(ArchUnavailable, match='arch = "cuda", but Taichi cannot start on CUDA'):
        ensure_runtime("cuda", "f32")
    assert main(["run", str(scene_file(SCENE)), "--set", "simulation.arch=cuda"]) == 2
    err = capsys.readouterr().err
    assert "simulation.arch" in err and "fix:" in err and 'arch = "cpu"' in err


def test_a_probe_that_crashes_does_not_take_the_process_down():
    """OpenGL's start-up segfaults on machines without a GPU: the child dies, not us."""
    found, note = probe_backends(("opengl",))
    assert found == "opengl" or "opengl:" in note


def test_torch_arrays_live_where_taichi_runs():
    torch = pytest.importorskip("torch")
    assert Storage("torch", "f32", Hardware("cpu", "x64")).device == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ArchUnavailable, match="torch .* cannot use CUDA"):
            Storage("torch", "f32", Hardware("cuda", "cuda"))
    else:
        assert Storage("torch", "f32", Hardware("cuda", "cuda")).device == "cuda"
    with pytest.warns(UserWarning, match="every kernel call copies them"):
        store = Storage("torch", "f32", Hardware("gpu", "vulkan"))
    assert store.device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Storage("taichi", "f32", Hardware("gpu", "vulkan"))  # Taichi's own arrays: no copies
