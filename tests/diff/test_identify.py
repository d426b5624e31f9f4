"""System identification: Young's modulus recovered within 5 % from one trajectory, starting
from half the true value (issue target), through the API and through `engine identify`."""

import json

import pytest
import torch

from engine.cli import main
from engine.diff.identify import fit_parameters, trajectory_mismatch
from engine.diff.twin import TorchTwin
from engine.solver.simulation import Simulation

JELLY = """
[simulation]
dim = 2
domain = [0.6, 0.6]
resolution = 16
end_time = 0.08
frame_dt = 0.01
max_dt = 5.0e-4
precision = "f64"
boundary = "separate"

[output]
path = "out/jelly.vtkhdf"
fields = {fields}

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
FULL_STATE = '["velocity", "C", "F"]'


def test_youngs_modulus_is_recovered_from_half_its_value(load):
    truth = Simulation(load(JELLY.format(modulus=TRUE_MODULUS, fields=FULL_STATE)))
    observed = []
    for _ in range(STEPS):  # the engine's own kernels
        truth.step(DT)
        observed.append(torch.as_tensor(truth.numpy("x")))
    guess = Simulation(load(JELLY.format(modulus=TRUE_MODULUS / 2, fields=FULL_STATE)))
    twin = TorchTwin(guess)
    mismatch = trajectory_mismatch(twin, twin.initial_state(guess), observed, DT)
    fitted = fit_parameters(twin, "jelly", ["youngs_modulus"], mismatch)
    assert abs(fitted["youngs_modulus"] / TRUE_MODULUS - 1) <= 0.05, fitted


@pytest.mark.parametrize("fields", [FULL_STATE, '["J"]'], ids=["full_state", "positions_only"])
def test_engine_identify_recovers_the_modulus_from_a_result_file(
    scene_file, tmp_path, capsys, fields
):
    scene = scene_file(JELLY.format(modulus=TRUE_MODULUS, fields=fields))
    assert main(["run", str(scene), "-q"]) == 0
    report = tmp_path / "identified.json"
    result = str(tmp_path / "out" / "jelly.vtkhdf")
    start = f"youngs_modulus={TRUE_MODULUS / 2}"
    assert main(["identify", result, "--fit", start, "--out", str(report)]) == 0
    assert "jelly.youngs_modulus: 10000 -> " in capsys.readouterr().out
    found = json.loads(report.read_text())
    assert found["start"] == {"youngs_modulus": TRUE_MODULUS / 2}
    assert abs(found["fitted"]["youngs_modulus"] / TRUE_MODULUS - 1) <= 0.05, found
    assert found["loss_after"] < 1e-3 * found["loss_before"]


def test_engine_identify_names_the_parameters_it_can_fit(scene_file, tmp_path, capsys):
    scene = scene_file(JELLY.format(modulus=TRUE_MODULUS, fields=FULL_STATE))
    assert main(["run", str(scene), "-q", "--set", "simulation.end_time=0.02"]) == 0
    result = str(tmp_path / "out" / "jelly.vtkhdf")
    assert main(["identify", result, "--fit", "stiffness=1e4"]) == 2
    error = capsys.readouterr().err
    assert "no parameter 'stiffness'" in error and "youngs_modulus" in error
    assert main(["identify", result, "--fit", "youngs_modulus=soft"]) == 2
    assert "the start must be a number" in capsys.readouterr().err
    assert main(["identify", result, "--fit", "youngs_modulus=-1"]) == 2
    assert "positive" in capsys.readouterr().err


def test_engine_identify_shows_its_iterations_and_loss_in_a_log(scene_file, tmp_path, capsys):
    scene = scene_file(JELLY.format(modulus=TRUE_MODULUS, fields=FULL_STATE))
    assert main(["run", str(scene), "-q", "--set", "simulation.end_time=0.02"]) == 0
    result = str(tmp_path / "out" / "jelly.vtkhdf")
    options = ["--fit", f"youngs_modulus={TRUE_MODULUS / 2}", "--iterations", "2"]
    assert main(["identify", result, *options]) == 0
    log = capsys.readouterr().err  # capsys is no terminal: plain lines, no bar
    assert "identify, L-BFGS: 0/2 iterations, loss " in log
    assert "identify, L-BFGS: 1/2 iterations, loss " in log and "\r" not in log


def test_fewer_than_one_iteration_is_refused_before_any_work(tmp_path, capsys):
    missing = str(tmp_path / "none.vtkhdf")  # reading it would fail: the option is checked first
    with pytest.raises(SystemExit) as stop:
        main(["identify", missing, "--fit", "youngs_modulus", "--iterations", "0"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "argument --iterations: '0' is not a whole number of at least 1" in error
    assert "e.g. --iterations 30" in error
