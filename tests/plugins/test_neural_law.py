"""The `neural` material: physics by construction (zero stress at rest, rotation equivariance),
an identity plastic part until trained, weights loaded safely, and usable from a scene."""

import json
import math

import pytest
import torch

from engine.cli import main
from engine.diff.neural_law import NeuralLaw, save_neural_law
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene


def random_law(seed: int = 0) -> NeuralLaw:
    torch.manual_seed(seed)
    law = NeuralLaw(stress_scale=1.0e3).double()
    for layer in (*law.elastic, *law.plastic):
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.5)
            torch.nn.init.normal_(layer.bias, std=0.5)
    return law


def no_history(F: torch.Tensor) -> torch.Tensor:
    """The state ``(N, 1)`` of particles that never separated."""
    return torch.zeros(len(F), 1, dtype=F.dtype)


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    Q, _ = torch.linalg.qr(
        torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    Q[:, 0] *= torch.sign(torch.linalg.det(Q))  # a proper rotation, also in 2D
    return Q


@pytest.mark.parametrize("dim", [2, 3])
def test_stress_is_exactly_zero_at_rest(dim):
    law = random_law()
    F = torch.eye(dim, dtype=torch.float64).repeat(4, 1, 1)
    assert torch.equal(law.kirchhoff(F), torch.zeros_like(F))
    assert torch.equal(law.project(F, no_history(F))[0], F)


@pytest.mark.parametrize("dim", [2, 3])
def test_rotating_F_rotates_the_stress(dim):
    law = random_law(1)
    F = torch.eye(dim, dtype=torch.float64) + 0.2 * torch.randn(16, dim, dim, dtype=torch.float64)
    Q = random_rotation(dim, 2)
    rotated = law.kirchhoff(Q @ F)
    expected = Q @ law.kirchhoff(F) @ Q.T
    assert (rotated - expected).abs().max() <= 1e-6 * expected.abs().max()
    projected = law.project(Q @ F, no_history(F))[0]
    assert (projected - Q @ law.project(F, no_history(F))[0]).abs().max() <= 1e-6
    assert (projected - Q @ F).abs().max() > 1e-3  # the plastic part does something


def test_plastic_part_is_the_identity_inside_the_yield_surface_whatever_the_weights():
    law = random_law(3)
    with torch.no_grad():
        law.prior_yield.copy_(torch.log(torch.tensor([0.05, 0.2])))  # yield strain, friction
    small = torch.eye(3, dtype=torch.float64) + 0.003 * torch.randn(8, 3, 3, dtype=torch.float64)
    assert torch.equal(law.project(small, no_history(small))[0], small)
    stretched = torch.diag(torch.tensor([1.5, 1.0, 1.0], dtype=torch.float64))[None]
    assert law.project(stretched, no_history(stretched))[0][0, 0, 0] < 1.4  # the map acts


@pytest.mark.parametrize("dim", [2, 3])
def test_return_map_remembers_the_volume_beyond_the_apex_and_is_idempotent(dim):
    law = random_law(4)
    F = torch.eye(dim, dtype=torch.float64) + 0.3 * torch.randn(32, dim, dim, dtype=torch.float64)
    F[0] = 2.0 * torch.eye(dim)  # tr(eps) = d log 2, beyond the apex y / f = 1
    F_elastic, state = law.project(F, no_history(F))
    assert float(state[0, 0].detach()) == pytest.approx(dim * math.log(2.0) - 1.0, rel=1e-12)
    again, state_again = law.project(F_elastic, state)
    assert (again - F_elastic).abs().max() <= 1e-12
    assert (state_again - state).abs().max() <= 1e-12
    # the remembered volume counts: the same F with a history yields differently
    assert (law.project(F, state + 0.1)[0] - F_elastic).abs().max() > 1e-3


SCENE = """
[simulation]
dim = 2
domain = [0.5, 0.5]
resolution = 16
end_time = 0.02
frame_dt = 0.01

[materials.learned]
model = "neural"
density = 1000.0
weights = "models/law.pt"

[[bodies]]
material = "learned"
shape = "box"
min = [0.2, 0.2]
max = [0.3, 0.3]
"""


def test_a_scene_runs_with_saved_weights_and_refuses_missing_ones(scene_file, tmp_path):
    with pytest.raises(SceneError, match="law.pt does not exist"):
        load_scene(scene_file(SCENE))
    law = NeuralLaw(stress_scale=1.0e3)
    save_neural_law(
        tmp_path / "models" / "law.pt", law, {"wave_speed": 5.0, "trained_on": "nothing (test)"}
    )
    assert json.loads((tmp_path / "models" / "law.json").read_text())["wave_speed"] == 5.0
    assert main(["run", str(scene_file(SCENE)), "-q"]) == 0


def test_an_unknown_architecture_names_the_choices():
    from engine.diff.neural_law import build_law

    with pytest.raises(ValueError, match="unknown law architecture 'transformer'.*invariant"):
        build_law("transformer", 1.0e4, 2)
