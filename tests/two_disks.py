"""The two rubber disks the contact tests collide: a TOML fragment of materials and bodies."""


def two_disks(left: tuple[float, float], right: tuple[float, float], speed: float = 1.0) -> str:
    """``[materials.rubber]`` and two disks of radius 0.1 m centred at ``left`` and ``right``
    (m), moving toward each other at ``speed`` m/s each, seeded without jitter."""
    return f"""
[materials.rubber]
model = "neo_hookean"
density = 1000.0
youngs_modulus = 2.0e5
poisson_ratio = 0.3

[[bodies]]
material = "rubber"
shape = "sphere"
center = [{left[0]}, {left[1]}]
radius = 0.1
velocity = [{speed}, 0.0]
jitter = 0.0

[[bodies]]
material = "rubber"
shape = "sphere"
center = [{right[0]}, {right[1]}]
radius = 0.1
velocity = [{-speed}, 0.0]
jitter = 0.0
"""
