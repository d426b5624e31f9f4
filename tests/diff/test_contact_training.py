"""`engine train contact`: the contact graph network trained with the coarse solver in the loop on
runs of one scene at two resolutions (a sweep's output folder), with checkpoints, resume, a loss
curve and a sidecar; bad data is an error saying what to pass."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.diff.contact_gnn import ContactGNN, ContactGNNConfig, load_contact_gnn
from engine.diff.contact_training import (
    FLOOR,
    ContactTrainingConfig,
    FineToCoarse,
    Reference,
    body_motion,
    built_in_loss,
    checked_starts,
    contact_weights,
    motion_error,
    prepare,
    read_reference,
    scaled_loss,
    set_scales,
    sweep_cases,
    window_starts,
)
from engine.runner import run_scene
from engine.scene.loader import load_scene
from tests.two_disks import two_disks

SCENE = """
[simulation]
dim = 2
domain = [0.6, 0.3]
resolution = 12
end_time = 0.03
frame_dt = 0.01
body_contact = true
body_friction = 0.3
gravity = [0.0, 0.0]

[output]
path = "out/disks.vtkhdf"
fields = ["velocity", "body_id"]
""" + two_disks((0.19, 0.15), (0.41, 0.15), speed=2.0)


def fake_sweep(folder, resolutions=(12, 24)):
    """A sweep's output folder by hand: the scene at ``resolutions``, one manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = folder / "disks.toml"
    scene.write_text(SCENE)
    runs = {}
    for resolution in resolutions:
        output = folder / f"run_{resolution}.vtkhdf"
        overrides = [f"simulation.resolution={resolution}", f'output.path="{output}"']
        run_scene(load_scene(scene, overrides), quiet=True)
        runs[f"run_{resolution}"] = {
            "params": {"simulation.resolution": resolution},
            "status": "done",
            "output": str(output),
        }
    manifest = {"sweep": "sweep.toml", "scene": str(scene), "runs": runs}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return fake_sweep(tmp_path_factory.mktemp("contact_sweep"))


def test_cases_pair_the_resolutions_and_references_hold_each_bodys_motion(sweep):
    (case,) = sweep_cases([sweep])
    assert (case.coarse, case.reference) == (12, 24)
    reference = read_reference(case.results[24])
    assert reference.displacement.shape == (4, 2, 2) and reference.rotation.shape == (4, 2)
    assert np.all(reference.displacement[0] == 0.0)
    assert reference.sizes == pytest.approx([0.2, 0.2], abs=0.03)  # disks of radius 0.1 m
    # the disks move toward each other at 2 m/s before they touch
    assert reference.velocity[0, :, 0] == pytest.approx([2.0, -2.0], rel=1e-6)


def test_body_motion_rotation_and_error():
    start = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # 90 degrees
    x = start @ turn.T + 0.5
    body_id = torch.zeros(4, dtype=torch.long)
    drift = torch.tensor([0.2, -0.1], dtype=torch.float64)
    spinning = 3.0 * (x - 0.5) @ turn.T + drift  # 3 rad/s about the centroid
    centroid, velocity, rotation, spin = body_motion(x, spinning, body_id, start, 1)
    assert centroid.tolist() == [[0.5, 0.5]] and rotation.item() == pytest.approx(np.pi / 2)
    assert velocity[0].tolist() == pytest.approx(drift.tolist())
    assert spin.item() == pytest.approx(3.0)

    # a reference half a turn away (wrapped), displaced as the body is: only the angle counts
    class Ref:
        displacement = np.array([[[0.5, 0.5]]])
        velocity = np.array([[[0.2, -0.1]]])
        rotation = np.array([[-np.pi / 2 - 2 * np.pi]])
        sizes = np.array([2.0])

    error = motion_error((centroid, velocity, rotation, None), torch.zeros(1, 2), Ref, 0)
    assert error.item() == pytest.approx(np.pi**2)
    Ref.spin = np.array([[1.0]])  # spinning 2 rad/s slower
    error = motion_error((centroid, velocity, rotation, spin), torch.zeros(1, 2), Ref, 0)
    assert error.item() == pytest.approx(np.pi**2 + (0.05 * 2.0) ** 2)


def test_error_since_a_frame_counts_only_what_changed_after_it():
    reference = Reference(
        times=np.array([0.0, 0.1, 0.2]),
        displacement=np.array([[[0.0, 0.0]], [[1.0, 0.0]], [[1.5, 0.0]]]),
        velocity=np.zeros((3, 1, 2)),
        rotation=np.array([[0.0], [0.3], [0.5]]),
        sizes=np.array([1.0]),
    )
    # a run 2 m off and 1 rad turned at frame 1 that then moves and turns as the reference
    origin = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    motion = (origin + torch.tensor([[0.5, 0.0]]), torch.zeros(1, 2), torch.tensor([1.2]), None)
    since = (1, torch.tensor([1.0]))
    assert motion_error(motion, origin, reference, 2, since=since).item() == pytest.approx(0.0)
    assert motion_error(motion, origin, reference, 2).item() > 1.0  # counted from frame 0


@pytest.mark.parametrize("dim", [2, 3])
def test_a_fine_runs_affine_motion_carries_over_to_the_coarse_particles_exactly(dim):
    rng = np.random.default_rng(dim)
    coarse = rng.uniform(0.0, 1.0, (30, dim))
    fine = rng.uniform(-0.1, 1.1, (30 * 2**dim, dim))
    coarse_body, fine_body = (coarse[:, 0] > 0.5).astype(int), (fine[:, 0] > 0.5).astype(int)
    stretch = np.eye(dim) + 0.1 * rng.standard_normal((dim, dim))
    rate = rng.standard_normal((dim, dim))
    x = fine @ stretch.T + 0.3
    v = fine @ rate.T - 1.0
    state = FineToCoarse(coarse, coarse_body, fine, fine_body).state(x, v)
    assert np.allclose(state["x"], coarse @ stretch.T + 0.3, atol=1e-12)
    assert np.allclose(state["v"], coarse @ rate.T - 1.0, atol=1e-12)
    assert np.allclose(state["F"], stretch, atol=1e-12)
    assert np.allclose(state["C"], rate @ np.linalg.inv(stretch), atol=1e-10)  # dv/dx


def test_windows_are_drawn_where_contact_changes_the_motion():
    g, frame_dt = np.array([0.0, -10.0]), 0.01
    velocity = np.zeros((6, 1, 2))
    velocity[:, 0, 1] = -2.0 - 0.1 * np.arange(6)  # free fall
    velocity[3:, 0, 1] += 3.0  # a bounce between frames 2 and 3: +3 m/s
    reference = Reference(np.arange(6) * frame_dt, velocity * 0, velocity, None, np.ones(1))
    weights = contact_weights(reference, g, frame_dt)
    assert np.argmax(weights) == 2 and weights[2] == pytest.approx(3.0)
    assert np.allclose(np.delete(weights, 2), 0.0, atol=1e-12)


def test_half_the_windows_are_drawn_uniformly_the_rest_where_contact_acts():
    weights = np.zeros(11)
    weights[4] = 3.0  # one impact: windows of 2 frames from frames 3 and 4 hold it
    starts, chances = window_starts(SimpleNamespace(first=1, frames=10, weights=weights), 2)
    assert starts.tolist() == list(range(1, 9)) and chances.sum() == pytest.approx(1.0)
    assert chances[[2, 3]] == pytest.approx([0.5 / 8 + 0.25] * 2)  # 3 and 4
    assert np.delete(chances, [2, 3]) == pytest.approx([0.5 / 8] * 6)


def test_each_case_counts_over_the_built_in_contacts_loss_on_it(sweep):
    (case,) = sweep_cases([sweep])
    model = ContactGNN(ContactGNNConfig(dim=2, hidden=8, layers=1)).double()
    prepared = prepare(case, model, "cpu")
    config = ContactTrainingConfig()
    starts = checked_starts(prepared, config.window)
    set_scales([prepared], config)
    built_in = [built_in_loss(prepared, int(start), config.window) for start in starts]
    assert prepared.scale == pytest.approx(np.mean(built_in)) and prepared.scale > FLOOR
    assert prepared.twin.contact_model is model  # put back after the built-in runs
    with torch.no_grad():
        relative = float(scaled_loss(prepared, int(starts[0]), config))
        set_scales([prepared], replace(config, relative=False))
        absolute = float(scaled_loss(prepared, int(starts[0]), config))
    assert prepared.scale == 1.0 and relative == pytest.approx(absolute / np.mean(built_in))
    # the untrained network is nearly the built-in response
    assert absolute == pytest.approx(built_in[0], rel=0.02)


def test_train_contact_writes_weights_sidecar_curve_and_resumes(sweep, tmp_path, capsys):
    out = tmp_path / "new" / "contact.pt"  # folders that do not exist yet are made
    args = ["train", "contact", str(sweep), "--out", str(out), "--hidden", "8", "--layers", "1"]
    args += ["--teacher-epochs", "1", "--pushforward", "1"]  # the second epoch pushes forward
    assert main([*args, "--epochs", "1", "-q"]) == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["architecture"] == "contact_gnn" and sidecar["cases"] == 1
    assert sidecar["data"] == [str(sweep.resolve())] and len(sidecar["losses"]) == 1
    assert np.isfinite(sidecar["losses"][0]) and sidecar["built_in_loss"] > 0
    assert len(sidecar["training_losses"]) == 1 and sidecar["kept_epoch"] == 1
    assert (out.parent / "contact_loss.png").stat().st_size > 0
    model = load_contact_gnn(out, 2)
    assert model.vertex_std.ne(1.0).any()  # normalisation fitted to the data
    first = sidecar["losses"][0]
    assert main([*args, "--epochs", "2", "--resume", "-q"]) == 0
    resumed = json.loads(out.with_suffix(".json").read_text())
    assert resumed["losses"][0] == first and len(resumed["losses"]) == 2


def test_training_data_problems_say_what_to_pass(sweep, tmp_path, capsys):
    assert main(["train", "contact", str(tmp_path), "--out", str(tmp_path / "w.pt")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    single = fake_sweep(tmp_path / "one", resolutions=(12,))
    assert main(["train", "contact", str(single), "--out", str(tmp_path / "w.pt")]) == 2
    assert "two resolutions" in capsys.readouterr().err
