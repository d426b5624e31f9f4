"""Particle order for fast scatter on multi-core CPUs.

Particles are sorted by grid cell (neighbours in memory touch the same grid nodes, good for caches),
then the sorted list is cut into chunks of :data:`CHUNK` particles dealt round-robin from
``threads`` distant segments, so that the CPU threads, which take consecutive chunks, work on
different regions of the grid at the same time instead of contending for the same nodes. Measured on
the 2-core benchmark: particle-to-grid 38 ms sorted, 26 ms shuffled, 18 ms interleaved.
"""

from __future__ import annotations

import os

import numpy as np

#: Particles per parallel chunk; the CPU kernels use it as their loop block size.
CHUNK = 4096


def cpu_threads() -> int:
    """Threads Taichi uses on this CPU."""
    return os.cpu_count() or 1


def locality_order(x: np.ndarray, dx: float, threads: int, chunk: int = CHUNK) -> np.ndarray:
    """A permutation ``(N,)`` of particles at ``x`` ``(N, d)`` (cell size ``dx``, m)."""
    cell = np.floor(x / dx).astype(np.int64)
    order = np.lexsort(cell.T[::-1])
    segments = max(1, min(threads, len(order) // chunk))
    full = len(order) // (chunk * segments) * chunk * segments
    dealt = order[:full].reshape(segments, -1, chunk).transpose(1, 0, 2).ravel()
    return np.concatenate([dealt, order[full:]])
