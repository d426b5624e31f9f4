"""The torch twin of the MLS-MPM step: it agrees with the Taichi kernels step by step (f64), and
its gradients match central finite differences (relative error <= 1e-3, f64), for elastic and
plastic materials in 2D and 3D, and stay finite at rest (F = I)."""

import numpy as np
import pytest
import torch

from engine.diff.neural_law import NeuralLaw
from engine.diff.twin import TorchTwin
from engine.solver.simulation import Simulation

SCENE = """
[simulation]
dim = {dim}
domain = {domain}
resolution = 12
end_time = 1.0
frame_dt = 0.01
precision = "f64"
boundary = "separate"
boundary_friction = 0.3

[materials.body]
model = "{model}"
density = 1000.0
{params}

[[bodies]]
material = "body"
shape = "box"
min = {lo}
max = {hi}
velocity = {velocity}
jitter = 0.0
particles_per_cell = 4

[[colliders]]
type = "plane"
point = {point}
normal = {normal}
boundary = "slip"
friction = 0.2
"""

PARAMS = {
    "neo_hookean": "youngs_modulus = 2.0e4\npoisson_ratio = 0.3",
    "fixed_corotated": "youngs_modulus = 2.0e4\npoisson_ratio = 0.3",
    "von_mises": "youngs_modulus = 2.0e4\npoisson_ratio = 0.3\nyield_stress = 300.0",
    "sand": "youngs_modulus = 2.0e4\npoisson_ratio = 0.3\nfriction_angle = 30.0",
    "fluid": "bulk_modulus = 2.0e4\nviscosity = 1.0",
}


def scene(model: str, dim: int) -> str:
    """A block thrown down-left onto a tilted plane and the left wall (contact and friction)."""
    return SCENE.format(
        dim=dim,
        model=model,
        params=PARAMS[model],
        domain=[0.6] * dim,
        lo=[0.06] + [0.12] * (dim - 1),
        hi=[0.24] + [0.3] * (dim - 1),
        velocity=[-1.5, -1.0, 0.5][:dim],
        point=[0.0, 0.1, 0.0][:dim],
        normal=[0.2, 1.0, 0.1][:dim],
    )


STEPS, DT = 25, 4e-4


@pytest.mark.parametrize(
    ("model", "dim"),
    [
        ("neo_hookean", 2),
        ("fixed_corotated", 3),
        ("von_mises", 2),
        ("von_mises", 3),
        ("sand", 2),
        ("sand", 3),
        ("fluid", 2),
    ],
)
def test_twin_agrees_with_the_taichi_step(load, model, dim):
    sim = Simulation(load(scene(model, dim)))
    twin = TorchTwin(sim)
    state = twin.initial_state(sim)
    for _ in range(STEPS):
        sim.step(DT)
        state = twin.step(state, DT)
        for name in ("x", "v", "F", "state"):
            expected = sim.numpy(name)
            scale = max(np.abs(expected).max(), 1e-9)  # state is ~1e-16 in free fall
            error = np.abs(state[name].detach().numpy() - expected).max() / scale
            assert error <= 1e-5, (name, error)
    if model == "von_mises":  # it means something only if the body yielded: strains at the cap
        sim.refresh_stress()  # project the last trial F
        F = sim.numpy("F")
        eps = 0.5 * np.log(np.linalg.eigvalsh(F @ F.transpose(0, 2, 1)))
        deviator = np.linalg.norm(eps - eps.mean(axis=1, keepdims=True), axis=1)
        mu = 2.0e4 / 2.6
        cap = np.sqrt(2 / 3) * 300.0 / (2 * mu)
        assert deviator.max() == pytest.approx(cap, rel=1e-3)
    if model == "sand":  # the volume correction is exercised: some particles separated
        assert (sim.numpy("state")[:, 0] > 0).any()


def rollout_loss(twin, state, steps=STEPS):
    for _ in range(steps):
        state = twin.step(state, DT)
    weights = torch.linspace(0.5, 1.5, state["x"].numel(), dtype=torch.float64)
    return (weights * state["x"].reshape(-1)).sum() + 0.1 * (state["v"] ** 2).sum()


def relative_error(analytic: float, numeric: float) -> float:
    return abs(analytic - numeric) / max(abs(numeric), 1e-12)


@pytest.mark.parametrize(
    ("model", "dim", "parameter"),
    [
        ("fixed_corotated", 2, "youngs_modulus"),
        ("neo_hookean", 3, "youngs_modulus"),
        ("von_mises", 2, "yield_stress"),
        ("von_mises", 3, "youngs_modulus"),
        ("sand", 2, "friction_angle"),
        ("fluid", 2, "viscosity"),
    ],
)
def test_gradients_match_finite_differences(load, model, dim, parameter):
    sim = Simulation(load(scene(model, dim)))
    twin = TorchTwin(sim)
    start = twin.initial_state(sim)
    value = twin.params["body"][parameter]
    # material parameter
    leaf = value.clone().requires_grad_()
    twin.params["body"][parameter] = leaf
    rollout_loss(twin, start).backward()
    step = 1e-6 * float(value)
    numeric = []
    for sign in (1, -1):
        twin.params["body"][parameter] = value + sign * step
        numeric.append(float(rollout_loss(twin, start)))
    twin.params["body"][parameter] = value
    fd = (numeric[0] - numeric[1]) / (2 * step)
    assert relative_error(float(leaf.grad), fd) <= 1e-3, (float(leaf.grad), fd)
    # initial state: a shift of every particle's initial velocity along x
    shift = torch.zeros((), dtype=torch.float64, requires_grad=True)
    moved = {**start, "v": start["v"] + shift * torch.eye(dim, dtype=torch.float64)[0]}
    rollout_loss(twin, moved).backward()
    h = 1e-6
    plus = rollout_loss(twin, {**start, "v": start["v"] + h * torch.eye(dim)[0].double()})
    minus = rollout_loss(twin, {**start, "v": start["v"] - h * torch.eye(dim)[0].double()})
    fd = float(plus - minus) / (2 * h)
    assert relative_error(float(shift.grad), fd) <= 1e-3, (float(shift.grad), fd)


class LearnableNeoHookean(torch.nn.Module):
    """A torch module used as a material: neo-Hookean with learnable log-moduli."""

    def __init__(self):
        super().__init__()
        self.log_mu = torch.nn.Parameter(torch.tensor(np.log(7.7e3), dtype=torch.float64))
        self.log_lam = torch.nn.Parameter(torch.tensor(np.log(1.15e4), dtype=torch.float64))

    def project(self, F, state):
        return F, state

    def kirchhoff(self, F):
        eye = torch.eye(F.shape[-1], dtype=F.dtype)
        log_J = torch.log(torch.linalg.det(F))[:, None, None]
        return self.log_mu.exp() * (F @ F.transpose(1, 2) - eye) + self.log_lam.exp() * log_J * eye


def assert_module_gradients_match(twin, start, module, entries) -> None:
    """The gradient of :func:`rollout_loss` with respect to each ``(parameter name, index)`` of
    ``module`` matches central finite differences (step 1e-6) to 1e-3 relative."""
    module.zero_grad()
    rollout_loss(twin, start).backward()
    parameters = dict(module.named_parameters())
    for name, index in entries:
        parameter = parameters[name]
        analytic = float(parameter.grad[index])
        value = float(parameter.detach()[index])
        numeric = []
        with torch.no_grad():
            for sign in (1, -1):
                parameter[index] = value + sign * 1e-6
                numeric.append(float(rollout_loss(twin, start)))
            parameter[index] = value
        fd = (numeric[0] - numeric[1]) / 2e-6
        assert abs(fd) > 1e-6, (name, index, "no sensitivity: the check would be empty")
        assert relative_error(analytic, fd) <= 1e-3, (name, index, analytic, fd)


def test_gradients_reach_the_parameters_of_a_torch_module_material(load):
    sim = Simulation(load(scene("neo_hookean", 2)))
    twin = TorchTwin(sim)
    module = LearnableNeoHookean()
    twin.materials["body"].law = module
    assert_module_gradients_match(
        twin, twin.initial_state(sim), module, [("log_mu", ()), ("log_lam", ())]
    )


@pytest.mark.parametrize("dim", [2, 3])
def test_gradients_reach_the_neural_law_through_its_stress_and_return_map(load, dim):
    """The learned law of plugins/neural_law_model.py, with random networks and a yield strain
    the impact exceeds: its moduli, yield, and both networks' weights."""
    torch.manual_seed(dim)
    law = NeuralLaw(2.0e4).double()
    with torch.no_grad():
        law.prior_yield.copy_(torch.log(torch.tensor([0.01, 0.3])))
        for name, parameter in law.named_parameters():
            if not name.startswith("prior_"):
                parameter.normal_(0.0, 0.3)
    sim = Simulation(load(scene("von_mises", dim)))
    twin = TorchTwin(sim, laws={"body": law})
    start = twin.initial_state(sim)
    with torch.no_grad():
        end = start
        for _ in range(STEPS):
            end = twin.step(end, DT)
        trial = end["F"]  # the elastic F, stepped once more, is a trial F the law must return
        trial = (torch.eye(dim, dtype=torch.float64) + DT * end["C"]) @ trial
        returned = law.project(trial, end["state"][:, :1])[0]
    assert (returned - trial).abs().max() > 1e-4  # the return map is active at the end
    entries = [
        ("prior_moduli", (1,)),
        ("prior_yield", (0,)),
        ("elastic.4.bias", (0,)),
        ("elastic.0.weight", (1, 2)),
        ("plastic.4.bias", (0,)),
        ("plastic.0.weight", (3, 0)),  # the mean strain's (the Lode invariant is 0 in 2D)
    ]
    assert_module_gradients_match(twin, start, law, entries)


@pytest.mark.parametrize("model", ["fixed_corotated", "von_mises", "neo_hookean", "sand"])
def test_gradients_are_finite_at_rest(load, model):
    sim = Simulation(
        load(scene(model, 3).replace("velocity = [-1.5, -1.0, 0.5]", "velocity = [0.0, 0.0, 0.0]"))
    )
    twin = TorchTwin(sim)
    start = twin.initial_state(sim)
    F = start["F"].clone().requires_grad_()
    E = twin.params["body"]["youngs_modulus"].clone().requires_grad_()
    twin.params["body"]["youngs_modulus"] = E
    _, tau, _ = twin.constitutive(F, start["C"], start["state"])
    (tau**2).sum().backward()
    loss = rollout_loss(twin, {**start, "F": F}, steps=2)
    loss.backward()
    assert torch.isfinite(F.grad).all() and torch.isfinite(E.grad)


def test_a_material_without_a_twin_can_be_replaced_by_a_torch_law(load):
    from engine.diff.neural_law import NeuralLaw
    from engine.diff.twin import TwinError

    snow = scene("neo_hookean", 2).replace('model = "neo_hookean"', 'model = "snow"')
    sim = Simulation(load(snow))
    with pytest.raises(TwinError, match="no torch twin of material model 'snow'"):
        TorchTwin(sim)
    twin = TorchTwin(sim, laws={"body": NeuralLaw(2.0e4).double()})
    state = twin.step(twin.initial_state(sim), 1e-4)
    assert torch.isfinite(state["x"]).all()


PLUGIN_CONTACT = """
import taichi as ti

from engine.hooks import hookimpl
from engine.hooks.records import ContactModel


@ti.func
def stop(v, n, v_collider, condition, friction):
    return v_collider


@hookimpl
def engine_register_contact_models():
    return [ContactModel(name="stop", respond=stop)]
"""


def test_a_contact_model_the_twin_lacks_is_refused(scene_file, tmp_path):
    """The twin used Coulomb whatever ``simulation.contact`` named; now it says it cannot."""
    from engine.diff.twin import TwinError
    from engine.scene.loader import load_scene

    plugin = tmp_path / "stop_contact.py"
    plugin.write_text(PLUGIN_CONTACT)
    text = scene("neo_hookean", 2).replace("[simulation]", '[simulation]\ncontact = "stop"')
    sim = Simulation(load_scene(scene_file(text), (), (str(plugin),)))
    with pytest.raises(TwinError, match="simulation.contact = 'stop'"):
        TorchTwin(sim)


# -- body contact and torch contact models -----------------------------------------------------

BLOCKS = """
[simulation]
dim = 2
domain = [0.6, 0.6]
resolution = 24
end_time = 1.0
frame_dt = 0.01
precision = "f64"
boundary = "separate"
boundary_friction = 0.3
body_contact = true
body_friction = 0.3
{contact}

[materials.jelly]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 5.0e4
poisson_ratio = 0.3

[[bodies]]
material = "jelly"
shape = "box"
min = [0.02, 0.01]
max = [0.40, 0.09]
velocity = [0.5, 0.0]
jitter = 0.0
particles_per_cell = 4

[[bodies]]
material = "jelly"
shape = "box"
min = [0.01, 0.085]
max = [0.20, 0.15]
velocity = [-1.5, -0.5]
jitter = 0.0
particles_per_cell = 4
{table}
"""
"""A block pressed onto a longer one and sliding left over it (body friction 0.3) against the
left wall, the lower block on the floor sliding right: the two meet along a whole face (the
upper one starts 0.2 cell into the lower, so that their volume fills the shared nodes and
contact acts from the first step)."""

CONTACT_STEPS = 20

PLUGIN_TORCH_CONTACT = """
import torch
from pydantic import BaseModel, ConfigDict

from engine.hooks import hookimpl
from engine.hooks.records import ContactModel


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = 0.3
    push: float = 0.0  # m/s into the other bodies and the nearest collider


class TangentialDamper(torch.nn.Module):
    \"\"\"Removes a learnable fraction ``rate`` of each body's sliding velocity relative to the
    centre of mass at nodes where bodies meet; ``push`` drives the bodies into each other and
    into the colliders, which the hard constraints must undo.\"\"\"

    def __init__(self, params, simulation):
        super().__init__()
        self.rate = torch.nn.Parameter(torch.tensor(params.rate, dtype=torch.float64))
        self.push = params.push
        self.views = []  # (view, particles near the interface), when recording

    def forward(self, view):
        if self.views is not None:
            self.views.append((view, view.near_interface.clone()))
        mass = view.node_mass  # (M, B)
        total = mass.sum(1)[:, None, None]
        centre = (mass[..., None] * view.node_velocity).sum(1, keepdim=True) / total
        relative = view.node_velocity - centre
        normal = view.body_normal
        tangential = relative - (relative * normal).sum(-1, keepdim=True) * normal
        meet = ((mass > 0).sum(1, keepdim=True) >= 2) & (mass > 0)
        damping = torch.where(meet[..., None], -self.rate * tangential, 0.0)
        into = -normal - view.collider_normal[:, None, :]
        return damping + torch.where((mass > 0)[..., None], self.push * into, 0.0)


class Zero:
    def __init__(self, params, simulation):
        pass

    def __call__(self, view):
        return torch.zeros_like(view.node_velocity)


@hookimpl
def engine_register_contact_models():
    return [
        ContactModel(name="damper", create=TangentialDamper, Params=Params),
        ContactModel(name="zero", create=Zero),
    ]
"""


@pytest.fixture
def blocks(scene_file, tmp_path):
    """The two-block scene as a Simulation, with ``simulation.contact = contact`` (None: the
    built-in) from the plugin above and an optional ``[contact]`` table."""
    from engine.scene.loader import load_scene

    plugin = tmp_path / "torch_contact.py"
    plugin.write_text(PLUGIN_TORCH_CONTACT)

    def make(contact: str | None = None, table: str = "") -> Simulation:
        choice = f'contact = "{contact}"' if contact else ""
        text = BLOCKS.format(contact=choice, table=table)
        return Simulation(load_scene(scene_file(text), (), (str(plugin),)))

    return make


def worst_error(sim, state) -> float:
    """The largest relative difference between the twin's state and the simulation's."""
    errors = []
    for name in ("x", "v", "F"):
        expected = sim.numpy(name)
        scale = max(np.abs(expected).max(), 1e-9)
        errors.append(np.abs(state[name].detach().numpy() - expected).max() / scale)
    return max(errors)


def test_twin_agrees_with_the_taichi_step_with_body_contact(blocks):
    sim = blocks()
    twin = TorchTwin(sim)
    assert twin.bodies == 2 and twin.contact_model is None
    state = twin.initial_state(sim)
    met = []
    for _ in range(CONTACT_STEPS):
        sim.step(DT)
        state = twin.step(state, DT)
        assert worst_error(sim, state) <= 1e-5
        mass = sim.store.to_numpy(sim.body_mass).reshape(2, -1)
        met.append(((mass > 0).sum(axis=0) == 2).sum())
    assert min(met) > 10  # the blocks met along a face at every step
    body, x, v = sim.numpy("body_id"), sim.numpy("x"), sim.numpy("v")
    assert x[body == 1, 0].min() < 0.025  # the slider is at the left wall ...
    assert -1.3 < v[body == 1, 0].mean() < -0.9  # ... which, with friction, slowed it from 1.5
    # body friction acts: without it the slider keeps more of its speed
    frictionless = TorchTwin(sim)
    frictionless.body_friction = 0.0
    free = frictionless.initial_state(blocks())
    for _ in range(CONTACT_STEPS):
        free = frictionless.step(free, DT)
    assert free["v"][body == 1, 0].mean() < v[body == 1, 0].mean() - 0.02


VIEW_FIELDS = (
    "node_index",
    "node_position",
    "node_mass",
    "node_velocity_before",
    "node_velocity",
    "body_normal",
    "collider_distance",
    "collider_normal",
    "collider_velocity",
    "collider_friction",
)


@pytest.mark.parametrize("push", [0.0, 0.5])
def test_twin_runs_a_torch_contact_model_as_the_simulation_does(blocks, push):
    """The same model object in the Taichi run and in the twin: the same views (interface
    nodes, fields, particles near them), the same steps, and gradients with respect to the
    model's parameter that match central finite differences; with a push into the other body
    and the walls, also where the hard constraints undo it."""
    sim = blocks("damper", f"[contact]\nrate = 0.4\npush = {push}")
    model = sim.contact_stage.model
    twin = TorchTwin(sim)
    assert twin.contact_model is model and float(model.rate.detach()) == 0.4
    state = {**twin.initial_state(sim), "time": 0.0}
    for _ in range(CONTACT_STEPS):
        sim.step(DT)
        state = twin.step(state, DT)
        (taichi_view, taichi_near), (twin_view, twin_near) = model.views
        model.views.clear()
        for name in VIEW_FIELDS:
            expected = getattr(taichi_view, name)
            got = getattr(twin_view, name).detach()
            assert got.shape == expected.shape, name
            assert torch.allclose(got, expected.to(got.dtype), rtol=1e-5, atol=1e-9), name
        assert torch.equal(twin_near, taichi_near)
        assert twin_view.time == pytest.approx(taichi_view.time, rel=1e-12)
        assert worst_error(sim, state) <= 1e-5
    shared = (taichi_view.node_mass > 0).all(1)
    holding = taichi_view.collider_distance <= 0
    assert shared.sum() > 10 and holding.any()  # bodies meet, and the floor and wall hold nodes
    # the model changes the run: the built-in contact alone ends elsewhere
    built_in = blocks()
    for _ in range(CONTACT_STEPS):
        built_in.step(DT)
    assert np.abs(built_in.numpy("v") - sim.numpy("v")).max() > 1e-3
    # the gradient of a loss with respect to the model's parameter
    model.views = None  # stop recording
    start = twin.initial_state(blocks("damper", f"[contact]\npush = {push}"))
    assert_module_gradients_match_in_steps(twin, start, model, CONTACT_STEPS)


def assert_module_gradients_match_in_steps(twin, start, module, steps) -> None:
    """:func:`assert_module_gradients_match` for every parameter of ``module`` (scalars),
    rolled ``steps`` steps."""
    module.zero_grad()
    rollout_loss(twin, start, steps).backward()
    for name, parameter in module.named_parameters():
        analytic, value = float(parameter.grad), float(parameter.detach())
        numeric = []
        with torch.no_grad():
            for sign in (1, -1):
                parameter.fill_(value + sign * 1e-6)
                numeric.append(float(rollout_loss(twin, start, steps)))
            parameter.fill_(value)
        fd = (numeric[0] - numeric[1]) / 2e-6
        assert abs(fd) > 1e-6, (name, "no sensitivity: the check would be empty")
        assert relative_error(analytic, fd) <= 1e-3, (name, analytic, fd)


def test_a_torch_contact_model_returning_zeros_gives_the_built_in_step(blocks):
    sim = blocks("zero")
    twin, built_in = TorchTwin(sim), TorchTwin(blocks())
    assert twin.contact_model is sim.contact_stage.model and built_in.contact_model is None
    state = reference = twin.initial_state(sim)
    for _ in range(CONTACT_STEPS):
        sim.step(DT)
        state, reference = twin.step(state, DT), built_in.step(reference, DT)
        for name in ("x", "v", "C", "F"):
            assert torch.equal(state[name], reference[name]), name
    assert worst_error(sim, state) <= 1e-5


PLUGIN_STAGE = """
from engine.hooks import hookimpl
from engine.hooks.records import StageHook


@hookimpl
def engine_register_stages(simulation):
    return [StageHook("nudge", "after_grid_update", lambda sim, dt: None)]
"""

OUTLINE = """
[[colliders]]
type = "outline"
points = [[0.4, 0.3], [0.5, 0.3], [0.45, 0.4]]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("body_contact = true", 'body_contact = false\ntransfer = "flip"'), "transfer = 'flip'"),
        (("[simulation]", "[simulation]\ngravity_ramp = 0.05"), "simulation.gravity_ramp = 0"),
        (("[[bodies]]", OUTLINE + "\n[[bodies]]"), 'type = "outline"'),
        (None, r"plugin stages \(engine_register_stages: \['nudge'\]\)"),
    ],
)
def test_what_the_twin_lacks_is_refused_naming_the_key(scene_file, tmp_path, change, message):
    from engine.diff.twin import TwinError
    from engine.scene.loader import load_scene

    text = BLOCKS.format(contact="", table="")
    plugins: tuple[str, ...] = ()
    if change is None:
        (tmp_path / "stage.py").write_text(PLUGIN_STAGE)
        plugins = (str(tmp_path / "stage.py"),)
    else:
        text = text.replace(*change, 1)
    sim = Simulation(load_scene(scene_file(text), (), plugins))
    with pytest.raises(TwinError, match=message):
        TorchTwin(sim)
