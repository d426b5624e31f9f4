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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.materials import MATERIALS

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
    arch: Literal["cpu", "gpu"] = Field(default="cpu", description="Taichi backend.")
    precision: Literal["f32", "f64"] = Field(default="f32", description="Floating-point precision.")
    seed: int = Field(default=0, ge=0, description="Seed of the particle jitter.")


class Output(Strict):
    """``[output]``: where results go and which particle fields they hold."""

    path: str = Field(default="out/result.vtkhdf", description="Result file (.vtkhdf or .hdf).")
    fields: list[str] = Field(
        default_factory=lambda: ["velocity", "material_id", "J"],
        description="Per-particle fields written each frame: "
        + ", ".join(BASE_FIELDS)
        + ", or a material state variable.",
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


class BoxBody(BodyBase):
    shape: Literal["box"]
    min: Vector = Field(description="Lower corner, m.")
    max: Vector = Field(description="Upper corner, m.")


class SphereBody(BodyBase):
    shape: Literal["sphere"]
    center: Vector = Field(description="Centre, m.")
    radius: float = Field(gt=0, description="Radius, m.")


class CylinderBody(BodyBase):
    shape: Literal["cylinder"]
    center: Vector = Field(description="Centre of the cylinder's middle, m.")
    radius: float = Field(gt=0, description="Radius, m.")
    height: float = Field(gt=0, description="Length along the axis, m.")
    axis: Literal["x", "y", "z"] = Field(default="y", description="Axis direction.")


class MeshTransform(Strict):
    mesh: str = Field(description="Triangle mesh file (obj, stl, ply, ...), relative to the scene.")
    scale: float | Vector = Field(default=1.0, description="Scale factor(s) applied first.")
    rotation: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0], description="XYZ Euler angles, degrees."
    )
    position: Vector = Field(
        default_factory=lambda: [0.0, 0.0, 0.0], description="Translation applied last, m."
    )


class MeshBody(BodyBase, MeshTransform):
    shape: Literal["mesh"]


Body = Annotated[BoxBody | SphereBody | CylinderBody | MeshBody, Field(discriminator="shape")]


class ColliderBase(Strict):
    boundary: BoundaryType = Field(default="slip", description="Contact condition.")
    friction: float = Field(default=0.0, ge=0, description="Coulomb friction coefficient.")


class PlaneCollider(ColliderBase):
    """A static half-space: everything behind ``point`` along ``-normal`` is solid."""

    type: Literal["plane"]
    point: Vector = Field(description="A point on the plane, m.")
    normal: Vector = Field(description="Outward normal (towards the free side).")


class MeshCollider(ColliderBase, MeshTransform):
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


Collider = Annotated[PlaneCollider | MeshCollider, Field(discriminator="type")]


@lru_cache(maxsize=8)
def _scene_model(material_models: tuple[str, ...]) -> type[BaseModel]:
    params = tuple(MATERIALS[name].Params for name in material_models)
    union = functools.reduce(operator.or_, params)  # Params1 | Params2 | ...
    material = Annotated[union, Field(discriminator="model")]

    class Scene(Strict):
        """A whole scene file."""

        simulation: Simulation
        output: Output = Field(default_factory=Output)
        materials: dict[str, material] = Field(description="Materials by name.")  # type: ignore
        bodies: list[Body] = Field(min_length=1, description="Bodies to seed with particles.")
        colliders: list[Collider] = Field(default_factory=list, description="Obstacles.")

    return Scene


def scene_model() -> type[BaseModel]:
    """The pydantic model of a scene for the materials registered now."""
    return _scene_model(tuple(MATERIALS))
