"""Progress reporting: a live bar on a terminal, plain log lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Reports a run's simulated time, steps per second and time left: after each output frame,
    and within a frame every :attr:`TICK` seconds on a terminal and every :attr:`LOG_TICK`
    seconds in a log, so a slow frame is not a silence. Rates count only the steps taken since
    ``start_steps`` at ``start_time`` (s), where a resumed run started.

    The estimate printed before a run assumes a typical rate; the run's own rate is known once
    a frame has run after the first (which also compiles the kernels). If at that measured rate
    the time left exceeds ``long_run`` (s), one warning says so, with the rate."""

    TICK, LOG_TICK = 0.5, 10.0  # s of wall-clock time between reports within a frame

    def __init__(
        self,
        end_time: float,
        quiet: bool,
        stream: TextIO,
        start_time: float = 0.0,
        start_steps: int = 0,
        long_run: float | None = None,
    ) -> None:
        self.end_time, self.quiet, self.stream = end_time, quiet, stream
        self.start_time, self.start_steps = start_time, start_steps
        self.started = self.last_report = time.perf_counter()
        self.long_run = long_run
        self.frames_seen = 0
        self.last_frame = (self.started, start_time, start_steps)  # wall s, sim s, steps
        self.bar = None
        if not quiet and stream.isatty():
            self.bar = tqdm(
                total=end_time,
                initial=start_time,
                unit="sim s",
                file=stream,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} s [{elapsed}<{remaining}{postfix}]",
            )

    def update(
        self, frame: int, frames: int, sim_time: float, steps: int, within: bool = False
    ) -> None:
        """Report the end of output frame ``frame`` of ``frames`` (``within``: a step of it)."""
        if self.quiet:
            return
        self.last_report = time.perf_counter()
        if not within:
            self._check_measured_rate(sim_time, steps)
        elapsed = self.last_report - self.started
        rate = (steps - self.start_steps) / max(elapsed, 1e-9)
        if self.bar is not None:
            self.bar.n = min(sim_time, self.end_time)
            self.bar.set_postfix_str(f"{rate:.0f} steps/s", refresh=True)
            return
        done = max(sim_time - self.start_time, 1e-12)
        left = elapsed * (self.end_time - sim_time) / done
        print(
            f"frame {frame}/{frames}{' (computing)' if within else ''}  t = {sim_time:.4g} s  "
            f"steps {steps}  "
            f"{rate:.0f} steps/s  about {left:.0f} s left",
            file=self.stream,
            flush=True,
        )

    def _check_measured_rate(self, sim_time: float, steps: int) -> None:
        """After the second frame of this process, warn once if the time left at the last
        frame's rate exceeds ``long_run``."""
        wall0, sim0, steps0 = self.last_frame
        self.last_frame = (self.last_report, sim_time, steps)
        self.frames_seen += 1
        if self.frames_seen != 2 or self.long_run is None or sim_time <= sim0:
            return
        per_sim_second = (self.last_report - wall0) / (sim_time - sim0)
        left = per_sim_second * (self.end_time - sim_time)
        if left > self.long_run:
            rate = (steps - steps0) / max(self.last_report - wall0, 1e-9)
            message = (
                f"warning: at the rate measured over the last frame ({rate:,.0f} steps/s, "
                f"{per_sim_second:,.0f} s per simulated second) this run needs about "
                f"{left / 3600:.1f} h more; stop it with Ctrl-C and check dt, the moduli and "
                "the resolution, or let it run"
            )
            if self.bar is not None:
                self.bar.write(message, file=self.stream)
            else:
                print(message, file=self.stream, flush=True)

    def tick(self, frame: int, frames: int, sim) -> None:
        """Called after every step of frame ``frame``: report when a report is due."""
        if self.quiet:
            return
        due = self.TICK if self.bar is not None else self.LOG_TICK
        if time.perf_counter() - self.last_report >= due:
            self.update(frame, frames, sim.time, sim.step_count, within=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Counter:
    """Reports counted work (iterations, epochs, cases) the same way as :class:`Progress`: a
    live bar on a terminal, one log line per update otherwise, nothing when quiet.

    Use as ``with Counter("identify, L-BFGS", 30, "iterations", quiet) as counter:`` and call
    :meth:`update` as the work goes on."""

    def __init__(
        self, label: str, total: int, unit: str, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.label, self.total, self.unit, self.quiet = label, total, unit, quiet
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.bar = None
        if not quiet and self.stream.isatty():
            self.bar = tqdm(
                total=total,
                desc=label,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{desc}: {n}/{total} {unit} |{bar}| [{elapsed}<{remaining}{postfix}]",
            )

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, note: str = "") -> None:
        """``done`` of the total are finished; ``note`` says what goes on (e.g. the loss)."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(note, refresh=True)
            return
        elapsed = time.perf_counter() - self.started
        parts = (f"{done}/{self.total} {self.unit}", note, f"{elapsed:.0f} s")
        print(f"{self.label}: " + ", ".join(p for p in parts if p), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
