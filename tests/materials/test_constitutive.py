"""Each material's stress and return mapping against closed-form formulas (NumPy references).

References: fixed-corotated, Stomakhin et al. 2012 ("Energetically consistent invertible
elasticity"); neo-Hookean, Bonet & Wood, "Nonlinear Continuum Mechanics", eq. 6.28 in Kirchhoff
form; snow, Stomakhin et al. 2013 ("A material point method for snow simulation"); sand, Klar et
al. 2016 ("Drucker-Prager elastoplasticity for sand animation"); von Mises with Hencky strain,
de Souza Neto et al., "Computational Methods for Plasticity", ch. 14.
"""

import numpy as np
import pytest

from engine.materials.elastic import FixedCorotatedParams, NeoHookeanParams
from engine.materials.fluid import FluidParams
from engine.materials.sand import SandParams
from engine.materials.snow import SnowParams
from engine.materials.von_mises import VonMisesParams
from engine.solver.evaluate import evaluate_material
from engine.solver.runtime import ensure_runtime

E, NU = 1.0e5, 0.3
MU, LAM = E / (2 * (1 + NU)), E * NU / ((1 + NU) * (1 - 2 * NU))


@pytest.fixture(autouse=True)
def runtime():
    ensure_runtime("cpu", "f32")


def random_F(rng, n: int, dim: int, spread: float = 0.2) -> np.ndarray:
    return np.eye(dim) + spread * rng.standard_normal((n, dim, dim))


def polar_rotation(F):
    U, _, Vt = np.linalg.svd(F)
    return U @ Vt


@pytest.mark.parametrize("dim", [2, 3])
def test_fixed_corotated_matches_formula(dim):
    F = random_F(np.random.default_rng(1), 64, dim)
    F = F[np.linalg.det(F) > 0.2]
    tau = evaluate_material(
        FixedCorotatedParams(density=1e3, youngs_modulus=E, poisson_ratio=NU), F
    ).kirchhoff
    J = np.linalg.det(F)[:, None, None]
    expected = 2 * MU * (F - polar_rotation(F)) @ F.transpose(0, 2, 1) + LAM * J * (J - 1) * np.eye(
        dim
    )
    np.testing.assert_allclose(tau, expected, rtol=2e-3, atol=2e-3 * E)


@pytest.mark.parametrize("dim", [2, 3])
def test_neo_hookean_matches_formula(dim):
    F = random_F(np.random.default_rng(2), 64, dim)
    F = F[np.linalg.det(F) > 0.2]
    tau = evaluate_material(
        NeoHookeanParams(density=1e3, youngs_modulus=E, poisson_ratio=NU), F
    ).kirchhoff
    J = np.linalg.det(F)[:, None, None]
    expected = MU * (F @ F.transpose(0, 2, 1) - np.eye(dim)) + LAM * np.log(J) * np.eye(dim)
    np.testing.assert_allclose(tau, expected, rtol=1e-3, atol=1e-3 * E)


def test_stress_vanishes_at_rest_for_every_solid():
    F = np.repeat(np.eye(3)[None], 4, axis=0)
    for params in (
        FixedCorotatedParams(density=1e3, youngs_modulus=E),
        NeoHookeanParams(density=1e3, youngs_modulus=E),
        SnowParams(density=4e2, youngs_modulus=E),
        SandParams(density=1.6e3, youngs_modulus=E),
        VonMisesParams(density=1.5e3, youngs_modulus=E, yield_stress=1e3),
        FluidParams(density=1e3, bulk_modulus=E),
    ):
        assert np.abs(evaluate_material(params, F).kirchhoff).max() < 1e-6 * E, params.model


def test_fluid_pressure_follows_tait_and_viscosity_newton():
    J = np.array([0.98, 1.0, 1.01])
    F = np.stack([np.diag([j, 1.0]) for j in J])
    C = np.zeros((3, 2, 2))
    C[:, 0, 1] = 4.0  # simple shear rate 4 1/s
    params = FluidParams(density=1e3, bulk_modulus=2e5, viscosity=0.5, eos_exponent=7.0)
    response = evaluate_material(params, F, C)
    pressure = 2e5 * (J**-7 - 1) / 7
    sigma = response.cauchy
    np.testing.assert_allclose(
        -(sigma[:, 0, 0] + sigma[:, 1, 1]) / 2, pressure, rtol=1e-3, atol=1.0
    )
    np.testing.assert_allclose(sigma[:, 0, 1], 0.5 * 4.0, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.det(response.F), J, rtol=1e-5)  # shear forgotten
    np.testing.assert_allclose(response.F[:, 0, 1], 0.0, atol=1e-7)


def test_von_mises_returns_to_the_yield_surface_and_keeps_volume():
    yield_stress = 2e3
    params = VonMisesParams(
        density=1.5e3, youngs_modulus=E, poisson_ratio=NU, yield_stress=yield_stress
    )
    stretch = np.array([1.0005, 1.01, 1.05, 1.2])  # isochoric uniaxial stretches
    F = np.stack([np.diag([s, s**-0.5, s**-0.5]) for s in stretch])
    response = evaluate_material(params, F)
    tau = response.kirchhoff
    deviator = tau - np.trace(tau, axis1=1, axis2=2)[:, None, None] / 3 * np.eye(3)
    von_mises = np.sqrt(1.5 * (deviator**2).sum(axis=(1, 2)))
    elastic = 3 * MU * np.log(stretch)  # uniaxial isochoric Hencky: q = 3 mu eps
    np.testing.assert_allclose(von_mises, np.minimum(elastic, yield_stress), rtol=2e-3)
    np.testing.assert_allclose(np.linalg.det(response.F), 1.0, atol=1e-5)


def test_snow_clamps_singular_values_and_hardens_under_compression():
    params = SnowParams(density=4e2, youngs_modulus=E, poisson_ratio=0.2)
    F = np.stack([np.eye(3) * 0.9, np.eye(3) * 0.99, np.eye(3) * 1.1])
    response = evaluate_material(params, F)
    sig = np.linalg.svd(response.F, compute_uv=False)
    assert np.all(sig >= 1 - 2.5e-2 - 1e-6) and np.all(sig <= 1 + 7.5e-3 + 1e-6)
    plastic_J = response.state[:, 0]
    # total volume is conserved in the split J = J_elastic * J_plastic
    np.testing.assert_allclose(np.linalg.det(response.F) * plastic_J, np.linalg.det(F), rtol=1e-5)
    assert plastic_J[0] < 1 < plastic_J[2]  # compacted snow has J_p < 1: it hardens


def test_sand_is_stress_free_in_tension_and_inside_the_cone_in_compression():
    params = SandParams(density=1.6e3, youngs_modulus=E, poisson_ratio=NU, friction_angle=30.0)
    tension = evaluate_material(params, np.stack([np.eye(2) * 1.05]))
    assert np.abs(tension.kirchhoff).max() < 1e-6 * E
    assert tension.state[0, 0] > 0  # the opened volume is remembered
    rng = np.random.default_rng(3)
    F = np.stack([np.eye(3) * 0.97 + 0.05 * rng.standard_normal((3, 3)) for _ in range(32)])
    response = evaluate_material(params, F)
    s = np.sin(np.radians(30.0))
    alpha = np.sqrt(2 / 3) * 2 * s / (3 - s)
    # Klar 2016 eq. 27: the projected Hencky strain lies inside the Drucker-Prager cone
    eps = np.log(np.linalg.svd(response.F, compute_uv=False))
    trace = eps.sum(axis=1)
    deviator = np.linalg.norm(eps - trace[:, None] / 3, axis=1)
    cone = -(3 * LAM + 2 * MU) / (2 * MU) * trace * alpha
    assert np.all(deviator <= cone + 1e-4)
    mean_stress = np.trace(response.kirchhoff, axis1=1, axis2=2) / 3
    assert np.all(mean_stress <= 1e-6 * E)  # cohesionless: never in mean tension
