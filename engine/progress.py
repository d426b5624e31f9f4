"""Progress reporting: a live bar on a terminal, plain log lines otherwise, nothing when quiet."""

from __future__ import annotations

import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Reports simulated time, steps per second and time left after each output frame."""

    def __init__(self, end_time: float, particles: int, quiet: bool, stream: TextIO) -> None:
        self.end_time = end_time
        self.quiet = quiet
        self.stream = stream
        self.started = time.perf_counter()
        self.bar = None
        if not quiet and stream.isatty():
            self.bar = tqdm(
                total=end_time,
                unit="sim s",
                file=stream,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} s [{elapsed}<{remaining}{postfix}]",
            )

    def update(self, frame: int, frames: int, sim_time: float, steps: int) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        rate = steps / max(elapsed, 1e-9)
        if self.bar is not None:
            self.bar.n = min(sim_time, self.end_time)
            self.bar.set_postfix_str(f"{rate:.0f} steps/s", refresh=True)
            return
        left = elapsed * (self.end_time - sim_time) / max(sim_time, 1e-12)
        print(
            f"frame {frame}/{frames}  t = {sim_time:.4g} s  steps {steps}  "
            f"{rate:.0f} steps/s  about {left:.0f} s left",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
