"""Analytic solutions the solver must reproduce."""

import numpy as np

from engine.solver.fields import particle_fields
from engine.solver.simulation import Simulation

FREE_FALL = """
[simulation]
dim = 2
domain = [1.0, 2.0]
resolution = 32
end_time = 0.3
frame_dt = 0.05
gravity = [0.0, -9.81]

[materials.rubber]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = 1.0e5
poisson_ratio = 0.3

[[bodies]]
material = "rubber"
shape = "box"
min = [0.4, 1.5]
max = [0.6, 1.7]
"""


def test_free_fall_follows_half_g_t_squared(load):
    """Centroid drop of a falling body matches g t^2 / 2 within 1 % before impact (Galileo)."""
    sim = Simulation(load(FREE_FALL))
    y0 = sim.x.to_numpy()[:, 1].mean()
    for t in (0.2, 0.3):  # symplectic Euler is ahead by g t dt / 2: 0.5 % at t = 0.2 s
        sim.advance_to(t)
        drop = y0 - sim.x.to_numpy()[:, 1].mean()
        expected = 0.5 * 9.81 * t**2
        assert abs(drop - expected) <= 0.01 * expected, (t, drop, expected)


HYDROSTATIC = """
[simulation]
dim = 2
domain = [0.2, 0.3]
resolution = 24
end_time = 0.8
frame_dt = 0.05
boundary = "slip"

[output]
fields = ["stress", "J"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5
viscosity = 20.0

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.2, 0.2]
jitter = 0.0
"""


def test_settled_water_column_has_hydrostatic_pressure(load):
    """Pressure at mid-depth of a resting column is rho g h within 5 % (hydrostatics).

    The pressure is the Tait equation of state evaluated on each particle's J, read from the
    output stress (-trace / 2 in 2D), averaged over a band at mid-depth and over 0.4 s of its
    damped acoustic ringing (period 4 H / c = 0.08 s).
    """
    sim = Simulation(load(HYDROSTATIC))
    height, rho, g = 0.2, 1000.0, 9.81
    samples = []
    for t in np.arange(0.4, 0.8, 0.01):
        sim.advance_to(t)
        y = sim.x.to_numpy()[:, 1]
        stress = particle_fields(sim, ["stress"])["stress"]
        pressure = -np.trace(stress, axis1=1, axis2=2) / 2
        band = np.abs(y - height / 2) < sim.grid.dx
        samples.append(pressure[band].mean())
    expected = rho * g * height / 2
    assert abs(np.mean(samples) - expected) <= 0.05 * expected, (np.mean(samples), expected)


BAR = """
[simulation]
dim = 2
domain = [1.0, 0.25]
resolution = 64
end_time = 0.3
frame_dt = 0.005
gravity = [0.0, 0.0]

[materials.bar]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = 1.0e5
poisson_ratio = 0.0

[[bodies]]
material = "bar"
shape = "box"
min = [0.25, 0.1]
max = [0.75, 0.15]
jitter = 0.0
"""


def test_free_free_bar_vibrates_with_period_two_l_over_c(load):
    """Axial vibration of a free-free bar: period 2 L / c, c = sqrt(E / rho) (for nu = 0).

    Reference: the fundamental longitudinal mode of a free-free rod (e.g. Graff, "Wave Motion in
    Elastic Solids", sec. 2.2). Started with velocity v = v0 cos(pi x' / L) of that mode; the
    period is measured from the zero crossings of the bar's length change. Tolerance 5 %.
    """
    loaded = load(BAR)
    sim = Simulation(loaded)
    length, c = 0.5, np.sqrt(1.0e5 / 1000.0)
    x = sim.x.to_numpy()
    v = np.zeros_like(x)
    v[:, 0] = 0.05 * np.cos(np.pi * (x[:, 0] - 0.25) / length)
    sim.v.from_numpy(v.astype(np.float32))
    times, stretch = [], []
    for t in np.arange(0.002, 0.3, 0.002):
        sim.advance_to(t)
        px = sim.x.to_numpy()[:, 0]
        times.append(t)
        stretch.append(np.quantile(px, 0.99) - np.quantile(px, 0.01))
    signal = np.array(stretch) - np.mean(stretch)
    crossings = [
        times[i] - signal[i] * (times[i + 1] - times[i]) / (signal[i + 1] - signal[i])
        for i in range(len(signal) - 1)
        if signal[i] * signal[i + 1] < 0
    ]
    period = 2 * np.mean(np.diff(crossings))
    expected = 2 * length / c
    assert abs(period - expected) <= 0.05 * expected, (period, expected)
