"""MLS-MPM simulation engine: Taichi core, TOML scenes, VTKHDF output."""

__version__ = "0.1.0"
