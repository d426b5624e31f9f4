"""A running simulation: particle and grid storage, time stepping, health checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import taichi as ti

from engine.materials import MATERIALS
from engine.materials.base import MAX_CONSTANTS, MAX_STATE
from engine.scene.loader import LoadedScene
from engine.solver.bodies import seed_bodies
from engine.solver.colliders import mesh_colliders, plane_rows
from engine.solver.kernels import HEALTH_INTS, MESH_COLUMNS, PAD, KernelConfig, build_kernels
from engine.solver.runtime import ensure_runtime


class SimulationError(RuntimeError):
    """A run that cannot go on: what happened, to which body, when, and what to change."""

    def __init__(self, what: str, time: float, fix: str, body: int | None = None) -> None:
        self.what, self.time, self.fix, self.body = what, time, fix, body
        where = f" in body {body}" if body is not None else ""
        super().__init__(f"{what}{where} at t = {time:.6g} s.\n    fix: {fix}")


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

    Particle arrays are Taichi ndarrays (reachable from torch without copies): ``x``, ``v``
    ``(N, d)``; ``C``, ``F``, ``tau`` ``(N, d, d)``; ``state`` ``(N, MAX_STATE)``;
    ``material_id``, ``body_id``, ``mass``, ``volume`` ``(N,)``.
    """

    def __init__(self, loaded: LoadedScene) -> None:
        scene = loaded.scene
        sim = scene.simulation
        ensure_runtime(sim.arch, sim.precision)
        self.loaded = loaded
        self.scene = scene
        self.dim = dim = sim.dim
        self.grid = Grid.for_domain(sim.domain, sim.resolution)
        self.gravity = sim.gravity if sim.gravity is not None else [0.0, -9.81, 0.0][:dim]
        self.material_names = list(scene.materials)
        self.material_classes = [MATERIALS[m.model] for m in scene.materials.values()]
        models = tuple(sorted({cls.name for cls in self.material_classes}))
        self.kernels = build_kernels(KernelConfig(dim, models, sim.transfer == "flip"))
        self._allocate(seed_bodies(scene, self.grid.dx, loaded.base_dir), models)
        self.planes_np = plane_rows(scene)
        self.meshes = mesh_colliders(scene, loaded.base_dir, self.grid.dx)
        self._allocate_colliders()
        self.time = 0.0
        self.step_count = 0
        self.dt = 0.0
        self.max_speed = float(np.linalg.norm(self.v.to_numpy(), axis=1).max(initial=0.0))
        self.wave_speed = max(
            cls.wave_speed(params)
            for cls, params in zip(self.material_classes, scene.materials.values(), strict=True)
        )
        self.critical_dt = min(
            cls.critical_dt(params, self.grid.dx, dim)
            for cls, params in zip(self.material_classes, scene.materials.values(), strict=True)
        )

    # -- storage -------------------------------------------------------------------------------
    def _allocate(self, seeded, models: tuple[str, ...]) -> None:
        dim, n = self.dim, len(seeded)
        vec, mat = ti.types.vector(dim, float), ti.types.matrix(dim, dim, float)
        self.n_particles = n
        self.x = ti.ndarray(vec, n)
        self.v = ti.ndarray(vec, n)
        self.C = ti.ndarray(mat, n)
        self.F = ti.ndarray(mat, n)
        self.tau = ti.ndarray(mat, n)
        self.state = ti.ndarray(ti.types.vector(MAX_STATE, float), n)
        self.mass = ti.ndarray(float, n)
        self.volume = ti.ndarray(float, n)
        self.material_id = ti.ndarray(ti.i32, n)
        self.body_id = ti.ndarray(ti.i32, n)
        self.x.from_numpy(seeded.x.astype(self._np_float))
        self.v.from_numpy(seeded.v.astype(self._np_float))
        self.mass.from_numpy(seeded.mass.astype(self._np_float))
        self.volume.from_numpy(seeded.volume.astype(self._np_float))
        self.material_id.from_numpy(seeded.material_id)
        self.body_id.from_numpy(seeded.body_id)
        self.F.from_numpy(np.broadcast_to(np.eye(dim), (n, dim, dim)).astype(self._np_float))
        self.state.from_numpy(self._initial_state(seeded.material_id))
        self.material_model = ti.ndarray(ti.i32, len(self.material_classes))
        self.material_model.from_numpy(
            np.array([models.index(cls.name) for cls in self.material_classes], np.int32)
        )
        constants = np.zeros((len(self.material_classes), MAX_CONSTANTS))
        for row, (cls, params) in enumerate(
            zip(self.material_classes, self.scene.materials.values(), strict=True)
        ):
            packed = cls.pack(params)
            constants[row, : len(packed)] = packed
        self.material_constants = ti.ndarray(ti.types.vector(MAX_CONSTANTS, float), len(constants))
        self.material_constants.from_numpy(constants.astype(self._np_float))
        shape = self.grid.shape
        self.grid_nodes = ti.ndarray(ti.types.vector(dim + 1, float), shape)
        flip = self.scene.simulation.transfer == "flip"
        self.grid_v_old = ti.ndarray(vec, shape if flip else (1,) * dim)
        self.health_speed = ti.ndarray(float, 1)
        self.health = ti.ndarray(ti.i32, HEALTH_INTS)

    @property
    def storage_bytes(self) -> int:
        """Bytes held in particle and grid arrays (runtime excluded); copies them once to count."""
        arrays = [value for value in vars(self).values() if isinstance(value, ti.Ndarray)]
        return sum(a.to_numpy().nbytes for a in arrays)

    @property
    def _np_float(self):
        return np.float32 if self.scene.simulation.precision == "f32" else np.float64

    def _initial_state(self, material_id: np.ndarray) -> np.ndarray:
        table = np.zeros((len(self.material_classes), MAX_STATE))
        for row, cls in enumerate(self.material_classes):
            for column, (_, initial) in enumerate(cls.state_vars):
                table[row, column] = initial
        return table[material_id].astype(self._np_float)

    def _allocate_colliders(self) -> None:
        self.planes = ti.ndarray(ti.types.vector(8, float), len(self.planes_np))
        self.planes.from_numpy(self.planes_np.astype(self._np_float))
        count = max(1, len(self.meshes))
        values = [m.sdf.values.ravel() for m in self.meshes] or [np.zeros(1)]
        offsets = np.cumsum([0] + [len(v) for v in values[:-1]])
        ints = np.zeros((count, 4), np.int32)
        for row, (mesh, offset) in enumerate(zip(self.meshes, offsets, strict=False)):
            ints[row] = (offset, *mesh.sdf.values.shape)
        self.sdf = ti.ndarray(float, int(sum(len(v) for v in values)))
        self.sdf.from_numpy(np.concatenate(values).astype(self._np_float))
        self.mesh_ints = ti.ndarray(ti.types.vector(4, ti.i32), count)
        self.mesh_ints.from_numpy(ints)
        self.mesh_rows = ti.ndarray(ti.types.vector(MESH_COLUMNS, float), count)

    # -- stepping ------------------------------------------------------------------------------
    def stable_dt(self) -> float:
        """The CFL time step (s) for the current fastest particle and the materials' wave speeds."""
        sim = self.scene.simulation
        dt = sim.cfl * self.grid.dx / (self.max_speed + self.wave_speed)
        return min(dt, sim.cfl * self.critical_dt, sim.max_dt)

    def refresh_stress(self) -> None:
        """Recompute ``tau`` (and the plastic projection, which is idempotent) for the current F."""
        self.kernels.constitutive(
            self.F,
            self.C,
            self.state,
            self.tau,
            self.material_id,
            self.material_model,
            self.material_constants,
        )

    def step(self, dt: float) -> None:
        """Advance one step of ``dt`` seconds through the four stages, then check health."""
        k, dx = self.kernels, self.grid.dx
        self.refresh_stress()
        k.particle_to_grid(
            self.x,
            self.v,
            self.C,
            self.tau,
            self.mass,
            self.volume,
            self.grid_nodes,
            dt,
            dx,
        )
        if self.meshes:
            self.mesh_rows.from_numpy(
                np.stack([m.row(self.time + dt) for m in self.meshes]).astype(self._np_float)
            )
        k.grid_update(
            self.grid_nodes,
            self.grid_v_old,
            ti.Vector(self.gravity),
            dt,
            dx,
            self.planes,
            len(self.planes_np),
            self.sdf,
            self.mesh_ints,
            self.mesh_rows,
            len(self.meshes),
        )
        self.health_speed.fill(0)
        self.health.fill(0)
        k.grid_to_particle(
            self.x,
            self.v,
            self.C,
            self.F,
            self.grid_nodes,
            self.grid_v_old,
            dt,
            dx,
            self.scene.simulation.flip_blend,
            ti.Vector(self.scene.simulation.domain),
            self.health_speed,
            self.health,
        )
        self.time += dt
        self.step_count += 1
        self.dt = dt
        self._check_health(dt)

    def _check_health(self, dt: float) -> None:
        bad_count, escaped, bad_index = (int(i) for i in self.health.to_numpy())
        self.max_speed = float(self.health_speed.to_numpy()[0])
        body = int(self.body_id.to_numpy()[bad_index]) if bad_count or escaped else None
        if bad_count:
            raise SimulationError(
                f"{bad_count} particles got NaN or infinite velocities",
                self.time,
                'use a smaller dt (or dt = "auto" with a lower cfl) or a higher '
                "resolution; check material parameters for extreme stiffness",
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
        if self.scene.simulation.dt != "auto" and courant > 1.0:
            fastest = int(np.argmax(np.linalg.norm(self.v.to_numpy(), axis=1)))
            safe = self.scene.simulation.cfl * self.grid.dx / (self.max_speed + self.wave_speed)
            raise SimulationError(
                f"CFL condition violated (dt (v_max + c) / dx = {courant:.3g} > 1, "
                f"v_max = {self.max_speed:.3g} m/s, wave speed c = {self.wave_speed:.3g} m/s)",
                self.time,
                f'use dt <= {safe:.3g} s, or dt = "auto"',
                int(self.body_id.to_numpy()[fastest]),
            )

    def advance_to(self, time: float) -> int:
        """Step until ``time`` (s); return the number of steps taken."""
        fixed = self.scene.simulation.dt
        steps = 0
        while self.time < time - 1e-12 * max(1.0, time):
            dt = self.stable_dt() if fixed == "auto" else fixed
            self.step(min(dt, time - self.time))
            steps += 1
        return steps
