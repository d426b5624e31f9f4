"""Execute a sweep's runs on Ray: one worker process (and Taichi runtime) per run, retries,
a manifest written as runs finish, and one progress bar."""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from engine.solver.runtime import CPU_THREADS
from engine.sweep.manifest import DONE, FAILED, PENDING, Manifest
from engine.sweep.spec import Sweep


def execute_run(scene: str, overrides: list[str], output: str) -> dict:
    """Run one simulation in this (fresh) worker process; resume it if a checkpoint exists.

    Returns ``{"ok": True, "seconds": s}`` or ``{"ok": False, "error": text}``.
    """
    from engine.runner import run_scene
    from engine.scene.loader import load_scene
    from engine.solver.checkpoint import checkpoint_path

    started = time.perf_counter()
    try:
        loaded = load_scene(scene, [*overrides, f"output.path={json.dumps(output)}"])
        resume = checkpoint_path(Path(output)).exists()
        run_scene(loaded, quiet=True, resume=resume)
    except Exception as error:  # reported in the manifest, retried by the driver
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        return {"ok": False, "error": detail, "seconds": time.perf_counter() - started}
    return {"ok": True, "seconds": time.perf_counter() - started}


def run_sweep(
    sweep: Sweep, workers: int | None = None, address: str | None = None, quiet: bool = False
) -> Manifest:
    """Execute every run not already done; return the manifest.

    ``address`` connects to an existing Ray cluster; otherwise a local Ray with ``workers``
    CPUs is started (and stopped at the end).
    """
    import ray

    manifest = Manifest(sweep.output_dir / "manifest.json", sweep.path, sweep.scene)
    for run in sweep.runs:
        manifest.add(run.id, run.params, sweep.output_dir / f"{run.id}.vtkhdf")
    manifest.save()
    todo = [run for run in sweep.runs if not manifest.is_done(run.id)]
    for run in todo:  # a re-run gives unfinished and failed runs a fresh set of attempts
        manifest.runs[run.id].update(status=PENDING, attempts=0)
    started_ray = not ray.is_initialized()
    if started_ray:
        options = {"address": address} if address else {"num_cpus": workers}
        ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    remote = ray.remote(
        num_cpus=sweep.spec.resources.cpus,
        num_gpus=sweep.spec.resources.gpus,
        runtime_env={"env_vars": {CPU_THREADS: str(sweep.spec.resources.cpus)}},
        max_calls=1,  # a fresh worker process, and Taichi runtime, for every run
        max_retries=0,  # the driver retries, and records each attempt
    )(execute_run)
    bar = tqdm(
        total=len(sweep.runs),
        initial=len(sweep.runs) - len(todo),
        unit="run",
        disable=quiet,
        file=sys.stderr,
    )
    pending = {}

    def submit(run) -> None:
        manifest.started(run.id)
        output = manifest.runs[run.id]["output"]
        pending[remote.remote(str(sweep.scene), run.overrides, output)] = run

    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // sweep.spec.resources.cpus))
    try:
        for run in todo:
            submit(run)
        while pending:
            counts = manifest.counts()
            running = min(len(pending), slots)
            bar.set_postfix_str(
                f"done {counts[DONE]}, failed {counts[FAILED]}, running {running}, "
                f"queued {len(pending) - running}"
            )
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as error:  # the worker died (killed, out of memory, ...)
                result = {
                    "ok": False,
                    "error": f"worker lost: {type(error).__name__}: {error}",
                    "seconds": None,
                }
            if result["ok"]:
                manifest.update(
                    run.id, status=DONE, finished=time.time(), seconds=result["seconds"], error=None
                )
                bar.update(1)
                continue
            manifest.failed_attempt(run.id, result["error"])
            if manifest.runs[run.id]["attempts"] <= sweep.spec.retries:
                submit(run)
            else:
                manifest.update(run.id, status=FAILED, finished=time.time())
                bar.update(1)
    finally:
        bar.close()
        if started_ray:
            ray.shutdown()
    return manifest
