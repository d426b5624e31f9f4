"""``engine info``: what a result holds, and a plot of its diagnostics over time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from engine.io import Result
from engine.viz import VizError
from engine.viz.outputs import prepare_outputs
from engine.viz.results import open_meshes, open_surface

#: Diagnostics the summary and the plot name; other (plugin) ones are only listed.
STANDARD = ("time", "step", "dt", "dt_min", "dt_max", "mass", "momentum", "kinetic_energy")
#: The plotted diagnostics and their axis labels.
PANELS = (
    ("mass", "mass [kg]"),
    ("momentum", "momentum [kg m/s]"),
    ("kinetic_energy", "kinetic energy [J]"),
    ("dt", "dt [s]"),
)


def _hardware(metadata: dict) -> str:
    """``x64 (arch = "gpu" asked for)``: the backend that ran, and what the scene asked."""
    if "arch" not in metadata:
        return "not recorded (written before engine recorded it)"
    torch = metadata.get("torch_device", "none")
    return f'{metadata["arch"]} (arch = "{metadata.get("arch_requested", "?")}")' + (
        f", torch on {torch}" if torch != "none" else ""
    )


def describe(result: Result) -> str:
    """A multi-line report: frames, time range, fields, particle counts, surface, output meshes,
    diagnostics, and the scene text."""
    first, last = result.arrays(0), result.arrays(-1)
    lines = [
        f"result: {result.path} ({result.dim}D, engine {result.metadata.get('engine_version')})",
        f"scene file: {result.metadata.get('scene_file', '?')}",
        f"ran on: {_hardware(result.metadata)}",
        f"frames: {result.n_frames}, t = {result.times[0]:.4g} to {result.times[-1]:.4g} s",
        "fields (first frame):",
        *(f"    {name}: {_shape(values)}" for name, values in first.items()),
        f"particles: {len(result.points(0))} first, {len(result.points(-1))} last",
    ]
    if "body_id" in first:
        lines += [
            f"    body {body}: {counts[0]} first, {counts[1]} last"
            for body, counts in _counts_by_body(first["body_id"], last["body_id"]).items()
        ]
    surface = open_surface(result)
    if surface is not None:
        lines.append(
            f"surface: {surface.path.name}, {surface.n_frames} frames, "
            f"{len(surface.points(0))} vertices, {len(surface.faces(0))} triangles"
        )
    for name, mesh in open_meshes(result).items():
        lines += _mesh_summary(name, mesh)
    lines += _diagnostics_summary(result.diagnostics())
    lines += ["scene:", textwrap.indent(result.scene_text.rstrip(), "    ")]
    return "\n".join(lines)


def plot_diagnostics(result: Result, output: str | Path) -> Path:
    """Write a plot of mass, momentum components, kinetic energy and dt against time (s).

    Raises:
        VizError: ``output``'s suffix is not an image format matplotlib writes (.png, .svg, ...),
            or it cannot be written there (checked before drawing).
    """
    from matplotlib.figure import Figure

    output = Path(output)
    figure = Figure(figsize=(7, 9))
    if output.suffix[1:].lower() not in figure.canvas.get_supported_filetypes():
        raise VizError(f"cannot write a plot named {output.name!r}; name it .png (or .svg, .pdf)")
    prepare_outputs([output])
    diagnostics = result.diagnostics()
    time = diagnostics.get("time", result.times)
    axes = figure.subplots(len(PANELS), 1, sharex=True)
    for axis, (name, label) in zip(axes, PANELS, strict=True):
        values = diagnostics.get(name)
        if values is None:
            axis.text(0.5, 0.5, f"no {name} stored", ha="center", transform=axis.transAxes)
        elif values.ndim == 2:
            for k in range(values.shape[1]):
                axis.plot(time, values[:, k], marker=".", label="xyz"[k])
            axis.legend(loc="best")
        else:
            shown = np.where(values > 0, values, np.nan) if name == "dt" else values
            axis.plot(time, shown, marker=".")  # frame 0 records no step: no dt point
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time [s]")
    figure.suptitle(result.path.name)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    return output


def _shape(values: np.ndarray) -> str:
    """``(N, 2) float32``: the per-particle shape with N for the particle count."""
    return f"{('N', *values.shape[1:])} {values.dtype}".replace("'", "")


def _counts_by_body(first: np.ndarray, last: np.ndarray) -> dict[int, tuple[int, int]]:
    """Particles per body id in the first and last frames."""
    bodies = np.union1d(first, last)
    return {int(b): (int((first == b).sum()), int((last == b).sum())) for b in bodies}


def _mesh_summary(name: str, mesh: Result) -> list[str]:
    """Lines on one output mesh: file, frames, nodes and cells, mover, fields, fallbacks, the
    equidistribution spread and the mover's time."""
    diagnostics = mesh.diagnostics()
    cells = len(mesh.cells(0))
    kind = "quads" if mesh.dim == 2 else "hexahedra"
    nodes = mesh.metadata.get("nodes", "?")
    lines = [
        f"mesh {name}: {mesh.path.name}, {mesh.n_frames} frames, {len(mesh.points(0))} nodes "
        f"{nodes} ({cells} {kind}), mover {mesh.metadata.get('mover', '?')}",
        f"    fields: {', '.join(mesh.fields)}",
    ]
    if "equidistribution" in diagnostics:
        spread, fallback = diagnostics["equidistribution"], diagnostics["fallback"]
        seconds = diagnostics["move_seconds"]
        lines.append(
            f"    equidistribution spread {spread[0]:.3g} first, {spread[-1]:.3g} last; "
            f"{int(fallback.sum())} frames fell back to uniform; move {seconds.mean():.3g} s "
            "per frame"
        )
    return lines


def _diagnostics_summary(diagnostics: dict[str, np.ndarray]) -> list[str]:
    """Lines on mass (first, last, largest relative drift), momentum, kinetic energy and dt."""
    lines = ["diagnostics:"]
    mass = diagnostics.get("mass")
    if mass is not None and len(mass):
        drift = float(np.max(np.abs(mass - mass[0])) / abs(mass[0])) if mass[0] else 0.0
        lines.append(
            f"    mass: {mass[0]:.6g} kg first, {mass[-1]:.6g} kg last, "
            f"largest relative drift {drift:.2g}"
        )
    momentum = diagnostics.get("momentum")
    if momentum is not None and len(momentum):
        lines.append(
            f"    momentum: {_vector(momentum[0])} first, {_vector(momentum[-1])} last kg m/s"
        )
    energy = diagnostics.get("kinetic_energy")
    if energy is not None and len(energy):
        lines.append(f"    kinetic energy: {energy[0]:.4g} J first, {energy[-1]:.4g} J last")
    smallest, largest = diagnostics.get("dt_min"), diagnostics.get("dt_max")
    if smallest is None:  # written before the smallest and largest step were recorded
        smallest = largest = diagnostics.get("dt")
    if smallest is not None and np.any(smallest > 0):  # frame 0 records no step
        lines.append(f"    dt: {smallest[smallest > 0].min():.3g} to {largest.max():.3g} s")
    other = [name for name in diagnostics if name not in STANDARD]
    if other:
        lines.append(f"    also stored: {', '.join(other)}")
    return lines


def _vector(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
