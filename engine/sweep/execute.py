"""Execute a sweep's runs on Ray: one worker process (and Taichi runtime) per run, retries,
a manifest written as runs change state, and one progress bar."""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections import deque
from pathlib import Path

from tqdm import tqdm

from engine.scene.errors import SceneIssue
from engine.solver.runtime import CPU_THREADS
from engine.sweep.manifest import DONE, FAILED, PENDING, RUNNING, Manifest
from engine.sweep.spec import Resources, Run, Sweep
from engine.sweep.validate import validate_runs

#: the folder holding the ``engine`` package; Ray is started from it (see :func:`start_ray`)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def execute_run(scene: str, overrides: list[str]) -> dict:
    """Run one simulation in this (fresh) worker process; resume it if a checkpoint exists.

    ``overrides`` set the run's parameters and output file. Returns ``{"ok": True, "seconds":
    s}`` or ``{"ok": False, "error": text, "seconds": s}``.
    """
    from engine.runner import output_path, run_scene
    from engine.scene.loader import load_scene
    from engine.solver.checkpoint import checkpoint_path

    started = time.perf_counter()
    try:
        loaded = load_scene(scene, overrides)
        resume = checkpoint_path(output_path(loaded)).exists()
        run_scene(loaded, quiet=True, resume=resume)
    except Exception as error:  # reported in the manifest, retried by the driver
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        return {"ok": False, "error": detail, "seconds": time.perf_counter() - started}
    return {"ok": True, "seconds": time.perf_counter() - started}


def start_ray(workers: int | None = None, address: str | None = None) -> bool:
    """Connect to the Ray at ``address``, or start a local one with ``workers`` CPUs, unless Ray
    is up already; True if this call did it (the caller then shuts it down).

    Ray puts the driver's working folder first on its workers' import path, where a folder
    named ``engine`` would hide this package: Ray is started from the package's own folder.
    """
    import ray

    if ray.is_initialized():
        return False
    options = {"address": address} if address else {"num_cpus": workers}
    with contextlib.chdir(PACKAGE_ROOT):
        ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    return True


def run_sweep(
    sweep: Sweep, workers: int | None = None, address: str | None = None, quiet: bool = False
) -> Manifest:
    """Execute every run not already done; return the manifest.

    The runs' scenes are validated first (a :class:`SceneError` stops the sweep before Ray
    starts). ``address`` connects to an existing Ray cluster; otherwise a local Ray with
    ``workers`` CPUs is started (and stopped at the end). On Ctrl-C the runs that were running
    are marked ``interrupted`` and the others stay ``pending``; a re-run resumes them.
    """
    import ray

    manifest = Manifest(sweep.manifest_path, sweep.path, sweep.scene)
    for run in sweep.runs:
        manifest.add(run.id, run.params, sweep.output_file(run))
    todo = [run for run in sweep.runs if not manifest.is_done(run.id)]
    validate_runs(sweep, todo)
    for run in todo:  # a re-run gives unfinished and failed runs a fresh set of attempts
        manifest.runs[run.id].update(status=PENDING, attempts=0)
    manifest.save()
    started_ray = start_ray(workers, address)
    bar = tqdm(
        total=len(sweep.runs),
        initial=len(sweep.runs) - len(todo),
        unit="run",
        disable=quiet,
        file=sys.stderr,
    )
    try:
        _drive(sweep, manifest, todo, bar)
    finally:
        bar.close()
        if started_ray:
            ray.shutdown()
    return manifest


def _drive(sweep: Sweep, manifest: Manifest, todo: list[Run], bar: tqdm) -> None:
    """Keep as many runs on workers as the cluster holds, retry failed ones, record each
    change; on any exception (Ctrl-C) mark and cancel the runs on workers, then re-raise."""
    import ray

    remote = _remote(sweep.spec.resources)
    queue = deque(todo)
    running: dict[ray.ObjectRef, Run] = {}
    try:
        while queue or running:
            while queue and len(running) < _slots(sweep):
                run = queue.popleft()
                running[remote.remote(str(sweep.scene), sweep.overrides(run))] = run
                manifest.started(run.id)
            _show(bar, manifest)
            ready, _ = ray.wait(list(running), num_returns=1)
            run = running.pop(ready[0])
            if _finish(sweep, manifest, run, _outcome(ready[0])):
                queue.appendleft(run)
            else:
                bar.update(1)
        _show(bar, manifest)
    except BaseException:
        manifest.interrupted([run.id for run in running.values()])
        for ref in running:
            with contextlib.suppress(Exception):  # Ray may be gone: keep the first error
                ray.cancel(ref, force=True)
        raise


def _remote(resources: Resources):
    """:func:`execute_run` as a Ray task with the sweep's resources per run."""
    import ray

    return ray.remote(
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        runtime_env={"env_vars": {CPU_THREADS: str(resources.cpus)}},
        max_calls=1,  # a fresh worker process, and Taichi runtime, for every run
        max_retries=0,  # the driver retries, and records each attempt
    )(execute_run)


def _slots(sweep: Sweep) -> int:
    """How many runs the cluster holds at once, by its CPUs and (for runs that take them) GPUs;
    a :class:`SceneError` if not one fits."""
    import ray

    total = ray.cluster_resources()
    asked = {"cpus": ("CPU", sweep.spec.resources.cpus), "gpus": ("GPU", sweep.spec.resources.gpus)}
    fits = {key: total.get(name, 0) // amount for key, (name, amount) in asked.items() if amount}
    key = min(fits, key=fits.get)
    if fits[key] < 1:
        name, amount = asked[key]
        message = f"a run asks for {amount:g} {name} but the Ray cluster has {total.get(name, 0):g}"
        fix = f"lower {key}, or run on a cluster with more {name}s (--address)"
        raise sweep.error([SceneIssue(("sweep", "resources", key), message, fix)])
    return int(fits[key])


def _outcome(ref) -> dict:
    """A finished task's result; a worker that died gives a failed one."""
    import ray

    try:
        return ray.get(ref)
    except Exception as error:  # the worker died (killed, out of memory, ...)
        return {"ok": False, "error": f"worker lost: {type(error).__name__}: {error}"}


def _finish(sweep: Sweep, manifest: Manifest, run: Run, result: dict) -> bool:
    """Record an attempt's result; True if the run is to be tried again. The sweep's first
    run out of attempts is told on the console (every error is in the manifest)."""
    if result["ok"]:
        manifest.update(
            run.id, status=DONE, finished=time.time(), seconds=result["seconds"], error=None
        )
        return False
    retry = manifest.runs[run.id]["attempts"] <= sweep.spec.retries
    manifest.failed_attempt(run.id, result["error"], retry)
    if not retry and manifest.counts()[FAILED] == 1:
        attempts = manifest.runs[run.id]["attempts"]
        tqdm.write(
            f"{run.id} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
            f"{result['error']}\n(every run's errors: {manifest.path})",
            file=sys.stderr,
        )
    return retry


def _show(bar: tqdm, manifest: Manifest) -> None:
    """The bar's counts, as the manifest has them now."""
    counts = manifest.counts()
    bar.set_postfix_str(
        f"done {counts[DONE]}, failed {counts[FAILED]}, running {counts[RUNNING]}, "
        f"queued {counts[PENDING]}"
    )
