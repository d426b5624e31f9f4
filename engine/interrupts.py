"""Ctrl-C at safe points: while a command imports, loads or steps, SIGINT only raises a flag.

A ``KeyboardInterrupt`` raised at an arbitrary moment lands inside a module being imported
(SciPy then fails with a ``NameError`` traceback) or inside a call into Taichi's compiled code,
where it could be lost so that the run went on to its end. Within :func:`deferred` the first
Ctrl-C is remembered and :func:`check` raises it where the engine is ready to stop (after the
imports, after each step); a second Ctrl-C raises at once. Outside the main thread (sweep
workers), or where SIGINT is ignored (a background job), nothing changes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_pressed: list[bool] = []  # one entry once Ctrl-C came in while deferred


def _handler(signum, frame) -> None:
    if _pressed:
        raise KeyboardInterrupt
    _pressed.append(True)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C came in within :func:`deferred`."""
    if _pressed:
        _pressed.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Defer Ctrl-C to the next :func:`check` within this block. Nested blocks, other threads
    and a SIGINT that is ignored or handled by someone else are left as they are."""
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not ours:
        yield
        return
    _pressed.clear()
    signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
