"""Read results written by :mod:`engine.output.vtkhdf` (particles, a moving surface or mesh).

Usage::

    import engine.io

    result = engine.io.open("out/run.vtkhdf")
    x = result.points(-1)                    # (N, dim) m, last frame
    with engine.io.open("out/run.vtkhdf") as r:  # keeps the file open while iterating
        for frame in r:
            print(frame.time, frame.arrays["velocity"].shape)

    surface = engine.io.open("out/wall.vtkhdf")  # written by SurfaceWriter
    surface.kind                             # "surface" ("particles" for particle files)
    surface.faces(0)                         # (F, 3) int64 vertex ids into surface.points(0)
    surface.frame(0)                         # pyvista.PolyData with the triangles as faces

    mesh = engine.io.open("out/run_mesh_fields.vtkhdf")  # written by MeshWriter
    mesh.kind                                # "mesh"
    mesh.cells(0)                            # (C, 4) quads or (C, 8) hexahedra, node ids
    mesh.frame(0)                            # pyvista.UnstructuredGrid

The ``Steps`` group (``NSteps`` and the per-step offsets) is the truth: rows appended by a
frame that was torn before ``NSteps`` was bumped are ignored. A :class:`Result` is a snapshot
of the frames finished when it was opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from engine.output.vtkhdf import (
    MESH,
    PARTICLES,
    RESERVED_METADATA,
    SURFACE,
    TOPOLOGIES,
    unpad_components,
)

if TYPE_CHECKING:
    import pyvista


@dataclass(frozen=True)
class Frame:
    """One output frame: time (s), points (N, dim) m, and unpadded per-point arrays.

    ``faces`` is the (F, 3) int64 triangles of a surface file or the (C, 2^dim) cells of a
    mesh file, None for a particle file.
    """

    index: int
    time: float
    points: np.ndarray
    arrays: dict[str, np.ndarray]
    faces: np.ndarray | None = None


def open(path: str | Path) -> Result:  # noqa: A001 (engine.io.open on purpose)
    """Open a .vtkhdf result file; use as is or as ``with engine.io.open(path) as r:``."""
    return Result(path)


class Result:
    """Frames, fields, scene and diagnostics of one particle, surface or mesh .vtkhdf file.

    Attributes:
        path: the file.
        kind: ``"particles"`` (vertex cells), ``"surface"`` (triangles, see :meth:`faces`) or
            ``"mesh"`` (quads or hexahedra, see :meth:`cells`); files written before ``kind``
            was recorded are particle files.
        times: (T,) frame times, s.
        n_frames: T, the number of finished frames.
        fields: point-data names in written order.
        scene_text: the scene TOML the run was started with.
        metadata: ``/engine`` string attributes (e.g. ``engine_version``).
        dim: spatial dimension, 2 or 3.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: h5py.File | None = None
        with self._open() as f:
            steps = f["VTKHDF/Steps"]
            self.n_frames = int(steps.attrs["NSteps"])
            t = self.n_frames
            empty = np.zeros(0, np.int64)
            self.times = steps["Values"][:t] if t else np.zeros(0)
            parts = steps["PartOffsets"][:t] if t else empty
            self._parts = parts
            self._counts = f["VTKHDF/NumberOfPoints"][:][parts] if t else empty
            engine = f["engine"]
            self.kind = _as_str(engine.attrs.get("kind", PARTICLES))
            # a mesh's cells are an UnstructuredGrid's, in /VTKHDF; a surface's are polygons
            cells, column = (
                (f["VTKHDF"], 0)
                if self.kind == MESH
                else (f["VTKHDF/Polygons"], TOPOLOGIES.index("Polygons"))
            )
            self._cell_counts = cells["NumberOfCells"][:][parts] if t else empty
            self._cell_offsets = steps["CellOffsets"][:t, column] if t else empty
            self._cell_id_offsets = steps["ConnectivityIdOffsets"][:t, column] if t else empty
            self._cell_group = cells.name
            self._point_offsets = steps["PointOffsets"][:t] if t else empty
            self._data_offsets = {
                name: offsets[:t] for name, offsets in steps["PointDataOffsets"].items()
            }
            self.dim = int(engine.attrs["dim"])
            self.scene_text = engine["scene"].asstr()[()]
            self.metadata = {
                key: str(value)
                for key, value in engine.attrs.items()
                if key not in RESERVED_METADATA
            }
            self._kinds = {key: str(value) for key, value in engine["point_data"].attrs.items()}
        self.fields = list(self._kinds)

    def __enter__(self) -> Result:
        self._file = h5py.File(self.path, "r")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file kept open by ``with``; calls after this open it per call again."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n_frames):
            yield self[i]

    def __getitem__(self, i: int) -> Frame:
        """Frame ``i`` (negative counts from the end) as a :class:`Frame`."""
        i = self._index(i)
        faces = self._cells(i) if self.kind in (SURFACE, MESH) else None
        return Frame(i, float(self.times[i]), self.points(i), self.arrays(i), faces)

    def __repr__(self) -> str:
        return (
            f"Result({str(self.path)!r}, kind={self.kind!r}, dim={self.dim}, "
            f"n_frames={self.n_frames})"
        )

    def points(self, i: int) -> np.ndarray:
        """(N_i, dim) particle positions of frame ``i``, m."""
        return self._points_padded(self._index(i))[:, : self.dim]

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Per-point arrays of frame ``i``: (N,), (N, dim) or (N, dim, dim), as written."""
        padded = self._arrays_padded(self._index(i))
        return {
            name: unpad_components(values, self.dim, self._kinds[name])
            for name, values in padded.items()
        }

    def faces(self, i: int) -> np.ndarray:
        """(F_i, 3) int64 triangle vertex ids of frame ``i`` of a surface file.

        Raises:
            ValueError: for a particle file, or polygons that are not all triangles.
        """
        if self.kind != SURFACE:
            raise ValueError(
                f"{self.path} holds {self.kind!r}, not a surface: it has no faces "
                f"(write it with SurfaceWriter)"
            )
        return self._cells(i)

    def cells(self, i: int) -> np.ndarray:
        """(C, 4) quads (2D) or (C, 8) hexahedra (3D) of frame ``i`` of a mesh file: int64 node
        ids into :meth:`points` in VTK's corner order.

        Raises:
            ValueError: for a file that is not a mesh.
        """
        if self.kind != MESH:
            raise ValueError(
                f"{self.path} holds {self.kind!r}, not a mesh: it has no cells "
                f"(write it with MeshWriter)"
            )
        return self._cells(i)

    def _cells(self, i: int) -> np.ndarray:
        """Frame ``i``'s cells of one size: triangles (surface) or 2^dim corners (mesh)."""
        i = self._index(i)
        corners = 3 if self.kind == SURFACE else 2**self.dim
        n = int(self._cell_counts[i])
        first = int(self._cell_offsets[i] + self._parts[i])  # each part adds one offset
        start = int(self._cell_id_offsets[i])
        with self._open() as f:
            group = f[self._cell_group]
            offsets = group["Offsets"][first : first + n + 1]
            ids = group["Connectivity"][start : start + int(offsets[-1])]
        if np.any(np.diff(offsets) != corners):
            raise ValueError(f"frame {i} of {self.path} has cells that are not {corners}-gons")
        return ids.astype(np.int64).reshape(n, corners)

    def frame(self, i: int) -> pyvista.PolyData | pyvista.UnstructuredGrid:
        """Frame ``i`` as a ``pyvista.PolyData`` (a mesh file's as a
        ``pyvista.UnstructuredGrid``), arrays padded as stored.

        Particle files give plain points (vertex cells), surface files the triangles as faces.
        """
        import pyvista

        i = self._index(i)
        if self.kind == MESH:
            cells = self.cells(i)
            cell_type = pyvista.CellType.QUAD if self.dim == 2 else pyvista.CellType.HEXAHEDRON
            mesh = pyvista.UnstructuredGrid({cell_type: cells}, self._points_padded(i))
        elif self.kind == SURFACE:
            mesh = pyvista.PolyData.from_regular_faces(self._points_padded(i), self.faces(i))
        else:
            mesh = pyvista.PolyData(self._points_padded(i))
        for name, values in self._arrays_padded(i).items():
            mesh.point_data[name] = values
        return mesh

    def diagnostics(self) -> dict[str, np.ndarray]:
        """Per-frame diagnostics: name -> (T,) or (T, k)."""
        with self._open() as f:
            group = f["engine/diagnostics"]
            return {name: group[name][: self.n_frames] for name in group}

    def _index(self, i: int) -> int:
        """Normalise a possibly negative frame index, or raise IndexError naming the file."""
        if not -self.n_frames <= i < self.n_frames:
            raise IndexError(
                f"frame index {i} out of range for {self.path} with {self.n_frames} frames"
            )
        return i % self.n_frames

    def _points_padded(self, i: int) -> np.ndarray:
        start = int(self._point_offsets[i])
        with self._open() as f:
            return f["VTKHDF/Points"][start : start + self._counts[i]]

    def _arrays_padded(self, i: int) -> dict[str, np.ndarray]:
        n = int(self._counts[i])
        with self._open() as f:
            group = f["VTKHDF/PointData"]
            starts = {name: int(self._data_offsets[name][i]) for name in self.fields}
            return {name: group[name][start : start + n] for name, start in starts.items()}

    @contextmanager
    def _open(self) -> Iterator[h5py.File]:
        """The file held by ``with``, or a read-only handle closed after the call."""
        if self._file is not None:
            yield self._file
            return
        with h5py.File(self.path, "r") as f:
            yield f


def _as_str(value: object) -> str:
    """An HDF5 string attribute (str or bytes) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)
