"""Cached kernel launches (engine/solver/launch.py) give Taichi's own results, bitwise, take the
fast path only for the argument sets they know, and leave everything else to Taichi."""

import numpy as np
import taichi as ti

from engine.solver import runtime
from engine.solver.launch import KEPT_SETS, CachedLaunch

runtime.ensure_runtime("cpu", "f32")

vec3 = ti.types.vector(3, ti.f32)


@ti.kernel
def accumulate(
    x: ti.types.ndarray(dtype=ti.f32, ndim=1),
    y: ti.types.ndarray(dtype=vec3, ndim=1),
    scale: ti.f32,
    count: ti.i32,
    shift: vec3,
):
    for i in range(count):
        x[i] = x[i] * scale + i
        y[i] += shift * x[i]


def arrays(n=16):
    x, y = ti.ndarray(ti.f32, n), ti.ndarray(vec3, n)
    x.from_numpy(np.linspace(0.1, 1.6, n, dtype=np.float32))
    y.from_numpy(np.ones((n, 3), np.float32))
    return x, y


def test_cached_launches_match_taichis_own_bitwise():
    cached, plain = arrays(), arrays()
    launch = CachedLaunch(accumulate)
    for step in range(5):  # the first call takes Taichi's path, the rest the cached one
        args = (1.0 + 0.1 * step, 8 + step, ti.Vector([0.5, -1.0, 2.0 * step]))
        launch(*cached, *args)
        accumulate(*plain, *args)
    assert len(launch.sets) == 1
    for a, b in zip(cached, plain, strict=True):
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_new_arrays_take_taichis_path_and_old_sets_are_dropped():
    launch = CachedLaunch(accumulate)
    kept = [arrays() for _ in range(KEPT_SETS + 2)]
    for x, y in kept:
        launch(x, y, 1.0, 4, ti.Vector([1.0, 1.0, 1.0]))
    assert len(launch.sets) == KEPT_SETS
    x, y = kept[-1]
    launch(x, y, 1.0, 4, ti.Vector([1.0, 1.0, 1.0]))  # a kept set: cached
    assert list(launch.sets)[-1][0] == id(x)


def test_numpy_arguments_always_take_taichis_path():
    launch = CachedLaunch(accumulate)
    x, y = np.ones(16, np.float32), np.zeros((16, 3), np.float32)
    for _ in range(2):
        launch(x, y, 2.0, 3, ti.Vector([1.0, 0.0, 0.0]))
    assert not launch.sets
    np.testing.assert_array_equal(x[:4], [4.0, 7.0, 10.0, 1.0])  # x = 2 x + i, twice


def test_torch_tensors_are_cached_and_read_at_every_call():
    import torch

    launch = CachedLaunch(accumulate)
    x, y = torch.ones(16), torch.zeros(16, 3)
    reference_x, reference_y = x.clone(), y.clone()
    for step in range(3):
        launch(x, y, 2.0, 3 + step, ti.Vector([1.0, 0.0, 0.0]))
        accumulate(reference_x, reference_y, 2.0, 3 + step, ti.Vector([1.0, 0.0, 0.0]))
    assert len(launch.sets) == 1
    torch.testing.assert_close(x, reference_x, rtol=0, atol=0)
    torch.testing.assert_close(y, reference_y, rtol=0, atol=0)
