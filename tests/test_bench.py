"""`engine bench` runs all three cases (a smoke test: timings are for the README, not asserted)."""

from engine.bench import reference_source, run_benchmarks


def test_reference_is_taichi_example_made_headless():
    source = reference_source(16)
    assert "ti.GUI" not in source and "arch=ti.cpu" in source
    assert "dim, n_grid, steps, dt = 3, 16, 25" in source


def test_bench_reports_every_case(capsys):
    results = run_benchmarks(steps=2, grid=16)
    assert [r["case"] for r in results] == [
        "reference",
        "fluid",
        "elastic",
        "taichi_law",
        "torch_law",
    ]
    assert all(r["particle_steps_per_second"] > 0 for r in results)
    assert results[1]["particles"] == results[0]["particles"]  # same particle count
    assert "vs reference" in capsys.readouterr().out
