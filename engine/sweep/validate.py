"""Load every run of a sweep as ``engine validate`` would, before Ray starts: a typo in an axis
key, a value out of range or a missing base scene stops the sweep at once, at the sweep file's
line, instead of failing every run on the workers."""

from __future__ import annotations

import dataclasses
import json

from engine.scene.errors import SceneError, SceneIssue, format_path
from engine.scene.loader import load_scene
from engine.sweep.spec import Run, Sweep

SET_NOTE = " (set with --set)"  # the loader's note on an issue of an overridden key


def validate_runs(sweep: Sweep, runs: list[Run]) -> None:
    """Raise one :class:`SceneError` on the sweep file if a run's scene is not valid.

    Each problem is told at the axis that sets its key (else at ``scene =``), with the base
    scene's message and fix, and how many of ``runs`` have it: runs whose problem differs only
    in the value (``got -1.0``, ``got -2.0``) count as one.
    """
    found: dict[tuple, tuple[SceneIssue, list[Run]]] = {}
    for run in runs:
        try:
            load_scene(sweep.scene, sweep.overrides(run))
        except SceneError as error:
            for issue in error.issues:
                told = _in_sweep(sweep, issue)
                found.setdefault((told.path, issue.path, issue.fix), (told, []))[1].append(run)
    if found:
        issues = [_with_runs(sweep, told, having, len(runs)) for told, having in found.values()]
        raise sweep.error(issues)


def _in_sweep(sweep: Sweep, issue: SceneIssue) -> SceneIssue:
    """A base scene's issue as one of the sweep file, at the axis that sets its key."""
    axis = sweep.axis_of(issue.path)
    where = sweep.spec.scene + (f":{issue.line}" if issue.line else "")
    message = f"{where}: {format_path(issue.path)}: {issue.message.removesuffix(SET_NOTE)}"
    path = ("axes", axis, "key") if axis is not None else ("sweep", "scene")
    return SceneIssue(path, message, issue.fix)


def _with_runs(sweep: Sweep, issue: SceneIssue, having: list[Run], total: int) -> SceneIssue:
    """The issue saying in how many runs it comes, and the first (with its axis value)."""
    example = having[0].id
    if issue.path[0] == "axes":
        key = sweep.axes[issue.path[1]].key
        example += f", {key} = {json.dumps(having[0].params[key])}"
    note = f" (in {len(having)} of {total} runs, e.g. {example})"
    return dataclasses.replace(issue, message=issue.message + note)
