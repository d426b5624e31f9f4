"""`engine bench --scaling`: its rows seed the particles they name and its ratios are read off
the table as documented (a smoke test: the timings themselves go to the README)."""

from engine.bench_scaling import DOMAIN_PARTICLES, Row, measure_apart, rows, summary


def test_a_row_seeds_about_the_particles_it_names_and_times_them():
    result = measure_apart(Row("size", 2, 10_000, 1, 1))
    assert 0.8 * 10_000 <= result["seeded"] <= 1.2 * 10_000
    assert result["ms_per_step"] > 0 and result["steps"] >= 5
    assert result["grid_nodes"] > result["seeded"] / 4  # the domain is wider than the block
    # whole blocks of nodes, a quarter's headroom: at most twice the domain's nodes here
    assert 0 < result["stored_nodes"] <= 2 * result["grid_nodes"]


def test_the_domain_rows_keep_the_block_and_widen_the_grid():
    from engine.bench_scaling import scene_text

    narrow, wide = (scene_text(Row("domain", 3, DOMAIN_PARTICLES, f, 1)) for f in (1, 4))
    block = [line for line in narrow.splitlines() if line.startswith(("min", "max"))]
    assert block == [line for line in wide.splitlines() if line.startswith(("min", "max"))]
    resolution = [
        int(t.split("=")[1])
        for t in (narrow, wide)
        for t in t.splitlines()
        if t.startswith("resolution")
    ]
    assert resolution[1] == 4 * resolution[0]


def test_summary_ratios():
    """Synthetic rows: every cost is 10 ns per particle-step on 1 thread and 5 on 2, but the
    widest domain costs 1.2 times the narrowest."""
    results = []
    for row in rows():
        cost = 10.0 / row.threads * (1.2 if row.domain_factor == 4 else 1.0)
        ms = cost * row.particles * 1e-6
        results.append(
            {**row.__dict__, "seeded": row.particles, "ms_per_step": ms,
             "ns_per_particle_step": cost, "bytes_per_particle": 300.0}
        )  # fmt: skip
    ratios = summary(results)
    assert abs(ratios["cost_spread"][1] - 1.2) < 1e-12
    assert abs(ratios["widest_over_narrowest_domain"][2] - 1.2) < 1e-12
    assert ratios["widest_over_narrowest_memory"][1] == 1.0
    assert all(abs(r - 2.0) < 1e-12 for r in ratios["one_over_two_threads"].values())
    assert ratios["largest_bytes_per_particle"] == 300.0
