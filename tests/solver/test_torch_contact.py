"""Torch contact models (`ContactModel.create`): the contact view they read, the corrections they
return, the hard constraints the engine re-applies, the `[contact]` table and bad output.

Reference for the two-disk impact: with zero corrections the stage must change nothing, so the
run is bitwise the built-in multi-field contact (Bardenhagen et al. 2000), whose momentum
conservation is exact up to round-off (1e-5 relative here, f32)."""

import h5py
import numpy as np
import pytest
from two_disks import two_disks

import engine.io
from engine.hooks.calls import PluginError
from engine.output.contact_data import contact_data_path
from engine.runner import run_scene
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene
from engine.solver.checkpoint import capture, restore
from engine.solver.kernels import CONTACT_FILL, CONTACT_MASS_FRACTION, PAD
from engine.solver.simulation import Simulation

PLUGIN = """
import torch
from pydantic import BaseModel, ConfigDict

from engine.hooks import hookimpl
from engine.hooks.records import ContactModel

VIEWS = []  # the last view each model saw, for the tests


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    push: float = 0.0  # m/s along -normal (into the other bodies and into colliders)
    nan_after: float = 1e9  # s
    kick_at: float = 1e9  # s: the first step after it with body mass at interface nodes ...
    kick: float = 1e6  # m/s: ... gets this correction along +y, once


class Model:
    def __init__(self, params, simulation):
        self.params, self.kicked = params, False

    def __call__(self, view):
        VIEWS[:] = [view]
        if view.time > self.params.nan_after:
            return torch.full_like(view.node_velocity, float("nan"))
        if view.time > self.params.kick_at and not self.kicked and view.node_mass.any():
            self.kicked = True
            kick = torch.zeros_like(view.node_velocity)
            kick[..., 1] = self.params.kick
            return torch.where((view.node_mass > 0)[..., None], kick, 0.0)
        into_bodies = -view.body_normal
        into_colliders = -view.collider_normal[:, None, :].expand_as(into_bodies)
        direction = torch.where(view.body_normal.abs().sum(-1, keepdim=True) > 0,
                                into_bodies, into_colliders)
        has_mass = (view.node_mass > 0)[..., None]
        return torch.where(has_mass, self.params.push * direction, torch.zeros_like(direction))


class WrongShape(Model):
    def __call__(self, view):
        return torch.zeros(len(view.node_index), 3)


@hookimpl
def engine_register_contact_models():
    return [
        ContactModel(name="probe", create=Model, Params=Params),
        ContactModel(name="wrong_shape", create=WrongShape),
    ]
"""

DISKS = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 48
end_time = 0.12
frame_dt = 0.04
dt = 4e-4
gravity = [0.0, 0.0]
boundary = "slip"
body_contact = true
body_friction = 0.3
{contact}

[plugins]
load = ["probe_contact.py"]

{disks}
{table}
"""


@pytest.fixture
def disks(tmp_path):
    """Load the two-disk scene with ``contact = ...`` and an optional ``[contact]`` table."""
    (tmp_path / "probe_contact.py").write_text(PLUGIN)

    def make(
        contact: str | None = None,
        table: str = "",
        overrides: tuple[str, ...] = (),
        on_floor: bool = False,
    ):
        """Disks in mid-air (a free impact), or the first one resting on the floor."""
        heights = {"low": 0.1, "high": 0.16} if on_floor else {"low": 0.22, "high": 0.28}
        choice = f'contact = "{contact}"' if contact else ""
        disks = two_disks((0.35, heights["low"]), (0.6, heights["high"]))
        text = DISKS.format(contact=choice, table=table, disks=disks)
        path = tmp_path / "disks.toml"
        path.write_text(text)
        return load_scene(path, overrides)

    return make


def views(loaded):
    """The plugin module's record of the views its models saw."""
    import sys

    module = next(m for name, m in sys.modules.items() if name.endswith("probe_contact"))
    return module.VIEWS


@pytest.mark.parametrize("rows", [256, 4])
def test_zero_corrections_give_bitwise_the_built_in_impact_and_conserve_momentum(
    disks, monkeypatch, rows
):
    """Also when the interface outgrows the stage's rows (4 at first) and the step's scatter
    and grid update run again with more."""
    monkeypatch.setattr("engine.solver.contact_stage.INITIAL_CAPACITY", rows)
    built_in = Simulation(disks())
    zero = Simulation(disks("probe"))
    assert zero.store.backend == "torch" and built_in.store.backend == "taichi"
    momentum = (zero.numpy("mass")[:, None] * zero.numpy("v")).sum(axis=0)
    for sim in (built_in, zero):
        sim.advance_to(0.12)
    assert np.array_equal(zero.numpy("x"), built_in.numpy("x"))
    assert np.array_equal(zero.numpy("v"), built_in.numpy("v"))
    after = (zero.numpy("mass")[:, None] * zero.numpy("v")).sum(axis=0)
    scale = np.abs(zero.numpy("mass")[:, None] * zero.numpy("v")).sum()
    assert np.abs(after - momentum).max() < 1e-5 * scale
    # the disks met: the impact reversed their approach
    v, body = zero.numpy("v"), zero.numpy("body_id")
    assert v[body == 0, 0].mean() < 0.5 and v[body == 1, 0].mean() > -0.5
    assert rows == 256 or len(zero.contact_stage.cells) > rows  # the rows grew


def test_the_view_holds_the_interface_nodes_sorted_with_their_geometry(disks):
    sim = Simulation(disks("probe", on_floor=True))
    sim.advance_to(0.06)  # the disks are in contact, the first one on the floor
    (view,) = views(sim.loaded)
    torch = sim.store.torch
    index = view.node_index
    assert torch.all(index[1:] > index[:-1])  # sorted, no repeats
    shape = sim.grid.shape
    cells = np.stack(np.unravel_index(index.numpy(), shape), axis=1)
    assert np.allclose(view.node_position.numpy(), (cells - PAD) * sim.grid.dx)
    mass = sim.grid_at(sim.body_mass, per_body=True).reshape(2, -1)[:, index.numpy()].T  # (M, B)
    # the rows hold those nodes: the view's gathers are the grid's own values
    row_mass = sim.store.to_numpy(sim.body_mass)[:, view.node_row.numpy()].T
    assert np.array_equal(row_mass, mass)
    assert np.array_equal(view.node_mass.numpy(), mass)
    shared = (mass > 0).sum(axis=1) == 2
    near_wall = view.collider_distance.numpy() <= sim.grid.dx
    assert shared.any() and near_wall.any() and np.all(shared | near_wall)
    # every shared node is listed: none is missing from the view
    all_mass = sim.store.to_numpy(sim.body_mass)
    assert shared.sum() == ((all_mass > 0).sum(axis=0) == 2).sum()
    # per-body normals at shared nodes are unit and opposite (two bodies)
    normal = view.body_normal.numpy()[shared]
    assert np.allclose(np.linalg.norm(normal, axis=2), 1.0, atol=1e-5)
    assert np.allclose(normal[:, 0], -normal[:, 1], atol=1e-5)
    # the disks meet along x: disk 1 lies on +x of disk 0, so its normal points +x
    assert normal[:, 1, 0].mean() > 0.7
    # near-wall rows: distance to the floor or ceiling rows by index, inward normal
    floor = near_wall & (cells[:, 1] <= PAD + 1)
    assert np.allclose(view.collider_normal.numpy()[floor], [0.0, 1.0])
    assert np.allclose(view.collider_distance.numpy()[floor], (cells[floor, 1] - PAD) * sim.grid.dx)
    # zero-copy: the view's grid and particle tensors are the simulation's own memory
    assert view.body_velocity.data_ptr() == sim.body_velocity.data_ptr()
    assert view.x.data_ptr() == sim.x.data_ptr()
    # particles near the interface: their stencils touch a listed node, the others' do not
    near = set(view.near_interface.numpy().tolist())
    base = np.floor(sim.numpy("x") / sim.grid.dx + PAD - 0.5).astype(int)
    listed = set(map(tuple, cells))
    offsets = [(i, j) for i in range(3) for j in range(3)]
    touching = {
        p for p in range(sim.n_particles) if any((*(base[p] + o),) in listed for o in offsets)
    }
    assert near == touching and 0 < len(near) < sim.n_particles


def test_corrections_that_push_bodies_together_are_undone_by_the_hard_constraints(disks):
    """A model that drives every body into the others and into the walls: after the stage no
    body approaches another (against the corrected centre-of-mass velocity) where they touch,
    away from the walls, and no node velocity enters a wall. Bodies touch where their volume
    fills the node and each holds a few per cent of its mass (the built-in contact's test)."""
    sim = Simulation(disks("probe", table="[contact]\npush = 5.0", on_floor=True))
    sim.advance_to(0.06)
    (view,) = views(sim.loaded)
    velocity = sim.store.to_numpy(sim.body_velocity)[:, view.node_row]
    mass = view.node_mass.numpy().T  # (B, M)
    shared = (mass > 0).all(axis=0)
    fill = sim.store.to_numpy(sim.node_volume)[view.node_row] / sim.grid.dx**2
    touching = (
        shared & (fill >= CONTACT_FILL) & (mass.min(0) >= CONTACT_MASS_FRACTION * mass.sum(0))
    )
    centre = (mass[..., None] * velocity).sum(0) / mass.sum(0)[:, None]
    normal = view.body_normal.numpy().transpose(1, 0, 2)  # (B, M, d)
    holding = view.collider_distance.numpy() <= 0
    # at nodes a wall holds, the wall's constraint comes last and wins
    approach = ((velocity - centre) * normal).sum(-1)[:, touching & ~holding]
    assert approach.size and approach.min() > -1e-4  # m/s; the push is 5 m/s
    into_wall = (velocity * view.collider_normal.numpy()).sum(-1)[:, holding & (mass > 0).any(0)]
    assert into_wall.min() > -1e-4
    # the push still changed the motion where the constraints allow (tangential parts)
    assert np.isfinite(sim.numpy("x")).all()


def test_the_contact_table_is_checked_against_the_chosen_model(disks):
    with pytest.raises(SceneError) as error:
        disks("probe", table="[contact]\npsuh = 1.0")
    text = str(error.value)
    assert "contact.psuh" in text and "did you mean `push`" in text and "'probe'" in text
    with pytest.raises(SceneError) as error:
        disks(None, table="[contact]\npush = 1.0")
    text = str(error.value)
    assert "contact model 'coulomb' takes no [contact] keys" in text and "probe" in text
    with pytest.raises(SceneError, match="a number"):
        disks("probe", table='[contact]\npush = "fast"')


def test_a_torch_contact_model_needs_body_contact(disks, tmp_path):
    path = tmp_path / "one.toml"
    path.write_text(
        DISKS.format(
            contact='contact = "probe"', table="", disks=two_disks((0.35, 0.22), (0.6, 0.28))
        ).replace("body_contact = true", "body_contact = false")
    )
    with pytest.raises(SceneError, match="set simulation.body_contact = true"):
        load_scene(path)


def test_wrong_shape_stops_the_run_naming_plugin_and_hook(disks):
    sim = Simulation(disks("wrong_shape"))
    with pytest.raises(PluginError) as error:
        sim.advance_to(0.01)
    text = str(error.value)
    assert "probe_contact" in text and "engine_register_contact_models" in text
    assert "'wrong_shape'" in text and "expected a tensor of shape" in text


def test_nan_corrections_stop_the_run_and_keep_the_frames_written(disks, tmp_path):
    output = tmp_path / "nan.vtkhdf"
    loaded = disks("probe", "[contact]\nnan_after = 0.05", (f'output.path="{output}"',))
    with pytest.raises(PluginError, match="NaN or inf corrections"):
        run_scene(loaded, quiet=True)
    result = engine.io.open(output)
    assert result.n_frames == 2  # t = 0 and 0.04 s, written before the model failed
    assert np.isfinite(result.points(-1)).all()


def test_a_step_the_corrections_make_diverge_is_done_again_with_the_built_in_response(
    disks, tmp_path
):
    """A model that corrects one step by 1e6 m/s (and no other): that step fails (escape, CFL)
    and is done again without the correction, before any rollback (none is allowed here), so
    the run is bitwise the built-in one; one warning, the count in the summary, one contact
    record per step, the redone step's without correction."""
    output = tmp_path / "kick.vtkhdf"
    overrides = (
        f'output.path="{output}"',
        "simulation.max_retries=0",
        'output.contact_data="step"',
    )
    loaded = disks("probe", "[contact]\nkick_at = 0.0302", overrides)
    with pytest.warns(RuntimeWarning) as caught:
        summary = run_scene(loaded, quiet=True)
    (warning,) = [w for w in caught if "diverge" in str(w.message)]
    assert "contact model 'probe' made step 76 diverge" in str(warning.message)
    assert "used the built-in response for that step" in str(warning.message)
    assert summary.contact_fallbacks == 1 and "made 1 step diverge" in str(summary)
    built_in = Simulation(disks())
    built_in.advance_to(0.12)
    assert np.array_equal(engine.io.open(output).points(-1), built_in.numpy("x"))
    with h5py.File(contact_data_path(output), "r") as file:
        steps = [file["steps"][name] for name in sorted(file["steps"])]
        assert [int(s.attrs["step"]) for s in steps] == list(range(1, summary.steps + 1))
        assert not any(s["correction"][()].any() for s in steps)


def test_a_rollback_capture_keeps_its_state_with_torch_storage(disks):
    """The frame rollback's capture copies the arrays (a CPU tensor's ``numpy()`` shares its
    memory, so a capture would otherwise follow the failed steps)."""
    sim = Simulation(disks("probe"))
    start, x = capture(sim, 0), sim.numpy("x")
    sim.advance_to(0.004)
    assert not np.array_equal(sim.numpy("x"), x)
    restore(sim, start)
    assert np.array_equal(sim.numpy("x"), x) and sim.time == 0.0
