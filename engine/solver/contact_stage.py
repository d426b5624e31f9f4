"""The torch contact stage: once per step, after the grid update, a torch contact model reads the
contact view and returns per-body velocity corrections at the interface nodes; the engine adds
them and re-applies the hard constraints.

Costs per step: three kernel launches (two when the model does not read ``near_interface``),
a few torch gathers over the interface nodes, and two host reads (the node count and the
finiteness of the corrections; a third for the particle count when it is read). The view's grid
and particle tensors are the simulation's own memory; only interface rows are gathered.
"""

from __future__ import annotations

from typing import Any

from engine.hooks.calls import PluginError, describe
from engine.hooks.records import ContactView
from engine.solver.contact_kernels import build_contact_kernels
from engine.solver.kernels import PAD

HOOK = "engine_register_contact_models"
#: Rows allocated at first for interface nodes and near particles (they grow as needed).
INITIAL_CAPACITY = 256


class TorchContactStage:
    """A torch contact model bound to one simulation (whose storage is torch and which has
    per-body fields): ``run(simulation, dt)`` after each grid update."""

    def __init__(self, simulation, record, plugin: str, params: Any) -> None:
        self.name, self.plugin = record.name, plugin
        self.where = f"{HOOK}: contact model {record.name!r}"
        store = simulation.store
        self.torch, self.dtype, self.device = store.torch, store.float_torch, store.device
        self.kernels = build_contact_kernels(simulation.dim)
        self.dim = simulation.dim
        self.grid_shape = simulation.grid.shape
        self.bodies = simulation.contact_bodies
        self.count = self.torch.zeros(1, dtype=self.torch.int32, device=self.device)
        self._allocate_nodes(INITIAL_CAPACITY)
        self._particle_rows = self.torch.zeros(
            INITIAL_CAPACITY, dtype=self.torch.int32, device=self.device
        )
        self.flags = self.torch.zeros(self.grid_shape, dtype=self.torch.int32, device=self.device)
        try:
            self.model = record.create(params, simulation)
        except PluginError:
            raise
        except Exception as error:
            raise PluginError(plugin, f"{self.where}, create", describe(error)) from error

    def _allocate_nodes(self, capacity: int) -> None:
        torch, d = self.torch, self.dim
        self.cells = torch.zeros((capacity, d + 1), dtype=torch.int32, device=self.device)
        self.geometry = torch.zeros((capacity, 2 * d + 2), dtype=self.dtype, device=self.device)

    def _interface(self, simulation, colliders: tuple) -> tuple:
        """The interface nodes' ``cells`` ``(M, 1 + d)`` (flat index, node index) and collider
        ``geometry`` ``(M, 2 d + 2)`` rows, sorted by node index."""
        while True:
            self.count.zero_()
            self.kernels.interface_nodes(
                simulation.grid_nodes,
                simulation.body_mass,
                simulation.grid.dx,
                *colliders,
                self.count,
                self.cells,
                self.geometry,
                self.flags,
            )
            found = int(self.count[0])
            if found <= len(self.cells):
                break
            self._allocate_nodes(2 * found)
        order = self.torch.argsort(self.cells[:found, 0])
        return self.cells[:found][order], self.geometry[:found][order]

    def _near(self, simulation) -> Any:
        """Indices ``(P,)`` int64 of the particles whose stencil touches an interface node (as
        flagged by the last :meth:`_interface`)."""
        torch = self.torch
        while True:
            self.count.zero_()
            self.kernels.near_particles(
                simulation.x, self.flags, simulation.grid.dx, self.count, self._particle_rows
            )
            found = int(self.count[0])
            if found <= len(self._particle_rows):
                break
            self._particle_rows = torch.zeros(2 * found, dtype=torch.int32, device=self.device)
        return torch.sort(self._particle_rows[:found].long()).values

    def view(self, simulation, dt: float, colliders: tuple) -> ContactView:
        torch, dim, bodies = self.torch, self.dim, self.bodies
        cells, geometry = self._interface(simulation, colliders)
        node_index = cells[:, 0].long()
        gradient = simulation.body_mass_gradient.reshape(bodies, -1, dim)[:, node_index]
        gradient = gradient.transpose(0, 1)  # (M, B, d)
        normal = gradient.sum(dim=1, keepdim=True) - 2.0 * gradient
        length = normal.norm(dim=2, keepdim=True)
        mass = simulation.body_mass.reshape(bodies, -1)[:, node_index].transpose(0, 1)
        usable = (length > 1e-12) & (mass[..., None] > 0)
        normal = torch.where(usable, normal / length.clamp_min(1e-30), torch.zeros_like(normal))
        near: list = []

        def particles_near():
            if not near:
                near.append(self._near(simulation))
            return near[0]

        return ContactView(
            body_velocity=simulation.body_velocity,
            body_mass=simulation.body_mass,
            body_mass_gradient=simulation.body_mass_gradient,
            velocity=simulation.grid_nodes[..., :dim],
            node_index=node_index,
            node_position=(cells - PAD).to(self.dtype) * simulation.grid.dx,
            node_mass=mass,
            node_velocity=simulation.body_velocity.reshape(self.bodies, -1, dim)[
                :, node_index
            ].transpose(0, 1),
            body_normal=normal,
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
            time=simulation.time + dt,
            particles_near=particles_near,
        )

    def run(self, simulation, dt: float, colliders: tuple) -> None:
        """Call the model on this step's view and apply its corrections."""
        torch = self.torch
        view = self.view(simulation, dt, colliders)
        with torch.no_grad():
            try:
                correction = self.model(view)
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(self.plugin, self.where, describe(error)) from error
        self._check(correction, (len(view.node_index), self.bodies, self.dim), view.time)
        if not bool(correction.any()):  # nothing to add: the built-in result stands
            return
        self.kernels.apply_corrections(
            correction.to(self.dtype).contiguous(),
            view.node_index.to(torch.int32),
            simulation.grid_nodes,
            *simulation.body_fields,
            simulation.grid.dx,
            *colliders,
        )

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


def contact_params(record, table: dict, base_dir) -> Any:
    """The scene's ``[contact]`` table as ``record.Params`` (validated when the scene loaded)."""
    if record.Params is None:
        return None
    return record.Params.model_validate(table, context={"base_dir": base_dir})
