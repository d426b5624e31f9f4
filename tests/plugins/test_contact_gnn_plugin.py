"""The ``gnn`` contact model plugin: weights checked when the scene loads (missing, corrupt,
another dimension or architecture, or no weights key: a validation error at contact.weights),
and a scene with valid weights runs through the contact stage."""

import numpy as np
import pytest
import torch
from two_disks import two_disks

from engine.diff.contact_gnn import ContactGNN, ContactGNNConfig, save_contact_gnn
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

SCENE = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 32
end_time = 0.1
frame_dt = 0.05
body_contact = true
contact = "gnn"
{table}

""" + two_disks((0.3, 0.1), (0.55, 0.1))


def weights(folder, dim: int = 2):
    torch.manual_seed(0)
    path = folder / f"contact_{dim}d.pt"
    save_contact_gnn(ContactGNN(ContactGNNConfig(dim=dim, hidden=16, layers=1, bound=0.2)), path)
    return path


def test_a_scene_with_trained_weights_runs(scene_file, tmp_path):
    path = weights(tmp_path)
    sim = Simulation(
        load_scene(scene_file(SCENE.format(table=f'[contact]\nweights = "{path.name}"')))
    )
    sim.advance_to(0.05)
    assert np.isfinite(sim.numpy("x")).all() and sim.contact_stage.found > 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("missing", "does not exist"),
        ("corrupt", "cannot be loaded"),
        ("3d", "trained for 3D scenes"),
        ("none", "contact.weights"),
    ],
)
def test_bad_weights_are_a_validation_error_naming_the_key(scene_file, tmp_path, make, message):
    table = '[contact]\nweights = "contact_2d.pt"'
    if make == "corrupt":
        weights(tmp_path).write_bytes(b"not a torch file")
    elif make == "3d":
        weights(tmp_path, dim=3).rename(tmp_path / "contact_2d.pt")
        (tmp_path / "contact_3d.json").rename(tmp_path / "contact_2d.json")
    elif make == "none":
        table = ""
    with pytest.raises(SceneError) as error:
        load_scene(scene_file(SCENE.format(table=table)))
    text = str(error.value)
    assert "contact.weights" in text and message in text
