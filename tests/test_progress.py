"""Progress reports: the run's own measured rate, and the warning when it means hours."""

import io

import engine.progress
from engine.progress import Progress


def fake_clock(monkeypatch, times: list[float]) -> None:
    """Make ``time.perf_counter`` in engine.progress return ``times`` one by one (s)."""
    monkeypatch.setattr(engine.progress.time, "perf_counter", iter(times).__next__)


def test_the_rate_measured_after_the_first_frame_warns_of_a_long_run(monkeypatch):
    """10 s of simulated time; frame 1 (with the compilation) takes 60 s, frame 2 takes
    1 s of wall time per 0.001 s simulated: 9.998 s left at 1000 s/s is about 2.8 h."""
    fake_clock(monkeypatch, [0.0, 60.0, 61.0, 62.0])
    log = io.StringIO()
    progress = Progress(10.0, False, log, long_run=3600.0)
    progress.update(1, 10_000, 0.001, 100)
    assert "warning" not in log.getvalue()  # the first frame also compiles: not a rate
    progress.update(2, 10_000, 0.002, 200)
    lines = [line for line in log.getvalue().splitlines() if line.startswith("warning")]
    assert len(lines) == 1
    assert "100 steps/s" in lines[0] and "1,000 s per simulated second" in lines[0]
    assert "about 2.8 h more" in lines[0]
    progress.update(3, 10_000, 0.003, 300)  # said once
    assert log.getvalue().count("warning") == 1


def test_a_run_that_fits_the_hour_is_not_warned_about(monkeypatch):
    fake_clock(monkeypatch, [0.0, 60.0, 61.0])
    log = io.StringIO()
    progress = Progress(1.0, False, log, long_run=3600.0)
    progress.update(1, 100, 0.01, 100)
    progress.update(2, 100, 0.02, 200)  # 0.98 s left at 100 s/s: 98 s
    assert "warning" not in log.getvalue()


def test_a_resumed_run_measures_from_where_it_resumed(monkeypatch):
    """Frames before the checkpoint were not computed by this process: not in the rate."""
    fake_clock(monkeypatch, [0.0, 5.0, 6.0])
    log = io.StringIO()
    progress = Progress(100.0, False, log, start_time=50.0, start_steps=5000, long_run=3600.0)
    progress.update(51, 100, 51.0, 5010)
    progress.update(52, 100, 52.0, 5020)  # 48 s left at 1 s/s
    assert "warning" not in log.getvalue()
    assert " 3 steps/s" in log.getvalue().splitlines()[-1]  # 20 steps in 6 s, not 5020
