"""Read a scene file, apply command-line overrides, validate, and report problems with lines."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from engine.discovery import make_plugin_manager
from engine.registry import Registry
from engine.scene.checks import check_scene, non_finite_issues
from engine.scene.errors import SceneError, SceneIssue, format_path
from engine.scene.explain import contact_issues, schema_issues
from engine.scene.loaded import LoadedScene
from engine.scene.locate import KeyPath, find_line, key_lines
from engine.scene.schema import scene_model

#: A scene to start from, shown for an empty file (a column of water falling in a box).
MINIMAL_SCENE = """\
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = 64
end_time = 1.0
frame_dt = 0.01

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 2.0e6

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.25, 0.5]
"""


class OverrideError(ValueError):
    """A ``--set`` that cannot be applied: the key path it is about, and how to fix it."""

    def __init__(self, path: KeyPath, message: str, fix: str) -> None:
        super().__init__(message)
        self.path = path
        self.fix = fix


def parse_override(assignment: str) -> tuple[KeyPath, Any]:
    """``"simulation.end_time=0.5"`` -> ``(("simulation", "end_time"), 0.5)``.

    The value is read as TOML (so ``'"o.vtkhdf"'``, ``[1, 2]`` and ``true`` work); a bare word that
    is not valid TOML is taken as a string, a broken array, table or quoted string is an error.
    ``bodies.0.velocity`` or ``bodies[0].velocity`` index arrays.
    """
    example = "write KEY=VALUE, e.g. simulation.end_time=0.5 or bodies[0].velocity=[1.0, 0.0]"
    if "=" not in assignment:
        raise OverrideError((), "expected KEY=VALUE", example)
    key, raw = assignment.split("=", 1)
    path: list[str | int] = []
    for part in key.replace("[", ".").replace("]", "").split("."):
        if part.strip():
            path.append(int(part) if part.strip().isdigit() else part.strip())
    if not path:
        raise OverrideError((), "no key before `=`", example)
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError as error:
        if raw.strip()[:1] not in ("[", "{", '"', "'"):
            return tuple(path), raw.strip()
        reason = str(error).split(" (at ")[0]
        fix = 'write the value as a scene file would: [1.0, 0.0], "a string", true'
        raise OverrideError(tuple(path), f"not valid TOML ({reason})", fix) from None
    return tuple(path), value


def _step_error(node: Any, where: KeyPath, part: str | int) -> OverrideError | None:
    """Why ``node``, the value at ``where``, has no place ``part`` for a ``--set``, or None."""
    name = format_path(where)
    if isinstance(node, list) and not isinstance(part, int):
        fix = f"index it with a number, e.g. {name}[0]"
        return OverrideError(where, "a list of entries, not a table", fix)
    if isinstance(node, list) and part >= len(node):
        count = f"{len(node)} entr" + ("y" if len(node) == 1 else "ies")
        fix = f"use an index from 0 to {len(node) - 1}" if node else "add entries to the file"
        return OverrideError((*where, part), f"no such entry: {name} has {count}", fix)
    if isinstance(node, dict) and isinstance(part, int):
        return OverrideError(where, "a table, not a list", "name one of its keys")
    if not isinstance(node, dict | list):
        fix = f"set {name} itself, e.g. --set {name}=..."
        return OverrideError(where, "a single value, with no keys inside", fix)
    return None


def apply_override(data: dict, path: KeyPath, value: Any) -> None:
    """Set ``value`` at ``path`` inside nested dicts/lists, creating tables as needed; raise
    :class:`OverrideError` where the path cannot go (past a list's end, into a number)."""
    node: Any = data
    for depth, part in enumerate(path):
        if error := _step_error(node, path[:depth], part):
            raise error
        if depth == len(path) - 1:
            node[part] = value
        elif isinstance(part, int):
            node = node[part]
        else:
            node = node.setdefault(part, [] if isinstance(path[depth + 1], int) else {})


def _with_lines(issues: list[SceneIssue], text: str, overridden: set[KeyPath]) -> list[SceneIssue]:
    lines = key_lines(text)
    out = []
    for issue in issues:
        if issue.path in overridden:
            out.append(SceneIssue(issue.path, issue.message + " (set with --set)", issue.fix))
        else:
            out.append(
                SceneIssue(issue.path, issue.message, issue.fix, find_line(lines, issue.path))
            )
    return out


def _empty_file_issue(text: str) -> SceneIssue:
    """The one problem of a file that holds no keys, with a scene to start from."""
    what = "the file is empty" if not text.strip() else "the file holds only comments"
    scene = textwrap.indent(MINIMAL_SCENE, " " * 8).rstrip()
    return SceneIssue(
        (),
        f"{what}: no [simulation] table, no [materials.<name>] and no [[bodies]]",
        f"start from this scene (`engine schema` lists every key):\n{scene}",
    )


def _replacing(first: list[SceneIssue], others: list[SceneIssue]) -> list[SceneIssue]:
    """``first``, then the issues of ``others`` about other keys."""
    taken = {issue.path for issue in first}
    return [*first, *(issue for issue in others if issue.path not in taken)]


def _plugin_specs(data: dict, path: Path, extra: tuple[str, ...]) -> list[str]:
    listed = (
        data.get("plugins", {}).get("load", []) if isinstance(data.get("plugins"), dict) else []
    )
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        issue = SceneIssue(
            ("plugins", "load"),
            "must be a list of module names or .py files",
            'write load = ["my_package.plugin", "local_plugin.py"]',
        )
        raise SceneError(path, [issue])
    here = [str(path.parent / spec) if spec.endswith(".py") else spec for spec in listed]
    return [*here, *extra]  # scene files resolve against the scene, --plugin against the cwd


def load_scene(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    plugins: list[str] | tuple[str, ...] = (),
    text: str | None = None,
) -> LoadedScene:
    """Read, override, validate and check a scene; raise :class:`SceneError` on any problem.

    ``plugins`` (modules or .py files) are loaded besides the scene's ``[plugins] load`` and
    the installed ones; a plugin that fails raises :class:`engine.hooks.calls.PluginError`.
    ``text`` replaces the file's content (resuming from a result file); ``path`` still names
    the scene and the folder its relative paths resolve against.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text()
        except OSError as error:
            issue = SceneIssue((), f"cannot read the file ({error.strerror})", "check the path")
            raise SceneError(path, [issue]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"at line (\d+)", str(error))
        issue = SceneIssue(
            (),
            f"not valid TOML: {error}",
            "fix the TOML syntax at that line",
            int(line.group(1)) if line else None,
        )
        raise SceneError(path, [issue]) from None
    if not data:
        raise SceneError(path, [_empty_file_issue(text)])
    overridden: set[KeyPath] = set()
    for assignment in overrides:
        try:
            key, value = parse_override(assignment)
            apply_override(data, key, value)
        except OverrideError as error:
            issue = SceneIssue(error.path, f"{error} (--set {assignment})", error.fix)
            raise SceneError(path, [issue]) from None
        overridden.add(key)
    manager = make_plugin_manager(_plugin_specs(data, path, tuple(plugins)))
    registry = Registry.collect(manager)
    model = scene_model(registry)
    non_finite = non_finite_issues(data)  # pydantic takes nan and inf for numbers
    try:
        scene = model.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as error:
        issues = _replacing(non_finite, schema_issues(error, data, model, registry, path.parent))
        raise SceneError(path, _with_lines(issues, text, overridden)) from None
    issues = non_finite or (
        check_scene(scene, path.parent, registry) + contact_issues(scene, registry, path.parent)
    )
    if issues:
        raise SceneError(path, _with_lines(issues, text, overridden))
    return LoadedScene(
        scene=scene,
        path=path.resolve(),
        text=tomli_w.dumps(data),
        source=text,
        registry=registry,
        plugins=tuple(plugins),
    )
