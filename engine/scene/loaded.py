"""A validated scene and where it came from: what the solver and the runner are given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.scene.errors import SceneError, SceneIssue
from engine.scene.locate import KeyPath, find_line, key_lines

if TYPE_CHECKING:
    from engine.registry import Registry


@dataclass(frozen=True)
class LoadedScene:
    """A validated scene and where it came from."""

    scene: Any  # an instance of scene_model(registry)
    path: Path  # the scene file
    text: str  # the effective scene (overrides applied) as TOML
    source: str  # the scene file as written
    registry: Registry  # what the built-ins and the scene's plugins registered
    plugins: tuple[str, ...] = ()  # plugins given besides the scene's own (--plugin)

    def error(self, path: KeyPath, message: str, fix: str) -> SceneError:
        """A :class:`SceneError` about one key of this scene, found while preparing the run."""
        line = find_line(key_lines(self.source), path)
        return SceneError(self.path, [SceneIssue(path, message, fix, line)])

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the scene resolve against."""
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the scene, made absolute against the scene's folder."""
        return (self.base_dir / relative).resolve()
