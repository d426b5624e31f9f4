"""Transient VTKHDF (PolyData) writer for particle frames.

One file holds every frame of a run. Layout (VTKHDF 2.2, readable by VTK >= 9.3 and ParaView):

- ``/VTKHDF``: attributes ``Version = [2, 2]`` and ``Type = "PolyData"`` (fixed-length ASCII).
- ``/VTKHDF/Points`` (sum N_t, 3) m, ``/VTKHDF/NumberOfPoints`` (T,).
- ``/VTKHDF/{Vertices,Lines,Polygons,Strips}``: one vertex cell per particle, written per frame.
- ``/VTKHDF/PointData/<name>``: (sum N_t,) scalars, (sum N_t, 3) vectors, (sum N_t, 9) tensors.
- ``/VTKHDF/Steps``: ``NSteps`` attribute plus per-step ``Values`` (s) and offsets.
- ``/engine``: ``dim`` and metadata attributes, ``scene`` (TOML text), ``point_data`` (the kind
  of each field as attributes) and ``diagnostics/<name>`` (T,) or (T, k).

Every frame opens the file, appends, and closes it. The ``Steps`` entries (``NSteps`` last) are
written after all bulk data, so a process killed mid-frame leaves a file whose finished frames
all read back and whose torn frame is invisible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

VTKHDF_VERSION = (2, 2)
TOPOLOGIES = ("Vertices", "Lines", "Polygons", "Strips")
SCALAR, VECTOR, TENSOR = "scalar", "vector", "tensor"
RESERVED_METADATA = ("dim",)

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


class ParticleWriter:
    """Append particle frames to one .vtkhdf file.

    Args:
        path: output file; parent folders are created and an existing file is overwritten.
        dim: spatial dimension, 2 or 3.
        scene_text: the scene TOML, stored as ``/engine/scene``.
        metadata: string attributes for ``/engine`` (e.g. ``engine_version``).
    """

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
        self._fields: dict[str, _FieldSpec] | None = None
        self._diagnostics: dict[str, tuple[int, ...]] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self.path, "w") as f:
            _write_vtkhdf_skeleton(f)
            _write_engine_group(f, dim, scene_text, metadata)

    @property
    def n_frames(self) -> int:
        """Number of frames completely written."""
        return self._n_frames

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
        points = self._check_positions(positions)
        arrays, fields = self._check_point_data(point_data, len(points))
        diags, diag_shapes = self._check_diagnostics(diagnostics)
        self._fields, self._diagnostics = fields, diag_shapes
        start, step = self._n_points_total, self._n_frames
        with h5py.File(self.path, "a") as f:
            root = f["VTKHDF"]
            if step == 0:
                f["engine/point_data"].attrs.update({k: s.kind for k, s in fields.items()})
            _append(root, "Points", start, points, bulk=True)
            for name, values in arrays.items():
                _append(root["PointData"], name, start, values, bulk=True)
            _write_vertex_topology(root, step, start, len(points))
            for name, values in diags.items():
                _append(f["engine/diagnostics"], name, step, values[None])
            _write_steps(root, step, time, start, arrays)
            f.flush()
        self._n_frames += 1
        self._n_points_total += len(points)

    def _check_positions(self, positions: np.ndarray) -> np.ndarray:
        """Validate (N, dim) positions and return them padded to (N, 3) float."""
        positions = np.asarray(positions)
        if positions.ndim != 2 or positions.shape[1] != self.dim:
            raise ValueError(f"positions must be (N, {self.dim}), got {positions.shape}")
        return pad_components(_as_float(positions), self.dim)

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


def _write_vtkhdf_skeleton(f: h5py.File) -> None:
    """Create /VTKHDF with its attributes and groups; datasets appear with the first frame."""
    root = f.create_group("VTKHDF")
    root.attrs["Version"] = np.array(VTKHDF_VERSION, dtype=np.int64)
    root.attrs["Type"] = np.bytes_("PolyData")  # fixed-length ASCII: VTK 9.3/9.4 need it
    root.create_group("PointData", track_order=True)
    for topology in TOPOLOGIES:
        root.create_group(topology)
    steps = root.create_group("Steps")
    steps.attrs["NSteps"] = np.int64(0)
    steps.create_group("PointDataOffsets", track_order=True)


def _write_engine_group(
    f: h5py.File, dim: int, scene_text: str, metadata: Mapping[str, str]
) -> None:
    """Create /engine: dim and metadata attributes, scene text, empty kinds and diagnostics."""
    engine = f.create_group("engine")
    engine.attrs["dim"] = np.int64(dim)
    for key, value in metadata.items():
        engine.attrs[key] = str(value)
    engine.create_dataset("scene", data=scene_text, dtype=h5py.string_dtype())
    engine.create_group("point_data", track_order=True)
    engine.create_group("diagnostics", track_order=True)


def _write_vertex_topology(root: h5py.Group, step: int, start: int, n: int) -> None:
    """Append this frame's topology: n vertex cells on part-local point ids 0..n-1, no others.

    Each frame is its own part, so ``Offsets`` gains n + 1 entries for Vertices and one entry
    (0) for each empty topology; ``start`` points (= vertex cells) precede this frame.
    """
    _append(root, "NumberOfPoints", step, np.array([n], dtype=np.int64))
    for topology in TOPOLOGIES:
        group = root[topology]
        is_vertices = topology == "Vertices"
        n_cells, before = (n, start) if is_vertices else (0, 0)
        counts = np.array([n_cells], dtype=np.int64)
        offsets = np.arange(n_cells + 1, dtype=np.int64)
        _append(group, "NumberOfCells", step, counts)
        _append(group, "NumberOfConnectivityIds", step, counts)
        _append(group, "Offsets", before + step, offsets)
        _append(group, "Connectivity", before, offsets[:-1], bulk=True)


def _write_steps(
    root: h5py.Group, step: int, time: float, start: int, fields: Iterable[str]
) -> None:
    """Append the Steps entries of frame ``step``; bumping ``NSteps`` last commits the frame.

    Vertex cells and connectivity ids both number ``start`` before this frame; the other
    topologies are empty.
    """
    steps = root["Steps"]
    topology_offsets = np.array([[start, 0, 0, 0]], dtype=np.int64)
    _append(steps, "Values", step, np.array([time], dtype=np.float64))
    _append(steps, "PartOffsets", step, np.array([step], dtype=np.int64))
    _append(steps, "NumberOfParts", step, np.array([1], dtype=np.int64))
    _append(steps, "PointOffsets", step, np.array([start], dtype=np.int64))
    _append(steps, "CellOffsets", step, topology_offsets)
    _append(steps, "ConnectivityIdOffsets", step, topology_offsets)
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
