"""`engine train constitutive`: teacher-forced training of a neural material on one trajectory,
with per-epoch checkpoints, resume, a loss curve, and weights a scene can use."""

import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.diff.train import WindowLoss, read_observation
from engine.diff.twin import TorchTwin
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

JELLY = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.06
frame_dt = 0.01

[output]
path = "out/jelly.vtkhdf"
fields = ["velocity", "C", "F"]

[materials.jelly]
model = "fixed_corotated"
density = 1000.0
youngs_modulus = 1.0e4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.15, 0.02]
max = [0.3, 0.17]
velocity = [0.5, -1.0]
"""


def test_training_lowers_the_loss_checkpoints_resumes_and_the_weights_run(
    scene_file, tmp_path, capsys
):
    scene = scene_file(JELLY)
    assert main(["run", str(scene), "-q"]) == 0
    result, weights = tmp_path / "out" / "jelly.vtkhdf", tmp_path / "models" / "jelly.pt"

    def train(epochs: int, *extra: str) -> int:
        options = ["--epochs", str(epochs), "--window", "1", "--lr", "1e-2", *extra]
        return main(["train", "constitutive", str(result), "--out", str(weights), *options])

    assert train(3, "-q") == 0
    assert weights.exists() and weights.with_suffix(".png").exists()
    assert weights.with_suffix(".ckpt").exists()
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["material"] == "jelly" and record["epochs"] == 3 and record["wave_speed"] > 0
    assert train(5, "--resume") == 0
    out = capsys.readouterr().out
    assert "trained 5 epochs" in out
    first, last = (float(v) for v in out.split("loss ")[1].split(":")[0].split(" -> "))
    assert last < first
    learned = JELLY.replace(
        'model = "fixed_corotated"\ndensity = 1000.0\nyoungs_modulus = 1.0e4',
        'model = "neural"\ndensity = 1000.0\nweights = "models/jelly.pt"',
    )
    assert (
        main(
            [
                "run",
                str(scene_file(learned, name="learned.toml")),
                "-q",
                "--set",
                'output.path="out/learned.vtkhdf"',
            ]
        )
        == 0
    )


def test_positions_alone_train_from_the_scene_initial_state(scene_file, tmp_path, capsys):
    scene = scene_file(JELLY.replace('fields = ["velocity", "C", "F"]', 'fields = ["J"]'))
    assert main(["run", str(scene), "-q"]) == 0
    weights = tmp_path / "x.pt"
    options = ["--out", str(weights), "--epochs", "2", "--window", "2", "-q"]
    assert main(["train", "constitutive", str(tmp_path / "out" / "jelly.vtkhdf"), *options]) == 0
    assert json.loads(weights.with_suffix(".json").read_text())["epochs"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch can train on CUDA")
def test_a_device_torch_cannot_use_is_refused_with_the_fix(tmp_path, capsys):
    options = ["--out", str(tmp_path / "x.pt"), "--device", "cuda"]
    assert main(["train", "constitutive", str(tmp_path / "any.vtkhdf"), *options]) == 2
    error = capsys.readouterr().err
    assert "--device 'cuda' is not usable here" in error and "--device cpu" in error


SAND = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.12
frame_dt = 0.01
max_dt = 5.0e-4
precision = "f64"

[output]
path = "out/sand.vtkhdf"
fields = ["velocity", "C", "F", "volume_correction"]

[materials.sand]
model = "sand"
density = 1600.0
youngs_modulus = 1.0e4

[[bodies]]
material = "sand"
shape = "box"
min = [0.1, 0.05]
max = [0.25, 0.2]
velocity = [1.5, -1.0]
"""


def test_the_law_history_carried_along_the_observation_makes_the_true_sand_fit(scene_file):
    """Sand comes apart as it spreads: its volume correction (Klar et al. 2016) is a history no
    frame holds. Carried frame by frame it matches the engine's own (written for the check only),
    and the true law then fits the observation to round-off; windows started without it do not."""
    scene = scene_file(SAND)
    assert main(["run", str(scene), "-q"]) == 0
    path = scene.parent / "out" / "sand.vtkhdf"
    observation, result = read_observation(path)
    loaded = load_scene(scene, [])
    twin = TorchTwin(Simulation(loaded))  # the analytic sand, in torch
    window_loss = WindowLoss(twin, observation, 1, 20, 0.01)
    starts = list(range(len(observation.states) - 1))
    with torch.no_grad():
        forgetting = float(window_loss.mean(starts))
        carried = float(window_loss.carry_history())
    truth = [result.arrays(i)["volume_correction"] for i in range(result.n_frames)]
    assert max(truth[-1]) > 0.05  # the body did come apart
    for state, expected in zip(observation.states[1:], truth[1:], strict=True):
        assert np.abs(state["state"][:, 0].numpy() - expected).max() <= 1e-6
    # measured: 2e-31 carried (round-off), 7e-8 forgetting
    assert carried <= 1e-20 and forgetting >= 1e3 * carried, (carried, forgetting)


@pytest.fixture(scope="module")
def short_jelly(tmp_path_factory):
    """A 3-frame jelly result and the checkpoint written beside it."""
    folder = tmp_path_factory.mktemp("short_jelly")
    (folder / "scene.toml").write_text(JELLY)
    scene = str(folder / "scene.toml")
    assert main(["run", scene, "-q", "--set", "simulation.end_time=0.02"]) == 0
    return folder / "out" / "jelly.vtkhdf"


def not_results(result):
    """Files that are not results: the checkpoint beside one, a text file, a missing file."""
    text = result.with_name("notes.vtkhdf")
    text.write_text("not HDF5\n")
    return {
        "checkpoint": (result.with_name("jelly_checkpoint.h5"), f"beside it, {result}"),
        "text": (text, "pass the .vtkhdf result file `engine run` wrote"),
        "missing": (result.with_name("none.vtkhdf"), "(no such file)"),
    }


COMMANDS = {
    "train": ["train", "constitutive", "{}", "--out", "{}.pt"],
    "identify": ["identify", "{}", "--fit", "youngs_modulus"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["checkpoint", "text", "missing"])
def test_a_file_that_is_not_a_result_is_one_line_naming_it_and_what_to_pass(
    short_jelly, capsys, command, kind
):
    path, advice = not_results(short_jelly)[kind]
    assert main([part.format(path) for part in COMMANDS[command]]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {path} is not an engine result file (")
    assert advice in error and error.count("\n") == 1, error


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--epochs", "0"),
        ("--window", "0"),
        ("--lr", "0"),
        ("--lr", "-0.001"),
        ("--stress-scale", "0"),
    ],
)
def test_bad_training_options_are_refused_before_any_work(tmp_path, capsys, option, value):
    missing = str(tmp_path / "none.vtkhdf")  # reading it would fail: the option is checked first
    with pytest.raises(SystemExit) as stop:
        main(["train", "constitutive", missing, "--out", str(tmp_path / "x.pt"), option, value])
    assert stop.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument {option}: '{value}' is not a" in error and f"e.g. {option} " in error


def test_a_window_longer_than_the_observation_is_refused_with_the_longest(short_jelly, capsys):
    options = ["--out", str(short_jelly.with_suffix(".pt")), "--window", "3"]
    assert main(["train", "constitutive", str(short_jelly), *options]) == 2
    assert "use --window 2 or less" in capsys.readouterr().err


def test_every_stage_of_training_shows_progress_in_a_log_and_quiet_hides_it(
    short_jelly, capsys, monkeypatch
):
    monkeypatch.setattr("engine.diff.train.MODULI_ITERATIONS", 2)  # a short stage one
    weights = str(short_jelly.with_name("progress.pt"))
    train = ["train", "constitutive", str(short_jelly), "--out", weights, "--window", "1"]
    assert main([*train, "--epochs", "1"]) == 0
    log = capsys.readouterr().err  # capsys is no terminal: plain lines, no bar
    assert "stage one, L-BFGS on the law's moduli: 0/2 iterations, loss " in log  # then converged
    assert "stage two, Adam on the whole law: 1/1 epochs, loss " in log
    assert "keeping the better law, loss over the longest windows: 2/2 laws, stage one " in log
    assert "\r" not in log
    assert main([*train, "--epochs", "2", "--resume", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("saved", [{"law": {}}, "damaged"], ids=["other_settings", "damaged"])
def test_a_checkpoint_that_does_not_fit_is_refused_with_the_fix(short_jelly, capsys, saved):
    weights = short_jelly.with_name("resumed.pt")
    if saved == "damaged":
        weights.with_suffix(".ckpt").write_bytes(b"not a checkpoint")
    else:
        torch.save(saved, weights.with_suffix(".ckpt"))
    options = ["--out", str(weights), "--window", "1", "--resume"]
    assert main(["train", "constitutive", str(short_jelly), *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: cannot resume from {weights.with_suffix('.ckpt')} (")
    assert "drop --resume to start over" in error and error.count("\n") == 1, error
    assert "weights_only" not in error
