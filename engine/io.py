"""Read particle results written by :class:`engine.output.vtkhdf.ParticleWriter`.

Usage::

    import engine.io

    result = engine.io.open("out/run.vtkhdf")
    x = result.points(-1)                    # (N, dim) m, last frame
    with engine.io.open("out/run.vtkhdf") as r:  # keeps the file open while iterating
        for frame in r:
            print(frame.time, frame.arrays["velocity"].shape)

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

from engine.output.vtkhdf import RESERVED_METADATA, unpad_components

if TYPE_CHECKING:
    import pyvista


@dataclass(frozen=True)
class Frame:
    """One output frame: time (s), points (N, dim) m, and unpadded per-point arrays."""

    index: int
    time: float
    points: np.ndarray
    arrays: dict[str, np.ndarray]


def open(path: str | Path) -> Result:  # noqa: A001 (engine.io.open on purpose)
    """Open a particle .vtkhdf file; use as is or as ``with engine.io.open(path) as r:``."""
    return Result(path)


class Result:
    """Frames, fields, scene and diagnostics of one particle .vtkhdf file.

    Attributes:
        path: the file.
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
            self._counts = f["VTKHDF/NumberOfPoints"][:][parts] if t else empty
            self._point_offsets = steps["PointOffsets"][:t] if t else empty
            self._data_offsets = {
                name: offsets[:t] for name, offsets in steps["PointDataOffsets"].items()
            }
            engine = f["engine"]
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
        return Frame(i, float(self.times[i]), self.points(i), self.arrays(i))

    def __repr__(self) -> str:
        return f"Result({str(self.path)!r}, dim={self.dim}, n_frames={self.n_frames})"

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

    def frame(self, i: int) -> pyvista.PolyData:
        """Frame ``i`` as a ``pyvista.PolyData`` (vertex cells, arrays padded as stored)."""
        import pyvista

        i = self._index(i)
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
