"""A torch twin of the engine's MLS-MPM step: same stages, same formulas, differentiable.

``TorchTwin(sim)`` takes the grid, walls, plane colliders, gravity and the
particles of a :class:`~engine.solver.simulation.Simulation`; :meth:`TorchTwin.step` advances a
state ``{"x", "v", "C", "F", "state"}`` of tensors (``state``: the plastic state) by one step
with autograd, so gradients of any loss on trajectories flow to the initial state, to material
parameters (:attr:`TorchTwin.params`) and to the parameters of torch modules used as
materials. ``tests/diff`` proves that the twin and the
Taichi kernels agree step by step and that its gradients match finite differences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from engine.diff.laws import LAWS
from engine.materials.base import MAX_STATE
from engine.solver.collider_kernels import PLANE_TOLERANCE
from engine.solver.contact import SEPARATE, SLIP, STICKY
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
    ) -> None:
        """``laws`` maps scene material names to torch modules with ``project(F, state)``,
        ``kirchhoff(F)`` and optionally ``state_vars`` (as :class:`TorchMaterial` has them) that
        replace those materials (e.g. a law being trained). Every tensor of the twin lives on
        ``device`` (``"cuda"`` for a GPU); states and laws handed to it must too."""
        if sim.scene.simulation.transfer != "apic" or sim.contact_bodies:
            raise TwinError("the torch twin implements APIC transfers on one shared grid only")
        if sim.colliders.meshes or sim.movers or any(sim.stages.values()):
            raise TwinError(
                "the torch twin has no mesh or outline colliders, movers or plugin stages"
            )
        if sim.scene.simulation.gravity_ramp > 0:
            raise TwinError("the torch twin has constant gravity: set simulation.gravity_ramp = 0")
        if sim.scene.simulation.contact != "coulomb":
            raise TwinError(
                f"the torch twin has only the built-in Coulomb contact, not the scene's "
                f"simulation.contact = {sim.scene.simulation.contact!r}: it would train "
                "against a different contact than the run uses"
            )
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
        self.walls = self._walls(sim.colliders)

    def _walls(self, colliders) -> list[tuple]:
        """The domain's walls and the plane colliders, chosen as the grid update chooses them:
        per wall, which nodes ``(G,)`` it holds, its inward unit normal ``(d,)``, condition
        and friction coefficient."""
        axes = [torch.arange(n, device=self.device) for n in self.shape]
        nodes = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        condition, friction = colliders.wall_condition, colliders.wall_friction
        walls = []
        for axis in range(self.dim):
            near = nodes[:, axis] <= int(colliders.wall_low[axis])
            far = nodes[:, axis] >= int(colliders.wall_high[axis])
            walls.append((near, eye[axis], condition, friction))
            walls.append((far, -eye[axis], condition, friction))
        position = (nodes - PAD).to(self.dtype) * self.dx
        for row in colliders.plane_rows:
            point, normal = self._tensor(row[: self.dim]), self._tensor(row[3 : 3 + self.dim])
            held = (position - point) @ normal <= PLANE_TOLERANCE * self.dx
            walls.append((held, normal, int(row[6]), float(row[7])))
        return walls

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
        """The simulation's current particle state as tensors (copies)."""
        keys = ("x", "v", "C", "F", "state")
        return {k: self._tensor(sim.numpy(k)) for k in keys}

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

    def _stencil(self, x):
        """The 3^d nodes around each particle: flat node index ``(N, K)``, offset from the particle
        to the node ``(N, K, d)`` (m) and quadratic B-spline weight ``(N, K)``."""
        Xp = x / self.dx + PAD
        upper = torch.tensor(self.shape, device=self.device) - 3
        base = torch.clamp(torch.floor(Xp - 0.5).long(), min=torch.zeros_like(upper), max=upper)
        fx = Xp - base
        w = torch.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2], -1)
        axes = torch.arange(self.dim, device=self.device)
        weight = w[:, axes, self.offsets].prod(-1)  # w: (N, d, 3) -> (N, K, d) -> (N, K)
        nodes = base[:, None, :] + self.offsets
        index = torch.zeros(nodes.shape[:2], dtype=torch.long, device=self.device)
        for axis in range(self.dim):
            index = index * self.shape[axis] + nodes[..., axis]
        return index, (self.offsets - fx[:, None, :]) * self.dx, weight

    def step(self, state: dict[str, torch.Tensor], dt: float) -> dict[str, torch.Tensor]:
        """One step of ``dt`` seconds; returns the new state (the input is not modified). A
        state without ``"state"`` (plastic state, e.g. one read from a result) starts from
        zeros."""
        x, v, C = state["x"], state["v"], state["C"]
        plastic = state.get("state")
        if plastic is None:
            plastic = x.new_zeros(len(x), MAX_STATE)
        F, tau, plastic = self.constitutive(state["F"], C, plastic)
        index, dpos, weight = self._stencil(x)
        affine = (-dt * 4.0 / self.dx**2) * self.volume[:, None, None] * tau
        affine = affine + self.mass[:, None, None] * C
        contribution = self.mass[:, None, None] * v[:, None, :] + dpos @ affine.transpose(1, 2)
        flat = index.reshape(-1)
        n_nodes = int(np.prod(self.shape))
        momentum = x.new_zeros(n_nodes, self.dim).index_add(
            0, flat, (weight[..., None] * contribution).reshape(-1, self.dim)
        )
        mass = x.new_zeros(n_nodes).index_add(0, flat, (weight * self.mass[:, None]).reshape(-1))
        grid_v = self._grid_update(momentum, mass, dt)[index]  # (N, K, d)
        new_v = (weight[..., None] * grid_v).sum(1)
        new_C = (4.0 / self.dx**2) * (weight[..., None] * grid_v).transpose(1, 2) @ dpos
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        new_F = (eye + dt * new_C) @ F
        return {"x": x + dt * new_v, "v": new_v, "C": new_C, "F": new_F, "state": plastic}

    def _grid_update(self, momentum, mass, dt):
        """Velocities ``(G, d)`` of the grid nodes after gravity and walls/planes."""
        has_mass = mass > 0
        v = torch.where(
            has_mass[:, None], momentum / torch.where(has_mass, mass, 1.0)[:, None], 0.0
        )
        v = torch.where(has_mass[:, None], v + dt * self.gravity, 0.0)
        for held, normal, condition, friction in self.walls:
            inside = held & has_mass
            v = torch.where(inside[:, None], contact(v, normal, condition, friction), v)
        return v


def contact(v, n, condition: int, friction):
    """The Coulomb contact response of engine.solver.contact, for static walls (rows of v)."""
    normal_speed = v @ n
    if condition == STICKY:
        return torch.zeros_like(v)
    tangential = v - normal_speed[:, None] * n
    norm_squared = (tangential * tangential).sum(-1)
    moving = norm_squared > 1e-24
    norm = torch.sqrt(torch.where(moving, norm_squared, 1.0))
    scale = torch.where(moving, torch.clamp(norm + friction * normal_speed, min=0.0) / norm, 1.0)
    pressed = normal_speed < 0.0
    rubbed = torch.where(pressed[:, None], tangential * scale[:, None], tangential)
    if condition == SLIP:
        return rubbed
    assert condition == SEPARATE
    return torch.where(pressed[:, None], rubbed, v)
