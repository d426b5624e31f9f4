"""The records of the plugin contract: what registration hooks return (one small frozen
dataclass per kind), the view of a simulation that hooks are handed, and a run's summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel


class Simulation(Protocol):
    """What hooks are handed of a running simulation (:class:`engine.solver.simulation.Simulation`
    is the implementation; this contract names what plugins may rely on).

    Particle arrays are Taichi ndarrays, or torch tensors on :attr:`device` when the scene uses
    a torch material: ``x``, ``v`` ``(N, d)`` m, m/s; ``C`` ``(N, d, d)`` 1/s; ``F``, ``tau``
    ``(N, d, d)`` (Kirchhoff stress, Pa); ``mass`` kg, ``volume`` m³, ``material_id``,
    ``body_id`` ``(N,)``; plugin particle fields in ``fields``. ``grid`` holds the grid's
    spacing ``dx`` (m) and shape (nodes per axis). The grid is sparse: ``grid_nodes`` ``(R, d +
    1)`` holds momentum (velocity after the grid update) and mass for the ``R`` stored nodes,
    and a Taichi function finds a node's row with ``engine.solver.kernels.node_row`` and the
    arguments ``sparse.lookup`` (negative where no particle reaches the node: it is empty).
    A plugin that sets particle positions calls :meth:`particles_changed` after.
    """

    dim: int
    arch: str  # the Taichi backend that runs the kernels: "x64", "arm64", "cuda", "vulkan", ...
    device: str  # where torch views of the particle arrays live: "cpu" or "cuda"
    n_particles: int
    time: float  # s
    step_count: int
    dt: float  # s, the last step
    scene: Any
    grid: Any
    grid_nodes: Any
    sparse: Any
    fields: dict[str, Any]
    x: Any
    v: Any
    F: Any

    def numpy(self, name: str) -> np.ndarray:
        """A NumPy copy of particle array ``name`` (an attribute or a plugin field)."""
        ...

    def particles_changed(self) -> None:
        """Say that particle arrays were set other than by a step."""
        ...


@dataclass(frozen=True)
class RunSummary:
    """What a finished run did: ``frames`` in the result file; ``steps`` taken by this process
    (after ``resumed_after`` frames when it resumed from a checkpoint, so that the rate counts
    only its own work) in ``wall_time`` seconds."""

    output: Path
    frames: int
    steps: int
    particles: int
    wall_time: float  # s
    arch: str = ""  # the Taichi backend that ran: "x64", "arm64", "cuda", "vulkan", ...
    device: str | None = None  # the torch device of the particle arrays; None: not torch
    resumed_after: int | None = None  # the checkpoint's frame, when the run resumed
    contact_fallbacks: int = 0  # steps a torch contact model made fail, redone without it

    @property
    def particle_steps_per_second(self) -> float:
        return self.particles * self.steps / max(self.wall_time, 1e-9)

    @property
    def complete_before(self) -> bool:
        """Resumed from the checkpoint of its last frame: there was nothing left to do."""
        return self.resumed_after is not None and self.resumed_after >= self.frames - 1

    def __str__(self) -> str:
        if self.complete_before:
            return (
                f"{self.output} is already complete ({self.frames} frames); nothing to resume "
                "(run without --resume to compute it again)"
            )
        resumed = f"resumed after frame {self.resumed_after}: " if self.resumed_after else ""
        return (
            f"{resumed}{self.frames} frames, {self.steps} steps, {self.particles} particles in "
            f"{self.wall_time:.1f} s "
            f"({self.particle_steps_per_second / 1e6:.2f} M particle-steps/s) on {self.hardware}"
            f" -> {self.output}{self._fallback_note}"
        )

    @property
    def _fallback_note(self) -> str:
        if not self.contact_fallbacks:
            return ""
        steps = "step" if self.contact_fallbacks == 1 else "steps"
        return (
            f"; the contact model made {self.contact_fallbacks} {steps} diverge, each done again "
            "with the built-in response"
        )

    @property
    def hardware(self) -> str:
        """``"x64"``, or ``"cuda, torch on cuda"`` when particle arrays are torch tensors."""
        return self.arch + (f", torch on {self.device}" if self.device else "")


@dataclass(frozen=True)
class ShapeIssue:
    """A problem with a body's shape keys: ``key`` below ``bodies[i]``, message, fix."""

    key: str
    message: str
    fix: str


class ShapeError(ValueError):
    """A problem found only when a shape's or collider's files are read (``bounds``, ``seed``,
    ``build``): it carries the :class:`ShapeIssue` to report (key, message, fix)."""

    def __init__(self, issue: ShapeIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass(frozen=True)
class ShapeType:
    """A seeding shape: ``[[bodies]] shape = name``.

    ``Params`` is a pydantic model deriving from :class:`engine.scene.schema.BodyBase` whose
    ``shape`` field is ``Literal[name]``. ``seed(params, spacing, rng, base_dir)`` returns particle
    positions ``(N, d)`` (m) on a lattice of ``spacing`` (m); ``bounds(params, base_dir, dim)``
    the axis-aligned bounds ``(lower, upper)``, ``(d,)`` each, or raises :class:`ShapeError`
    for a problem its files show; ``check(params, dim)`` problems with its keys.
    """

    name: str
    Params: type[BaseModel]
    seed: Callable[[Any, float, np.random.Generator, Path], np.ndarray]
    bounds: Callable[[Any, Path, int], tuple[np.ndarray, np.ndarray]]
    check: Callable[[Any, int], list[ShapeIssue]] = lambda params, dim: []
    surface: Callable[[Any, Path], Any] | None = None  # the trimesh surface, for mesh movers


@dataclass(frozen=True)
class ColliderType:
    """An obstacle: ``[[colliders]] type = name``.

    ``build(params, base_dir, dim, dx)`` returns what the grid update understands: plane rows
    (``engine.solver.colliders.plane_row``) and/or rigid signed-distance colliders
    (``engine.solver.colliders.MeshCollider``). ``check(params, dim, base_dir)`` returns
    problems as :class:`ShapeIssue`. ``bounds(params, base_dir, dim)``, when given, are the
    obstacle's axis-aligned bounds at t = 0 ``(lower, upper)``, ``(d,)`` each: the scene checks
    then refuse one that reaches past the domain.
    """

    name: str
    Params: type[BaseModel]
    build: Callable[[Any, Path, int, float], list[Any]]
    check: Callable[[Any, int, Path], list[ShapeIssue]] = lambda params, dim, base_dir: []
    bounds: Callable[[Any, Path, int], tuple[np.ndarray, np.ndarray]] | None = None


@dataclass(frozen=True)
class ContactModel:
    """Grid-node response at colliders and between bodies: ``simulation.contact = name``.

    ``respond`` is a Taichi function ``(v, n, v_collider, condition, friction) -> v_new`` for one
    grid node with velocity ``v`` (m/s, ``(d,)``) inside a collider whose outward unit normal is
    ``n`` and surface velocity ``v_collider`` there; ``condition`` is 0 sticky, 1 slip,
    2 separate; ``friction`` the Coulomb coefficient. With ``simulation.body_contact`` it is also
    called for each body at nodes where bodies meet, with ``v`` that body's own node velocity,
    ``v_collider`` the centre-of-mass velocity, ``n`` the unit normal from the other bodies into
    this one, ``condition`` separate and ``simulation.body_friction``. It is compiled into the
    grid update; None means the built-in Coulomb response.

    ``create(params, simulation)`` (optional) makes a torch contact model: a callable
    ``model(view: ContactView) -> corrections`` called once per step after the response above,
    returning per-node, per-body velocity corrections ``(M, B, d)`` m/s for the view's ``M``
    interface nodes; the engine adds them and then re-applies the hard constraints
    (non-penetration at colliders, no approach between bodies). ``params`` is the scene's
    ``[contact]`` table validated by ``Params`` (a pydantic model; None: the model takes no keys).
    """

    name: str
    respond: Callable | None = None
    create: Callable[[Any, Simulation], Callable[[ContactView], Any]] | None = None
    Params: type[BaseModel] | None = None


@dataclass(frozen=True)
class ContactView:
    """What a torch contact model sees each step: torch tensors on the simulation's device,
    shared with the kernels without copies (the per-body and particle arrays) or gathered for
    the interface nodes. ``B`` bodies, grid of nodes ``G = (G_1, ..., G_d)``, ``R`` rows of
    grid storage, ``M`` interface nodes, ``N`` particles.

    Grid fields after the built-in response (read; corrections are returned, not written), one
    row per stored node: ``body_velocity`` ``(B, R, d)`` m/s, ``body_mass`` ``(B, R)`` kg,
    ``body_mass_gradient`` ``(B, R, d)`` kg/m (the gradient of each body's mass with respect
    to its particles' positions, as scattered), ``velocity`` ``(R, d)`` m/s the common
    (centre-of-mass) velocity. The simulation stores only the blocks of nodes that particles
    reach (the sparse grid: rows are reassigned every step, and every row outside them is
    zero); the torch twin stores every node (``R`` = the nodes of ``G``, row = flat index).

    Interface nodes, sorted by index: where two or more bodies have mass, or where a body has
    mass within one cell of a wall, plane or mesh collider. ``node_index`` ``(M,)`` int64 (flat
    index into ``G``), ``node_row`` ``(M,)`` int64 (its row in the grid fields above),
    ``node_position`` ``(M, d)`` m, each body's ``node_mass`` ``(M, B)`` kg,
    ``node_velocity_before`` ``(M, B, d)`` m/s (its momentum over its mass, plus gravity's
    step: before any contact) and ``node_velocity`` ``(M, B, d)`` m/s (after the built-in
    response) there, ``body_normal`` ``(M, B, d)`` (unit normal from
    the other bodies into each body; zero where it has no mass or no neighbour),
    ``body_in_contact`` ``(M, B)`` bool (where the built-in contact acted between bodies: the
    bodies' volume fills the node's cell and each holds a share of its mass, see
    ``engine.solver.kernels.body_contact_normal``),
    and the nearest collider's ``collider_distance`` ``(M,)`` m (signed, <= 0 inside; a plane
    or mesh collider also holds the nodes less than a cell in front of it in part),
    ``collider_normal`` ``(M, d)`` (outward), ``collider_velocity`` ``(M, d)`` m/s and
    ``collider_friction`` ``(M,)``; ``body_friction`` is ``simulation.body_friction``.

    Particles: ``x``, ``v`` ``(N, d)``, ``body_id``, ``material_id`` ``(N,)`` and
    ``material_constants`` ``(materials, K)`` (each scene material's parameters as its class's
    ``pack`` orders them; zero for torch materials); ``near_interface`` ``(P,)`` int64, the
    particles whose stencil touches an interface node (computed when first read). ``dt`` s,
    ``dx`` m, ``time`` s (at the end of the step).
    """

    body_velocity: Any
    body_mass: Any
    body_mass_gradient: Any
    velocity: Any
    node_index: Any
    node_row: Any
    node_position: Any
    node_mass: Any
    node_velocity_before: Any
    node_velocity: Any
    body_normal: Any
    body_in_contact: Any
    collider_distance: Any
    collider_normal: Any
    collider_velocity: Any
    collider_friction: Any
    body_friction: float
    x: Any
    v: Any
    body_id: Any
    material_id: Any
    material_constants: Any
    dt: float
    dx: float
    time: float
    particles_near: Callable[[], Any] = field(repr=False, default=lambda: None)

    @property
    def near_interface(self) -> Any:
        """Indices ``(P,)`` of the particles whose 3^d stencil touches an interface node."""
        return self.particles_near()


@dataclass(frozen=True)
class MeshMoverType:
    """Moves a body's surface mesh with the simulation: ``[[bodies]] mover = name``.

    ``create(simulation, surfaces)`` gets ``[(body_index, trimesh.Trimesh), ...]`` (rest meshes)
    and returns an object with ``step(simulation, dt)`` (per step, batched), ``vertices()`` →
    ``(V, 3)`` m, ``set_vertices(vertices)`` (restart), ``faces`` ``(F, 3)`` and ``body_id``
    ``(V,)``. (Movers of output meshes are :class:`OutputMeshMoverType` records, returned by
    the same hook.)
    """

    name: str
    create: Callable[[Simulation, list], Any]


@dataclass(frozen=True)
class Monitor:
    """Where an output mesh's nodes should gather, in one output frame (see
    ``engine.output.monitor``): ``m = 1 + alpha |grad u| / mean |grad u|`` of the sampled field
    ``u`` that ``[[output.meshes]] monitor`` names (``|grad u|`` the Frobenius norm for a
    vector field; ``m = 1`` where and when ``u`` is uniform).

    ``u`` and ``m`` are sampled on a uniform lattice spanning the domain, ``shape`` nodes per
    axis (at least the mesh's nodes, and the simulation grid's): ``field`` ``(*shape, k)``
    (``k = 1`` for a scalar, ``d`` for velocity) and ``values`` ``(*shape,)``; ``domain``
    ``(d,)`` m. ``at(points (M, d) m) -> (M,)`` is ``m`` anywhere in the domain (multilinear
    between the lattice's nodes). ``alpha`` is the scene's strength (0: a uniform mesh).
    """

    field: np.ndarray
    values: np.ndarray
    domain: np.ndarray
    alpha: float
    at: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape


@dataclass(frozen=True)
class OutputMeshSpec:
    """What an output-mesh mover is made for: one ``[[output.meshes]]`` table.

    ``params`` is the validated table (``name``, ``nodes``, ``mover``, ``weights``, ``monitor``,
    ``alpha``, ``fields``); ``xi`` ``(M, d)`` m the uniform (computational) nodes over the domain
    ``[0, domain]``, ``nodes`` ``(d,)`` per axis, in lattice order (C order over ``nodes``: the
    last axis runs fastest), so ``xi.reshape(*nodes, d)`` is the lattice; ``weights`` the
    resolved weights file (None when the table names none); ``device`` where the simulation's
    torch runs (``"cpu"`` or ``"cuda"``), for a mover that runs a network.
    """

    params: Any
    nodes: tuple[int, ...]
    domain: np.ndarray
    xi: np.ndarray
    weights: Path | None = None
    device: str = "cpu"

    @property
    def dim(self) -> int:
        return len(self.nodes)


class OutputMeshMover(Protocol):
    """What :attr:`OutputMeshMoverType.create` returns: called once per output frame, never
    per step."""

    def move(self, monitor: Monitor) -> np.ndarray:
        """The node positions ``(M, d)`` m for this frame, in the order of ``spec.xi``.
        Boundary nodes must stay on their faces of the domain (sliding along them); the
        engine checks every frame that no cell is inverted (det > 0 at each corner of each
        cell), and where one is, or a node is off the domain or not finite, it warns and
        writes the uniform mesh instead."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """What the mover carries from frame to frame (e.g. the last map's potential), saved
        in checkpoints: NumPy arrays by name (``{}`` for none)."""
        ...

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's :meth:`state`."""
        ...


@dataclass(frozen=True)
class OutputMeshMoverType:
    """Places an output mesh's nodes each output frame: ``[[output.meshes]] mover = name``.

    Returned by ``engine_register_mesh_movers`` beside the body-surface movers
    (:class:`MeshMoverType`). ``create(spec: OutputMeshSpec) -> OutputMeshMover``, called when
    the run starts. ``weights``: whether the mover reads a ``weights`` file (then the table
    must name one, else it must not); ``check(params, dim, base_dir)`` returns problems with the
    table's keys (e.g. weights of another dimension) as :class:`ShapeIssue` (``key`` below
    ``output.meshes[i]``), when the scene is loaded. A learned mover (``x = xi + grad phi``
    from a network of the monitor) is one such record.
    """

    name: str
    create: Callable[[OutputMeshSpec], OutputMeshMover]
    weights: bool = False
    check: Callable[[Any, int, Path], list[ShapeIssue]] = lambda params, dim, base_dir: []


@dataclass(frozen=True)
class WriterType:
    """A result-file format, chosen by the output path's suffix.

    ``create(path, dim, scene_text, metadata)`` returns an object with
    ``write_frame(time, positions, point_data, diagnostics)``, ``n_frames`` and optionally
    ``close()`` (called when the run ends);
    ``resume(path, n_frames)`` reopens a file to continue after its first ``n_frames`` frames.
    """

    name: str
    suffixes: tuple[str, ...]
    create: Callable[..., Any]
    resume: Callable[[Path, int], Any]


@dataclass(frozen=True)
class ParticleField:
    """A per-particle array a plugin owns: the engine allocates, writes and restores it.

    ``components`` is ``()`` for a scalar, ``("d",)`` for a vector of the scene's dimension and
    ``("d", "d")`` for a tensor. ``initial(positions (N, d), body_id (N,))`` gives its values at
    seeding. Listed in ``output.fields`` under ``name``.
    """

    name: str
    components: tuple[str, ...]
    unit: str
    description: str
    initial: Callable[[np.ndarray, np.ndarray], np.ndarray]


Stage = Literal["before_particle_to_grid", "after_grid_update", "after_grid_to_particle"]


@dataclass(frozen=True)
class StageHook:
    """Per-step work at a fixed point of the step: ``run(simulation, dt)``, batched (a Taichi
    kernel launch or a torch call on whole arrays), never Python per particle."""

    name: str
    stage: Stage
    run: Callable[[Simulation, float], None]
    plugin: str = field(default="", compare=False)
