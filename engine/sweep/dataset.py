"""A finished sweep as torch datasets, for training learned components.

``SweepTrajectories``: one item per finished run, its whole trajectory; ``SweepFrames``: one item
per (run, frame) pair with the next frame as target, for one-step models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import engine.io
from engine.sweep.manifest import DONE


def finished_runs(output_dir: str | Path) -> list[tuple[str, dict]]:
    """``(run id, manifest record)`` of the runs that finished, in id order."""
    manifest = json.loads((Path(output_dir) / "manifest.json").read_text())
    return sorted(
        (run_id, record) for run_id, record in manifest["runs"].items() if record["status"] == DONE
    )


class _SweepDataset(torch.utils.data.Dataset):
    """The finished runs of a sweep, the output fields to load and the tensor dtype."""

    def __init__(
        self,
        output_dir: str | Path,
        fields: tuple[str, ...] = ("velocity",),
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.runs = finished_runs(output_dir)
        self.fields, self.dtype = fields, dtype


class SweepTrajectories(_SweepDataset):
    """Item ``i``: ``{"id", "params", "times" (T,), "positions" (T, N, d), <field> (T, N, ...)}``.

    ``fields`` are output fields stored in the runs' files (padding removed).
    """

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> dict:
        run_id, record = self.runs[index]
        with engine.io.open(record["output"]) as result:
            item = {
                "id": run_id,
                "params": record["params"],
                "times": torch.as_tensor(result.times, dtype=self.dtype),
                "positions": self._stack([result.points(i) for i in range(result.n_frames)]),
            }
            for name in self.fields:
                item[name] = self._stack([result.arrays(i)[name] for i in range(result.n_frames)])
        return item

    def _stack(self, arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(arrays), dtype=self.dtype)


class SweepFrames(_SweepDataset):
    """Item: one frame and the next of one run: ``{"id", "params", "time", "positions"
    (N, d), "next_positions" (N, d), <field> (N, ...)}``."""

    def __init__(
        self,
        output_dir: str | Path,
        fields: tuple[str, ...] = ("velocity",),
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(output_dir, fields, dtype)
        self.index = [
            (run, frame)
            for run, (_, record) in enumerate(self.runs)
            for frame in range(engine.io.open(record["output"]).n_frames - 1)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict:
        run, frame = self.index[index]
        run_id, record = self.runs[run]
        with engine.io.open(record["output"]) as result:
            arrays = result.arrays(frame)
            item = {
                "id": run_id,
                "params": record["params"],
                "time": float(result.times[frame]),
                "positions": torch.as_tensor(result.points(frame), dtype=self.dtype),
                "next_positions": torch.as_tensor(result.points(frame + 1), dtype=self.dtype),
            }
            for name in self.fields:
                item[name] = torch.as_tensor(arrays[name], dtype=self.dtype)
        return item
