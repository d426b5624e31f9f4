"""Transient VTKHDF writers: particle frames, moving triangle surfaces and moving meshes.

One file holds every frame of a run, one part per frame. Layout (VTKHDF 2.2, readable by
VTK >= 9.3 and ParaView):

- ``/VTKHDF``: attributes ``Version = [2, 2]`` and ``Type`` (fixed-length ASCII):
  ``"PolyData"`` for particles and surfaces, ``"UnstructuredGrid"`` for meshes.
- ``/VTKHDF/Points`` (sum N_t, 3) m, ``/VTKHDF/NumberOfPoints`` (T,).
- Cells on part-local point ids, written per frame (VTK < 9.4 needs per-step topology): for
  PolyData in ``/VTKHDF/{Vertices,Lines,Polygons,Strips}`` (:class:`ParticleWriter` writes one
  vertex cell per particle, :class:`SurfaceWriter` one polygon per triangle; the other
  topologies stay empty); for an UnstructuredGrid in ``/VTKHDF`` itself, with the VTK cell type
  of each cell in ``Types`` (:class:`MeshWriter`: quads in 2D, hexahedra in 3D).
- ``/VTKHDF/PointData/<name>``: (sum N_t,) scalars, (sum N_t, 3) vectors, (sum N_t, 9) tensors.
- ``/VTKHDF/Steps``: ``NSteps`` attribute plus per-step ``Values`` (s) and offsets
  (``CellOffsets`` and ``ConnectivityIdOffsets`` (T, topologies): 4 for PolyData, 1 for an
  UnstructuredGrid).
- ``/engine``: ``dim``, ``kind`` (``"particles"``, ``"surface"`` or ``"mesh"``) and metadata
  attributes, ``scene`` (TOML text), ``point_data`` (the kind of each field as attributes) and
  ``diagnostics/<name>`` (T,) or (T, k).

HDF5 files are not crash-safe while open for writing, so frames are written into a shadow copy
(``<name>.shadow``) that then replaces the result file with one atomic rename; the old file
becomes the next shadow; a new file is likewise made aside and renamed in. A process killed at
any moment leaves a result file whose frames are all complete. Within a file, the ``Steps``
entries (``NSteps`` last) are written after the bulk data, and each frame's rows go to chunks of
their own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import h5py
import numpy as np

VTKHDF_VERSION = (2, 2)
TOPOLOGIES = ("Vertices", "Lines", "Polygons", "Strips")  # a PolyData's, in the Steps order
CELLS = ""  # an UnstructuredGrid's one topology: its datasets sit in /VTKHDF itself
SCALAR, VECTOR, TENSOR = "scalar", "vector", "tensor"
PARTICLES, SURFACE, MESH = "particles", "surface", "mesh"
#: VTK cell types of a mesh's cells: quads in 2D, hexahedra in 3D (corners as in VTK).
VTK_QUAD, VTK_HEXAHEDRON = 9, 12


def surface_path(path: Path) -> Path:
    """Where mesh movers' surfaces go: ``out/name.vtkhdf`` -> ``out/name_surface.vtkhdf``."""
    return path.with_name(f"{path.stem}_surface{path.suffix}")


def mesh_path(path: Path, name: str) -> Path:
    """Where output mesh ``name`` goes: ``out/run.vtkhdf`` -> ``out/run_mesh_<name>.vtkhdf``."""
    return path.with_name(f"{path.stem}_mesh_{name}{path.suffix}")


RESERVED_METADATA = ("dim", "kind")

_INT32 = np.iinfo(np.int32)


def pad_components(array: np.ndarray, dim: int) -> np.ndarray:
    """Pad per-point vectors and tensors to the 3-D layout VTK expects.

    Args:
        array: (N,) scalars, (N, dim) vectors or (N, dim, dim) tensors.
        dim: spatial dimension, 2 or 3.

    Returns:
        (N,) unchanged, (N, 3) vectors with zero z, or (N, 9) row-major 3x3 tensors with zero
        third row and column in 2-D.
    """
    _check_dim(dim)
    kind = field_kind(array.shape, dim)
    if kind == SCALAR:
        return array
    n = array.shape[0]
    if kind == VECTOR:
        padded = np.zeros((n, 3), dtype=array.dtype)
        padded[:, :dim] = array
        return padded
    padded = np.zeros((n, 3, 3), dtype=array.dtype)
    padded[:, :dim, :dim] = array
    return padded.reshape(n, 9)


def unpad_components(array: np.ndarray, dim: int, kind: str) -> np.ndarray:
    """Undo :func:`pad_components`: (N,) -> (N,), (N, 3) -> (N, dim), (N, 9) -> (N, dim, dim)."""
    if kind == SCALAR:
        return array
    if kind == VECTOR:
        return array[:, :dim]
    return array.reshape(-1, 3, 3)[:, :dim, :dim]


def field_kind(shape: tuple[int, ...], dim: int) -> str:
    """Classify a per-point array shape (N,), (N, dim), (N, dim, dim) as scalar/vector/tensor."""
    trailing = tuple(shape[1:])
    if trailing == ():
        return SCALAR
    if trailing == (dim,):
        return VECTOR
    if trailing == (dim, dim):
        return TENSOR
    raise ValueError(
        f"per-point array of shape {shape} is not (N,), (N, {dim}) or (N, {dim}, {dim})"
    )


@dataclass(frozen=True)
class _FieldSpec:
    """What must stay the same for a point-data field across frames."""

    kind: str
    is_integer: bool


class _Cells(NamedTuple):
    """One topology's cells of one frame, on part-local point ids.

    ``offsets`` (n_cells + 1,) int64 starts at 0; ``connectivity`` (offsets[-1],) int64;
    ``types`` (n_cells,) uint8 VTK cell types (an UnstructuredGrid's), or None.
    """

    offsets: np.ndarray
    connectivity: np.ndarray
    types: np.ndarray | None = None


_NO_CELLS = _Cells(np.zeros(1, np.int64), np.zeros(0, np.int64))


@dataclass(frozen=True)
class _Frame:
    """One checked frame and where it goes: step index and the totals before it."""

    step: int
    time: float
    start: int  # points before this frame
    points: np.ndarray  # (N, 3)
    arrays: dict[str, np.ndarray]
    kinds: dict[str, str]
    diagnostics: dict[str, np.ndarray]
    cells: dict[str, _Cells]
    cells_before: list[int]
    ids_before: list[int]


def _topology_group(root: h5py.Group, topology: str) -> h5py.Group:
    """The group holding one topology's cells: its own for PolyData, the root for ``CELLS``."""
    return root[topology] if topology else root


def _write_frame(f: h5py.File, frame: _Frame) -> None:
    """Append one frame to an open file; the Steps entries (``NSteps`` last) come last."""
    root = f["VTKHDF"]
    if frame.step == 0:
        f["engine/point_data"].attrs.update(frame.kinds)
    _append(root, "Points", frame.start, frame.points, bulk=True)
    for name, values in frame.arrays.items():
        _append(root["PointData"], name, frame.start, values, bulk=True)
    _append(root, "NumberOfPoints", frame.step, np.array([len(frame.points)], dtype=np.int64))
    for (topology, cells), n_cells, n_ids in zip(
        frame.cells.items(), frame.cells_before, frame.ids_before, strict=True
    ):
        _write_cells(_topology_group(root, topology), frame.step, n_cells, n_ids, cells)
    for name, values in frame.diagnostics.items():
        _append(f["engine/diagnostics"], name, frame.step, values[None])
    _write_steps(
        root,
        frame.step,
        frame.time,
        frame.start,
        frame.cells_before,
        frame.ids_before,
        frame.arrays,
    )


class _TransientWriter:
    """Shared machinery of the transient writers: one part per frame.

    Subclasses set :attr:`kind` (stored as ``/engine`` attribute ``kind``), the VTK data set
    type :attr:`vtk_type` and its :attr:`topologies`, and turn their frame into padded points
    plus cells per topology for :meth:`_append_frame`.

    Args:
        path: output file; parent folders are created and an existing file is overwritten.
        dim: spatial dimension, 2 or 3.
        scene_text: the scene TOML, stored as ``/engine/scene``.
        metadata: string attributes for ``/engine`` (e.g. ``engine_version``).
    """

    kind: ClassVar[str]
    vtk_type: ClassVar[str] = "PolyData"
    topologies: ClassVar[tuple[str, ...]] = TOPOLOGIES

    def __init__(
        self, path: str | Path, dim: int, scene_text: str, metadata: dict[str, str]
    ) -> None:
        _check_dim(dim)
        clash = sorted(set(metadata) & set(RESERVED_METADATA))
        if clash:
            raise ValueError(f"metadata keys {clash} are reserved")
        self.path = Path(path)
        self.dim = dim
        self._n_frames = 0
        self._n_points_total = 0
        self._n_cells_total = dict.fromkeys(self.topologies, 0)
        self._n_ids_total = dict.fromkeys(self.topologies, 0)
        self._fields: dict[str, _FieldSpec] | None = None
        self._diagnostics: dict[str, tuple[int, ...]] | None = None
        self._pending: _Frame | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self._shadow, "w") as f:
            _write_vtkhdf_skeleton(f, self.vtk_type, self.topologies)
            _write_engine_group(f, dim, scene_text, metadata, self.kind)
        fresh = self.path.with_name(self.path.name + ".new")
        shutil.copyfile(self._shadow, fresh)
        os.replace(fresh, self.path)  # killed at any moment: no result file or a readable one

    def close(self) -> None:
        """Drop the shadow copy (a resumed writer rebuilds it from the result file)."""
        self._shadow.unlink(missing_ok=True)

    @property
    def _shadow(self) -> Path:
        """The copy frames are written into before it replaces the result file."""
        return self.path.with_name(self.path.name + ".shadow")

    @property
    def n_frames(self) -> int:
        """Number of frames completely written."""
        return self._n_frames

    @classmethod
    def resume(cls, path: str | Path, n_frames: int):
        """Continue a file after its first ``n_frames`` frames (later ones are dropped).

        Used to continue a run from a checkpoint: the frames after it are recomputed. The
        result file itself is only read; the shadow copy is rebuilt from it.
        """
        writer = cls.__new__(cls)
        writer.path = Path(path)
        writer._fields = writer._diagnostics = writer._pending = None
        with h5py.File(writer.path, "r") as f:
            root, steps = f["VTKHDF"], f["VTKHDF/Steps"]
            if not 0 < n_frames <= int(steps.attrs["NSteps"]):
                raise ValueError(f"{path} has {int(steps.attrs['NSteps'])} frames, not {n_frames}")
            writer.dim = int(f["engine"].attrs["dim"])
            last = n_frames - 1
            writer._n_frames = n_frames
            writer._n_points_total = int(steps["PointOffsets"][last] + root["NumberOfPoints"][last])
            writer._n_cells_total, writer._n_ids_total = {}, {}
            for column, topology in enumerate(writer.topologies):
                group = _topology_group(root, topology)
                writer._n_cells_total[topology] = int(
                    steps["CellOffsets"][last, column] + group["NumberOfCells"][last]
                )
                writer._n_ids_total[topology] = int(
                    steps["ConnectivityIdOffsets"][last, column]
                    + group["NumberOfConnectivityIds"][last]
                )
        shutil.copyfile(writer.path, writer._shadow)
        with h5py.File(writer._shadow, "a") as f:
            f["VTKHDF/Steps"].attrs["NSteps"] = np.int64(n_frames)
        return writer

    def _append_frame(
        self,
        time: float,
        points: np.ndarray,
        point_data: Mapping[str, np.ndarray],
        diagnostics: Mapping[str, float | np.ndarray],
        cells: Mapping[str, _Cells],
    ) -> None:
        """Validate the rest of a frame, append it and close the file.

        Args:
            time: simulation time, s.
            points: (N, 3) points already checked and padded by :meth:`_check_points`.
            point_data: raw per-point arrays, checked here.
            diagnostics: raw diagnostics, checked here.
            cells: topology name -> this frame's cells; missing topologies are empty.
        """
        arrays, fields = self._check_point_data(point_data, len(points))
        diags, diag_shapes = self._check_diagnostics(diagnostics)
        cells = {topology: cells.get(topology, _NO_CELLS) for topology in self.topologies}
        self._fields, self._diagnostics = fields, diag_shapes
        frame = _Frame(
            step=self._n_frames,
            time=time,
            start=self._n_points_total,
            points=points,
            arrays=arrays,
            kinds={k: spec.kind for k, spec in fields.items()},
            diagnostics=diags,
            cells=cells,
            cells_before=[self._n_cells_total[topology] for topology in self.topologies],
            ids_before=[self._n_ids_total[topology] for topology in self.topologies],
        )
        self._commit(frame)
        self._n_frames += 1
        self._n_points_total += len(points)
        for topology, frame_cells in cells.items():
            self._n_cells_total[topology] += len(frame_cells.offsets) - 1
            self._n_ids_total[topology] += len(frame_cells.connectivity)

    def _commit(self, frame: _Frame) -> None:
        """Write ``frame`` into the shadow copy (bringing it level first), then swap the copy
        in for the result file with one atomic rename: a process killed at any moment leaves
        a result file whose frames are all complete. The old file becomes the next shadow."""
        with h5py.File(self._shadow, "a") as f:
            for pending in (self._pending, frame):
                if pending is not None:
                    _write_frame(f, pending)
        previous = self.path.with_name(self.path.name + ".previous")
        previous.unlink(missing_ok=True)
        try:
            os.link(self.path, previous)  # keep the old file reachable through the swap
        except OSError:  # a file system without hard links
            shutil.copyfile(self.path, previous)
        os.replace(self._shadow, self.path)
        os.replace(previous, self._shadow)
        self._pending = frame

    def _check_points(self, points: np.ndarray, what: str) -> np.ndarray:
        """Validate (N, dim) ``what`` and return them padded to (N, 3) float."""
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(f"{what} must be (N, {self.dim}), got {points.shape}")
        return pad_components(_as_float(points), self.dim)

    def _check_point_data(
        self, point_data: Mapping[str, np.ndarray], n: int
    ) -> tuple[dict[str, np.ndarray], dict[str, _FieldSpec]]:
        """Validate per-point arrays against the first frame; return them padded and cast."""
        specs: dict[str, _FieldSpec] = {}
        stored: dict[str, np.ndarray] = {}
        for name, raw in point_data.items():
            _check_name(name)
            array = np.asarray(raw)
            if array.shape[:1] != (n,):
                raise ValueError(f"point data {name!r} has shape {array.shape}, expected N = {n}")
            is_integer = array.dtype.kind in "biu"
            specs[name] = _FieldSpec(field_kind(array.shape, self.dim), is_integer)
            stored[name] = pad_components(
                _as_int32(array) if is_integer else _as_float(array), self.dim
            )
        _check_unchanged("point data", self._fields, specs)
        return stored, specs

    def _check_diagnostics(
        self, diagnostics: Mapping[str, float | np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
        """Validate diagnostics (scalars or 1-D arrays) against the first frame."""
        values = {name: np.asarray(value, dtype=np.float64) for name, value in diagnostics.items()}
        for name, value in values.items():
            _check_name(name)
            if value.ndim > 1:
                raise ValueError(f"diagnostic {name!r} must be a scalar or 1-D, got {value.shape}")
        shapes = {name: value.shape for name, value in values.items()}
        _check_unchanged("diagnostics", self._diagnostics, shapes)
        return values, shapes


class ParticleWriter(_TransientWriter):
    """Append particle frames to one .vtkhdf file: one vertex cell per particle.

    Constructor arguments as for the base class.
    """

    kind = PARTICLES

    def write_frame(
        self,
        time: float,
        positions: np.ndarray,
        point_data: Mapping[str, np.ndarray],
        diagnostics: Mapping[str, float | np.ndarray],
    ) -> None:
        """Append one frame and close the file.

        Args:
            time: simulation time, s.
            positions: (N, dim) particle positions, m; stored as (N, 3), zero z in 2-D.
            point_data: name -> (N,), (N, dim) or (N, dim, dim) per-particle array. Integer and
                boolean arrays are stored as int32, floating ones keep their precision.
            diagnostics: name -> scalar or 1-D array (k,), appended to
                ``/engine/diagnostics/<name>`` as (T,) or (T, k) float64.

        Raises:
            ValueError: on a bad shape, or field / diagnostic names or shapes that differ from
                the first frame.
        """
        points = self._check_points(positions, "positions")
        self._append_frame(time, points, point_data, diagnostics, self._topology(len(points)))

    @staticmethod
    def _topology(n: int) -> dict[str, _Cells]:
        """n vertex cells on part-local point ids 0..n-1."""
        ids = np.arange(n + 1, dtype=np.int64)
        return {"Vertices": _Cells(ids, ids[:-1])}


class SurfaceWriter(_TransientWriter):
    """Append frames of a moving triangle surface to one .vtkhdf file.

    The triangles go in the ``Polygons`` topology, rewritten every frame (VTK < 9.4 reads
    per-step topology only), so vertex and face counts may change between frames.

    Constructor arguments as for the base class.
    """

    kind = SURFACE

    def write_frame(
        self,
        time: float,
        vertices: np.ndarray,
        faces: np.ndarray,
        point_data: Mapping[str, np.ndarray],
        diagnostics: Mapping[str, float | np.ndarray] | None = None,
    ) -> None:
        """Append one frame and close the file.

        Args:
            time: simulation time, s.
            vertices: (V, dim) vertex positions, m; stored as (V, 3), zero z in 2-D.
            faces: (F, 3) integer vertex ids of each triangle, 0 <= id < V.
            point_data: name -> (V,), (V, dim) or (V, dim, dim) per-vertex array, stored as in
                :meth:`ParticleWriter.write_frame`.
            diagnostics: as in :meth:`ParticleWriter.write_frame`; None means none.

        Raises:
            ValueError: on a bad shape or vertex id, or field / diagnostic names or shapes
                that differ from the first frame.
        """
        points = self._check_points(vertices, "vertices")
        cells = self._topology(faces, len(points))
        self._append_frame(time, points, point_data, diagnostics or {}, cells)

    @staticmethod
    def _topology(faces: np.ndarray, n: int) -> dict[str, _Cells]:
        """Triangles (F, 3) on vertex ids 0..n-1 as polygon cells."""
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {faces.shape}")
        if faces.size and faces.dtype.kind not in "iu":
            raise ValueError(f"faces must be integer vertex ids, got dtype {faces.dtype}")
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise ValueError(
                f"face vertex ids must lie in [0, {n}), got {faces.min()}..{faces.max()}"
            )
        offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
        return {"Polygons": _Cells(offsets, faces.astype(np.int64).ravel())}


class MeshWriter(_TransientWriter):
    """Append frames of a moving structured mesh (fixed topology) to one .vtkhdf file, as a
    transient UnstructuredGrid: quads (VTK_QUAD) in 2D, hexahedra (VTK_HEXAHEDRON) in 3D.

    Constructor arguments as for the base class.
    """

    kind = MESH
    vtk_type = "UnstructuredGrid"
    topologies = (CELLS,)

    def write_frame(
        self,
        time: float,
        nodes: np.ndarray,
        cells: np.ndarray,
        point_data: Mapping[str, np.ndarray],
        diagnostics: Mapping[str, float | np.ndarray] | None = None,
    ) -> None:
        """Append one frame and close the file.

        Args:
            time: simulation time, s.
            nodes: (M, dim) node positions, m; stored as (M, 3), zero z in 2-D.
            cells: (C, 4) quads in 2-D or (C, 8) hexahedra in 3-D, node ids in VTK's corner
                order (counter-clockwise; a hexahedron's bottom face, then its top face).
            point_data: name -> (M,), (M, dim) or (M, dim, dim) per-node array, stored as in
                :meth:`ParticleWriter.write_frame`.
            diagnostics: as in :meth:`ParticleWriter.write_frame`; None means none.

        Raises:
            ValueError: on a bad shape or node id, or field / diagnostic names or shapes that
                differ from the first frame.
        """
        points = self._check_points(nodes, "nodes")
        corners = 2**self.dim
        cells = np.asarray(cells)
        if cells.ndim != 2 or cells.shape[1] != corners or cells.dtype.kind not in "iu":
            raise ValueError(f"cells must be (C, {corners}) integer node ids, got {cells.shape}")
        if cells.size and (cells.min() < 0 or cells.max() >= len(points)):
            raise ValueError(f"cell node ids must lie in [0, {len(points)})")
        offsets = np.arange(0, corners * len(cells) + 1, corners, dtype=np.int64)
        kind = VTK_QUAD if self.dim == 2 else VTK_HEXAHEDRON
        types = np.full(len(cells), kind, dtype=np.uint8)
        topology = {CELLS: _Cells(offsets, cells.astype(np.int64).ravel(), types)}
        self._append_frame(time, points, point_data, diagnostics or {}, topology)


def _check_dim(dim: int) -> None:
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")


def _check_name(name: str) -> None:
    if not name or "/" in name or name == ".":
        raise ValueError(f"invalid array name {name!r}")


def _check_unchanged(what: str, before: dict | None, now: dict) -> None:
    """Raise ValueError unless ``now`` matches the first frame's ``before`` (None before it)."""
    if before is not None and before != now:
        raise ValueError(f"{what} changed between frames: first frame had {before}, now {now}")


def _as_float(array: np.ndarray) -> np.ndarray:
    """Keep float32/float64 precision; anything else becomes float64."""
    if array.dtype in (np.float32, np.float64):
        return array
    return array.astype(np.float64)


def _as_int32(array: np.ndarray) -> np.ndarray:
    """Cast an integer or boolean array to int32, refusing values that do not fit."""
    if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
        raise ValueError("integer point data does not fit in int32")
    return array.astype(np.int32)


def _write_vtkhdf_skeleton(f: h5py.File, vtk_type: str, topologies: tuple[str, ...]) -> None:
    """Create /VTKHDF with its attributes and groups; datasets appear with the first frame."""
    root = f.create_group("VTKHDF")
    root.attrs["Version"] = np.array(VTKHDF_VERSION, dtype=np.int64)
    root.attrs["Type"] = np.bytes_(vtk_type)  # fixed-length ASCII: VTK 9.3/9.4 need it
    root.create_group("PointData", track_order=True)
    for topology in topologies:
        if topology:
            root.create_group(topology)
    steps = root.create_group("Steps")
    steps.attrs["NSteps"] = np.int64(0)
    steps.create_group("PointDataOffsets", track_order=True)


def _write_engine_group(
    f: h5py.File, dim: int, scene_text: str, metadata: Mapping[str, str], kind: str
) -> None:
    """Create /engine: dim, kind and metadata attributes, scene text, empty field kinds and
    diagnostics."""
    engine = f.create_group("engine")
    engine.attrs["dim"] = np.int64(dim)
    engine.attrs["kind"] = kind
    for key, value in metadata.items():
        engine.attrs[key] = str(value)
    engine.create_dataset("scene", data=scene_text, dtype=h5py.string_dtype())
    engine.create_group("point_data", track_order=True)
    engine.create_group("diagnostics", track_order=True)


def _write_cells(group: h5py.Group, step: int, n_cells: int, n_ids: int, cells: _Cells) -> None:
    """Append frame ``step``'s cells to one topology group.

    Each frame is its own part, so ``Offsets`` gains n + 1 entries for n cells (one entry, 0,
    for an empty topology); ``n_cells`` cells and ``n_ids`` connectivity ids precede this frame.
    An UnstructuredGrid's cells also append their ``Types``.
    """
    counts = (len(cells.offsets) - 1, len(cells.connectivity))
    _append(group, "NumberOfCells", step, np.array(counts[:1], dtype=np.int64))
    _append(group, "NumberOfConnectivityIds", step, np.array(counts[1:], dtype=np.int64))
    _append(group, "Offsets", n_cells + step, cells.offsets)
    _append(group, "Connectivity", n_ids, cells.connectivity, bulk=True)
    if cells.types is not None:
        _append(group, "Types", n_cells, cells.types)


def _write_steps(
    root: h5py.Group,
    step: int,
    time: float,
    start: int,
    cells_before: Sequence[int],
    ids_before: Sequence[int],
    fields: Iterable[str],
) -> None:
    """Append the Steps entries of frame ``step``; bumping ``NSteps`` last commits the frame.

    ``start`` points, and per topology (in the writer's order) ``cells_before`` cells and
    ``ids_before`` connectivity ids, precede this frame.
    """
    steps = root["Steps"]
    _append(steps, "Values", step, np.array([time], dtype=np.float64))
    _append(steps, "PartOffsets", step, np.array([step], dtype=np.int64))
    _append(steps, "NumberOfParts", step, np.array([1], dtype=np.int64))
    _append(steps, "PointOffsets", step, np.array([start], dtype=np.int64))
    _append(steps, "CellOffsets", step, np.array([cells_before], dtype=np.int64))
    _append(steps, "ConnectivityIdOffsets", step, np.array([ids_before], dtype=np.int64))
    for name in fields:
        _append(steps["PointDataOffsets"], name, step, np.array([start], dtype=np.int64))
    steps.attrs["NSteps"] = np.int64(step + 1)


def _create(
    group: h5py.Group,
    name: str,
    rows: int,
    trailing: tuple[int, ...],
    dtype: np.dtype,
    bulk: bool = False,
) -> h5py.Dataset:
    """Create an empty resizable dataset (0, *trailing), chunked along the first axis.

    One chunk holds the ``rows`` a frame appends, so appending a frame only ever writes new
    chunks: a process killed mid-write cannot damage the chunks of finished frames.
    ``bulk`` datasets (one row per point) are gzip+shuffle compressed; the small per-step ones
    are not. Only filters built into HDF5 are used, so VTK can read them.
    """
    options: dict = {"chunks": (max(1, rows), *trailing)}
    if bulk:
        options.update(compression="gzip", compression_opts=1, shuffle=True)
    return group.create_dataset(
        name, shape=(0, *trailing), maxshape=(None, *trailing), dtype=dtype, **options
    )


def _append(
    group: h5py.Group, name: str, start: int, values: np.ndarray, bulk: bool = False
) -> None:
    """Write ``values`` at rows ``start:`` of ``group[name]`` (created on first use).

    The dataset is resized to end exactly at the new rows, so leftovers of a torn earlier
    attempt are overwritten rather than kept.
    """
    if name not in group:
        _create(group, name, len(values), values.shape[1:], values.dtype, bulk)
    dataset = group[name]
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values
