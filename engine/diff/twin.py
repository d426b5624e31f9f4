"""A torch twin of the engine's MLS-MPM step: same stages, same formulas, differentiable.

``TorchTwin(sim)`` takes the grid, walls, plane colliders, gravity and the
particles of a :class:`~engine.solver.simulation.Simulation`; :meth:`TorchTwin.step` advances a
state ``{"x", "v", "C", "F", "state"}`` of tensors (``state``: the plastic state) by one step
with autograd, so gradients of any loss on trajectories flow to the initial state, to material
parameters (:attr:`TorchTwin.params`) and to the parameters of torch modules used as
materials. With ``simulation.body_contact`` it keeps one grid field per body, as the kernels
do, and runs the scene's torch contact model (``ContactModel.create``) on a
:class:`~engine.hooks.records.ContactView` of its own tensors, so gradients also flow to the
model's parameters. ``tests/diff`` proves that the twin and the Taichi kernels agree step by
step and that its gradients match finite differences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from engine.diff.laws import LAWS
from engine.hooks.records import ContactView
from engine.materials.base import MAX_STATE
from engine.solver.collider_kernels import PLANE_TOLERANCE
from engine.solver.contact import COULOMB, SEPARATE, SLIP, STICKY
from engine.solver.contact_stage import bodies_touch, contact_params, interface_fields
from engine.solver.kernels import PAD


class TwinError(ValueError):
    """A scene feature the torch twin does not reproduce."""


@dataclass
class TwinMaterial:
    """One scene material: its particles, law and parameter tensors."""

    mask: torch.Tensor  # (N,) bool
    law: object  # a function of LAWS, or an object with project(F, state) and kirchhoff(F)
    params: dict[str, torch.Tensor]


class TorchTwin:
    """The MLS-MPM step in torch (APIC transfers, walls and plane colliders)."""

    def __init__(
        self,
        sim,
        dtype: torch.dtype = torch.float64,
        laws: dict | None = None,
        device: str | torch.device = "cpu",
        contact_model=None,
    ) -> None:
        """``laws`` maps scene material names to torch modules with ``project(F, state)``,
        ``kirchhoff(F)`` and optionally ``state_vars`` (as :class:`TorchMaterial` has them) that
        replace those materials (e.g. a law being trained). Every tensor of the twin lives on
        ``device`` (``"cuda"`` for a GPU); states and laws handed to it must too.

        With a torch contact model (``simulation.contact`` naming a ``ContactModel`` with
        ``create``) the twin calls ``contact_model`` if given, else the simulation's own
        (``sim.contact_stage.model``): a model being trained is the same object in both. A
        ``contact_model`` given for a scene with the built-in contact is called after it, as
        the run would call it with that model chosen (training one on built-in scenes)."""
        self._refuse(sim)
        self.dtype = dtype
        self.device = torch.device(device)
        self.dim = sim.dim
        self.dx = sim.grid.dx
        self.shape = sim.grid.shape
        self.gravity = self._tensor(sim.gravity)
        self.mass = self._tensor(sim.numpy("mass"))
        self.volume = self._tensor(sim.numpy("volume"))
        self.materials = self._materials(sim, laws or {})
        self.params = {name: m.params for name, m in self.materials.items()}
        offsets = list(itertools.product(range(3), repeat=self.dim))
        self.offsets = torch.tensor(offsets, device=self.device)  # (K, d)
        axes = [torch.arange(n, device=self.device) for n in self.shape]
        self.nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.dim)
        self.walls = self._walls(sim.colliders)
        # body contact: one field per body (B = 0: one shared field)
        self.bodies = sim.contact_bodies
        self.body_friction = float(sim.scene.simulation.body_friction)
        self.body_id = torch.as_tensor(sim.numpy("body_id"), device=self.device)
        self.material_id = torch.as_tensor(sim.numpy("material_id"), device=self.device)
        self.material_constants = self._tensor(sim.numpy("material_constants"))
        record = sim.registry.contact_models[sim.scene.simulation.contact]
        self.contact_model = None
        if record.create is not None or contact_model is not None:
            if contact_model is None:
                stage = sim.contact_stage
                contact_model = (
                    stage.model
                    if stage is not None
                    else record.create(
                        contact_params(record, sim.scene.contact, sim.loaded.base_dir, sim.dim), sim
                    )
                )
            self.contact_model = contact_model
            self.collider_nearest = self._nearest(sim.colliders)

    @staticmethod
    def _refuse(sim) -> None:
        """A :class:`TwinError` for each scene feature the twin does not reproduce."""
        settings = sim.scene.simulation
        if settings.transfer != "apic":
            raise TwinError(
                f"the torch twin implements APIC transfers, not simulation.transfer = "
                f'{settings.transfer!r}: set simulation.transfer = "apic"'
            )
        if sim.colliders.meshes:
            kinds = sorted({c.type for c in sim.scene.colliders if c.type != "plane"})
            named = " / ".join(f'"{kind}"' for kind in kinds) or '"mesh"'
            raise TwinError(
                f"the torch twin has walls and plane colliders only, not [[colliders]] type = "
                f"{named}: use planes, or leave those colliders out"
            )
        if sim.movers:
            raise TwinError(
                'the torch twin moves no body surface meshes: set [[bodies]] mover = "none"'
            )
        if any(sim.stages.values()):
            names = sorted(hook.name for hooks in sim.stages.values() for hook in hooks)
            raise TwinError(
                f"the torch twin runs no plugin stages (engine_register_stages: {names}): "
                "leave out the plugins that register them"
            )
        if settings.gravity_ramp > 0:
            raise TwinError("the torch twin has constant gravity: set simulation.gravity_ramp = 0")
        record = sim.registry.contact_models[settings.contact]
        if record.respond is not None and record.respond is not COULOMB.respond:
            raise TwinError(
                f"the torch twin has only the built-in Coulomb response, not the Taichi "
                f"response of simulation.contact = {settings.contact!r}: it would train "
                "against a different contact than the run uses (a torch contact model, "
                "ContactModel.create without respond, is reproduced)"
            )

    def _walls(self, colliders) -> list[tuple]:
        """The domain's walls and the plane colliders, chosen as the grid update chooses them:
        per wall, how much it holds each node ``(G,)`` (1: held; a plane also holds the nodes
        less than a cell in front of it in part, 1 - distance / dx; 0: free), its inward unit
        normal ``(d,)``, condition and friction coefficient."""
        nodes = self.nodes
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        condition, friction = colliders.wall_condition, colliders.wall_friction
        walls = []
        for axis in range(self.dim):
            near = nodes[:, axis] <= int(colliders.wall_low[axis])
            far = nodes[:, axis] >= int(colliders.wall_high[axis])
            walls.append((near.to(self.dtype), eye[axis], condition, friction))
            walls.append((far.to(self.dtype), -eye[axis], condition, friction))
        position = (nodes - PAD).to(self.dtype) * self.dx
        for row in colliders.plane_rows:
            point, normal = self._tensor(row[: self.dim]), self._tensor(row[3 : 3 + self.dim])
            distance = (position - point) @ normal
            share = torch.where(
                distance <= PLANE_TOLERANCE * self.dx,
                1.0,
                torch.where(distance < self.dx, 1.0 - distance / self.dx, 0.0),
            )
            walls.append((share, normal, int(row[6]), float(row[7])))
        return walls

    def _nearest(self, colliders) -> tuple:
        """Per node ``(G,)``, the nearest wall or plane as the contact stage finds it
        (``collider_functions(...).nearest``): signed distance (m; walls by node index),
        outward normal ``(G, d)`` and friction; ties go to the first (walls by axis, low side
        first, then the planes in order)."""
        nodes, dx = self.nodes, self.dx
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        distances, normals, frictions = [], [], []
        for axis in range(self.dim):
            low, high = int(colliders.wall_low[axis]), int(colliders.wall_high[axis])
            distances += [(nodes[:, axis] - low).to(self.dtype) * dx]
            distances += [(high - nodes[:, axis]).to(self.dtype) * dx]
            normals += [eye[axis], -eye[axis]]
            frictions += [float(colliders.wall_friction)] * 2
        position = (nodes - PAD).to(self.dtype) * dx
        for row in colliders.plane_rows:
            point, normal = self._tensor(row[: self.dim]), self._tensor(row[3 : 3 + self.dim])
            distances.append((position - point) @ normal - PLANE_TOLERANCE * dx)
            normals.append(normal)
            frictions.append(float(row[7]))
        distance, choice = torch.stack(distances).min(dim=0)  # the first of equal minima
        normal = torch.stack(normals)[choice]
        friction = self._tensor(frictions)[choice]
        return distance, normal, friction

    def _materials(self, sim, laws: dict) -> dict[str, TwinMaterial]:
        material_id = torch.as_tensor(sim.numpy("material_id"), device=self.device)
        out = {}
        for row, (name, params) in enumerate(
            zip(sim.materials.names, sim.materials.params, strict=True)
        ):
            law = laws[name] if name in laws else dict(sim.materials.torch_laws).get(row)
            law = law if law is not None else LAWS.get(params.model)
            if law is None:
                raise TwinError(f"no torch twin of material model {params.model!r}")
            numbers = {
                key: self._tensor(float(value))
                for key, value in params.model_dump().items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            }
            out[name] = TwinMaterial(material_id == row, law, numbers)
        return out

    def initial_state(self, sim) -> dict[str, torch.Tensor]:
        """The simulation's current particle state as tensors (copies: with torch storage
        ``sim.numpy`` shares the simulation's memory, which its steps overwrite)."""
        keys = ("x", "v", "C", "F", "state")
        return {k: self._tensor(sim.numpy(k)).clone() for k in keys}

    def _tensor(self, values) -> torch.Tensor:
        """``values`` (a number or an array) as a tensor of the twin's dtype and device."""
        return torch.as_tensor(values, dtype=self.dtype, device=self.device)

    # -- stages --------------------------------------------------------------------------------
    def constitutive(self, F, C, S):
        """Plastic projection and Kirchhoff stress per material, from the trial ``F`` and the
        plastic state ``S`` ``(N, MAX_STATE)``: ``(F_elastic, tau, new S)``."""
        F_out, tau, S_out = F, torch.zeros_like(F), S
        for material in self.materials.values():
            if hasattr(material.law, "kirchhoff"):  # a TorchMaterial, or any torch module like it
                columns = len(getattr(material.law, "state_vars", ()))
                F_m, S_m = material.law.project(F, S[:, :columns])
                S_m = torch.cat([S_m, S[:, columns:]], dim=1)
                tau_m = material.law.kirchhoff(F_m)
            else:
                F_m, tau_m, S_m = material.law(F, C, S, material.params)
            mask = material.mask[:, None, None]
            F_out = torch.where(mask, F_m, F_out)
            tau = torch.where(mask, tau_m, tau)
            S_out = torch.where(material.mask[:, None], S_m, S_out)
        return F_out, tau, S_out

    def _stencil(self, x, gradient: bool = False):
        """The 3^d nodes around each particle: flat node index ``(N, K)``, offset from the particle
        to the node ``(N, K, d)`` (m) and quadratic B-spline weight ``(N, K)``; with
        ``gradient`` also the weight's gradient with respect to the particle ``(N, K, d)`` (per
        cell, the kernels' ``weight_gradient``)."""
        Xp = x / self.dx + PAD
        upper = torch.tensor(self.shape, device=self.device) - 3
        base = torch.clamp(torch.floor(Xp - 0.5).long(), min=torch.zeros_like(upper), max=upper)
        fx = Xp - base
        w = torch.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2], -1)
        axes = torch.arange(self.dim, device=self.device)
        factors = w[:, axes, self.offsets]  # w: (N, d, 3) -> (N, K, d)
        weight = factors.prod(-1)
        nodes = base[:, None, :] + self.offsets
        index = torch.zeros(nodes.shape[:2], dtype=torch.long, device=self.device)
        for axis in range(self.dim):
            index = index * self.shape[axis] + nodes[..., axis]
        out = index, (self.offsets - fx[:, None, :]) * self.dx, weight
        if not gradient:
            return out
        slopes = torch.stack([fx - 1.5, -2.0 * (fx - 1.0), fx - 0.5], -1)[:, axes, self.offsets]
        rest = [[j for j in range(self.dim) if j != i] for i in range(self.dim)]
        grad = [slopes[..., i] * factors[..., rest[i]].prod(-1) for i in range(self.dim)]
        return (*out, torch.stack(grad, -1))

    def step(self, state: dict[str, torch.Tensor], dt: float) -> dict[str, torch.Tensor]:
        """One step of ``dt`` seconds; returns the new state (the input is not modified). A
        state without ``"state"`` (plastic state, e.g. one read from a result) starts from
        zeros. A ``"time"`` entry (s, a number) is the time a torch contact model sees
        (``view.time`` is the step's end; 0 + dt without it) and comes back advanced."""
        x, v, C = state["x"], state["v"], state["C"]
        plastic = state.get("state")
        if plastic is None:
            plastic = x.new_zeros(len(x), MAX_STATE)
        F, tau, plastic = self.constitutive(state["F"], C, plastic)
        stencil = self._stencil(x, gradient=self.bodies > 0)
        index, dpos, weight = stencil[:3]
        affine = (-dt * 4.0 / self.dx**2) * self.volume[:, None, None] * tau
        affine = affine + self.mass[:, None, None] * C
        contribution = self.mass[:, None, None] * v[:, None, :] + dpos @ affine.transpose(1, 2)
        flat = index.reshape(-1)
        n_nodes = int(np.prod(self.shape))
        impulse = (weight[..., None] * contribution).reshape(-1, self.dim)
        masses = (weight * self.mass[:, None]).reshape(-1)
        momentum = x.new_zeros(n_nodes, self.dim).index_add(0, flat, impulse)
        mass = x.new_zeros(n_nodes).index_add(0, flat, masses)
        if self.bodies:
            time = state.get("time")
            volumes = self.volume * torch.linalg.det(F)  # (N,) m^3 now, as the kernel takes it
            fields = self._scatter_bodies(index, impulse, masses, stencil[3], weight, volumes)
            grid, before = self._body_grid_update(momentum, mass, *fields, dt)
            if self.contact_model is not None:
                grid = self._contact_model(grid, before, fields, x, v, index, dt, time)
            body_velocity = grid[1].reshape(-1, self.dim)
            grid_v = body_velocity[self.body_id[:, None].long() * n_nodes + index]  # (N, K, d)
        else:
            grid_v = self._grid_update(momentum, mass, dt)[index]  # (N, K, d)
        new_v = (weight[..., None] * grid_v).sum(1)
        new_C = (4.0 / self.dx**2) * (weight[..., None] * grid_v).transpose(1, 2) @ dpos
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        new_F = (eye + dt * new_C) @ F
        out = {"x": x + dt * new_v, "v": new_v, "C": new_C, "F": new_F, "state": plastic}
        if "time" in state:
            out["time"] = state["time"] + dt
        return out

    def _grid_update(self, momentum, mass, dt):
        """Velocities ``(G, d)`` of the grid nodes after gravity and walls/planes."""
        has_mass = mass > 0
        v = torch.where(
            has_mass[:, None], momentum / torch.where(has_mass, mass, 1.0)[:, None], 0.0
        )
        v = torch.where(has_mass[:, None], v + dt * self.gravity, 0.0)
        return self._collide(v, has_mass)

    def _collide(self, v, where, respond=None, rows=None):
        """``v`` ``(..., G, d)`` (or ``(..., M, d)`` at nodes ``rows``) after each wall and plane
        that holds a node (wholly, or in part less than a cell in front of a plane) where
        ``where`` (same trailing shape) is true, in the kernels' order, through ``respond``
        (default: :func:`contact` with the collider's condition and friction)."""
        for share, normal, condition, friction in self.walls:
            share = share if rows is None else share[rows]
            response = (
                contact(v, normal, condition, friction) if respond is None else respond(v, normal)
            )
            share = torch.where(where, share, 0.0)[..., None]
            held = torch.where(share == 1.0, response, share * response + (1.0 - share) * v)
            v = torch.where(share > 0.0, held, v)
        return v

    # -- body contact --------------------------------------------------------------------------
    def _scatter_bodies(self, index, impulse, masses, weight_gradient, weight, volumes):
        """The per-body fields as ``particle_to_grid`` scatters them: momentum ``(B, G, d)``,
        mass ``(B, G)`` and mass gradient ``(B, G, d)`` (``mp / dx`` times the weight's
        gradient with respect to the particle), and the bodies' volume per node ``(G,)``
        (the weighted current volumes ``(N,)`` of the particles)."""
        n_nodes, d, B = int(np.prod(self.shape)), self.dim, self.bodies
        flat = (self.body_id[:, None].long() * n_nodes + index).reshape(-1)
        gradient = (self.mass[:, None, None] * (1.0 / self.dx)) * weight_gradient
        zeros = impulse.new_zeros(B * n_nodes, d)
        momentum = zeros.index_add(0, flat, impulse).reshape(B, n_nodes, d)
        mass = masses.new_zeros(B * n_nodes).index_add(0, flat, masses).reshape(B, n_nodes)
        gradient = zeros.index_add(0, flat, gradient.reshape(-1, d)).reshape(B, n_nodes, d)
        node_volume = volumes.new_zeros(n_nodes).index_add(
            0, index.reshape(-1), (weight * volumes[:, None]).reshape(-1)
        )
        return momentum, mass, gradient, node_volume

    def _body_grid_update(
        self, momentum, mass, body_momentum, body_mass, body_gradient, node_volume, dt
    ):
        """The grid update with body contact, as ``update_node`` in engine/solver/kernels.py
        computes it (keep the two in step: the contact normal and where bodies meet are decided
        here only). Shared velocity: momentum over mass plus gravity's step, then the colliders.
        Where two or more bodies have mass, each body's own velocity meets the others through
        the Coulomb response (separate, ``simulation.body_friction``) against the shared
        velocity before the colliders, along the normal from the others into it (total mass
        gradient minus twice its own, normalised), where they touch (``body_contact_normal``:
        their volume fills the cell, each holds a share of the mass, the normal's norm exceeds
        1e-12), then the colliders; elsewhere a body moves with the shared velocity.

        Returns ``(shared (G, d), body velocities (B, G, d))`` and each body's velocity before
        contact ``(B, G, d)`` (zero where it has no mass)."""
        has_mass = mass > 0
        shared = torch.where(
            has_mass[:, None], momentum / torch.where(has_mass, mass, 1.0)[:, None], 0.0
        )
        centre_of_mass = torch.where(has_mass[:, None], shared + dt * self.gravity, 0.0)
        shared = self._collide(centre_of_mass, has_mass)
        present = body_mass > 0  # (B, G)
        own = body_momentum / torch.where(present, body_mass, 1.0)[..., None] + dt * self.gravity
        before = torch.where(present[..., None], own, 0.0)
        normal = body_gradient.sum(0) - 2.0 * body_gradient
        length = normal.norm(dim=-1, keepdim=True)
        touching = bodies_touch(body_mass, node_volume / self.dx**self.dim, axis=0)
        usable = (length > 1e-12) & touching[..., None]
        unit = normal / torch.where(usable, length, 1.0)
        met = contact(own, unit, SEPARATE, self.body_friction, centre_of_mass)
        own = self._collide(torch.where(usable, met, own), has_mass)
        meet = present & (present.sum(0) > 1)
        velocity = torch.where(meet[..., None], own, shared)
        return (shared, velocity), before

    def _contact_model(self, grid, before, fields, x, v, index, dt, time):
        """The torch contact model's step, as ``ContactStage.run`` takes it: the view of
        this step's grid at the interface nodes, the model's corrections ``(M, B, d)``, then
        the hard constraints (``apply_corrections`` in engine/solver/contact_kernels.py).
        Returns the new ``(shared, body velocities)``."""
        shared, velocity = grid
        _, body_mass, body_gradient, node_volume = fields
        B, d = self.bodies, self.dim
        distance, collider_normal, collider_friction = self.collider_nearest
        present = (body_mass > 0).sum(0)
        interface = (body_mass.sum(0) > 0) & ((present >= 2) | (distance <= self.dx))
        node_index = torch.nonzero(interface).squeeze(1)  # sorted
        body_fields = (velocity.reshape(B, -1, d), body_mass.reshape(B, -1))
        body_fields += (body_gradient.reshape(B, -1, d), node_volume.reshape(-1))
        node_mass, node_velocity, body_normal, in_contact = interface_fields(
            *body_fields, node_index, self.dx
        )
        near: list = []

        def particles_near():
            if not near:
                flags = torch.zeros(len(self.nodes), dtype=torch.bool, device=self.device)
                flags[node_index] = True
                near.append(torch.nonzero(flags[index].any(1)).squeeze(1))
            return near[0]

        view = ContactView(
            *body_fields[:3],
            velocity=shared.reshape(-1, d),
            node_index=node_index,
            node_row=node_index,
            node_position=(self.nodes[node_index] - PAD).to(self.dtype) * self.dx,
            node_mass=node_mass,
            node_velocity_before=before[:, node_index].transpose(0, 1),
            node_velocity=node_velocity,
            body_normal=body_normal,
            body_in_contact=in_contact,
            collider_distance=distance[node_index],
            collider_normal=collider_normal[node_index],
            collider_velocity=torch.zeros_like(collider_normal[node_index]),
            collider_friction=collider_friction[node_index],
            body_friction=self.body_friction,
            x=x,
            v=v,
            body_id=self.body_id,
            material_id=self.material_id,
            material_constants=self.material_constants,
            dt=dt,
            dx=self.dx,
            time=float(time if time is not None else 0.0) + dt,
            particles_near=particles_near,
        )
        correction = self.contact_model(view)
        expected = (len(node_index), B, d)
        if not isinstance(correction, torch.Tensor) or tuple(correction.shape) != expected:
            got = getattr(correction, "shape", type(correction).__name__)
            raise TwinError(f"the contact model returned {got}, expected a tensor of {expected}")
        correction = correction.to(self.dtype).transpose(0, 1)  # (B, M, d)
        rows = self._corrected(
            node_mass.T,
            node_velocity.transpose(0, 1),
            torch.where(in_contact[..., None], body_normal, 0.0),
            correction,
            node_index,
        )
        velocity = velocity.clone()
        velocity[:, node_index] = rows
        return shared, velocity

    def _corrected(self, mass, velocity, normal, correction, rows):
        """Body velocities ``(B, M, d)`` at interface nodes ``rows`` after adding
        ``correction`` under the hard constraints, as ``apply_corrections`` does: only where
        some correction is non-zero, for bodies with mass there; no body approaches the
        centre-of-mass velocity of the corrected velocities along its normal (where more than
        one body has mass), then no body enters a wall or plane (no friction)."""
        changed = (correction != 0).any(-1).any(0)  # (M,)
        present = mass > 0  # (B, M)
        corrected = torch.where(present[..., None], velocity + correction, velocity)
        total = mass.sum(0)
        momentum = (torch.where(present, mass, 0.0)[..., None] * corrected).sum(0)
        centre_of_mass = momentum / torch.where(total > 0, total, 1.0)[:, None]
        normal = normal.transpose(0, 1)  # (B, M, d): unit, or zero where the kernel skips it
        shared = (present.sum(0) > 1) & (normal.abs().sum(-1) > 0)
        apart = torch.where(
            shared[..., None], non_penetration(corrected, normal, centre_of_mass), corrected
        )
        apart = self._collide(apart, present, non_penetration, rows)
        return torch.where((changed & present)[..., None], apart, velocity)


def contact(v, n, condition: int, friction, v_collider=None):
    """The Coulomb contact response of engine.solver.contact on rows ``(..., d)`` of ``v``,
    against a static collider or one moving at ``v_collider`` (rows like ``v``); ``n`` one
    normal ``(d,)`` or one per row."""
    relative = v if v_collider is None else v - v_collider
    normal_speed = (relative * n).sum(-1, keepdim=True)
    if condition == STICKY:
        return torch.zeros_like(v) if v_collider is None else v_collider.expand_as(v)
    tangential = relative - normal_speed * n
    norm_squared = (tangential * tangential).sum(-1, keepdim=True)
    moving = norm_squared > 1e-24
    norm = torch.sqrt(torch.where(moving, norm_squared, 1.0))
    scale = torch.where(moving, torch.clamp(norm + friction * normal_speed, min=0.0) / norm, 1.0)
    pressed = normal_speed < 0.0
    rubbed = torch.where(pressed, tangential * scale, tangential)
    if condition == SLIP:
        out = rubbed
    else:
        assert condition == SEPARATE
        out = torch.where(pressed, rubbed, relative)
    return out if v_collider is None else out + v_collider


def non_penetration(v, n, v_collider=None):
    """The hard constraint of engine.solver.contact: the part of ``v`` (rows ``(..., d)``)
    approaching the surface (moving at ``v_collider``) along ``n`` is removed."""
    relative = v if v_collider is None else v - v_collider
    normal_speed = (relative * n).sum(-1, keepdim=True)
    return v - torch.clamp(normal_speed, max=0.0) * n
