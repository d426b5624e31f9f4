"""The sweep manifest: every run's parameters, status, attempts, timings, output and error.

Rewritten atomically (temporary file, then rename) each time a run changes state, so a driver
that dies leaves a readable manifest, and a re-run of the sweep skips what is done.

Statuses: ``pending`` (not started, or waiting for a retry), ``running`` (handed to a worker),
``done``, ``failed`` (out of attempts) and ``interrupted`` (running when the driver stopped,
Ctrl-C for one; a re-run of the sweep starts it again, from its checkpoint if it has one).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PENDING, RUNNING, DONE, FAILED, INTERRUPTED = "pending", "running", "done", "failed", "interrupted"
STATUSES = (PENDING, RUNNING, DONE, FAILED, INTERRUPTED)


class Manifest:
    """``output_dir/manifest.json``: ``{"sweep": ..., "scene": ..., "runs": {id: record}}``.

    It keeps the records of runs that an earlier version of the sweep had; :meth:`counts` counts
    the runs :meth:`add` registered, those of the sweep at hand.
    """

    def __init__(self, path: Path, sweep_file: Path, scene: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"runs": {}}
        if path.exists():
            self.data = json.loads(path.read_text())
        self.data.update(sweep=str(sweep_file), scene=str(scene))
        self.ids: list[str] = []

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self.data["runs"]

    def add(self, run_id: str, params: dict, output: Path) -> None:
        """Register a run of this sweep (its record is kept if the manifest already has it; the
        output file is where this sweep writes it, should the folder have moved)."""
        record = self.runs.setdefault(
            run_id,
            {
                "params": params,
                "status": PENDING,
                "attempts": 0,
                "error": None,
                "errors": [],
                "started": None,
                "finished": None,
                "seconds": None,
            },
        )
        record["output"] = str(output)
        self.ids.append(run_id)

    def is_done(self, run_id: str) -> bool:
        record = self.runs[run_id]
        return record["status"] == DONE and Path(record["output"]).exists()

    def update(self, run_id: str, **fields: Any) -> None:
        self.runs[run_id].update(fields)
        self.save()

    def started(self, run_id: str) -> None:
        record = self.runs[run_id]
        self.update(run_id, status=RUNNING, attempts=record["attempts"] + 1, started=time.time())

    def failed_attempt(self, run_id: str, error: str, retry: bool) -> None:
        """Record an attempt's error; the run waits for a retry (``pending``) or has failed."""
        record = self.runs[run_id]
        self.update(
            run_id,
            status=PENDING if retry else FAILED,
            finished=None if retry else time.time(),
            error=error,
            errors=[*record["errors"], error],
        )

    def interrupted(self, run_ids: list[str]) -> None:
        """Mark runs that were running when the driver stopped."""
        for run_id in run_ids:
            self.runs[run_id]["status"] = INTERRUPTED
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps(self.data, indent=1))
        os.replace(partial, self.path)

    def counts(self) -> dict[str, int]:
        """How many of this sweep's runs have each status."""
        out = dict.fromkeys(STATUSES, 0)
        for run_id in self.ids:
            out[self.runs[run_id]["status"]] += 1
        return out
