"""Hook specifications: every way a plugin can extend the engine.

Registration hooks are called once per run (when a scene is loaded) and return lists of typed
records; per-step work is handed over as batched callables that the engine composes once. Each
hook's docstring says when it is called and what it may return. Built-in materials, shapes,
colliders, the contact model and the writer are registered through these same hooks
(:mod:`engine.builtins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.hooks import hookspec

if TYPE_CHECKING:
    from engine.hooks.records import (
        ColliderType,
        ContactModel,
        MeshMoverType,
        OutputMeshMoverType,
        ParticleField,
        RunSummary,
        ShapeType,
        Simulation,
        StageHook,
        WriterType,
    )


@hookspec
def engine_register_materials() -> list[type]:
    """Material models: subclasses of :class:`engine.materials.base.Material` (Taichi functions
    compiled into the constitutive stage) or :class:`engine.materials.torch_base.TorchMaterial`
    (batched torch: ``F (N, d, d)`` → Kirchhoff stress ``(N, d, d)``, Pa, with an optional plastic
    projection ``F_trial (N, d, d) → F_elastic (N, d, d)``). Called when a scene is loaded; the
    class's ``name`` is the scene's ``model``. Duplicate names are an error."""


@hookspec
def engine_register_shapes() -> list[ShapeType]:
    """Seeding shapes for ``[[bodies]] shape = ...``. Called when a scene is loaded."""


@hookspec
def engine_register_colliders() -> list[ColliderType]:
    """Obstacle types for ``[[colliders]] type = ...``. Called when a scene is loaded."""


@hookspec
def engine_register_contact_models() -> list[ContactModel]:
    """Contact models for ``simulation.contact = ...`` (default ``"coulomb"``): a Taichi
    response compiled into the grid update, and/or a torch model created when the run starts
    (``create(params, simulation)``, with ``params`` the scene's ``[contact]`` table validated
    by ``Params``) and called once per step on an ``engine.hooks.records.ContactView``,
    returning per-body velocity corrections ``(M, B, d)`` m/s. Called when a scene is loaded."""


@hookspec
def engine_register_mesh_movers() -> list[MeshMoverType | OutputMeshMoverType]:
    """Mesh movers, of two kinds: :class:`MeshMoverType` records move a mesh body's surface
    every step (``[[bodies]] mover = ...``, default ``"advect"``); :class:`OutputMeshMoverType`
    records place an output mesh's nodes once per output frame (``[[output.meshes]] mover =
    ...``, default ``"uniform"``): ``create`` when the run starts, ``move(monitor)`` each output
    frame, ``state()`` / ``set_state()`` for checkpoints. Called when a scene is loaded."""


@hookspec
def engine_register_writers() -> list[WriterType]:
    """Result-file formats, chosen by the output path's suffix. Called when a scene is loaded."""


@hookspec
def engine_register_particle_fields() -> list[ParticleField]:
    """Per-particle arrays a plugin owns (name, shape, unit): allocated at seeding, written when
    listed in ``output.fields``, kept in checkpoints. Called when a scene is loaded."""


@hookspec
def engine_register_stages(simulation: Simulation) -> list[StageHook]:
    """Per-step work at ``before_particle_to_grid``, ``after_grid_update`` or
    ``after_grid_to_particle``. Called once when the run starts; each returned ``run(sim, dt)``
    is then called every step. Return ``[]`` (or nothing) to add none."""


@hookspec
def engine_run_start(simulation: Simulation) -> None:
    """Called once after seeding, before the first frame is written."""


@hookspec
def engine_frame(simulation: Simulation, frame: int) -> dict[str, Any] | None:
    """Called after each output frame is computed, with read access to the state (for example
    ``simulation.numpy("x")``). May return diagnostics ``{name: float or (k,) array}``; they are
    recorded per frame in the result file under ``/engine/diagnostics/<name>``. May return
    None."""


@hookspec
def engine_run_end(simulation: Simulation, summary: RunSummary | None) -> None:
    """Called once when the run ends; ``summary`` is None when it failed."""
