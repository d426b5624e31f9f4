"""The ``uniform`` output-mesh mover: the nodes stay where they start, evenly spaced over the
domain (the reference a moving mesh is measured against)."""

import numpy as np

from engine.hooks import hookimpl
from engine.hooks.records import Monitor, OutputMeshMoverType, OutputMeshSpec


class UniformMover:
    """Returns the uniform lattice ``spec.xi`` ``(M, d)`` m every frame; carries no state."""

    def __init__(self, spec: OutputMeshSpec) -> None:
        self.xi = spec.xi

    def move(self, monitor: Monitor) -> np.ndarray:
        return self.xi

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Nothing to restore."""


@hookimpl
def engine_register_mesh_movers():
    return [OutputMeshMoverType(name="uniform", create=UniformMover)]
