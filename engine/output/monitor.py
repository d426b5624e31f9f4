"""The monitor function of an output mesh: where its nodes should gather.

``m = 1 + alpha |grad u| / mean |grad u|`` (Hu et al. 2024 write it with ``1 / alpha``) of a
field ``u`` sampled on a uniform lattice over the domain: central differences inside, one-sided
at the faces (``numpy.gradient``), the Frobenius norm over a vector field's components, the mean
over the lattice's nodes. A uniform field (``mean |grad u| = 0``) gives ``m = 1``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from engine.hooks.records import Monitor


def monitor_shape(nodes: tuple[int, ...], cells: tuple[int, ...]) -> tuple[int, ...]:
    """The lattice the monitor is sampled on: per axis at least the mesh's ``nodes`` and the
    simulation grid's ``cells + 1`` nodes."""
    return tuple(max(n, c + 1) for n, c in zip(nodes, cells, strict=True))


def build_monitor(field: np.ndarray, domain: np.ndarray, alpha: float) -> Monitor:
    """The :class:`Monitor` of ``field`` ``(*shape, k)`` (or ``(*shape,)``), sampled on the
    uniform lattice of ``shape`` nodes per axis spanning ``[0, domain]`` (m), at strength
    ``alpha``."""
    domain = np.asarray(domain, float)
    dim = len(domain)
    field = np.asarray(field, float)
    field = field[..., None] if field.ndim == dim else field
    shape = field.shape[:dim]
    spacing = domain / (np.asarray(shape) - 1)
    gradients = np.gradient(field, *spacing, axis=tuple(range(dim)))
    gradients = gradients if isinstance(gradients, list | tuple) else [gradients]
    size = np.sqrt(sum((g**2).sum(axis=-1) for g in gradients))
    mean = float(size.mean())
    values = 1.0 + alpha * size / mean if mean > 0 else np.ones(shape)
    return Monitor(field, values, domain, alpha, lattice_interpolator(values, domain))


def lattice_interpolator(values: np.ndarray, domain: np.ndarray):
    """``at(points (M, d) m) -> (M,)``: ``values`` ``(*shape,)`` on the uniform lattice over
    ``[0, domain]``, interpolated multilinearly (points outside are moved onto the domain)."""
    domain = np.asarray(domain, float)
    axes = [np.linspace(0.0, size, n) for size, n in zip(domain, values.shape, strict=True)]
    interpolate = RegularGridInterpolator(axes, values, method="linear")

    def at(points: np.ndarray) -> np.ndarray:
        return interpolate(np.clip(points, 0.0, domain))

    return at
