"""MLS-MPM simulation engine: Taichi core, TOML scenes, VTKHDF output, pluggy plugins."""

import os

# Taichi prints a banner on import; the engine reports versions itself (result files, --version).
os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "false")

__version__ = "0.1.0"
