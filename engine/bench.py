"""``engine bench``: particle-steps per second of the engine against taichi's own MLS-MPM example.

Each case runs in its own process (one Taichi runtime each) on the same grid and particle count:

- ``reference``: ``taichi/examples/simulation/mpm3d.py`` from the installed taichi package, made
  headless (GUI removed, ``arch=cpu``), its ``substep()`` timed;
- ``fluid``: the engine's weakly compressible fluid (same wave speed, dt and gravity);
- ``elastic``: the engine's fixed-corotated solid, same layout;
- ``taichi_law`` and ``torch_law``: 100 000 particles of the same neo-Hookean law, compiled into the
  Taichi constitutive stage or batched in torch (``engine_plugins.torch_materials``) on state shared
  without copies; their step-time ratio is the cost of a torch material;
- ``contact``: two 2D blocks in contact (``body_contact``, a grid of twice the cells a side) with a
  torch contact model that returns zeros after reading the whole contact view (interface nodes
  and the particles near them), against the same scene with the built-in contact alone, both in
  one process and timed in alternating blocks of steps: the difference is what the torch
  contact stage costs (torch storage included), as a share of the step;
- ``contact_gnn``: the contact graph network's forward call (random weights: the cost does not
  depend on them; the simulation's dtype) on contact views of running 2D simulations with the
  cell size fixed: the same two blocks in domains of 1, 2 and 4 times ``grid`` cells a side (the
  same interface nodes on a growing grid), and blocks 1/2 to 4 times as wide on 4 ``grid``
  cells (more interface nodes); wall time per call and per interface node, and the peak bytes
  of the tensors the call allocates, per interface node.

The figures that matter are ratios taken in one run, since these machines are noisy.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from engine.progress import Counter

if TYPE_CHECKING:
    from collections.abc import Callable

DT = 2e-4  # s, the reference example's step at 64^3
WAVE_SPEED_MODULUS = 4.0e5  # Pa at 1000 kg/m^3: 20 m/s, the reference's sqrt(E / rho)


def reference_source(grid: int) -> str:
    """The taichi mpm3d example's code, headless, on the CPU, with ``grid`` cells per side."""
    import taichi

    path = Path(taichi.__file__).parent / "examples" / "simulation" / "mpm3d.py"
    source = path.read_text()
    source = source.replace("ti.init(arch=ti.gpu)", "ti.init(arch=ti.cpu, log_level=ti.WARN)")
    source = re.sub(
        r"^dim, n_grid, steps, dt = .*$",
        f"dim, n_grid, steps, dt = 3, {grid}, 25, {DT}",
        source,
        count=1,
        flags=re.MULTILINE,
    )
    return source[: source.index("def T(a)")]


#: The engine's cases: material model and lattice of particles (per grid of 64 cells a side).
CASES = {
    "fluid": ("fluid", (32, 64, 32)),  # 2^16 particles, as the reference
    "elastic": ("fixed_corotated", (32, 64, 32)),
    "taichi_law": ("neo_hookean", (50, 40, 50)),  # 100 000 particles
    "torch_law": ("torch_neo_hookean", (50, 40, 50)),
}


#: The torch contact model of the ``contact`` case: corrects nothing.
ZERO_CONTACT_PLUGIN = """
import torch

from engine.hooks import hookimpl
from engine.hooks.records import ContactModel


def zero_model(params, simulation):
    def corrections(view):
        return torch.zeros_like(view.node_velocity)

    return corrections


@hookimpl
def engine_register_contact_models():
    return [ContactModel(name="zero", create=zero_model)]
"""


def contact_dt(grid: int) -> float:
    """The ``contact`` case's step (s): :data:`DT` at 64 cells a side, scaled with dx."""
    return DT * 64 / grid


def contact_scene(grid: int, torch_model: bool = True) -> str:
    """Two stacked 2D blocks, the upper one sliding, on ``2 * grid`` cells a side, with the
    zero torch contact model or the built-in contact alone."""
    model = 'contact = "zero"' if torch_model else ""
    return f"""
[simulation]
dim = 2
domain = [1.0, 1.0]
resolution = {2 * grid}
end_time = 1.0
frame_dt = 0.1
dt = {contact_dt(grid)}
boundary = "slip"
body_contact = true
{model}

[plugins]
load = ["bench_zero_contact.py"]

[materials.block]
model = "neo_hookean"
density = 1000.0
youngs_modulus = {WAVE_SPEED_MODULUS}
poisson_ratio = 0.0

[[bodies]]
material = "block"
shape = "box"
min = [0.1, 0.0]
max = [0.9, 0.2]
jitter = 0.0

[[bodies]]
material = "block"
shape = "box"
min = [0.3, 0.2]
max = [0.7, 0.4]
velocity = [1.0, 0.0]
jitter = 0.0
"""


#: The ``contact_gnn`` case's cell size (m): fixed, so that blocks of the same size in cells meet
#: at the same interface nodes in every domain.
GNN_DX = 1.0 / 64


def gnn_scene(cells: int, grid: int, width: int) -> str:
    """The ``contact_gnn`` case's scene: on ``cells`` cells a side of :data:`GNN_DX`, a block
    ``2 * width`` cells wide on the floor and one ``width`` wide sliding on it, both
    ``grid / 8`` cells high, with the zero torch contact model (whose stage lists the
    interface)."""
    low, high, start = grid // 8, 2 * (grid // 8), grid // 8
    return f"""
[simulation]
dim = 2
domain = [{cells * GNN_DX}, {cells * GNN_DX}]
resolution = {cells}
end_time = 1.0
frame_dt = 0.1
dt = {DT}
boundary = "slip"
body_contact = true
contact = "zero"

[plugins]
load = ["bench_zero_contact.py"]

[materials.block]
model = "neo_hookean"
density = 1000.0
youngs_modulus = {WAVE_SPEED_MODULUS}
poisson_ratio = 0.0

[[bodies]]
material = "block"
shape = "box"
min = [{start * GNN_DX}, 0.0]
max = [{(start + 2 * width) * GNN_DX}, {low * GNN_DX}]
jitter = 0.0

[[bodies]]
material = "block"
shape = "box"
min = [{(start + width // 2) * GNN_DX}, {low * GNN_DX}]
max = [{(start + width // 2 + width) * GNN_DX}, {high * GNN_DX}]
velocity = [1.0, 0.0]
jitter = 0.0
"""


def gnn_layouts(grid: int) -> list[tuple[int, int]]:
    """``(cells a side, block width in cells)`` of the ``contact_gnn`` case: the same blocks on
    ``grid``, ``2 grid`` and ``4 grid`` cells, then narrower and wider ones on ``4 grid``."""
    width, large = grid // 4, 4 * grid
    same_blocks = [(grid, width), (2 * grid, width), (large, width)]
    return same_blocks + [(large, width // 2), (large, 2 * width), (large, 4 * width)]


def bench_scene(case: str, grid: int) -> str:
    """A 3D block of particles at the reference's density (about 3.9 particles per cell)."""
    model, lattice = CASES[case]
    dx = 1.0 / grid
    spacing = dx / 1.575  # the reference's particle density: 2^16 particles in (0.4 / dx)^3 cells
    size = [n * grid / 64 * spacing for n in lattice]
    lo = [0.15, 0.15, 0.15]
    hi = [a + b for a, b in zip(lo, size, strict=True)]
    stiffness = "bulk_modulus" if model == "fluid" else "youngs_modulus"
    params = f'model = "{model}"\ndensity = 1000.0\n{stiffness} = {WAVE_SPEED_MODULUS}\n'
    if model != "fluid":
        params += "poisson_ratio = 0.0\n"
    return f"""
[simulation]
dim = 3
domain = [1.0, 1.0, 1.0]
resolution = {grid}
end_time = 1.0
frame_dt = 0.1
dt = {DT}
gravity = [0.0, -9.8, 0.0]
boundary = "sticky"

[materials.block]
{params}
[[bodies]]
material = "block"
shape = "box"
min = {lo}
max = {hi}
particles_per_cell = {1.575**3}
jitter = 0.0
"""


def _time_steps(step, steps: int, sync) -> float:
    for _ in range(5):  # compile and warm up
        step()
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return time.perf_counter() - started


def measure(case: str, steps: int, grid: int) -> dict:
    """Time one case in this process; return particles, seconds and memory per particle (for
    ``contact_gnn``, :func:`measure_contact_gnn` with ``steps`` calls)."""
    import taichi as ti

    if case == "contact_gnn":
        return measure_contact_gnn(steps, grid)

    rss_before = psutil.Process().memory_info().rss
    extra: dict = {}
    with tempfile.TemporaryDirectory() as folder:  # taichi compiles from source files on disk
        if case == "reference":
            script = Path(folder) / "mpm3d_headless.py"
            script.write_text(reference_source(grid))
            namespace = runpy.run_path(str(script))
            namespace["init"]()
            particles = namespace["n_particles"]
            seconds = _time_steps(namespace["substep"], steps, ti.sync)
            array_bytes = sum(
                namespace[name].to_numpy().nbytes
                for name in ("F_x", "F_v", "F_C", "F_J", "F_grid_v", "F_grid_m")
            )
        else:
            from engine.scene.loader import load_scene
            from engine.solver.simulation import Simulation

            scene_path = Path(folder) / f"bench_{case}.toml"
            if case == "contact":
                (Path(folder) / "bench_zero_contact.py").write_text(ZERO_CONTACT_PLUGIN)
                scene_path.write_text(contact_scene(grid))
                built_in = Path(folder) / "bench_contact_built_in.toml"
                built_in.write_text(contact_scene(grid, torch_model=False))
                sim = Simulation(load_scene(scene_path))
                reference = Simulation(load_scene(built_in))
                dt = contact_dt(grid)
                seconds, reference_seconds = _time_alternating(sim, reference, steps, ti.sync, dt)
                extra = _contact_stage_costs(sim, steps, ti.sync, dt)
                extra["contact_stage_share"] = extra.pop("stage_seconds") / (seconds / steps)
                extra["contact_end_to_end_share"] = 1.0 - reference_seconds / seconds
            else:
                scene_path.write_text(bench_scene(case, grid))
                sim = Simulation(load_scene(scene_path))
                seconds = _time_steps(lambda: sim.step(DT), steps, ti.sync)
            particles = sim.n_particles
            array_bytes = sim.storage_bytes
    rss_after = psutil.Process().memory_info().rss
    return {
        **extra,
        "case": case,
        "particles": particles,
        "steps": steps,
        "seconds": seconds,
        "particle_steps_per_second": particles * steps / seconds,
        "rss_bytes_per_particle": (rss_after - rss_before) / particles,
        "array_bytes_per_particle": array_bytes / particles,
    }


def _time_alternating(
    sim, reference, steps: int, sync, dt: float, blocks: int = 10
) -> tuple[float, float]:
    """Seconds for ``steps`` steps of ``dt`` of ``sim`` and of ``reference``, timed in
    alternating blocks (so that the machine's load changes hit both alike)."""
    for simulation in (sim, reference):
        _time_steps(lambda s=simulation: s.step(dt), 1, sync)  # compile and warm up
    totals = [0.0, 0.0]
    per_block = max(1, steps // blocks)
    for _ in range(blocks):
        for which, simulation in enumerate((sim, reference)):
            started = time.perf_counter()
            for _ in range(per_block):
                simulation.step(dt)
            sync()
            totals[which] += time.perf_counter() - started
    scale = steps / (per_block * blocks)
    return totals[0] * scale, totals[1] * scale


def _contact_stage_costs(sim, steps: int, sync, dt: float) -> dict:
    """Per step: the torch contact stage's seconds (its own call, plus what listing the
    interface adds to the grid update, timed against the plain grid update in alternating
    blocks on the same arrays), and what reading ``near_interface`` would add (ms)."""
    import taichi as ti

    from engine.solver.contact_stage import one_torch_thread_beside_taichi

    stage = sim.contact_stage
    colliders = sim.colliders.at(sim.time)
    gravity = ti.Vector(sim.gravity)
    plain = sim.kernels.grid_update
    run_seconds = listing = plain_seconds = 0.0
    for _ in range(steps):
        sim.step(dt)
        sync()
        started = time.perf_counter()
        stage.run(sim, dt, colliders)
        sync()
        run_seconds += time.perf_counter() - started
        started = time.perf_counter()
        stage.grid_update(sim, dt, gravity, colliders)
        sync()
        listing += time.perf_counter() - started
        started = time.perf_counter()
        plain(sim.grid_nodes, sim.grid_v_old, *sim.body_fields, gravity, dt, sim.grid.dx, 0.0,
              *colliders, *sim.sparse.listing)  # fmt: skip
        sync()
        plain_seconds += time.perf_counter() - started
    with one_torch_thread_beside_taichi(stage.torch, stage.device):  # as inside the stage
        started = time.perf_counter()
        for _ in range(steps):
            stage.near(sim)
        near = (time.perf_counter() - started) / steps
    return {
        "stage_seconds": (run_seconds + max(0.0, listing - plain_seconds)) / steps,
        "near_interface_ms": 1e3 * near,
        "interface_nodes": stage.found,
    }


def measure_contact_gnn(calls: int, grid: int) -> dict:
    """The ``contact_gnn`` case: one row per :func:`gnn_layouts` layout (cells, width,
    particles, interface nodes, seconds per call, µs and peak bytes per interface node; the
    calls of all layouts timed in alternating blocks), and in-run ratios: ``grid_*_ratio``,
    the 4x grid's against the 1x grid's per call (same interface), ``node_*_ratio``, the
    widest blocks' per node against the narrowest blocks', and what each node beyond the
    narrowest blocks' adds (``us_per_added_node``, ``bytes_per_added_node``)."""
    from engine.solver.contact_stage import one_torch_thread_beside_taichi

    layouts = gnn_layouts(grid)
    with tempfile.TemporaryDirectory() as folder:
        views = [_gnn_view(Path(folder), cells, grid, width) for cells, width in layouts]
    model = _random_gnn(views[0])
    torch = model.torch
    sync = torch.cuda.synchronize if views[0].x.is_cuda else (lambda: None)
    with torch.no_grad(), one_torch_thread_beside_taichi(torch, views[0].x.device.type):
        seconds = _time_calls_alternating([lambda v=v: model(v) for v in views], calls, sync)
        peaks = [peak_call_bytes_of(model, view) for view in views]
    rows = []
    for (cells, width), view, call, peak in zip(layouts, views, seconds, peaks, strict=True):
        nodes = len(view.node_index)
        rows.append(
            {
                "cells": cells,
                "width": width,
                "particles": len(view.x),
                "interface_nodes": nodes,
                "seconds_per_call": call,
                "us_per_node": 1e6 * call / nodes,
                "peak_bytes": peak,
                "bytes_per_node": peak / nodes,
            }
        )
    small, large, narrow, wide = rows[0], rows[2], rows[3], rows[-1]
    added = wide["interface_nodes"] - narrow["interface_nodes"]
    return {
        "case": "contact_gnn",
        "calls": calls,
        "rows": rows,
        "grid_time_ratio": large["seconds_per_call"] / small["seconds_per_call"],
        "grid_memory_ratio": large["peak_bytes"] / small["peak_bytes"],
        "node_time_ratio": wide["us_per_node"] / narrow["us_per_node"],
        "node_memory_ratio": wide["bytes_per_node"] / narrow["bytes_per_node"],
        "us_per_added_node": 1e6 * (wide["seconds_per_call"] - narrow["seconds_per_call"]) / added,
        "bytes_per_added_node": (wide["peak_bytes"] - narrow["peak_bytes"]) / added,
    }


def _gnn_view(folder: Path, cells: int, grid: int, width: int):
    """The contact view after three steps of :func:`gnn_scene` (the blocks touch from the
    start; the upper one slides)."""
    from engine.scene.loader import load_scene
    from engine.solver.simulation import Simulation

    (folder / "bench_zero_contact.py").write_text(ZERO_CONTACT_PLUGIN)
    path = folder / f"bench_gnn_{cells}_{width}.toml"
    path.write_text(gnn_scene(cells, grid, width))
    sim = Simulation(load_scene(path))
    for _ in range(3):
        sim.step(DT)
    return sim.contact_stage.view(sim, DT, sim.time)


def _random_gnn(view):
    """A :class:`ContactGNN` of the default size with random weights, on the view's device
    and dtype; ``.torch`` is the torch module."""
    import torch

    from engine.diff.contact_gnn import ContactGNN, ContactGNNConfig

    torch.manual_seed(0)
    model = ContactGNN(ContactGNNConfig(view.node_position.shape[1]))
    model = model.to(device=view.x.device, dtype=view.node_position.dtype).eval()
    model.torch = torch
    return model


def peak_call_bytes_of(model, view) -> int:
    """Peak bytes of the tensors one ``model(view)`` allocates (see
    :func:`engine.diff.tensor_memory.peak_call_bytes`)."""
    from engine.diff.tensor_memory import peak_call_bytes

    return peak_call_bytes(lambda: model(view), view.x.device)


def _time_calls_alternating(
    calls: list[Callable[[], object]], count: int, sync: Callable[[], None], blocks: int = 10
) -> list[float]:
    """Seconds per call of each of ``calls``, ``count`` times each after a warm-up, timed in
    alternating blocks (so that the machine's load changes hit all alike)."""
    for call in calls:
        call()
    sync()
    totals = [0.0] * len(calls)
    per_block = max(1, count // blocks)
    for _ in range(blocks):
        for which, call in enumerate(calls):
            started = time.perf_counter()
            for _ in range(per_block):
                call()
            sync()
            totals[which] += time.perf_counter() - started
    return [total / (per_block * blocks) for total in totals]


class BenchError(RuntimeError):
    """A case whose process failed, with the last line it wrote to stderr."""


def measure_apart(case: str, steps: int, grid: int) -> dict:
    """:func:`measure` in a fresh process (one Taichi runtime per case)."""
    command = [sys.executable, "-m", "engine.bench", case, str(steps), str(grid)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or ["nothing on stderr"]
        raise BenchError(f"bench case {case} failed (exit status {done.returncode}): {said[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_benchmarks(steps: int = 100, grid: int = 64, which: list[str] | None = None) -> list[dict]:
    """Run each case in a fresh process and print a table with ratios to the reference; the
    case being compiled and timed shows on stderr as it runs."""
    cases = which or ["reference", *CASES, "contact", "contact_gnn"]
    results = []
    with Counter("bench", len(cases), "cases") as counter:
        for done, case in enumerate(cases):
            what = "calls" if case == "contact_gnn" else "steps"
            counter.update(done, f"{case}: compiling, then timing {steps} {what}")
            results.append(measure_apart(case, steps, grid))
            counter.update(done + 1, f"{case}: {_outcome(results[-1])}")
    stepped = [r for r in results if r["case"] != "contact_gnn"]
    if stepped:
        print_step_rates(stepped, steps, grid)
    by_case = {r["case"]: r for r in results}
    if "taichi_law" in by_case and "torch_law" in by_case:
        taichi, torch = by_case["taichi_law"], by_case["torch_law"]
        ratio = (torch["seconds"] / torch["steps"]) / (taichi["seconds"] / taichi["steps"])
        print(f"torch-batched neo-Hookean step time / Taichi neo-Hookean step time: {ratio:.2f}")
    if "contact" in by_case:
        contact = by_case["contact"]
        print(
            f"2D contact ({contact['particles']} particles, {contact['interface_nodes']} "
            f"interface nodes): torch contact stage with a zero model / step: "
            f"{contact['contact_stage_share']:.1%}; the whole step against the built-in "
            f"contact on Taichi arrays: +{contact['contact_end_to_end_share']:.1%}; reading "
            f"near_interface: +{contact['near_interface_ms']:.2f} ms"
        )
    if "contact_gnn" in by_case:
        print_contact_gnn(by_case["contact_gnn"])
    return results


def print_step_rates(results: list[dict], steps: int, grid: int) -> None:
    """The table of the stepped cases: particle-steps per second, against the reference's."""
    reference = next((r for r in results if r["case"] == "reference"), None)
    print(f"grid {grid}^3, {steps} timed steps per case, one process per case")
    print(
        f"{'case':<10} {'particles':>9} {'M p-steps/s':>12} {'vs reference':>13}"
        f" {'RSS B/particle':>15} {'array B/particle':>17}"
    )
    for r in results:
        ratio = (
            r["particle_steps_per_second"] / reference["particle_steps_per_second"]
            if reference
            else float("nan")
        )
        print(
            f"{r['case']:<10} {r['particles']:>9} {r['particle_steps_per_second'] / 1e6:>12.3f} "
            f"{ratio:>13.2f} {r['rss_bytes_per_particle']:>15.0f}"
            f" {r['array_bytes_per_particle']:>17.0f}"
        )


def _outcome(result: dict) -> str:
    """A case's figure for the progress line."""
    if result["case"] == "contact_gnn":
        return f"{result['rows'][-1]['us_per_node']:.1f} µs per interface node"
    return f"{result['particle_steps_per_second'] / 1e6:.3f} M particle-steps/s"


def print_contact_gnn(result: dict) -> None:
    """The ``contact_gnn`` case's table and ratios."""
    print(f"contact GNN forward ({result['calls']} calls per layout, 2D, random weights):")
    print(
        f"{'cells':>6} {'width':>6} {'particles':>9} {'nodes':>6} {'ms/call':>8}"
        f" {'µs/node':>8} {'peak B':>10} {'B/node':>7}"
    )
    for row in result["rows"]:
        print(
            f"{row['cells']:>6} {row['width']:>6} {row['particles']:>9}"
            f" {row['interface_nodes']:>6} {1e3 * row['seconds_per_call']:>8.2f}"
            f" {row['us_per_node']:>8.1f} {row['peak_bytes']:>10} {row['bytes_per_node']:>7.0f}"
        )
    print(
        f"4x the cells a side, same interface: time x {result['grid_time_ratio']:.2f}, memory "
        f"x {result['grid_memory_ratio']:.2f}; widest vs narrowest blocks, per node: time x "
        f"{result['node_time_ratio']:.2f}, memory x {result['node_memory_ratio']:.2f}; each "
        f"added node: {result['us_per_added_node']:.1f} µs, "
        f"{result['bytes_per_added_node']:.0f} B"
    )


if __name__ == "__main__":
    case, steps, grid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(case, steps, grid)))
