"""System identification: Young's modulus recovered within 5 % from one trajectory, starting
from half the true value (issue target)."""

import torch

from engine.diff.identify import fit_parameters
from engine.diff.twin import TorchTwin
from engine.solver.simulation import Simulation

JELLY = """
[simulation]
dim = 2
domain = [0.6, 0.6]
resolution = 16
end_time = 1.0
frame_dt = 0.01
precision = "f64"
boundary = "separate"

[materials.jelly]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = {modulus}
poisson_ratio = 0.3

[[bodies]]
material = "jelly"
shape = "box"
min = [0.2, 0.04]
max = [0.35, 0.19]
velocity = [0.0, -2.0]
jitter = 0.0
"""

TRUE_MODULUS, STEPS, DT = 2.0e4, 40, 5e-4


def test_youngs_modulus_is_recovered_from_half_its_value(load):
    truth = Simulation(load(JELLY.format(modulus=TRUE_MODULUS)))  # the engine's own kernels
    observed = []
    for _ in range(STEPS):
        truth.step(DT)
        observed.append(torch.as_tensor(truth.numpy("x")))
    guess = Simulation(load(JELLY.format(modulus=TRUE_MODULUS / 2)))
    twin = TorchTwin(guess)
    fitted = fit_parameters(
        twin, twin.initial_state(guess), observed, DT, "jelly", ["youngs_modulus"]
    )
    assert abs(fitted["youngs_modulus"] / TRUE_MODULUS - 1) <= 0.05, fitted
