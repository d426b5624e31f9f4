"""``engine render``: frames of a result drawn off screen to an MP4, a GIF or PNG files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyvista as pv
from tqdm import tqdm

from engine.viz import VizError
from engine.viz.color import ROBUST, check_cmap, check_field, check_range
from engine.viz.display import prefer_egl_without_display
from engine.viz.outputs import prepare_outputs
from engine.viz.results import open_result, select_frames
from engine.viz.stage import Stage, Style, parse_camera

SUFFIXES = (".mp4", ".gif", ".png")


def render(
    result_path: str | Path,
    output: str | Path,
    field: str = "speed",
    frames: int | slice | None = None,
    camera: str | None = None,
    cmap: str | None = None,
    clim: tuple[float, float] | None = None,
    color_range: str = ROBUST,
    point_size: float = 5.0,
    spheres: bool = False,
    window_size: tuple[int, int] = (1024, 768),
    fps: float = 24.0,
    quiet: bool = False,
) -> list[Path]:
    """Draw frames of ``result_path`` off screen; return the files written.

    Args:
        result_path: a particle .vtkhdf written by ``engine run`` (its surface file and the
            scene's obstacles are drawn with it).
        output: ``.mp4`` or ``.gif`` (one movie, all frames by default) or ``.png``: one image
            of the last frame by default or of ``frames`` when it is an index, or with a range
            one image per frame, ``name_0003.png`` for frame 3.
        field: colour field (see :mod:`engine.viz.color`).
        frames: a frame index (negative from the end) or a slice of frame indices.
        camera: ``iso``, ``xy``, ``xz``, ``yz`` or ``"x,y,z;fx,fy,fz;ux,uy,uz"`` (m); None:
            ``xy`` in 2D, ``iso`` in 3D.
        cmap: matplotlib colour map name; None: viridis (tab10 for ``material_id``, ``body_id``).
        clim: (low, high) colour range in the field's unit; None: set by ``color_range``.
        color_range: ``robust`` (2nd to 98th percentile over all frames), ``global`` (smallest
            to largest over all frames) or ``frame`` (each frame's own smallest to largest).
        point_size: particle diameter in pixels.
        spheres: sphere glyphs instead of points.
        window_size: (width, height) pixels.
        fps: movie frames per second.
        quiet: no progress bar.

    Raises:
        VizError: unreadable result, unknown field or colour map, empty frame selection, bad
            camera, colour range, size or output suffix, or an output that cannot be written
            (checked before drawing).
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in SUFFIXES:
        raise VizError(
            f"cannot write {output.name!r}; name the output .mp4 or .gif (a movie) or .png (images)"
        )
    result = open_result(result_path)
    check_field(result, field)
    check_cmap(cmap)
    check_range(color_range)
    if frames is None:
        frames = -1 if suffix == ".png" else slice(None)
    indices = select_frames(result, frames)
    view = parse_camera(camera, result.dim)
    if clim is not None and not clim[0] < clim[1]:
        raise VizError(f"bad colour range {clim}; give LOW < HIGH")
    if min(window_size) < 16 or fps <= 0 or point_size <= 0:
        raise VizError(
            f"bad size {window_size}, fps {fps} or point size {point_size}; give at least 16 "
            "pixels per side and positive fps and point size"
        )
    numbered = isinstance(frames, slice) and suffix == ".png"
    targets = [_numbered(output, i) for i in indices] if numbered else [output]
    prepare_outputs(targets)

    prefer_egl_without_display()
    plotter = pv.Plotter(
        off_screen=True, window_size=list(window_size), theme=pv.themes.DocumentTheme()
    )
    try:
        style = Style(field, cmap, clim, color_range, point_size, spheres)
        stage = Stage(plotter, result, style)
        with _sink(targets, fps=fps) as write:
            for n, i in enumerate(tqdm(indices, desc=output.name, unit="frame", disable=quiet)):
                stage.show(i)
                if n == 0:
                    stage.set_camera(view)
                plotter.render()
                write(n, plotter.screenshot(return_img=True))
    finally:
        plotter.close()
    return targets


@contextmanager
def _sink(targets: list[Path], fps: float) -> Iterator[Callable[[int, np.ndarray], None]]:
    """A function ``write(n, image)`` saving the n-th (H, W, 3) uint8 image: to ``targets[n]``
    (.png), or as frame n of the one movie in ``targets``."""
    import imageio.v2 as imageio

    output = targets[0]
    if output.suffix.lower() == ".png":
        yield lambda n, image: imageio.imwrite(targets[n], image)
        return
    if output.suffix.lower() == ".gif":
        writer = imageio.get_writer(output, mode="I", duration=1000.0 / fps, loop=0)
    else:
        writer = imageio.get_writer(output, fps=fps, codec="libx264", macro_block_size=2)
    try:
        yield lambda n, image: writer.append_data(image)
    finally:
        writer.close()


def _numbered(output: Path, i: int) -> Path:
    """``out/name.png`` -> ``out/name_0003.png`` for frame 3."""
    return output.with_name(f"{output.stem}_{i:04d}{output.suffix}")
