"""The scalar particles are coloured by, from one frame's arrays, and its range over a run.

A colour field is ``speed`` (|velocity|) or any stored field: scalars as they are, ``stress``
as its von Mises equivalent, other vectors by their magnitude and other tensors by their
Frobenius norm.
"""

from __future__ import annotations

import numpy as np

from engine.io import Result
from engine.viz import VizError

SPEED = "speed"

#: Units of the built-in fields (those not listed are dimensionless or unknown).
UNITS = {
    SPEED: "m/s",
    "velocity": "m/s",
    "stress": "Pa",
    "C": "1/s",
    "mass": "kg",
    "volume": "m³",
    "rest_position": "m",
}


def color_fields(fields: list[str]) -> list[str]:
    """The colour fields a result with stored ``fields`` offers (``speed`` needs velocity)."""
    return ([SPEED] if "velocity" in fields else []) + list(fields)


def check_field(result: Result, field: str) -> None:
    """Raise :class:`VizError` listing the choices if ``result`` cannot be coloured by ``field``."""
    available = color_fields(result.fields)
    if field not in available:
        raise VizError(
            f"{result.path} has no field {field!r}; choose one of: {', '.join(available)} "
            "(or add it to output.fields and run again)"
        )


def check_cmap(cmap: str) -> None:
    """Raise :class:`VizError` if ``cmap`` is not a matplotlib colour map name."""
    from matplotlib import colormaps

    if cmap not in colormaps:
        raise VizError(
            f"unknown colour map {cmap!r}; use a matplotlib name such as viridis, plasma, "
            "coolwarm, turbo or gray"
        )


def scalars(arrays: dict[str, np.ndarray], field: str) -> np.ndarray:
    """(N,) float64 values of ``field`` from one frame's unpadded arrays (see module doc).

    ``arrays`` hold (N,), (N, d) or (N, d, d) values as :meth:`engine.io.Result.arrays` gives.
    """
    if field == SPEED:
        field = "velocity"
    values = np.asarray(arrays[field], np.float64)
    if field == "stress":
        return von_mises(values)
    if values.ndim == 1:
        return values
    return np.sqrt((values.reshape(len(values), -1) ** 2).sum(axis=1))


def von_mises(stress: np.ndarray) -> np.ndarray:
    """(N,) von Mises equivalent stress, Pa, of (N, d, d) Cauchy stresses.

    ``sqrt(d / (d - 1) s:s)`` with ``s`` the deviator in ``d`` dimensions: in 3D the usual
    ``sqrt(3/2 s:s)``; in any ``d`` a uniaxial stress ``sigma`` gives ``|sigma|``.
    """
    d = stress.shape[-1]
    trace = np.trace(stress, axis1=1, axis2=2)
    deviator = stress - trace[:, None, None] / d * np.eye(d)
    return np.sqrt(d / (d - 1) * (deviator**2).sum(axis=(1, 2)))


def color_range(result: Result, field: str) -> tuple[float, float]:
    """(low, high) of ``field`` over all frames of ``result``, so colours mean the same in each.

    A constant field gets a range of width 1 around its value.
    """
    check_field(result, field)
    low, high = np.inf, -np.inf
    for i in range(result.n_frames):
        values = scalars(result.arrays(i), field)
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    if not np.isfinite(low):
        return 0.0, 1.0
    if high <= low:
        return low - 0.5, high + 0.5
    return low, high


def title(field: str) -> str:
    """Scalar-bar title: the field, how it was reduced to a scalar, and its unit."""
    unit = UNITS.get(field)
    name = "stress (von Mises)" if field == "stress" else field
    return f"{name} [{unit}]" if unit else name
