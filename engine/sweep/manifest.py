"""The sweep manifest: every run's parameters, status, attempts, timings, output and error.

Rewritten atomically (temporary file, then rename) each time a run changes state, so a driver
that dies leaves a readable manifest, and a re-run of the sweep skips what is done.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class Manifest:
    """``output_dir/manifest.json``: ``{"sweep": ..., "runs": {id: record}}``."""

    def __init__(self, path: Path, sweep_file: Path, scene: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"sweep": str(sweep_file), "scene": str(scene), "runs": {}}
        if path.exists():
            self.data = json.loads(path.read_text())

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    def add(self, run_id: str, params: dict, output: Path) -> None:
        """Register a run (kept as it is if the manifest already has it)."""
        self.runs.setdefault(
            run_id,
            {
                "params": params,
                "status": PENDING,
                "attempts": 0,
                "output": str(output),
                "error": None,
                "errors": [],
                "started": None,
                "finished": None,
                "seconds": None,
            },
        )

    def is_done(self, run_id: str) -> bool:
        record = self.runs[run_id]
        return record["status"] == DONE and Path(record["output"]).exists()

    def update(self, run_id: str, **fields: Any) -> None:
        self.runs[run_id].update(fields)
        self.save()

    def failed_attempt(self, run_id: str, error: str) -> None:
        """Record an attempt's error (the run may still be retried)."""
        record = self.runs[run_id]
        self.update(run_id, error=error, errors=[*record["errors"], error])

    def started(self, run_id: str) -> None:
        record = self.runs[run_id]
        self.update(run_id, status=RUNNING, attempts=record["attempts"] + 1, started=time.time())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps(self.data, indent=1))
        os.replace(partial, self.path)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys((PENDING, RUNNING, DONE, FAILED), 0)
        for record in self.runs.values():
            out[record["status"]] += 1
        return out
