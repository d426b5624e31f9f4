"""The ``learned`` output-mesh mover (``[[output.meshes]] mover = "learned"``, ``weights =
"..."``): ``x = xi + grad phi``, ``phi`` from the network of the monitor at the mesh's nodes in
:mod:`engine.diff.mover_net` (trained without optimal meshes by ``engine train mover``).

The weights are checked when the scene is loaded: a missing or unreadable file or sidecar,
weights of another architecture or dimension (a validation error at ``weights``), fewer nodes
on an axis than the network's reach needs (at ``nodes``), or a monitor stronger than the
weights serve (at ``alpha``). It runs on the simulation's
torch device. Each frame the move is the largest share of the network's (1, 0.9, ..., 0.1)
whose cells all keep a margin (:func:`engine.diff.mover_net.largest_safe_share`); the engine
still checks every frame like any mover's (and writes the uniform mesh, with a warning, where a
cell would invert: where no share was safe).
"""

import json

import numpy as np

from engine.hooks import hookimpl
from engine.hooks.records import Monitor, OutputMeshMoverType, OutputMeshSpec, ShapeIssue

#: The strongest monitor served, as a multiple of the ``alpha`` the weights were trained at:
#: the shipped weights (alpha 1) keep every cell valid on the ring and front test monitors at
#: their whole move up to alpha 3; at 10 the front keeps 0.2 of it and the ring none. Engine
#: frames were measured at alpha 1 only, so the bound stays at twice that.
ALPHA_SERVED = 2.0


class LearnedMover:
    """Moves the nodes by the network's ``grad phi`` each output frame; carries no state.

    ``share`` is the last frame's share of the network's move (the largest safe one; 0 where
    none was: the engine then writes the uniform mesh with a warning).
    """

    def __init__(self, spec: OutputMeshSpec) -> None:
        import torch

        from engine.diff.mover_net import load_mover_net

        self.nodes = spec.nodes
        self.domain = np.asarray(spec.domain, float)
        self.scale = float(self.domain.max())
        self.xi = torch.as_tensor(spec.xi, dtype=torch.float64, device=spec.device)
        self.extent = self.domain / self.scale
        self.device = spec.device
        self.net = load_mover_net(spec.weights, spec.dim, spec.device)
        self.share = 1.0

    def move(self, monitor: Monitor) -> np.ndarray:
        """The nodes ``(M, d)`` m for ``monitor``, kept inside the domain."""
        import torch

        from engine.diff.mover_net import largest_safe_share

        with torch.no_grad():
            values = torch.as_tensor(monitor.values[None], dtype=torch.float64, device=self.device)
            moved = self.net.displacement(values, self.extent, self.nodes)[0]
            step = moved.reshape(self.xi.shape) * self.scale
            self.share, points = largest_safe_share(self.xi, step, self.nodes, self.domain)
        return points.cpu().numpy()

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
    sidecar = json.loads((base_dir / params.weights).with_suffix(".json").read_text())
    trained = float(sidecar.get("settings", {}).get("alpha", 1.0))
    if params.alpha > ALPHA_SERVED * trained:
        message = (
            f"weights trained at alpha = {trained:g} tangle cells at alpha = {params.alpha:g} "
            f"(they serve up to {ALPHA_SERVED * trained:g})"
        )
        fix = f'set alpha = {trained:g}, or use mover = "monge_ampere"'
        return [ShapeIssue("alpha", message, fix)]
    return []


@hookimpl
def engine_register_mesh_movers():
    return [OutputMeshMoverType(name="learned", create=LearnedMover, weights=True, check=check)]
