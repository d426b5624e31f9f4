"""The torch contact stage: the grid update lists the interface nodes on its way (one kernel,
``grid_update_at_interface``), then a torch contact model reads the contact view and returns
per-body velocity corrections there; the engine adds them and re-applies the hard constraints.

Costs per step beyond the plain grid update: a few torch gathers over the interface nodes, a
kernel for the particles near them when the model reads ``near_interface``, one for the
corrections when some are non-zero, and host reads of the node count, of whether the corrections
are finite and non-zero (and of the particle count when read), and when they are non-zero a
copy of the particle arrays the rest of the step changes (to do the step again without them
if they make it diverge). The view's grid and particle
tensors are the simulation's own memory; only interface rows are gathered. When the interface
outgrows its rows, the step's scatter and grid update run again with twice as many (a few times
in a run, as the contact grows).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import taichi as ti

from engine.hooks.calls import PluginError, describe
from engine.hooks.records import ContactView
from engine.solver.contact_kernels import build_contact_kernels
from engine.solver.kernels import CONTACT_FILL, CONTACT_MASS_FRACTION, PAD

HOOK = "engine_register_contact_models"


@contextmanager
def one_torch_thread_beside_taichi(torch, device: str):
    """On the CPU, torch's small per-step ops in one thread: its OpenMP workers spinning beside
    Taichi's thread pool made the stage 15x slower on 2 cores (measured: 33 ms against 2 ms per
    step with 1 000 interface nodes)."""
    if device != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def bodies_touch(mass, fill, axis: int):
    """Where each body touches the others at a node (the rule of
    :func:`engine.solver.kernels.body_contact_normal`, in torch): the bodies' volume fills the
    node's cell (``fill``, volume over cell volume, one per node) and the body holds at least
    ``CONTACT_MASS_FRACTION`` of the node's mass, as do the others. ``mass`` holds the bodies
    along ``axis`` (``(M, B)`` with ``axis=1``, ``(B, G)`` with ``axis=0``); same shape out."""
    import torch

    total = mass.sum(dim=axis, keepdim=True)
    share = torch.minimum(mass, total - mass) >= CONTACT_MASS_FRACTION * total
    return share & (fill.unsqueeze(axis) >= CONTACT_FILL)


def interface_fields(
    body_velocity, body_mass, body_mass_gradient, node_volume, rows, dx: float
) -> tuple:
    """The per-body grid fields (``(B, R, d)``, ``(B, R)``, ``(B, R, d)``, and the bodies'
    volume per node ``(R,)``, on ``R`` rows; any shape after ``B`` that flattens to them)
    gathered at the interface nodes' rows ``rows`` ``(M,)``:
    each body's ``node_mass`` ``(M, B)``, ``node_velocity`` ``(M, B, d)``, ``body_normal``
    ``(M, B, d)``, the unit normal from the other bodies into each (the grid update's: the total
    mass gradient minus twice the body's; zero where the body has no mass or the normal
    vanishes), and ``body_in_contact`` ``(M, B)``, where the grid update let the bodies act on
    each other (:func:`engine.solver.kernels.body_contact_normal`: their volume fills the cell
    of ``dx`` m, each holds a share of the mass). Shared by the contact stage and the torch twin
    (``engine.diff.twin``), so both show a model the same view; differentiable."""
    import torch

    bodies, dim = body_mass.shape[0], body_velocity.shape[-1]
    gradient = body_mass_gradient.reshape(bodies, -1, dim)[:, rows]
    gradient = gradient.transpose(0, 1)  # (M, B, d)
    normal = gradient.sum(dim=1, keepdim=True) - 2.0 * gradient
    length = normal.norm(dim=2, keepdim=True)
    mass = body_mass.reshape(bodies, -1)[:, rows].transpose(0, 1)
    usable = (length > 1e-12) & (mass[..., None] > 0)
    normal = torch.where(usable, normal / length.clamp_min(1e-30), torch.zeros_like(normal))
    velocity = body_velocity.reshape(bodies, -1, dim)[:, rows].transpose(0, 1)
    fill = node_volume.reshape(-1)[rows] / dx**dim
    in_contact = bodies_touch(mass, fill, axis=1) & usable[..., 0]
    return mass, velocity, normal, in_contact


#: Rows allocated at first for interface nodes and near particles (they grow as needed).
INITIAL_CAPACITY = 256

#: The particle arrays the rest of a step may change after the contact stage (the particle
#: update, mesh movers and plugin stages), saved when a model corrects, to redo the step.
STEP_ARRAYS = ("x", "v", "C", "F", "state")
#: The simulation's scalars the end of a step changes.
STEP_SCALARS = ("time", "step_count", "dt", "max_speed")


class ContactStage:
    """The contact stage of one simulation (whose storage is torch and which has per-body
    fields): :meth:`grid_update` in place of the plain one, then :meth:`run` (the torch contact
    model, if the scene's has ``create``), then :meth:`finish_step` after the particles moved.
    ``recording`` (``output.contact_data``): ``"step"`` keeps a :meth:`record` of every step in
    :attr:`pending` (the runner writes them with each frame), ``"frame"`` leaves it to the runner
    to take one at each frame, ``"none"`` records nothing.

    A step in which the model's corrections were non-zero and which then failed (NaN, escape,
    CFL violation) is undone by :meth:`undo` and done again without them (the built-in
    response); :attr:`fallbacks` counts those steps, and the first one warns."""

    def __init__(
        self, simulation, record, plugin: str, params: Any, recording: str = "none"
    ) -> None:
        self.name, self.plugin, self.recording = record.name, plugin, recording
        self.where = f"{HOOK}: contact model {record.name!r}"
        self.pending: list[dict] = []
        self.correction = None  # the model's last output
        self.saved: tuple | None = None  # the state before the corrected step's particle update
        self.fallbacks = 0  # steps redone without the model's corrections
        self.last_step = (0.0, 0.0, 0)  # dt (s), time at its end (s), step number
        store = simulation.store
        self.torch, self.dtype, self.device = store.torch, store.float_torch, store.device
        self.kernels = build_contact_kernels(simulation.kernel_config)
        self.dim = simulation.dim
        self.grid_shape = simulation.grid.shape
        self.bodies = simulation.contact_bodies
        self.count = self.torch.zeros(1, dtype=self.torch.int32, device=self.device)
        self._allocate_nodes(INITIAL_CAPACITY)
        self._particle_rows = self.torch.zeros(
            INITIAL_CAPACITY, dtype=self.torch.int32, device=self.device
        )
        self.flags = self.torch.zeros(0, dtype=self.torch.int32, device=self.device)
        self.model = None
        try:
            if record.create is not None:
                self.model = record.create(params, simulation)
        except PluginError:
            raise
        except Exception as error:
            raise PluginError(plugin, f"{self.where}, create", describe(error)) from error

    def _allocate_nodes(self, capacity: int) -> None:
        torch, d, device = self.torch, self.dim, self.device
        self.cells = torch.zeros((capacity, d + 2), dtype=torch.int32, device=device)
        self.geometry = torch.zeros((capacity, 2 * d + 2), dtype=self.dtype, device=device)
        self.before = torch.zeros((capacity, self.bodies, d), dtype=self.dtype, device=device)

    def grid_update(self, simulation, dt: float, gravity, colliders: tuple) -> bool:
        """The grid update, listing the interface nodes; False when they outgrew the rows (now
        doubled): the caller scatters again and calls this again."""
        self.count.zero_()
        if len(self.flags) != simulation.sparse.rows:  # one flag per row of the sparse grid
            self.flags = self.torch.zeros(
                simulation.sparse.rows, dtype=self.torch.int32, device=self.device
            )
        self.kernels.grid_update_at_interface(
            simulation.grid_nodes,
            simulation.grid_v_old,
            *simulation.body_fields,
            gravity,
            dt,
            simulation.grid.dx,
            simulation.scene.simulation.body_friction,
            *colliders,
            *simulation.sparse.listing,
            self.count,
            self.cells,
            self.geometry,
            self.before,
            self.flags,
        )
        self.found = int(self.count[0])
        if self.found <= len(self.cells):
            return True
        self._allocate_nodes(2 * self.found)
        return False

    def _interface(self) -> tuple:
        """The last grid update's interface rows, sorted by node index: ``cells``
        ``(M, 2 + d)`` (flat index on the grid, row of the sparse grid, node index), collider
        ``geometry`` ``(M, 2 d + 2)`` and the bodies' velocities before contact
        ``(M, B, d)``."""
        found = self.found
        order = self.torch.argsort(self.cells[:found, 0])
        return self.cells[:found][order], self.geometry[:found][order], self.before[:found][order]

    def near(self, simulation) -> Any:
        """Indices ``(P,)`` int64 of the particles whose stencil touches an interface node (as
        flagged by the last :meth:`_interface`)."""
        torch = self.torch
        while True:
            self.count.zero_()
            self.kernels.near_particles(
                simulation.x, self.flags, *simulation.sparse.lookup, simulation.grid.dx,
                self.count, self._particle_rows,
            )  # fmt: skip
            found = int(self.count[0])
            if found <= len(self._particle_rows):
                break
            self._particle_rows = torch.zeros(2 * found, dtype=torch.int32, device=self.device)
        return torch.sort(self._particle_rows[:found].long()).values

    def view(self, simulation, dt: float, time: float) -> ContactView:
        """The contact view of the last :meth:`grid_update` (a step of ``dt`` ending at
        ``time``, s)."""
        dim = self.dim
        cells, geometry, before = self._interface()
        node_index, node_row = cells[:, 0].long(), cells[:, 1].long()
        mass, velocity, normal, in_contact = interface_fields(
            *simulation.body_fields, node_row, simulation.grid.dx
        )
        near: list = []

        def particles_near():
            if not near:
                near.append(self.near(simulation))
            return near[0]

        return ContactView(
            body_velocity=simulation.body_velocity,
            body_mass=simulation.body_mass,
            body_mass_gradient=simulation.body_mass_gradient,
            velocity=simulation.grid_nodes[..., :dim],
            node_index=node_index,
            node_row=node_row,
            node_position=(cells[:, 2:] - PAD).to(self.dtype) * simulation.grid.dx,
            node_mass=mass,
            node_velocity_before=before,
            node_velocity=velocity,
            body_normal=normal,
            body_in_contact=in_contact,
            collider_distance=geometry[:, 0],
            collider_normal=geometry[:, 2 : 2 + dim],
            collider_velocity=geometry[:, 2 + dim :],
            collider_friction=geometry[:, 1],
            body_friction=simulation.scene.simulation.body_friction,
            x=simulation.x,
            v=simulation.v,
            body_id=simulation.body_id,
            material_id=simulation.material_id,
            material_constants=simulation.material_constants,
            dt=dt,
            dx=simulation.grid.dx,
            time=time,
            particles_near=particles_near,
        )

    def run(self, simulation, dt: float, colliders: tuple, correct: bool = True) -> None:
        """Call the model (if any, and if ``correct``) on this step's view and apply its
        corrections, after saving what :meth:`undo` needs to redo the step without them."""
        torch = self.torch
        self.last_step = (dt, simulation.time + dt, simulation.step_count + 1)
        self.correction, self.saved = None, None
        if self.model is None or not correct:
            return
        with torch.no_grad(), one_torch_thread_beside_taichi(torch, self.device):
            view = self.view(simulation, dt, simulation.time + dt)
            try:
                correction = self.model(view)
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(self.plugin, self.where, describe(error)) from error
            self._check(correction, (len(view.node_index), self.bodies, self.dim), view.time)
            self.correction = correction
            if not bool(correction.any()):  # nothing to add: the built-in result stands
                return
            self.saved = self._save(simulation)
        self.kernels.apply_corrections(
            correction.to(self.dtype).contiguous(),
            view.node_index.to(torch.int32),
            view.node_row.to(torch.int32),
            ti.Vector(self.grid_shape),
            simulation.grid_nodes,
            *simulation.body_fields,
            simulation.grid.dx,
            *colliders,
        )

    def _save(self, simulation) -> tuple:
        """Copies of what the rest of the step changes: :data:`STEP_ARRAYS`, the plugin fields,
        the mesh movers' vertices and :data:`STEP_SCALARS` (the particles have not moved yet)."""
        arrays = {name: getattr(simulation, name).clone() for name in STEP_ARRAYS}
        fields = {name: value.clone() for name, value in simulation.fields.items()}
        movers = [mover.vertices().copy() for mover in simulation.movers]
        scalars = {name: getattr(simulation, name) for name in STEP_SCALARS}
        return arrays, fields, movers, scalars

    def undo(self, simulation, error) -> bool:
        """After the step failed with ``error`` (a ``SimulationError``): if the model corrected
        it, put back the state saved before its particle update, drop its record and count it
        (warning at the first); False (nothing undone) when the model corrected nothing."""
        if self.saved is None:
            return False
        arrays, fields, movers, scalars = self.saved
        for name, value in arrays.items():
            getattr(simulation, name).copy_(value)
        for name, value in fields.items():
            simulation.fields[name].copy_(value)
        for mover, vertices in zip(simulation.movers, movers, strict=True):
            mover.set_vertices(vertices)
        for name, value in scalars.items():
            setattr(simulation, name, value)
        simulation.particles_changed()
        if self.recording == "step":
            self.pending.pop()  # finish_step kept the failed step's record
        self.saved = None
        self.fallbacks += 1
        if self.fallbacks == 1:
            warnings.warn(
                f"contact model {self.name!r} made step {simulation.step_count + 1} diverge "
                f"({error.what} at t = {error.time:.6g} s); used the built-in response for "
                "that step (warned once; the run's summary counts such steps)",
                RuntimeWarning,
                stacklevel=2,
            )
        return True

    def finish_step(self, simulation) -> None:
        """After the particles moved: keep this step's record when recording every step."""
        if self.recording == "step":
            self.pending.append(self.record(simulation))

    def record(self, simulation) -> dict:
        """The last step's contact data as NumPy arrays (see
        :data:`engine.output.contact_data.FIELDS`), with ``time``, ``dt`` and ``step``."""
        torch = self.torch
        dt, time, step = self.last_step
        with torch.no_grad(), one_torch_thread_beside_taichi(torch, self.device):
            view = self.view(simulation, dt, time)
            near = view.near_interface
            correction = self.correction
            if correction is None:
                correction = torch.zeros_like(view.node_velocity)
            arrays = {
                "node_index": view.node_index,
                "node_position": view.node_position,
                "node_mass": view.node_mass,
                "velocity_before": view.node_velocity_before,
                "velocity_after": view.node_velocity,
                "correction": correction,
                "body_normal": view.body_normal,
                "body_in_contact": view.body_in_contact,
                "collider_distance": view.collider_distance,
                "collider_normal": view.collider_normal,
                "collider_velocity": view.collider_velocity,
                "collider_friction": view.collider_friction,
                "particle_index": near,
                "particle_x": simulation.x[near],
                "particle_v": simulation.v[near],
                "particle_body_id": simulation.body_id[near],
            }
            record = {name: value.detach().cpu().numpy() for name, value in arrays.items()}
        return {**record, "time": time, "dt": dt, "step": step}

    def _check(self, correction, shape: tuple, time: float) -> None:
        torch = self.torch
        if not isinstance(correction, torch.Tensor) or tuple(correction.shape) != shape:
            got = (
                tuple(correction.shape)
                if isinstance(correction, torch.Tensor)
                else type(correction).__name__
            )
            raise PluginError(
                self.plugin,
                self.where,
                f"returned {got}, expected a tensor of shape {shape} (interface nodes, bodies, "
                "dimensions)",
                "return one velocity correction (m/s) per interface node and body",
            )
        if not bool(torch.isfinite(correction).all()):
            raise PluginError(
                self.plugin,
                self.where,
                f"returned NaN or inf corrections at t = {time:.6g} s",
                "check the model's inputs and weights; the frames written so far are kept",
            )


def contact_params(record, table: dict, base_dir, dim: int) -> Any:
    """The scene's ``[contact]`` table as ``record.Params`` (validated when the scene loaded,
    with the same context: the scene's folder and dimension)."""
    if record.Params is None:
        return None
    return record.Params.model_validate(table, context={"base_dir": base_dir, "dim": dim})
