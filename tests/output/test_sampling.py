"""The B-spline kernel estimate of particle quantities at arbitrary points, against analytic
fields (the accuracy stated in engine/output/sampling.py)."""

import numpy as np
import pytest

from engine.output.sampling import KernelSampler
from engine.solver.runtime import ensure_runtime

H = 1.0 / 32  # kernel width (the grid's dx), m
DENSITY = 1000.0  # kg/m^3


@pytest.fixture(scope="module", autouse=True)
def runtime():
    ensure_runtime("cpu", "f64")


def block(jitter: float, dim: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Particles at spacing h/2 over [0.2, 0.8]^d, jittered by ``jitter`` spacings; masses."""
    spacing = H / 2
    axis = np.arange(0.2 + spacing / 2, 0.8, spacing)
    x = np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), -1).reshape(-1, dim)
    x += jitter * spacing * np.random.default_rng(seed).uniform(-0.5, 0.5, x.shape)
    return x, np.full(len(x), DENSITY * spacing**dim)


def interior_points(count: int, dim: int = 2) -> np.ndarray:
    """Random points at least 2 h inside the block."""
    return np.random.default_rng(1).uniform(0.2 + 2 * H, 0.8 - 2 * H, (count, dim))


@pytest.mark.parametrize("dim", [2, 3])
def test_density_inside_a_body(dim):
    """Exact (round-off) on a regular lattice; the jitter of the default seeding (0.3) shows."""
    points = interior_points(400, dim)
    for jitter, tolerance in ((0.0, 1e-12), (0.3, 0.08)):
        x, mass = block(jitter, dim)
        sampler = KernelSampler(x, mass, H, np.ones(dim))
        density, _ = sampler.sample(points, np.zeros(len(x)))
        assert np.abs(density / DENSITY - 1).max() < tolerance  # measured 6.9 % (2D), 3.8 % (3D)


def test_a_smooth_field_to_second_order_and_a_linear_one_exactly():
    """A sine loses about (k h)^2 / 8 per axis of its amplitude to the kernel's blur: 3.9 % at a
    wavelength of 16 h, a quarter of it at 32 h."""
    x, mass = block(0.3)
    sampler = KernelSampler(x, mass, H, np.ones(2))
    points = interior_points(400)
    errors = []
    for wave in (16 * H, 32 * H):  # m
        k = 2 * np.pi / wave
        f = np.sin(k * x[:, 0]) * np.cos(k * x[:, 1])
        exact = np.sin(k * points[:, 0]) * np.cos(k * points[:, 1])
        errors.append(np.abs(sampler.sample(points, f)[1][:, 0] - exact).max())
    assert errors[0] < 0.045 and errors[1] < 0.3 * errors[0]  # measured 0.041 and 0.010
    regular, mass = block(0.0)
    gradient = np.array([[2.0, -1.0], [0.5, 3.0]])
    _, sampled = KernelSampler(regular, mass, H, np.ones(2)).sample(points, regular @ gradient)
    np.testing.assert_allclose(sampled, points @ gradient, atol=1e-12)


def test_outside_the_body_nothing_is_sampled_and_the_surface_is_blurred_over_3h():
    x, mass = block(0.0)
    line = np.stack([np.linspace(0.8 - 2 * H, 0.8 + 2 * H, 9), np.full(9, 0.5)], axis=1)
    density, values = KernelSampler(x, mass, H, np.ones(2)).sample(line, np.ones(len(x)))
    assert density[0] == pytest.approx(DENSITY) and density[-1] == 0.0
    assert np.all(np.diff(density) <= 1e-9)  # falls monotonically across the surface
    np.testing.assert_array_equal(values[density > 0, 0], 1.0)
    assert values[-1, 0] == 0.0
