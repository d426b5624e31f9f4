"""`engine bench` runs every case (a smoke test: timings are for the README, not asserted),
shows each case as it runs, and refuses bad options and failed cases in one line."""

import pytest

from engine.bench import (
    BenchError,
    gnn_layouts,
    measure_apart,
    measure_contact_gnn,
    reference_source,
    run_benchmarks,
)
from engine.cli import main


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
        "contact",
        "contact_gnn",
    ]
    assert all(r["particle_steps_per_second"] > 0 for r in results[:-1])
    contact = results[-2]
    assert 0 < contact["contact_stage_share"] < 1 and contact["interface_nodes"] > 0
    assert results[1]["particles"] == results[0]["particles"]  # same particle count
    out = capsys.readouterr().out
    assert "vs reference" in out and "contact GNN forward" in out and "each added node" in out


def test_the_gnn_case_reports_cost_and_memory_per_interface_node():
    """On the same interface the forward's memory is the same whatever the grid (no tensor
    the size of the grid); more interface nodes cost more time and memory."""
    result = measure_contact_gnn(calls=2, grid=16)
    rows = result["rows"]
    assert [(r["cells"], r["width"]) for r in rows] == gnn_layouts(16)
    assert len({r["interface_nodes"] for r in rows[:3]}) == 1  # the same blocks on 16..64 cells
    assert result["grid_memory_ratio"] == 1.0
    nodes = [r["interface_nodes"] for r in rows[3:]]  # wider and wider blocks
    assert nodes == sorted(nodes) and nodes[0] < nodes[-1]
    assert [r["peak_bytes"] for r in rows[3:]] == sorted(r["peak_bytes"] for r in rows[3:])
    for row in rows:
        assert 0 < row["seconds_per_call"] < 1 and 1e3 < row["bytes_per_node"] < 1e6
    assert result["bytes_per_added_node"] > 0


def test_engine_bench_shows_the_case_it_compiles_and_times_in_a_log(capsys):
    options = ["--steps", "2", "--grid", "8", "--only", "reference", "--only", "fluid"]
    assert main(["bench", *options]) == 0
    log = capsys.readouterr().err  # capsys is no terminal: plain lines, no bar
    assert "bench: 0/2 cases, reference: compiling, then timing 2 steps" in log
    assert "bench: 1/2 cases, fluid: compiling, then timing 2 steps" in log
    assert "bench: 2/2 cases, fluid: " in log and "\r" not in log


@pytest.mark.parametrize(
    ("option", "value", "wanted"),
    [("--steps", "0", "at least 1"), ("--grid", "2", "at least 4"), ("--grid", "x", "at least 4")],
)
def test_bad_bench_options_are_refused_at_once(capsys, option, value, wanted):
    with pytest.raises(SystemExit) as stop:
        main(["bench", option, value])
    assert stop.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument {option}: '{value}' is not a whole number of {wanted}; e.g." in error


def test_a_case_that_fails_names_itself_and_what_it_said():
    with pytest.raises(BenchError, match="bench case nothing failed .*KeyError: 'nothing'"):
        measure_apart("nothing", 1, 16)
