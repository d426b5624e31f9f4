"""Open result files for drawing: the particle file, its surface and mesh files, and frame
selections."""

from __future__ import annotations

import tomllib
from pathlib import Path

import engine.io
from engine.output.vtkhdf import MESH, SURFACE, mesh_path, surface_path
from engine.viz import VizError


def open_result(path: str | Path) -> engine.io.Result:
    """Open an engine particle result with at least one frame, or raise :class:`VizError`."""
    path = Path(path)
    if not path.is_file():
        raise VizError(f"{path} does not exist; give the .vtkhdf file `engine run` wrote")
    try:
        result = engine.io.open(path)
    except (OSError, KeyError) as error:
        raise VizError(
            f"cannot read {path} as an engine result ({error}); give a .vtkhdf file written "
            "by `engine run`"
        ) from None
    if result.kind in (SURFACE, MESH):
        particles = path.name.replace("_surface", "").split("_mesh_")[0]
        particles += "" if particles.endswith(path.suffix) else path.suffix
        raise VizError(
            f"{path} is a {result.kind} file; give the particle file beside it "
            f"({particles}), its {result.kind} is drawn with it"
        )
    if result.n_frames == 0:
        raise VizError(f"{path} has no finished frames yet; run the scene (longer) first")
    return result


def parse_scene(scene_text: str) -> dict:
    """A result's stored scene TOML (:attr:`engine.io.Result.scene_text`) as tables.

    Raises:
        VizError: the text is not valid TOML.
    """
    try:
        return tomllib.loads(scene_text)
    except tomllib.TOMLDecodeError as error:
        raise VizError(f"the result's stored scene is not valid TOML ({error})") from None


def open_surface(result: engine.io.Result) -> engine.io.Result | None:
    """The mesh movers' surface file written beside ``result``, or None if there is none."""
    path = surface_path(result.path)
    if not path.is_file():
        return None
    surface = engine.io.open(path)
    return surface if surface.n_frames else None


def open_meshes(result: engine.io.Result) -> dict[str, engine.io.Result]:
    """The output meshes written beside ``result`` (``<output>_mesh_<name>.vtkhdf``), by name,
    in the order of the scene's ``[[output.meshes]]``; those with no finished frame left out."""
    tables = parse_scene(result.scene_text).get("output", {}).get("meshes", [])
    meshes = {}
    for table in tables:
        path = mesh_path(result.path, str(table.get("name", "")))
        if path.is_file() and (mesh := engine.io.open(path)).n_frames:
            meshes[str(table["name"])] = mesh
    return meshes


def nearest_frame(result: engine.io.Result, time: float) -> int:
    """Index of the frame of ``result`` closest in time to ``time`` (s)."""
    return int(abs(result.times - time).argmin())


def parse_frames(spec: str) -> int | slice:
    """``"N"`` (one frame, negative from the end) or ``"A:B"`` / ``"A:B:STEP"`` (a range)."""
    try:
        if ":" not in spec:
            return int(spec)
        parts = [int(part) if part.strip() else None for part in spec.split(":")]
    except ValueError:
        parts = []
    if not 2 <= len(parts) <= 3 or (len(parts) == 3 and parts[2] == 0):
        raise VizError(
            f"bad frame selection {spec!r}; use an index N (e.g. -1 for the last frame) or a "
            "range A:B (e.g. 0:10, 5:, ::2)"
        )
    return slice(*parts)


def select_frames(result: engine.io.Result, frames: int | slice) -> list[int]:
    """The frame indices ``frames`` picks from ``result``; raise :class:`VizError` if none."""
    n = result.n_frames
    if isinstance(frames, slice):
        indices = list(range(n))[frames]
        if indices:
            return indices
    elif -n <= frames < n:
        return [frames % n]
    raise VizError(
        f"frames {_describe(frames)} select nothing in {result.path}, which has {n} frames "
        f"(0 to {n - 1}); pick indices in that range"
    )


def _describe(frames: int | slice) -> str:
    if isinstance(frames, int):
        return str(frames)
    parts = [frames.start, frames.stop] + ([frames.step] if frames.step is not None else [])
    return ":".join("" if part is None else str(part) for part in parts)
