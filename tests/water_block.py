"""The water block the scatter and sparse-grid tests step: a whole scene as TOML."""


def water_block(
    dim: int,
    low: list[float],
    high: list[float],
    width: float = 1.0,
    resolution: int = 20,
    gravity: float = -9.8,
    velocity: float = 0.0,
) -> str:
    """A weakly compressible water box from ``low`` to ``high`` (m) in a cube domain ``width``
    m a side at ``resolution`` cells along it, slip walls, gravity ``gravity`` m/s² along y,
    moving at ``velocity`` m/s along every axis."""
    return f"""
[simulation]
dim = {dim}
domain = {[width] * dim}
resolution = {resolution}
end_time = 1.0
frame_dt = 0.05
dt = "auto"
gravity = {[0.0, gravity, 0.0][:dim]}
boundary = "slip"

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 2.0e4

[[bodies]]
material = "water"
shape = "box"
min = {low}
max = {high}
velocity = {[velocity] * dim}
"""
