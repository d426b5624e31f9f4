"""The ``learned`` output-mesh mover (``[[output.meshes]] mover = "learned"``, ``weights =
"..."``): ``x = xi + grad phi``, ``phi`` from the network of the monitor at the mesh's nodes in
:mod:`engine.diff.mover_net` (trained without optimal meshes by ``engine train mover``).

The weights are checked when the scene is loaded: a missing or unreadable file or sidecar,
weights of another architecture or dimension (a validation error at ``weights``), or fewer
nodes on an axis than the network's reach needs (at ``nodes``). It runs on the simulation's
torch device; a mesh it moves is checked by the engine every frame like any mover's (the
uniform mesh is written, with a warning, where a cell would invert).
"""

import numpy as np

from engine.hooks import hookimpl
from engine.hooks.records import Monitor, OutputMeshMoverType, OutputMeshSpec, ShapeIssue


class LearnedMover:
    """Moves the nodes by the network's ``grad phi`` each output frame; carries no state."""

    def __init__(self, spec: OutputMeshSpec) -> None:
        from engine.diff.mover_net import load_mover_net

        self.nodes = spec.nodes
        self.domain = np.asarray(spec.domain, float)
        self.scale = float(self.domain.max())
        self.xi = spec.xi
        self.extent = self.domain / self.scale
        self.device = spec.device
        self.net = load_mover_net(spec.weights, spec.dim, spec.device)

    def move(self, monitor: Monitor) -> np.ndarray:
        """The nodes ``(M, d)`` m for ``monitor``, kept inside the domain."""
        import torch

        with torch.no_grad():
            values = torch.as_tensor(monitor.values[None], dtype=torch.float64, device=self.device)
            moved = self.net.displacement(values, self.extent, self.nodes)[0].cpu().numpy()
        points = self.xi + moved.reshape(self.xi.shape) * self.scale
        return np.clip(points, 0.0, self.domain)

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Nothing to restore."""


def check(params, dim: int, base_dir) -> list[ShapeIssue]:
    """Weights that load for a ``dim``-D mesh, and enough nodes per axis for the network."""
    from engine.diff.mover_net import MoverWeightsError, load_mover_net

    try:
        net = load_mover_net(base_dir / params.weights, dim)
    except MoverWeightsError as error:
        return [ShapeIssue("weights", error.what, error.fix)]
    least = net.config.min_nodes
    if min(params.nodes) < least:
        message = f"the learned mover needs at least {least} nodes per axis, got {params.nodes}"
        return [ShapeIssue("nodes", message, f"give every axis {least} nodes or more")]
    return []


@hookimpl
def engine_register_mesh_movers():
    return [OutputMeshMoverType(name="learned", create=LearnedMover, weights=True, check=check)]
