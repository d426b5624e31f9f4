"""The scene's obstacles as PyVista meshes at a given time: domain outline, planes, mesh and
outline colliders.

Read from the scene TOML stored in a result (overrides applied) with :mod:`tomllib`, not the full
scene loader, so results draw even where the plugins that made them are not installed. Relative
mesh and outline paths resolve against the scene file's folder, as in ``engine run``. Collider
types other than ``plane``, ``mesh`` and ``outline`` (from plugins) are not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvista as pv

from engine.geometry.rotation import rotation_matrix
from engine.geometry.seeding import MeshError, load_mesh
from engine.geometry.shapes import outline_loops
from engine.hooks.records import ShapeError
from engine.io import Result
from engine.scene.schema import OutlineColliderParams
from engine.viz import VizError
from engine.viz.results import parse_scene


@dataclass
class MovingMesh:
    """A rigid mesh (or outline) collider: its rest pose and constant velocities (the solver's
    convention).

    At time ``t`` a rest vertex ``x0`` is at ``R(angular_velocity t) (x0 - pivot) + pivot +
    velocity t``, as in :meth:`engine.solver.colliders.MeshCollider.row`.
    """

    mesh: pv.PolyData  # posed in place by :meth:`pose`
    rest_points: np.ndarray  # (V, 3) m, vertices at t = 0
    pivot: np.ndarray  # (3,) m, the collider's ``position``
    velocity: np.ndarray  # (3,) m/s
    angular_velocity: np.ndarray  # (3,) rad/s about the pivot

    def pose(self, time: float) -> None:
        """Move :attr:`mesh`'s vertices to where the collider is at ``time`` (s)."""
        rotation = rotation_matrix(self.angular_velocity * time)
        moved = (self.rest_points - self.pivot) @ rotation.T + self.pivot + self.velocity * time
        self.mesh.points = moved


class SceneGeometry:
    """Domain outline, plane colliders (static) and mesh colliders (moving) of one scene.

    Attributes:
        dim: 2 or 3; 2D scenes are drawn in the z = 0 plane.
        domain: (3,) m, the domain's extent (0 along z in 2D); it spans [0, domain].
        outline: the domain box's edges (lines).
        planes: each plane collider cut to the domain: a polygon in 3D, a segment in 2D.
        movers: the mesh colliders and outline colliders (closed lines at z = 0); :meth:`at`
            poses them.
    """

    def __init__(self, scene_text: str, base: Path) -> None:
        """Parse ``scene_text`` (TOML); ``base`` is the folder relative mesh paths start from."""
        scene = parse_scene(scene_text)
        simulation = scene.get("simulation", {})
        self.dim = int(simulation.get("dim", 2))
        self.domain = np.zeros(3)
        self.domain[: self.dim] = simulation.get("domain", [1.0] * self.dim)
        box = _domain_cell(self.domain)
        self.outline = box.extract_all_edges()
        colliders = scene.get("colliders", [])
        self.planes = [
            _plane_in_box(box, c["point"], c["normal"])
            for c in colliders
            if c.get("type") == "plane"
        ]
        makers = {"mesh": _mesh_collider, "outline": _outline_collider}
        self.movers = [makers[c["type"]](c, base) for c in colliders if c.get("type") in makers]

    @classmethod
    def from_result(cls, result: Result) -> SceneGeometry:
        """The geometry of the scene ``result`` was run from (its stored text and folder)."""
        base = Path(result.metadata.get("scene_file", result.path)).parent
        return cls(result.scene_text, base)

    def at(self, time: float) -> list[pv.PolyData]:
        """Every obstacle mesh at ``time`` (s): outline, planes, then mesh colliders.

        The same mesh objects are returned on every call; moving ones are updated in place.
        """
        for mover in self.movers:
            mover.pose(time)
        return [self.outline, *self.planes, *(mover.mesh for mover in self.movers)]


def _domain_cell(domain: np.ndarray) -> pv.ImageData:
    """One cell spanning [0, domain]: a hexahedron in 3D, a quad at z = 0 in 2D."""
    dimensions = [2 if size > 0 else 1 for size in domain]
    spacing = [size if size > 0 else 1.0 for size in domain]
    return pv.ImageData(dimensions=dimensions, spacing=spacing)


def _plane_in_box(box: pv.ImageData, point: list[float], normal: list[float]) -> pv.PolyData:
    """The plane through ``point`` with ``normal`` cut by the domain cell (empty if it misses)."""
    return box.slice(normal=_as_3d(normal), origin=_as_3d(point))


def _mesh_collider(params: dict, base: Path) -> MovingMesh:
    """A mesh collider's table, loaded and placed as the solver does it."""
    position = np.asarray(params.get("position", [0.0, 0.0, 0.0]), float)
    try:
        mesh = load_mesh(
            base / params["mesh"],
            params.get("scale", 1.0),
            position,
            params.get("rotation", [0.0, 0.0, 0.0]),
        )
    except MeshError as error:
        raise VizError(f"cannot draw a mesh collider: {error}") from None
    rest = np.asarray(mesh.vertices, float)
    return MovingMesh(
        mesh=pv.PolyData.from_regular_faces(rest.copy(), np.asarray(mesh.faces)),
        rest_points=rest,
        pivot=position,
        velocity=np.asarray(params.get("velocity", [0.0, 0.0, 0.0]), float),
        angular_velocity=np.asarray(params.get("angular_velocity", [0.0, 0.0, 0.0]), float),
    )


def _as_3d(vector: list[float]) -> np.ndarray:
    """A 2- or 3-vector zero-padded to (3,)."""
    padded = np.zeros(3)
    padded[: len(vector)] = vector
    return padded


def _outline_collider(params: dict, base: Path) -> MovingMesh:
    """An outline collider's table as closed lines at z = 0, placed as the solver does it."""
    try:
        loops = outline_loops(OutlineColliderParams.model_validate(params), base)
    except (ShapeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise VizError(f"cannot draw an outline collider: {error}") from None
    rest = np.concatenate([np.pad(loop, ((0, 0), (0, 1))) for loop in loops])
    starts = np.cumsum([0] + [len(loop) for loop in loops[:-1]])
    lines = np.concatenate(
        [
            [len(loop) + 1, *range(start, start + len(loop)), start]
            for loop, start in zip(loops, starts, strict=True)
        ]
    )
    return MovingMesh(
        mesh=pv.PolyData(rest.copy(), lines=lines),
        rest_points=rest,
        pivot=_as_3d(params.get("position", [0.0, 0.0])),
        velocity=_as_3d(params.get("velocity", [0.0, 0.0])),
        angular_velocity=np.array([0.0, 0.0, float(params.get("angular_velocity", 0.0))]),
    )
