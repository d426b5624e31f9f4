"""Scene errors: each problem names the file, the line, the key path and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.scene.locate import KeyPath


def format_path(path: KeyPath) -> str:
    """``("bodies", 0, "min")`` -> ``bodies[0].min``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass(frozen=True)
class SceneIssue:
    """One problem in a scene file."""

    path: KeyPath
    message: str
    fix: str
    line: int | None = None

    def render(self, file: Path | str) -> str:
        where = f"{file}:{self.line}" if self.line else f"{file}"
        return f"{where}: {format_path(self.path)}: {self.message}\n    fix: {self.fix}"


class SceneError(ValueError):
    """A scene that cannot run, with every problem found.

    ``label`` names the kind of file in the message (``"sweep file"`` for a sweep file).
    """

    def __init__(self, file: Path | str, issues: list[SceneIssue], label: str = "scene") -> None:
        self.file = file
        self.issues = issues
        self.label = label
        count = f"{len(issues)} problem" + ("s" if len(issues) != 1 else "")
        body = "\n".join(issue.render(file) for issue in issues)
        super().__init__(f"{label} {file} has {count}:\n{body}")
