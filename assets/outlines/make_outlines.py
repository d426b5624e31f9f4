"""Write the 2D outline assets and check that they load closed:
``python assets/outlines/make_outlines.py``.

- ``ramp.svg``: a ramp in millimetres as a drawing program writes it (y down, page 1000 x 600
  mm): read with ``scale = [0.001, -0.001]`` and ``position = [0.0, 0.6]`` it spans x in
  [0, 0.6] m, from y = 0.45 m at the wall down to y = 0.05 m, on a 5 cm base.
- ``wedge.dxf``: a wedge in metres, 0.16 m wide and 0.12 m high, its base centred on the origin
  (place it with ``position``).
"""

from pathlib import Path

import numpy as np
import trimesh

HERE = Path(__file__).resolve().parent

RAMP_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" width="1000mm" height="600mm" viewBox="0 0 1000 600">
  <!-- a ramp, in mm, y down: read it with scale = [0.001, -0.001], position = [0.0, 0.6] -->
  <path d="M 0 150 L 600 550 L 600 600 L 0 600 Z" fill="#999999"/>
</svg>
"""

WEDGE = np.array([[-0.08, 0.0], [0.08, 0.0], [0.0, 0.12], [-0.08, 0.0]])


def main() -> None:
    (HERE / "ramp.svg").write_text(RAMP_SVG)
    (HERE / "wedge.dxf").write_text(trimesh.load_path(WEDGE).export(file_type="dxf"))
    for name in ("ramp.svg", "wedge.dxf"):
        drawing = trimesh.load_path(HERE / name)
        assert all(entity.closed for entity in drawing.entities), name
        print(name, np.round(drawing.vertices, 4).tolist())


if __name__ == "__main__":
    main()
