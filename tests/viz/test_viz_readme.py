"""The README's PyVista example ("See it") runs against a real result and draws every frame."""

from __future__ import annotations

import re

import imageio.v2 as imageio
import numpy as np
from viz_results import ROOT, results_fixture  # noqa: F401 (the `results` fixture)

from engine.viz.display import prefer_egl_without_display

EXAMPLE_PATH = "scenes/out/mesh_body_3d.vtkhdf"


def test_pyvista_example_writes_one_image_per_frame(results, tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## See it: view, render, info")[1].split("\n## ")[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert EXAMPLE_PATH in example
    mesh = results["mesh_3d"]
    example = example.replace(EXAMPLE_PATH, str(mesh)).replace(
        EXAMPLE_PATH.replace(".vtkhdf", "_surface.vtkhdf"),
        str(mesh.with_name("mesh_3d_surface.vtkhdf")),
    )
    monkeypatch.chdir(tmp_path)
    prefer_egl_without_display()
    exec(example, {})
    images = [imageio.imread(tmp_path / f"frame_{i:04d}.png") for i in range(3)]
    assert all(np.any(a != b) for a, b in zip(images, images[1:], strict=False))
