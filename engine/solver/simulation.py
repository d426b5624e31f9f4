"""A running simulation: particle and grid storage, time stepping, plugin stages, health checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import taichi as ti

from engine.hooks.calls import PluginError, call_each
from engine.materials.base import MAX_CONSTANTS, MAX_STATE
from engine.scene.loaded import LoadedScene
from engine.solver.bodies import seed_bodies
from engine.solver.colliders import ColliderArrays
from engine.solver.contact import COULOMB
from engine.solver.contact_stage import ContactStage, contact_params
from engine.solver.kernels import (
    BLOCK,
    HEALTH_SLOTS,
    PAD,
    KernelConfig,
    build_kernels,
    coloured_scatter_on,
    health_integer,
    speed_of_bits,
)
from engine.solver.material_table import MaterialTable
from engine.solver.runtime import ensure_runtime
from engine.solver.scatter_order import ScatterOrder
from engine.solver.sparse_grid import SparseGrid
from engine.solver.storage import Storage

STAGES = ("before_particle_to_grid", "after_grid_update", "after_grid_to_particle")


class SimulationError(RuntimeError):
    """A run that cannot go on: what happened, to which body, when, and what to change."""

    def __init__(self, what: str, time: float, fix: str, body: int | None = None) -> None:
        self.what, self.time, self.fix, self.body = what, time, fix, body
        super().__init__(what)

    def __str__(self) -> str:
        where = f" in body {self.body}" if self.body is not None else ""
        return f"{self.what}{where} at t = {self.time:.6g} s.\n    fix: {self.fix}"


@dataclass(frozen=True)
class Grid:
    """Background grid geometry: spacing ``dx`` (m), cells per axis, and node counts per axis."""

    dx: float
    cells: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Nodes per axis, padding included."""
        return tuple(c + 1 + 2 * PAD for c in self.cells)

    @classmethod
    def for_domain(cls, domain: list[float], resolution: int) -> Grid:
        dx = max(domain) / resolution
        return cls(dx, tuple(max(1, math.ceil(size / dx - 1e-9)) for size in domain))


class Simulation:
    """MLS-MPM state and stepping for one loaded scene.

    Particle arrays (Taichi ndarrays, or torch tensors when the scene uses a torch material;
    the kernels take either without copies): ``x``, ``v`` ``(N, d)``; ``C``, ``F``, ``tau``
    ``(N, d, d)``; ``state`` ``(N, MAX_STATE)``; ``material_id``, ``body_id``, ``mass``,
    ``volume`` ``(N,)``; plugin particle fields in :attr:`fields`. Read any as NumPy with
    :meth:`numpy`.
    """

    def __init__(self, loaded: LoadedScene) -> None:
        scene, registry = loaded.scene, loaded.registry
        sim = scene.simulation
        self.hardware = ensure_runtime(sim.arch, sim.precision)
        self.arch, self.device = self.hardware.arch, self.hardware.torch_device
        self.loaded, self.scene, self.registry = loaded, scene, registry
        self.dim = dim = sim.dim
        self.grid = Grid.for_domain(sim.domain, sim.resolution)
        self.gravity = sim.gravity if sim.gravity is not None else [0.0, -9.81, 0.0][:dim]
        self.materials = MaterialTable(scene, registry, loaded.base_dir, self.grid.dx)
        self.material_classes = self.materials.classes
        contact = registry.contact_models[sim.contact]
        recording = scene.output.contact_data
        uses_torch = self.materials.uses_torch or contact.create is not None or recording != "none"
        self.store = Storage("torch" if uses_torch else "taichi", sim.precision, self.hardware)
        if self.materials.uses_torch:
            self.materials.build_torch_laws(self.store.device, self.store.float_torch)
        self.contact_bodies = len(scene.bodies) if sim.body_contact else 0
        self.kernel_config = KernelConfig(
            dim,
            self.materials.taichi_models,
            sim.transfer == "flip",
            contact.respond or COULOMB.respond,
            self.contact_bodies > 0,
        )
        self.kernels = build_kernels(self.kernel_config)
        seeded = seed_bodies(scene, self.grid.dx, loaded.base_dir, registry)
        self._allocate(seeded)
        self.colliders = ColliderArrays(scene, loaded.base_dir, registry, self.grid.dx)
        self.time, self.step_count, self.dt = 0.0, 0, 0.0
        self.chosen_dt = (0.0, 0.0, 0.0)  # s: the last frame's last, smallest, largest step
        self.max_speed = float(np.linalg.norm(seeded.v, axis=1).max(initial=0.0))
        self.wave_speed = self.materials.wave_speed
        self.critical_dt = self.materials.critical_dt
        self.movers = self._create_movers()
        self.contact_stage = None  # a torch contact model, or recording contact data
        if contact.create is not None or recording != "none":
            self.contact_stage = ContactStage(
                self,
                contact,
                registry.provider[("contact_models", contact.name)],
                contact_params(contact, scene.contact, loaded.base_dir, dim),
                recording,
            )
        self.stages = {stage: [] for stage in STAGES}
        for plugin, hooks in call_each(registry.manager, "engine_register_stages", simulation=self):
            for hook in hooks:
                if hook.stage not in self.stages:
                    raise PluginError(
                        plugin,
                        "engine_register_stages",
                        f"unknown stage {hook.stage!r}",
                        f"use one of {STAGES}",
                    )
                self.stages[hook.stage].append(hook)

    # -- storage -------------------------------------------------------------------------------
    def _allocate(self, seeded) -> None:
        dim, n, store = self.dim, len(seeded), self.store
        self.n_particles = n
        for name in ("x", "v"):
            setattr(self, name, store.array(n, (dim,)))
        for name in ("C", "F", "tau"):
            setattr(self, name, store.array(n, (dim, dim)))
        self.state = store.array(n, (MAX_STATE,))
        self.mass, self.volume = store.array(n), store.array(n)
        self.material_id, self.body_id = store.array(n, integer=True), store.array(n, integer=True)
        for name in ("x", "v", "C", "mass", "volume", "material_id", "body_id"):
            store.assign(getattr(self, name), getattr(seeded, name))
        store.assign(self.F, np.broadcast_to(np.eye(dim), (n, dim, dim)))
        store.assign(self.state, self.materials.initial_state(seeded.material_id))
        self.fields = {}
        for name, field in self.registry.particle_fields.items():
            shape = tuple(dim for _ in field.components)
            self.fields[name] = store.array(n, shape)
            store.assign(self.fields[name], field.initial(seeded.x, seeded.body_id))
        count = len(self.material_classes)
        self.material_model = store.array(count, integer=True)
        store.assign(self.material_model, self.materials.model_index)
        self.material_constants = store.array(count, (MAX_CONSTANTS,))
        store.assign(self.material_constants, self.materials.constants)
        coloured = coloured_scatter_on(ti.lang.impl.current_cfg().arch)
        self.scatter_order = ScatterOrder(store, self.grid.shape, n, coloured)
        self.sparse = SparseGrid(store, self.grid.shape, from_sort=coloured)
        self._allocate_grid()
        real = ti.f64 if ti.lang.impl.current_cfg().default_fp == ti.f64 else ti.f32
        self.health = ti.ndarray(health_integer(real), HEALTH_SLOTS)
        self._torch_rows = self._torch_particle_rows()

    def _allocate_grid(self) -> None:
        """Zeroed grid arrays for the sparse grid's pool (:attr:`sparse`, rows ``R``):
        ``grid_nodes`` ``(R, d + 1)`` momentum (velocity after the grid update) and mass,
        ``grid_v_old`` ``(R, d)`` (FLIP), and the body-contact fields (:attr:`body_fields`);
        one-row placeholders for what the scene does not use."""
        store, dim, rows = self.store, self.dim, self.sparse.rows
        flip = self.scene.simulation.transfer == "flip"
        self.grid_nodes = store.array(rows, (dim + 1,))
        self.grid_v_old = store.array(rows if flip else 1, (dim,))
        bodies = (self.contact_bodies, rows) if self.contact_bodies else (1, 1)
        self.body_velocity = store.grid(bodies, dim)
        self.body_mass = store.grid(bodies)
        self.body_mass_gradient = store.grid(bodies, dim)
        self.node_volume = store.array(rows if self.contact_bodies else 1)

    @property
    def body_fields(self) -> tuple:
        """The body-contact grid fields ``(body_velocity (B, R, d), body_mass (B, R),
        body_mass_gradient (B, R, d), node_volume (R,))`` on the sparse grid's ``R`` rows, as
        the kernels take them (the last: all bodies' volume at each node, which tells where
        they touch)."""
        return self.body_velocity, self.body_mass, self.body_mass_gradient, self.node_volume

    def grid_at(self, array, per_body: bool = False, fill=0) -> np.ndarray:
        """A NumPy copy of grid array ``array`` (``(R, ...)``, or ``(B, R, ...)`` if
        ``per_body``) laid out on the whole grid, ``(*G, ...)`` or ``(B, *G, ...)``: ``fill``
        where the sparse grid holds no node. For tests and inspection (it fills the whole
        grid)."""
        values = self.store.to_numpy(array)
        rows = np.arange(self.sparse.rows)
        region = self.store.to_numpy(self.sparse.region)
        block = BLOCK**self.dim
        local = np.unravel_index(rows % block, (BLOCK,) * self.dim)
        corner = np.unravel_index(region[rows // block], self.sparse.blocks)
        nodes = tuple(BLOCK * c + o for c, o in zip(corner, local, strict=True))
        used = rows < int(self.sparse.sizes[0]) * block  # the latest listing's blocks
        for axis, size in enumerate(self.grid.shape):
            used &= nodes[axis] < size
        index = tuple(n[used] for n in nodes)
        if per_body:
            out = np.full((values.shape[0], *self.grid.shape, *values.shape[2:]), fill,
                          values.dtype)  # fmt: skip
            out[(slice(None), *index)] = values[:, used]
        else:
            out = np.full((*self.grid.shape, *values.shape[1:]), fill, values.dtype)
            out[index] = values[used]
        return out

    def numpy(self, name: str) -> np.ndarray:
        """A NumPy copy of particle array ``name`` (an attribute or a plugin field)."""
        return self.store.to_numpy(
            self.fields[name] if name in self.fields else getattr(self, name)
        )

    @property
    def storage_bytes(self) -> int:
        """Bytes held in particle and grid arrays (runtime excluded); copies them once to count."""
        names = ("x", "v", "C", "F", "tau", "state", "mass", "volume", "material_id", "body_id")
        particles = sum(self.numpy(name).nbytes for name in (*names, *self.fields))
        grid = (self.grid_nodes, self.grid_v_old, *self.body_fields)
        grid += (self.sparse.slots, self.sparse.marks)
        return particles + sum(self.store.to_numpy(a).nbytes for a in grid)

    def _torch_particle_rows(self) -> list:
        """For each torch law: the indices of its particles (None when it has them all)."""
        if not self.materials.torch_laws:
            return []
        material_id = self.numpy("material_id")
        rows = []
        for row, law in self.materials.torch_laws:
            chosen = np.flatnonzero(material_id == row)
            index = (
                None
                if len(chosen) == self.n_particles
                else self.store.torch.as_tensor(chosen, device=self.store.device)
            )
            rows.append((row, law, index))
        return rows

    def _create_movers(self) -> list:
        """Mesh movers for bodies whose shape has a surface (``mover`` key; default advect)."""
        wanted: dict[str, list] = {}
        for index, body in enumerate(self.scene.bodies):
            shape = self.registry.shapes[body.shape]
            name = body.mover or ("advect" if "advect" in self.registry.mesh_movers else "none")
            if shape.surface is not None and name != "none":
                surface = shape.surface(body, self.loaded.base_dir)
                wanted.setdefault(name, []).append((index, surface))
        return [
            self.registry.mesh_movers[name].create(self, surfaces)
            for name, surfaces in wanted.items()
        ]

    # -- stepping ------------------------------------------------------------------------------
    def gravity_at(self, time: float) -> list[float]:
        """Gravity (m/s², ``(d,)``) at ``time`` (s): full, or rising along a smoothstep over
        ``simulation.gravity_ramp`` seconds."""
        ramp = self.scene.simulation.gravity_ramp
        if ramp <= 0.0 or time >= ramp:
            return list(self.gravity)
        s = time / ramp
        return [s * s * (3.0 - 2.0 * s) * g for g in self.gravity]

    def stable_dt(self) -> float:
        """The CFL time step (s) for the current fastest particle and the materials' wave speeds."""
        sim = self.scene.simulation
        dt = sim.cfl * self.grid.dx / (self.max_speed + self.wave_speed)
        return min(dt, sim.cfl * self.critical_dt, sim.max_dt)

    def refresh_stress(self) -> None:
        """Plastic projection and Kirchhoff stress for the current F (idempotent)."""
        self.kernels.constitutive(
            self.F,
            self.C,
            self.state,
            self.tau,
            self.material_id,
            self.material_model,
            self.material_constants,
        )
        for row, law, index in self._torch_rows:
            self._apply_torch_law(row, law, index)

    def _apply_torch_law(self, row: int, law, index) -> None:
        torch = self.store.torch
        provider, name = self.materials.providers[row], type(law).__name__
        columns = len(law.state_vars)
        with torch.no_grad():
            F = self.F if index is None else self.F[index]
            state = (self.state if index is None else self.state[index])[:, :columns]
            try:
                F, state = law.project(F, state)
            except Exception as error:
                raise PluginError(provider, f"{name}.project", str(error)) from error
            matrices, rows = tuple(F.shape), (len(F), columns)
            self._check_torch_output(provider, f"{name}.project", F, matrices)
            self._check_torch_output(provider, f"{name}.project", state, rows)
            try:
                tau = law.kirchhoff(F)
            except Exception as error:
                raise PluginError(provider, f"{name}.kirchhoff", str(error)) from error
            self._check_torch_output(provider, f"{name}.kirchhoff", tau, matrices)
            chosen = slice(None) if index is None else index
            self.F[chosen] = F.to(self.F.dtype)
            self.tau[chosen] = tau.to(self.F.dtype)
            self.state[chosen, :columns] = state.to(self.F.dtype)

    def _check_torch_output(self, provider: str, where: str, out, shape: tuple) -> None:
        """A torch law's output must be a finite tensor of ``shape``."""
        torch = self.store.torch
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise PluginError(provider, where, f"returned shape {got}, expected {shape}")
        if not bool(torch.isfinite(out).all()):
            raise PluginError(provider, where, f"returned NaN or inf at t = {self.time:.6g} s")

    def _run_stage(self, stage: str, dt: float) -> None:
        for hook in self.stages[stage]:
            hook.run(self, dt)

    def step(self, dt: float) -> None:
        """Advance one step of ``dt`` seconds through the four stages, then check health.

        A step that fails (:class:`SimulationError`) after a torch contact model corrected it
        is done again from the particle-to-grid transfer without the corrections: the built-in
        response, bitwise (see :meth:`ContactStage.undo`)."""
        self.refresh_stress()
        self._run_stage("before_particle_to_grid", dt)
        try:
            self._transfer(dt)
        except SimulationError as error:
            if self.contact_stage is None or not self.contact_stage.undo(self, error):
                raise
            self._transfer(dt, correct=False)

    def scatter(self, dt: float) -> None:
        """Particle-to-grid for a step of ``dt`` (s), into the sparse grid's blocks of the
        latest :meth:`list_grid` (after clearing the rows the last scatter wrote); on the CPU
        colour by colour, in the scatter order."""
        order, k = self.scatter_order, self.kernels
        k.clear_pool(self.sparse.sizes, self.grid_nodes, self.grid_v_old, *self.body_fields)
        particles = (
            self.x, self.v, self.C, self.tau, self.mass, self.volume, self.grid_nodes,
            self.body_id, *self.body_fields, self.F, *self.sparse.lookup,
        )  # fmt: skip
        lists = (order.tile, ti.Vector(order.blocks), order.order, order.start)
        lists += (order.colour_blocks, order.colour_start)
        for colour in range(2**self.dim if order.coloured else 1):
            k.particle_to_grid(*particles, *lists, colour, order.parts, dt, self.grid.dx)

    def list_grid(self) -> None:
        """Sort the particles by block (CPU) and list the blocks of nodes they reach: the
        sparse grid's layout for the next scatter (the grid arrays allocated again, zeroed,
        when they outgrew the pool)."""
        if self.stages["before_particle_to_grid"]:  # plugins may have moved the particles
            self.sparse.forget()
        self.scatter_order.refresh(self.x, self.grid.dx)
        if not self.sparse.refresh(self.scatter_order, self.x, self.grid.dx):
            self._allocate_grid()

    def _transfer(self, dt: float, correct: bool = True) -> None:
        """The step from the particle-to-grid transfer on (the stress is ready); the torch
        contact model corrects the grid if ``correct``."""
        k, dx = self.kernels, self.grid.dx
        colliders = self.colliders.at(self.time + dt)
        gravity = ti.Vector(self.gravity_at(self.time))
        self.list_grid()
        while True:  # once, unless the contact stage's interface outgrew its rows
            self.scatter(dt)
            if self.contact_stage is not None:
                if self.contact_stage.grid_update(self, dt, gravity, colliders):
                    break
                continue
            k.grid_update(
                self.grid_nodes,
                self.grid_v_old,
                *self.body_fields,
                gravity,
                dt,
                dx,
                self.scene.simulation.body_friction,
                *colliders,
                *self.sparse.listing,
            )
            break
        if self.contact_stage is not None:
            self.contact_stage.run(self, dt, colliders, correct)
        self._run_stage("after_grid_update", dt)
        self.health.fill(0)
        k.grid_to_particle(
            self.x,
            self.v,
            self.C,
            self.F,
            self.grid_nodes,
            self.grid_v_old,
            self.body_id,
            self.body_velocity,
            *self.sparse.lookup,
            *self.sparse.counting,
            dt,
            dx,
            self.scene.simulation.flip_blend,
            ti.Vector(self.scene.simulation.domain),
            self.health,
        )
        for mover in self.movers:
            mover.step(self, dt)
        if self.contact_stage is not None:
            self.contact_stage.finish_step(self)
        self._run_stage("after_grid_to_particle", dt)
        self.time += dt
        self.step_count += 1
        self.dt = dt
        self._check_health(dt)

    def particles_changed(self) -> None:
        """Say that the particle arrays were set other than by a step (a checkpoint, states
        from elsewhere): the next step's sparse grid then counts its blocks at once rather
        than trusting the last step's bound (see :class:`SparseGrid`)."""
        self.sparse.forget()

    def _check_health(self, dt: float) -> None:
        report = self.health.to_numpy()  # the step's one host sync
        if not self.sparse.observe(int(report[4]), int(report[5])):
            self.sparse.forget()
            raise SimulationError(
                f"the particles reached {int(report[4])} blocks of grid nodes, more than the "
                f"{self.sparse.capacity} the sparse grid held: they moved more than a cell "
                "since the last step",
                self.time,
                "if a plugin sets particle positions, call simulation.particles_changed() "
                "after it does; otherwise use a smaller dt (a retry counts the blocks anew)",
            )
        bad_count, escaped, bad_index = (int(i) for i in report[:3])
        self.max_speed = speed_of_bits(report[3])
        body = int(self.numpy("body_id")[bad_index]) if bad_count or escaped else None
        if bad_count:
            raise SimulationError(
                f"{bad_count} particles got NaN or infinite velocities",
                self.time,
                'use a smaller dt (or dt = "auto" with a lower cfl) or a higher resolution; '
                "check material parameters for extreme stiffness",
                body,
            )
        if escaped:
            raise SimulationError(
                f"{escaped} particles left the domain",
                self.time,
                "enlarge simulation.domain, lower the body's speed, or use a smaller dt",
                body,
            )
        courant = dt * (self.max_speed + self.wave_speed) / self.grid.dx
        if courant > 1.0:  # with dt = "auto" too: speeds that jump within one step
            fastest = int(np.argmax(np.linalg.norm(self.numpy("v"), axis=1)))
            safe = self.scene.simulation.cfl * self.grid.dx / (self.max_speed + self.wave_speed)
            fix = (
                f'use dt <= {safe:.3g} s, or dt = "auto"'
                if self.scene.simulation.dt != "auto"
                else "lower simulation.cfl, or soften impacts faster than the grid can carry"
            )
            raise SimulationError(
                f"CFL condition violated (dt (v_max + c) / dx = {courant:.3g} > 1, "
                f"v_max = {self.max_speed:.3g} m/s, wave speed c = {self.wave_speed:.3g} m/s)",
                self.time,
                fix,
                int(self.numpy("body_id")[fastest]),
            )

    def advance_to(
        self, time: float, dt_scale: float = 1.0, on_step: Callable[[], None] | None = None
    ) -> int:
        """Step until ``time`` (s), with steps ``dt_scale`` times the usual; return the count.

        The steps chosen on the way (before the last one is cut short to land on ``time``) are
        kept in :attr:`chosen_dt`: ``(last, smallest, largest)`` in s. ``on_step()`` is called
        after each step.
        """
        fixed = self.scene.simulation.dt
        steps, chosen = 0, []
        while self.time < time - 1e-12 * max(1.0, time):
            dt = dt_scale * (self.stable_dt() if fixed == "auto" else fixed)
            chosen.append(dt)
            self.step(min(dt, time - self.time))
            steps += 1
            if on_step is not None:
                on_step()
        if chosen:
            self.chosen_dt = (chosen[-1], min(chosen), max(chosen))
        return steps
