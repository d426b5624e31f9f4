"""The sweep file: a base scene plus parameter axes, expanded into runs.

```toml
[sweep]
scene = "../scenes/dam_break_2d.toml"   # relative to the sweep file
output_dir = "out/dam_sweep"            # one result file per run, plus manifest.json
retries = 2                             # extra attempts for a failed run
samples = 3                             # draws of the random axes (if any)
seed = 0                                # seeds the random axes

[sweep.resources]                       # per run
cpus = 1
gpus = 0.0

[[axes]]                                # a list of values
key = "materials.water.viscosity"
values = [1e-3, 1e-2]

[[axes]]                                # evenly spaced values
key = "simulation.gravity[1]"
linspace = [-9.81, -4.0, 3]

[[axes]]                                # random samples, uniform (log = true: log-uniform)
key = "materials.water.bulk_modulus"
uniform = [1e5, 1e6]
log = true
```

Runs are the product of the list and linspace axes, times ``samples`` draws of the random axes.
Each run's id is derived from its parameters, so a re-run of the same sweep finds its runs again.
Problems in the sweep file are :class:`SceneError` s labelled "sweep file", with their lines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.scene.errors import SceneError, SceneIssue
from engine.scene.explain import schema_issues
from engine.scene.loader import parse_override
from engine.scene.locate import KeyPath, find_line, key_lines

LABEL = "sweep file"
README_FIX = "the sweep format in the README"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(Strict):
    cpus: float = Field(default=1.0, gt=0, description="CPUs per run.")
    gpus: float = Field(default=0.0, ge=0, description="GPU fraction per run.")


class SweepTable(Strict):
    scene: str = Field(description="Base scene file, relative to the sweep file.")
    output_dir: str = Field(default="out/sweep", description="Folder for results and manifest.")
    retries: int = Field(default=2, ge=0, le=20, description="Extra attempts for a failed run.")
    samples: int = Field(default=1, ge=1, description="Draws of the random axes.")
    seed: int = Field(default=0, ge=0, description="Seed of the random axes.")
    resources: Resources = Field(default_factory=Resources)


class Axis(Strict):
    key: str = Field(description="Scene key, as for --set: simulation.end_time, bodies[0].radius")
    values: list[Any] | None = Field(default=None, min_length=1)
    linspace: tuple[float, float, Annotated[int, Field(ge=1)]] | None = None
    uniform: tuple[float, float] | None = None
    log: bool = False

    @field_validator("key")
    @classmethod
    def a_key_path(cls, key: str) -> str:
        if "=" in key:
            raise ValueError("a key path has no `=`: write it as for --set, e.g. bodies[0].radius")
        parse_override(f"{key}=0")  # raises for an empty path
        return key

    @model_validator(mode="after")
    def one_kind(self) -> Axis:
        kinds = [k for k in ("values", "linspace", "uniform") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of values, linspace or uniform")
        if self.uniform is not None and self.log and min(self.uniform) <= 0:
            raise ValueError("log-uniform bounds must be positive")
        return self

    @property
    def path(self) -> KeyPath:
        """The key path this axis sets: ``bodies[0].radius`` -> ``("bodies", 0, "radius")``."""
        return parse_override(f"{self.key}=0")[0]

    def grid(self) -> list[Any] | None:
        """The values of a ``values`` or ``linspace`` axis; None for a random one."""
        if self.values is not None:
            return list(self.values)
        if self.linspace is not None:
            start, stop, count = self.linspace
            return np.linspace(start, stop, count).tolist()
        return None

    def draw(self, rng: np.random.Generator) -> float:
        """One value of a ``uniform`` axis (log-uniform with ``log = true``)."""
        low, high = self.uniform
        if self.log:
            return float(np.exp(rng.uniform(np.log(low), np.log(high))))
        return float(rng.uniform(low, high))


class SweepFile(Strict):
    sweep: SweepTable
    axes: list[Axis] = Field(min_length=1)


def toml_value(value: Any) -> str:
    """``value`` as ``--set`` reads it: TOML on one line, tables inline (JSON is not TOML)."""
    if isinstance(value, dict):
        items = ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


@dataclass(frozen=True)
class Run:
    """One simulation of the sweep: its id and the scene keys it sets."""

    id: str
    params: dict[str, Any]

    @property
    def overrides(self) -> list[str]:
        """``--set`` style assignments of the run's parameters."""
        return [f"{key}={toml_value(value)}" for key, value in self.params.items()]


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: where things are, its axes and the runs they expand into."""

    path: Path
    scene: Path
    output_dir: Path
    spec: SweepTable
    axes: list[Axis]
    runs: list[Run]
    lines: dict[KeyPath, int]  # the line of each key written in the sweep file

    @property
    def manifest_path(self) -> Path:
        """``output_dir/manifest.json``."""
        return self.output_dir / "manifest.json"

    def output_file(self, run: Run) -> Path:
        """The run's result file, ``output_dir/<run id>.vtkhdf``."""
        return self.output_dir / f"{run.id}.vtkhdf"

    def overrides(self, run: Run) -> list[str]:
        """What a run's scene is loaded with: its parameters and its output file."""
        return [*run.overrides, f"output.path={toml_value(str(self.output_file(run)))}"]

    def axis_of(self, path: KeyPath) -> int | None:
        """The index of the axis that sets ``path``, a key inside it or a table holding it."""
        for index, axis in enumerate(self.axes):
            shared = min(len(path), len(axis.path))
            if shared and path[:shared] == axis.path[:shared]:
                return index
        return None

    def error(self, issues: list[SceneIssue]) -> SceneError:
        """A :class:`SceneError` on this sweep file."""
        return sweep_error(self.path, issues, self.lines)


def sweep_error(path: Path, issues: list[SceneIssue], lines: dict[KeyPath, int]) -> SceneError:
    """A :class:`SceneError` labelled "sweep file", each issue at the line of its key path."""
    located = [
        dataclasses.replace(issue, line=issue.line or find_line(lines, issue.path))
        for issue in issues
    ]
    return SceneError(path, located, label=LABEL)


def run_id(params: dict[str, Any]) -> str:
    """A short stable id from the parameters (the same sweep gives the same ids)."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return f"run_{digest[:10]}"


def expand(spec: SweepFile) -> list[Run]:
    """The runs of a sweep: the product of the fixed axes times the random draws."""
    fixed = [(axis.key, axis.grid()) for axis in spec.axes if axis.uniform is None]
    random = [axis for axis in spec.axes if axis.uniform is not None]
    rng = np.random.default_rng(spec.sweep.seed)
    draws = [
        {axis.key: axis.draw(rng) for axis in random}
        for _ in range(spec.sweep.samples if random else 1)
    ]
    runs = []
    for combination in itertools.product(*(values for _, values in fixed)):
        for draw in draws:
            params = {key: value for (key, _), value in zip(fixed, combination, strict=True)}
            params.update(draw)
            runs.append(Run(run_id(params), params))
    return runs


def _axis_issues(axes: list[Axis]) -> list[SceneIssue]:
    """Axes that would give the same run twice: a key set by two axes, a repeated value."""
    issues = []
    first_by_path: dict[KeyPath, int] = {}
    for index, axis in enumerate(axes):
        earlier = first_by_path.setdefault(axis.path, index)
        if earlier != index:
            message = f"`{axis.key}` is set by axes[{earlier}] already"
            issues.append(SceneIssue(("axes", index, "key"), message, "give each key one axis"))
        seen: set[str] = set()
        for value in axis.grid() or ():
            text = json.dumps(value, sort_keys=True)
            if text in seen:
                kind = "values" if axis.values is not None else "linspace"
                message = f"{text} comes twice: two runs would be the same, in the same file"
                issues.append(SceneIssue(("axes", index, kind), message, "remove the repeat"))
                break
            seen.add(text)
    return issues


def _schema_issues(error: ValidationError, data: dict) -> list[SceneIssue]:
    """Pydantic's errors told as for a scene, the fixes pointing to the sweep format."""
    return [
        dataclasses.replace(issue, fix=issue.fix.replace("`engine schema`", README_FIX))
        for issue in schema_issues(error, data, SweepFile)
    ]


def _read(path: Path) -> tuple[str, dict]:
    """The sweep file's text and its TOML, or a :class:`SceneError` saying why not."""
    try:
        text = path.read_text()
        return text, tomllib.loads(text)
    except OSError as error:
        issue = SceneIssue((), f"cannot read the file ({error.strerror})", "check the path")
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"at line (\d+)", str(error))
        issue = SceneIssue(
            (),
            f"not valid TOML: {error}",
            "fix the TOML syntax at that line",
            int(line.group(1)) if line else None,
        )
    raise sweep_error(path, [issue], {})


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; errors name the file, the line, the key and the fix."""
    path = Path(path)
    text, data = _read(path)
    lines = key_lines(text)
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as error:
        raise sweep_error(path, _schema_issues(error, data), lines) from None
    issues = _axis_issues(spec.axes)
    if issues:
        raise sweep_error(path, issues, lines)
    return Sweep(
        path,
        (path.parent / spec.sweep.scene).resolve(),
        (path.parent / spec.sweep.output_dir).resolve(),
        spec.sweep,
        spec.axes,
        expand(spec),
        lines,
    )
