"""Read a scene file, apply command-line overrides, validate, and report problems with lines."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from engine.discovery import make_plugin_manager
from engine.registry import Registry
from engine.scene.checks import check_scene
from engine.scene.errors import SceneError, SceneIssue
from engine.scene.explain import schema_issues
from engine.scene.loaded import LoadedScene
from engine.scene.locate import KeyPath, find_line, key_lines
from engine.scene.schema import scene_model


def parse_override(assignment: str) -> tuple[KeyPath, Any]:
    """``"simulation.end_time=0.5"`` -> ``(("simulation", "end_time"), 0.5)``.

    The value is read as TOML (so ``'"o.vtkhdf"'``, ``[1, 2]`` and ``true`` work); a bare word that
    is not valid TOML is taken as a string. ``bodies.0.velocity`` or ``bodies[0].velocity`` index
    arrays.
    """
    if "=" not in assignment:
        raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. simulation.end_time=0.5")
    key, raw = assignment.split("=", 1)
    path: list[str | int] = []
    for part in key.replace("[", ".").replace("]", "").split("."):
        if part.strip():
            path.append(int(part) if part.strip().isdigit() else part.strip())
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return tuple(path), value


def apply_override(data: dict, path: KeyPath, value: Any) -> None:
    """Set ``value`` at ``path`` inside nested dicts/lists, creating tables as needed."""
    node: Any = data
    for part, following in zip(path[:-1], path[1:], strict=True):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ValueError(f"--set: there is no entry {part} at {path}")
            node = node[part]
        else:
            node = node.setdefault(part, [] if isinstance(following, int) else {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ValueError(f"--set: there is no entry {last} at {path}")
    node[last] = value


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
    overridden: set[KeyPath] = set()
    for assignment in overrides:
        try:
            key, value = parse_override(assignment)
            apply_override(data, key, value)
        except (ValueError, TypeError, AttributeError) as error:
            raise SceneError(
                path, [SceneIssue((), str(error), "check the --set key path")]
            ) from None
        overridden.add(key)
    manager = make_plugin_manager(_plugin_specs(data, path, tuple(plugins)))
    registry = Registry.collect(manager)
    model = scene_model(registry)
    try:
        scene = model.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as error:
        issues = schema_issues(error, data, model, registry, path.parent)
        issues = _with_lines(issues, text, overridden)
        raise SceneError(path, issues) from None
    issues = check_scene(scene, path.parent, registry)
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
