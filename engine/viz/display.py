"""Whether a window can open, and the off-screen OpenGL set-up used without one."""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    """True unless on Linux/BSD with neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` set."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def prefer_egl_without_display() -> None:
    """Without a display, have VTK render through EGL (Mesa on CPU) instead of trying X.

    Call before the first plotter is made; a ``VTK_DEFAULT_OPENGL_WINDOW`` already set wins.
    """
    if not has_display():
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
