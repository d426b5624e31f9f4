"""`engine train constitutive`: teacher-forced training of a neural material on one trajectory,
with per-epoch checkpoints, resume, a loss curve, and weights a scene can use."""

import json

from engine.cli import main

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
