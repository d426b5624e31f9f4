"""``engine bench --scaling``: what a particle-step costs as the particles, the domain and the
threads grow.

Every row is a block of the benchmark's weakly compressible fluid (``engine.bench``: its wave
speed, dt and gravity; about 4 particles per cell; cell size 1/64 m) timed in a fresh process
(one Taichi runtime each) with ``ENGINE_CPU_THREADS`` set:

- ``size`` rows: 10^4, 10^5 and 10^6 particles in 2D and 3D, each block in a domain 1.6 times
  its extent a side (the grid grows with the block);
- ``domain`` rows: the same 3D block of 10^5 particles in domains 1, 2 and 4 times as wide at the
  same cell size (the grid grows, the particles do not);
- each on 1 and 2 threads.

Reported per row: the grid's nodes and those the sparse grid stores, ms per step, ns per
particle-step, and resident memory per particle (what the process grew by from building the
simulation to the end of the timing, over the particles). The ratios that matter are taken in
one run: the spread of the cost per particle-step across the table, the 4x domain over the 1x
domain (step and memory), and 1 over 2 threads. The largest run that fits is the
machine's memory over the largest measured memory per particle (an extrapolation, said so).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from engine.bench import DT, WAVE_SPEED_MODULUS
from engine.progress import Counter
from engine.solver.runtime import CPU_THREADS

DX = 1.0 / 64  # m
PARTICLES_PER_CELL = 4.0
SIZES = (10_000, 100_000, 1_000_000)
DOMAIN_PARTICLES = 100_000
DOMAIN_FACTORS = (1, 2, 4)
THREADS = (1, 2)
TARGET_PARTICLE_STEPS = 4_000_000  # timed per row: a few seconds of stepping


@dataclass(frozen=True)
class Row:
    """One timed configuration: ``kind`` is ``size`` or ``domain``."""

    kind: str
    dim: int
    particles: int
    domain_factor: int
    threads: int


def rows() -> list[Row]:
    """The table's configurations, in the order they run."""
    table = [
        Row("size", dim, n, 1, threads) for dim in (2, 3) for n in SIZES for threads in THREADS
    ]
    table += [
        Row("domain", 3, DOMAIN_PARTICLES, factor, threads)
        for factor in DOMAIN_FACTORS
        for threads in THREADS
    ]
    return table


def scene_text(row: Row) -> str:
    """The row's scene: a fluid block of ``row.particles`` at 4 particles per cell, in a
    domain of 1.6 times its extent a side, times ``row.domain_factor`` (the ``size`` rows'
    domain when the factor is 1)."""
    side = (row.particles / PARTICLES_PER_CELL) ** (1.0 / row.dim) * DX  # m
    if row.kind == "domain":
        side = (DOMAIN_PARTICLES / PARTICLES_PER_CELL) ** (1.0 / row.dim) * DX
    width = math.ceil(1.6 * side / DX) * DX * row.domain_factor
    low = [0.3 * side] * row.dim
    high = [0.3 * side + side] * row.dim
    gravity = [0.0, -9.8, 0.0][: row.dim]
    return f"""
[simulation]
dim = {row.dim}
domain = {[width] * row.dim}
resolution = {round(width / DX)}
end_time = 1.0
frame_dt = 0.1
dt = {DT}
gravity = {gravity}
boundary = "sticky"

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = {WAVE_SPEED_MODULUS}

[[bodies]]
material = "water"
shape = "box"
min = {low}
max = {high}
particles_per_cell = {PARTICLES_PER_CELL}
jitter = 0.0
"""


def measure(row: Row) -> dict:
    """Time ``row`` in this process: build, warm up (compile), then step."""
    import taichi as ti

    from engine.scene.loader import load_scene
    from engine.solver.simulation import Simulation

    before = psutil.Process().memory_info().rss
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scaling.toml"
        path.write_text(scene_text(row))
        sim = Simulation(load_scene(path))
        for _ in range(3):  # compile and warm up
            sim.step(DT)
        ti.sync()
        steps = max(5, TARGET_PARTICLE_STEPS // sim.n_particles)
        started = time.perf_counter()
        for _ in range(steps):
            sim.step(DT)
        ti.sync()
        seconds = (time.perf_counter() - started) / steps
    grown = psutil.Process().memory_info().rss - before
    return {
        **asdict(row),
        "seeded": sim.n_particles,
        "grid_nodes": math.prod(sim.grid.shape),
        "stored_nodes": sim.sparse.rows,
        "steps": steps,
        "ms_per_step": 1e3 * seconds,
        "ns_per_particle_step": 1e9 * seconds / sim.n_particles,
        "bytes_per_particle": grown / sim.n_particles,
    }


def measure_apart(row: Row) -> dict:
    """:func:`measure` in a fresh process with ``ENGINE_CPU_THREADS`` = ``row.threads``."""
    command = [sys.executable, "-m", "engine.bench_scaling", json.dumps(asdict(row))]
    env = {**os.environ, CPU_THREADS: str(row.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or ["nothing on stderr"]
        raise RuntimeError(f"scaling row {row} failed (exit {done.returncode}): {said[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(results: list[dict]) -> dict:
    """The run's ratios: the spread of the cost per particle-step (largest over smallest, per
    thread count), the widest domain's step over the narrowest's and 1 over 2 threads (per
    configuration), and the largest run the machine's memory would hold at the largest memory
    per particle measured on 10^5 particles or more."""

    def key(r: dict, **change) -> tuple:
        fields = {name: r[name] for name in ("kind", "dim", "particles", "domain_factor")}
        return tuple({**fields, "threads": r["threads"], **change}.values())

    by = {key(r): r for r in results}
    spread, domain, memory, speedup = {}, {}, {}, {}
    for threads in THREADS:
        costs = [r["ns_per_particle_step"] for r in results if r["threads"] == threads]
        spread[threads] = max(costs) / min(costs)
        narrow = by[("domain", 3, DOMAIN_PARTICLES, min(DOMAIN_FACTORS), threads)]
        wide = by[("domain", 3, DOMAIN_PARTICLES, max(DOMAIN_FACTORS), threads)]
        domain[threads] = wide["ms_per_step"] / narrow["ms_per_step"]
        memory[threads] = wide["bytes_per_particle"] / narrow["bytes_per_particle"]
    for r in results:
        if r["threads"] == 1:
            name = f"{r['kind']} {r['dim']}D {r['seeded']} particles, domain x{r['domain_factor']}"
            speedup[name] = r["ms_per_step"] / by[key(r, threads=2)]["ms_per_step"]
    per_particle = max(r["bytes_per_particle"] for r in results if r["seeded"] >= 100_000)
    return {
        "cost_spread": spread,
        "widest_over_narrowest_domain": domain,
        "widest_over_narrowest_memory": memory,
        "one_over_two_threads": speedup,
        "largest_bytes_per_particle": per_particle,
        "largest_run_that_fits": int(psutil.virtual_memory().total / per_particle),
    }


def run_scaling() -> dict:
    """Run every row in its own process, print the table and the ratios; return both."""
    table = rows()
    results = []
    with Counter("scaling", len(table), "rows") as counter:
        for done, row in enumerate(table):
            counter.update(done, f"{row.kind} {row.dim}D {row.particles} x{row.domain_factor}")
            results.append(measure_apart(row))
            counter.update(done + 1, f"{results[-1]['ms_per_step']:.1f} ms per step")
    print(
        f"{'rows':<7} {'dim':>3} {'particles':>9} {'domain':>6} {'nodes':>10} {'stored':>9}"
        f" {'threads':>7} {'ms/step':>8} {'ns/p-step':>9} {'B/particle':>10}"
    )
    for r in results:
        print(
            f"{r['kind']:<7} {r['dim']:>3} {r['seeded']:>9} {r['domain_factor']:>5}x"
            f" {r['grid_nodes']:>10} {r['stored_nodes']:>9} {r['threads']:>7}"
            f" {r['ms_per_step']:>8.2f}"
            f" {r['ns_per_particle_step']:>9.1f} {r['bytes_per_particle']:>10.0f}"
        )
    ratios = summary(results)
    for threads, spread in ratios["cost_spread"].items():
        print(f"cost per particle-step, largest / smallest, {threads} thread(s): {spread:.2f}")
    for threads, ratio in ratios["widest_over_narrowest_domain"].items():
        memory = ratios["widest_over_narrowest_memory"][threads]
        print(
            f"3D block in a 4x domain / 1x domain, {threads} thread(s): {ratio:.2f} the step, "
            f"{memory:.2f} the memory"
        )
    for name, ratio in ratios["one_over_two_threads"].items():
        print(f"{name}: 1 thread / 2 threads {ratio:.2f}")
    print(
        f"largest memory per particle: {ratios['largest_bytes_per_particle']:.0f} B; at that, "
        f"this machine's memory holds about {ratios['largest_run_that_fits']:.2e} particles "
        "(extrapolated)"
    )
    return {"rows": results, **ratios}


if __name__ == "__main__":
    print(json.dumps(measure(Row(**json.loads(sys.argv[1])))))
