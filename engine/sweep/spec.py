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
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.scene.errors import SceneError, SceneIssue
from engine.scene.loader import parse_override


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
    linspace: tuple[float, float, int] | None = None
    uniform: tuple[float, float] | None = None
    log: bool = False

    @model_validator(mode="after")
    def one_kind(self) -> Axis:
        kinds = [k for k in ("values", "linspace", "uniform") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of values, linspace or uniform")
        if self.uniform is not None and self.log and min(self.uniform) <= 0:
            raise ValueError("log-uniform bounds must be positive")
        return self


class SweepFile(Strict):
    sweep: SweepTable
    axes: list[Axis] = Field(min_length=1)


@dataclass(frozen=True)
class Run:
    """One simulation of the sweep: its id and the scene keys it sets."""

    id: str
    params: dict[str, Any]

    @property
    def overrides(self) -> list[str]:
        """``--set`` style assignments (values as TOML through JSON, which TOML reads)."""
        return [f"{key}={json.dumps(value)}" for key, value in self.params.items()]


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: where things are and the runs it expands into."""

    path: Path
    scene: Path
    output_dir: Path
    spec: SweepTable
    runs: list[Run]


def run_id(params: dict[str, Any]) -> str:
    """A short stable id from the parameters (the same sweep gives the same ids)."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return f"run_{digest[:10]}"


def expand(spec: SweepFile) -> list[Run]:
    """The runs of a sweep: the product of fixed axes times the random draws."""
    fixed, random = [], []
    for axis in spec.axes:
        if axis.values is not None:
            fixed.append((axis.key, list(axis.values)))
        elif axis.linspace is not None:
            start, stop, count = axis.linspace
            fixed.append((axis.key, np.linspace(start, stop, int(count)).tolist()))
        else:
            random.append(axis)
    rng = np.random.default_rng(spec.sweep.seed)
    draws = []
    for _ in range(spec.sweep.samples if random else 1):
        draw = {}
        for axis in random:
            low, high = axis.uniform
            value = (
                float(np.exp(rng.uniform(np.log(low), np.log(high))))
                if axis.log
                else float(rng.uniform(low, high))
            )
            draw[axis.key] = value
        draws.append(draw)
    runs = []
    for combination in itertools.product(*(values for _, values in fixed)):
        for draw in draws:
            params = {key: value for (key, _), value in zip(fixed, combination, strict=True)}
            params.update(draw)
            runs.append(Run(run_id(params), params))
    return runs


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; errors name the file, the key and the fix."""
    path = Path(path)
    try:
        spec = SweepFile.model_validate(tomllib.loads(path.read_text()))
    except OSError as error:
        raise SceneError(
            path, [SceneIssue((), f"cannot read ({error.strerror})", "check the path")]
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise SceneError(
            path, [SceneIssue((), f"not valid TOML: {error}", "fix the syntax")]
        ) from None
    except ValidationError as error:
        issues = [
            SceneIssue(tuple(item["loc"]), item["msg"], "see the sweep format in the README")
            for item in error.errors()
        ]
        raise SceneError(path, issues) from None
    for index, axis in enumerate(spec.axes):
        try:
            parse_override(f"{axis.key}=0")
        except ValueError as error:
            raise SceneError(
                path, [SceneIssue(("axes", index, "key"), str(error), "use a.b.c")]
            ) from None
    scene = (path.parent / spec.sweep.scene).resolve()
    return Sweep(
        path, scene, (path.parent / spec.sweep.output_dir).resolve(), spec.sweep, expand(spec)
    )
