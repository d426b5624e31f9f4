"""The ``engine`` console script: defers Ctrl-C while the command line's modules import.

An interrupt that lands in the middle of ``import engine.cli`` (a tenth of a second of imports)
would end in a ``KeyboardInterrupt`` traceback; here it ends in one line and exit code 130. The
interpreter's own start-up (``site``, before any engine code runs) cannot be covered.
"""

from __future__ import annotations

import sys

from engine import interrupts


def main() -> int:
    try:
        with interrupts.deferred():
            from engine.cli import main as run_command_line

            interrupts.check()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return run_command_line()
