"""Torch materials: same answers as the Taichi law, shared memory, and clear plugin errors."""

import numpy as np
import pytest
import torch

from engine.hooks.calls import PluginError
from engine.solver.simulation import Simulation

BLOCK = """
[simulation]
dim = {dim}
domain = {domain}
resolution = 16
end_time = 1.0
frame_dt = 0.01

[materials.jelly]
model = "{model}"
density = 1000.0
youngs_modulus = 5.0e4
poisson_ratio = 0.3

[[bodies]]
material = "jelly"
shape = "box"
min = {lo}
max = {hi}
velocity = {velocity}
"""


def block(model: str, dim: int) -> str:
    return BLOCK.format(
        dim=dim,
        model=model,
        domain=[1.0] * dim,
        lo=[0.3] * dim,
        hi=[0.5] * dim,
        velocity=[1.0, -0.5, 0.2][:dim],
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_torch_law_matches_the_taichi_law_step_by_step(load, dim):
    taichi_sim = Simulation(load(block("neo_hookean", dim)))
    torch_sim = Simulation(load(block("torch_neo_hookean", dim)))
    assert isinstance(torch_sim.x, torch.Tensor)
    for _ in range(30):
        taichi_sim.step(2e-4)
        torch_sim.step(2e-4)
    np.testing.assert_allclose(torch_sim.numpy("x"), taichi_sim.numpy("x"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        torch_sim.numpy("tau"), taichi_sim.numpy("tau"), rtol=1e-3, atol=1e-2
    )


def test_kernels_write_the_torch_tensors_in_place(load):
    sim = Simulation(load(block("torch_neo_hookean", 2)))
    pointer, before = sim.x.data_ptr(), sim.x.clone()
    sim.step(1e-3)
    assert sim.x.data_ptr() == pointer
    assert not torch.equal(before, sim.x)


BROKEN = """
from typing import Literal
import torch
from engine.hooks import hookimpl
from engine.materials.base import ElasticParams
from engine.materials.torch_base import TorchMaterial

class BrokenParams(ElasticParams):
    model: Literal["broken"] = "broken"

class Broken(TorchMaterial):
    name = "broken"
    Params = BrokenParams
    wave_speed = classmethod(lambda cls, params: 10.0)
    def kirchhoff(self, F):
        {body}

@hookimpl
def engine_register_materials():
    return [Broken]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return F[:, :1]", "returned shape (9, 1, 2), expected (9, 2, 2)"),
        ("return F * float('nan')", "returned NaN or inf"),
        ("raise ValueError('weights missing')", "weights missing"),
    ],
)
def test_misbehaving_torch_law_names_plugin_and_method(load, tmp_path, body, message):
    (tmp_path / "broken_law.py").write_text(BROKEN.replace("{body}", body))
    scene = block("broken", 2).replace("resolution = 16", "resolution = 8")
    scene += '\n[plugins]\nload = ["broken_law.py"]\n'
    sim = Simulation(load(scene))
    with pytest.raises(PluginError) as caught:
        sim.step(1e-4)
    text = str(caught.value)
    assert "broken_law.py', Broken.kirchhoff" in text and message in text


TORCH_SAND = """
from typing import Literal
import torch
from engine.diff.laws import sand
from engine.hooks import hookimpl
from engine.materials.sand import Sand, SandParams
from engine.materials.torch_base import TorchMaterial

class TorchSandParams(SandParams):
    model: Literal["torch_sand"] = "torch_sand"

class TorchSand(TorchMaterial):
    name = "torch_sand"
    Params = TorchSandParams
    state_vars = Sand.state_vars
    wave_speed = Sand.wave_speed

    def __init__(self, params, base_dir, device, dtype):
        super().__init__(params, base_dir, device, dtype)
        self.numbers = {k: torch.tensor(float(v)) for k, v in params.model_dump().items()
                        if isinstance(v, float)}

    def project(self, F, state):
        F_elastic, _, state = sand(F, None, state, self.numbers)
        return F_elastic, state

    def kirchhoff(self, F):  # Hencky stress of the elastic F
        E, nu = self.numbers["youngs_modulus"], self.numbers["poisson_ratio"]
        mu, lam = E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))
        values, V = torch.linalg.eigh(F @ F.transpose(1, 2))
        eps = 0.5 * torch.log(values)
        principal = 2 * mu * eps + lam * eps.sum(-1, keepdim=True)
        return V @ torch.diag_embed(principal) @ V.transpose(1, 2)

@hookimpl
def engine_register_materials():
    return [TorchSand]
"""


def test_a_torch_law_with_plastic_state_matches_the_taichi_sand(load, tmp_path):
    """The per-particle state a torch material declares is handed to it, updated and kept:
    the sand's volume correction, in torch, against the Taichi sand step by step (f64)."""
    (tmp_path / "torch_sand.py").write_text(TORCH_SAND)
    scene = block("sand", 2).replace("end_time = 1.0", 'end_time = 1.0\nprecision = "f64"')
    scene = scene.replace("min = [0.3, 0.3]", "min = [0.3, 0.03]").replace(
        "max = [0.5, 0.5]", "max = [0.5, 0.23]"
    )  # thrown at the floor, it spreads and comes apart
    scene = scene.replace("velocity = [1.0, -0.5]", "velocity = [3.0, -2.0]")
    taichi_sim = Simulation(load(scene))
    plugin = '\n[plugins]\nload = ["torch_sand.py"]\n'
    torch_sim = Simulation(load(scene.replace('model = "sand"', 'model = "torch_sand"') + plugin))
    for _ in range(300):
        taichi_sim.step(2e-4)
        torch_sim.step(2e-4)
    correction = taichi_sim.numpy("state")[:, 0]
    assert correction.max() > 1e-3  # the body came apart somewhere: the state matters
    np.testing.assert_allclose(torch_sim.numpy("state")[:, 0], correction, rtol=1e-6)
    np.testing.assert_allclose(torch_sim.numpy("x"), taichi_sim.numpy("x"), rtol=1e-6)
