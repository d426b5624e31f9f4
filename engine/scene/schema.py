"""The scene file contract (TOML), as pydantic models.

Every table forbids unknown keys. Material tables are a union of the registered material models'
parameter classes, chosen by their ``model`` key, so a material added through the registry is a
valid scene entry without editing this module. Cross-table checks (vector lengths against ``dim``,
bodies inside the domain, files that exist) live in :mod:`engine.scene.checks`.
"""

from __future__ import annotations

import functools
import operator
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from engine.registry import Registry


Vector = list[float]
BoundaryType = Literal["sticky", "slip", "separate"]

#: Per-particle fields the output may hold (material state variables add their own names).
BASE_FIELDS = (
    "velocity",
    "material_id",
    "body_id",
    "J",
    "F",
    "stress",
    "C",
    "mass",
    "volume",
)

#: Fields sampled from the particles at an output mesh's nodes (material state variables, e.g.
#: ``plastic_J`` or ``volume_correction``, add their own names).
SAMPLED_FIELDS = ("density", "velocity", "pressure")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Simulation(Strict):
    """``[simulation]``: the domain, grid, time stepping and solver options."""

    dim: Literal[2, 3] = Field(description="Spatial dimension.")
    domain: Vector = Field(description="Domain size per axis, m; the domain spans [0, domain].")
    resolution: int = Field(ge=4, le=2048, description="Grid cells along the longest side.")
    end_time: float = Field(gt=0, description="Simulated time, s.")
    frame_dt: float = Field(gt=0, description="Time between output frames, s.")
    dt: float | Literal["auto"] = Field(default="auto", description='Step size in s, or "auto".')
    cfl: float = Field(
        default=0.4, gt=0, le=1, description="CFL number for the automatic step size."
    )
    max_dt: float = Field(default=1e-3, gt=0, description="Upper bound on the automatic step, s.")
    gravity: Vector | None = Field(
        default=None, description="Gravity, m/s^2; default -9.81 along the second axis."
    )
    gravity_ramp: float = Field(
        default=0.0,
        ge=0,
        description="Time over which gravity rises smoothly from zero to full, s (0: full from "
        "the start). Loaded at once, an undamped elastic body rings (its support force swings "
        "between about 0 and twice its weight) and can slip where a steady load holds.",
    )
    boundary: BoundaryType = Field(default="separate", description="Condition on the domain walls.")
    boundary_friction: float = Field(
        default=0.0, ge=0, description="Coulomb friction coefficient on the walls."
    )
    transfer: Literal["apic", "flip"] = Field(
        default="apic", description="Particle-grid transfer: APIC, or a FLIP/PIC blend."
    )
    flip_blend: float = Field(
        default=0.95, ge=0, le=1, description="FLIP fraction of the FLIP/PIC blend (transfer=flip)."
    )
    body_contact: bool = Field(
        default=False,
        description="Bodies touch through the contact model (one grid field per body) instead "
        "of sticking together on a shared grid; at most 64 bodies, each costing a grid field; "
        "APIC only.",
    )
    body_friction: float = Field(
        default=0.0, ge=0, description="Coulomb coefficient between bodies (body_contact)."
    )
    contact: str = Field(
        default="coulomb", description="Contact model at colliders and walls (a plugin may add)."
    )
    arch: Literal["cpu", "gpu", "cuda"] = Field(
        default="cpu",
        description='Taichi backend: "cpu"; "gpu", the first GPU backend that starts (CUDA, '
        'Vulkan, Metal, OpenGL), else the CPU with a warning; "cuda", CUDA or an error.',
    )
    precision: Literal["f32", "f64"] = Field(default="f32", description="Floating-point precision.")
    seed: int = Field(default=0, ge=0, description="Seed of the particle jitter.")
    max_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description="Rollbacks per frame after NaN, escape or CFL violation, each halving dt.",
    )


class OutputMesh(Strict):
    """``[[output.meshes]]``: a mesh with a fixed node count over the domain whose nodes a mover
    places each output frame (where the monitor field changes), with particle fields sampled
    at its nodes; written to ``<output>_mesh_<name>.vtkhdf``."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Names the mesh and its file <output>_mesh_<name>.vtkhdf (letters, digits, "
        "_ and -).",
    )
    nodes: list[Annotated[int, Field(ge=2, le=4096)]] = Field(
        description="Nodes per axis (at least 2): quads in 2D, hexahedra in 3D."
    )
    mover: str = Field(
        default="uniform",
        description='How the nodes are placed: "uniform", "monge_ampere", "learned" (plugins may '
        "add).",
    )
    weights: str | None = Field(
        default=None, description="Weights file of a mover that reads one, relative to the scene."
    )
    monitor: str = Field(
        default="density",
        description="The sampled field whose gradient draws the nodes: "
        + ", ".join(SAMPLED_FIELDS)
        + ", or a material state variable.",
    )
    alpha: float = Field(
        default=1.0,
        ge=0,
        description="Monitor strength: m = 1 + alpha |grad u| / mean |grad u| (0: uniform).",
    )
    fields: list[str] = Field(
        default_factory=lambda: ["density", "velocity"],
        description="Fields sampled at the nodes each output frame: "
        + ", ".join(SAMPLED_FIELDS)
        + ", or a material state variable.",
    )


class Output(Strict):
    """``[output]``: where results go and which particle fields they hold."""

    path: str = Field(default="out/result.vtkhdf", description="Result file (.vtkhdf or .hdf).")
    fields: list[str] = Field(
        default_factory=lambda: ["velocity", "material_id", "J"],
        description="Per-particle fields written each frame: "
        + ", ".join(BASE_FIELDS)
        + ", or a material state variable.",
    )
    contact_data: Literal["none", "frame", "step"] = Field(
        default="none",
        description="Record what the contact stage sees and does at the interface nodes (for "
        'training contact models) to <output>_contact.h5: at the last step of each "frame", '
        'or every "step"; needs body_contact.',
    )
    meshes: list[OutputMesh] = Field(
        default_factory=list,
        description="Output meshes ([[output.meshes]]): fields sampled at moving nodes.",
    )
    checkpoint_every: int = Field(
        default=10, ge=1, description="Frames between full-state checkpoints (for --resume)."
    )
    checkpoint_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Also checkpoint after a frame once this much wall-clock time (s) has "
        "passed since the last checkpoint, whichever of the two comes first.",
    )


class BodyBase(Strict):
    """Keys every body has, whatever its shape."""

    material: str = Field(description="Name of a [materials.<name>] table.")
    velocity: Vector | None = Field(default=None, description="Initial velocity, m/s.")
    angular_velocity: float | Vector | None = Field(
        default=None,
        description="Initial angular velocity about the body's centroid, rad/s "
        "(a number in 2D, a vector in 3D).",
    )
    particles_per_cell: float = Field(
        default=4.0, gt=0, le=125, description="Particles per grid cell."
    )
    jitter: float = Field(
        default=0.3, ge=0, le=1, description="Random offset of the seeding lattice, in spacings."
    )
    mover: str | None = Field(
        default=None,
        description='Surface mover for shapes with a surface (mesh): default "advect", "none" off.',
    )


class MeshTransform(Strict):
    mesh: str = Field(description="Triangle mesh file (obj, stl, ply, ...), relative to the scene.")
    scale: float | Vector = Field(default=1.0, description="Scale factor(s) applied first.")
    rotation: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0], description="XYZ Euler angles, degrees."
    )
    position: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0], description="Translation applied last, m."
    )


class OutlineTransform(Strict):
    points: list[Vector] | None = Field(
        default=None,
        description="Corners [[x, y], ...] of a closed outline, m; the last joins the first.",
    )
    path: str | None = Field(
        default=None, description="SVG or DXF file of closed paths, relative to the scene."
    )
    scale: float | Vector = Field(default=1.0, description="Scale factor(s) applied first.")
    rotation: float = Field(default=0.0, description="Counter-clockwise angle about z, degrees.")
    position: Vector = Field(
        default_factory=lambda: [0.0, 0.0], description="Translation applied last, m."
    )


class ColliderBase(Strict):
    boundary: BoundaryType = Field(default="slip", description="Contact condition.")
    friction: float = Field(default=0.0, ge=0, description="Coulomb friction coefficient.")


class PlaneCollider(ColliderBase):
    """A static half-space: everything behind ``point`` along ``-normal`` is solid."""

    type: Literal["plane"]
    point: Vector = Field(description="A point on the plane, m.")
    normal: Vector = Field(description="Normal pointing to the free side.")


class MeshColliderParams(ColliderBase, MeshTransform):
    """A rigid triangle mesh moving with a prescribed velocity (3D scenes)."""

    type: Literal["mesh"]
    velocity: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0], description="Linear velocity, m/s."
    )
    angular_velocity: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0],
        description="Angular velocity about `position`, rad/s.",
    )
    sdf_spacing: float | None = Field(
        default=None, gt=0, description="Spacing of its signed distance field, m (default dx/2)."
    )


class OutlineColliderParams(ColliderBase, OutlineTransform):
    """A rigid closed 2D outline moving with a prescribed velocity (2D scenes)."""

    type: Literal["outline"]
    velocity: Vector = Field(
        default_factory=lambda: [0.0, 0.0], description="Linear velocity, m/s."
    )
    angular_velocity: float = Field(
        default=0.0, description="Counter-clockwise angular velocity about `position`, rad/s."
    )
    sdf_spacing: float | None = Field(
        default=None, gt=0, description="Spacing of its signed distance field, m (default dx/2)."
    )


class Plugins(Strict):
    """``[plugins]``: extra plugins this scene needs (loading a plugin runs its code)."""

    load: list[str] = Field(
        default_factory=list,
        description="Importable module names, or .py files relative to the scene.",
    )


def _union(classes: list[type[BaseModel]], tag: str):
    """``Annotated[A | B | ..., Field(discriminator=tag)]`` (a lone class needs no union)."""
    union = functools.reduce(operator.or_, classes)
    return Annotated[union, Field(discriminator=tag)] if len(classes) > 1 else union


@lru_cache(maxsize=16)
def _scene_model(materials: tuple, shapes: tuple, colliders: tuple) -> type[BaseModel]:
    material = _union([cls.Params for cls in materials], "model")
    body = _union([shape.Params for shape in shapes], "shape")
    collider = _union([kind.Params for kind in colliders], "type")

    class Scene(Strict):
        """A whole scene file."""

        simulation: Simulation
        output: Output = Field(default_factory=Output)
        plugins: Plugins = Field(default_factory=Plugins)
        materials: dict[str, material] = Field(description="Materials by name.")  # type: ignore
        bodies: list[body] = Field(min_length=1, description="Bodies to seed.")  # type: ignore
        colliders: list[collider] = Field(  # type: ignore
            default_factory=list, description="Obstacles."
        )
        contact: dict[str, Any] = Field(
            default_factory=dict,
            description="Parameters of the contact model that simulation.contact names (for "
            'a torch model, e.g. weights = "models/contact.pt"); only keys that model takes.',
        )

    return Scene


def scene_model(registry: Registry) -> type[BaseModel]:
    """The pydantic model of a scene for what ``registry`` holds."""
    return _scene_model(
        tuple(registry.materials.values()),
        tuple(registry.shapes.values()),
        tuple(registry.colliders.values()),
    )
