"""The scalar particles are coloured by, from one frame's arrays; its range; id categories.

A colour field is ``speed`` (|velocity|) or any stored field: scalars as they are, ``stress``
as its von Mises equivalent, other vectors by their magnitude and other tensors by their
Frobenius norm. The id fields (:data:`CATEGORICAL`) get one colour per id, named from the
stored scene, instead of a range.
"""

from __future__ import annotations

import numpy as np

from engine.io import Result
from engine.viz import VizError
from engine.viz.results import parse_scene

SPEED = "speed"
#: Fields of integer ids, drawn with one colour per id and the scene's names.
CATEGORICAL = ("material_id", "body_id")
#: Colour range modes: over all frames (robust: percentiles; global: extremes), or per frame.
ROBUST, GLOBAL, FRAME = "robust", "global", "frame"
RANGES = (ROBUST, GLOBAL, FRAME)
ROBUST_PERCENTILES = (2.0, 98.0)
#: Values a frame contributes to a range over all frames (a strided sample; extremes kept).
SAMPLES_PER_FRAME = 20_000

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


def check_cmap(cmap: str | None) -> None:
    """Raise :class:`VizError` if ``cmap`` is not a matplotlib colour map name (None: default)."""
    from matplotlib import colormaps

    if cmap is not None and cmap not in colormaps:
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


def check_range(mode: str) -> None:
    """Raise :class:`VizError` if ``mode`` is not one of :data:`RANGES`."""
    if mode not in RANGES:
        raise VizError(f"unknown colour range {mode!r}; use one of: {', '.join(RANGES)}")


def color_range(result: Result, field: str, robust: bool = False) -> tuple[float, float]:
    """(low, high) of ``field`` over all frames of ``result``, so colours mean the same in each.

    The smallest and largest value, or with ``robust`` the 2nd and 98th percentiles (of up to
    :data:`SAMPLES_PER_FRAME` values a frame), so a few extreme particles do not wash out the
    rest. See :func:`value_range` for degenerate ranges.
    """
    check_field(result, field)
    samples = [_sample(scalars(result.arrays(i), field)) for i in range(result.n_frames)]
    return value_range(np.concatenate(samples), robust)


def value_range(values: np.ndarray, robust: bool = False) -> tuple[float, float]:
    """(low, high) of ``values``: min and max, or with ``robust`` the 2nd and 98th percentiles.

    A robust range of width 0 (most values equal) falls back to min and max; a constant field
    gets a range of width 1 around its value, no values (0, 1).
    """
    if not values.size:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if robust:
        p_low, p_high = (float(p) for p in np.percentile(values, ROBUST_PERCENTILES))
        if p_high > p_low:
            low, high = p_low, p_high
    if high <= low:
        return low - 0.5, high + 0.5
    return low, high


def _sample(values: np.ndarray) -> np.ndarray:
    """(N,) ``values``, or if N is above :data:`SAMPLES_PER_FRAME` every k-th of them (at most
    that many) and the smallest and largest."""
    stride = len(values) // SAMPLES_PER_FRAME
    if stride < 2:
        return values
    return np.concatenate([values[::stride], [values.min(), values.max()]])


def categories(result: Result, field: str) -> list[str] | None:
    """Names of the values of ``material_id`` or ``body_id``; None for other fields.

    ``material_id`` k is the k-th ``[materials.<name>]`` table of the stored scene, ``body_id``
    k its k-th ``[[bodies]]`` entry, named ``"k: material"``. Ids the scene does not name are
    named by their number.
    """
    if field not in CATEGORICAL:
        return None
    scene = parse_scene(result.scene_text)
    if field == "material_id":
        names = list(scene.get("materials", {}))
    else:
        names = [
            f"{k}: {body.get('material', '?')}" for k, body in enumerate(scene.get("bodies", []))
        ]
    largest = int(color_range(result, field)[1])
    return names + [str(k) for k in range(len(names), largest + 1)]


def category_colors(n: int, cmap: str | None = None) -> list[tuple[float, float, float]]:
    """``n`` distinct RGB colours (0 to 1): ``cmap`` sampled at n points, or by default the
    first n of tab10 (tab20 for more than 10, then turbo sampled)."""
    from matplotlib import colormaps

    if cmap is None:
        for name in ("tab10", "tab20"):
            if n <= colormaps[name].N:
                return [tuple(c) for c in colormaps[name].colors[:n]]
        cmap = "turbo"
    return [tuple(c[:3]) for c in colormaps[cmap].resampled(n)(np.arange(n))]


def title(field: str) -> str:
    """Scalar-bar title: the field, how it was reduced to a scalar, and its unit."""
    unit = UNITS.get(field)
    name = "stress (von Mises)" if field == "stress" else field
    return f"{name} [{unit}]" if unit else name
