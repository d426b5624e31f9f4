"""``engine train mover`` on a tiny run: weights, sidecar, loss curve, checkpoint and resume;
frames held out; bad input told."""

import json

import pytest

from engine.cli import main
from engine.diff.mover_data import HOLD_OUT, held_out
from engine.diff.mover_net import load_mover_net

SCENE = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 16
end_time = 0.14
frame_dt = 0.02

[output]
path = "out/run.vtkhdf"
fields = ["velocity"]

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.3, 0.4]
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mover_run")
    (folder / "scene.toml").write_text(SCENE)
    assert main(["run", str(folder / "scene.toml"), "-q"]) == 0
    return folder / "out" / "run.vtkhdf"


def train(result, out, *extra):
    base = ["train", "mover", str(result), "--out", str(out), "--nodes", "9", "--hidden", "4"]
    return main([*base, "-q", *extra])


def test_training_writes_weights_sidecar_curve_and_resumes(result, tmp_path):
    out = tmp_path / "mover.pt"
    assert train(result, out, "--epochs", "2") == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["architecture"] == "mover_cnn" and record["dim"] == 2
    frames = 8  # 0 .. 0.14 s
    assert record["held_out_frames"] == sum(held_out(i) for i in range(frames)) == 2
    assert record["training_frames"] == frames - 2
    assert record["held_out_rule"] == f"frame % {HOLD_OUT} == {HOLD_OUT - 1}"
    assert len(record["losses"]) == len(record["held_out_losses"]) == 2
    assert record["prior_loss"] > 0 and record["minutes"] > 0
    assert record["settings"]["nodes"] == 9 and record["data"] == [str(result.resolve())]
    assert (tmp_path / "mover_loss.png").stat().st_size > 1000
    assert (tmp_path / "mover.pt.checkpoint").is_file()
    load_mover_net(out, 2)
    assert train(result, out, "--epochs", "3", "--resume") == 0
    resumed = json.loads(out.with_suffix(".json").read_text())
    assert resumed["losses"][:2] == record["losses"] and len(resumed["losses"]) == 3


def test_steps_set_the_unrolled_solver_the_weights_record(result, tmp_path):
    out = tmp_path / "mover.pt"
    assert train(result, out, "--epochs", "1", "--steps", "5") == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["steps"] == 5 and record["settings"]["steps"] == 5
    net = load_mover_net(out, 2)
    assert net.config.steps == 5 and net.damping.shape == (5,)


def test_an_epoch_that_diverges_is_rolled_back(result, tmp_path, monkeypatch):
    import math

    import torch

    from engine.diff import mover_training

    calls = []

    def blowing_up(net, groups, convexity):
        loss = total_loss(net, groups, convexity)
        if torch.is_grad_enabled():  # the training loss, not the prior's or held-out frames'
            calls.append(len(calls))
            if len(calls) == 2:
                return loss * float("inf")
        return loss

    total_loss = mover_training.total_loss
    monkeypatch.setattr(mover_training, "total_loss", blowing_up)
    out = tmp_path / "mover.pt"
    assert train(result, out, "--epochs", "4") == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["rollbacks"] == 1
    assert record["losses"][1] is None  # rolled back
    assert all(math.isfinite(value) for i, value in enumerate(record["losses"]) if i != 1)
    net = load_mover_net(out, 2)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_bad_input_is_told(result, tmp_path, capsys):
    assert train(tmp_path / "missing.vtkhdf", tmp_path / "w.pt", "--epochs", "1") == 2
    assert "is not an engine result file (no such file)" in capsys.readouterr().err
    assert train(result, tmp_path / "w.pt", "--epochs", "1", "--device", "cuda:7") == 2
    assert "--device 'cuda:7' is not usable here" in capsys.readouterr().err
