"""The learned output-mesh mover's network: ``x = xi + grad phi(xi; m)``, ``phi`` from a small
convolutional network of the monitor ``m`` sampled at the mesh's nodes (Hu et al. 2024's
data-free mover, in the manner of M2N), with its physics built in:

- **An unrolled Monge-Ampere solver inside.** The network gives a source ``s`` on the node
  lattice and ``phi`` solves the Neumann problem ``Laplacian phi = s`` exactly, in the cosine
  basis that diagonalises the lattice's mirrored Laplacian (:class:`NeumannPoisson`): the map is
  global however small the network's reach. First ``s = theta / m(xi) - 1 + CNN(...)``: without
  the CNN the Monge-Ampere equation ``m(x) det(I + H(phi)) = theta`` linearised about the
  identity (``det(I + H) ~ 1 + Laplacian phi``, ``m`` at ``xi``); then a few damped fixed-point
  steps ``s <- s + omega_k clip(theta / m(x) - det(I + H))`` with ``m`` at the moved nodes,
  whose fixed point is the equation's solution; the residual is clipped to
  :data:`RESIDUAL_BOUND` so that a step far from it cannot run away (a fold makes ``det``
  grow without bound, the next steps fold more: with 10 steps, unclipped, training diverged).
  The CNN (last layer zero at initialisation) and the ``omega_k`` are what training learns.
- **Boundary nodes slide, corners stay** by construction: ``grad phi`` by central differences
  with ``phi`` mirrored across the faces (:mod:`engine.output.lattice_derivatives`) has no
  normal component on a face.
- **A constant monitor gives the uniform mesh** by construction: its features are zero, the
  CNN's reflect-padded convolutions then give a constant source, which the solve drops (the
  Neumann problem's mean mode), so ``phi = 0``.
- **Resolution**: fully convolutional on the mesh's own lattice (any node count of at least
  :attr:`MoverNetConfig.min_nodes` per axis); features are dimensionless (``log(m / theta)``).

Not by construction: cells cannot invert only if ``I + H(phi)`` stays positive definite, which
training penalises (``engine train mover``). At run time the move is scaled per frame to the
largest share of ``grad phi`` whose cells all keep a margin (:func:`largest_safe_share`), and the
engine checks every frame (det > 0 per cell corner), writing the uniform mesh with a warning
where it fails.

Lengths are in units of the domain's largest side; ``B`` batch, ``d`` dimensions, ``nodes``
``(d,)`` per axis.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.diff.sidecar import WeightsError, read_sidecar
from engine.output.lattice import corner_jacobians, determinant
from engine.output.lattice_derivatives import lattice_derivatives

#: The sidecar's ``architecture`` for this network.
ARCHITECTURE = "mover_cnn"
#: Channels fed to the CNN at each node: ``log(m / theta_g)`` and the prior source.
FEATURES = 2
#: The smallest corner Jacobian, over the uniform cell's, that training leaves unpenalised and
#: a run's mesh keeps (:func:`largest_safe_share`).
JACOBIAN_FLOOR = 0.02
#: The shares of the network's move a run tries each frame, largest first: 1, 0.9, ..., 0.1.
SHARES = tuple(k / 10 for k in range(10, 0, -1))
#: The largest magnitude of the residual ``theta / m(x) - det(I + H)`` (dimensionless) a
#: fixed-point step adds, times ``omega_k``, to the source.
RESIDUAL_BOUND = 1.0


@dataclass(frozen=True)
class MoverNetConfig:
    """Sizes of the network (the architecture a weights file records)."""

    dim: int
    hidden: int = 16
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8, 1))
    steps: int = 12  # damped fixed-point steps after the first map

    @property
    def min_nodes(self) -> int:
        """Nodes per axis the reflect padding of the widest dilation needs."""
        return max(self.dilations) + 1


def _along(matrix: torch.Tensor, values: torch.Tensor, axis: int) -> torch.Tensor:
    """``matrix`` ``(n, n)`` applied along ``axis`` of ``values``."""
    return torch.movedim(torch.tensordot(values, matrix, dims=([axis], [1])), -1, axis)


class NeumannPoisson:
    """Solves ``L phi = s`` on a node lattice, ``L`` the three-node Laplacian with ``phi``
    mirrored across the faces (as :func:`lattice_derivatives` differentiates it), in the basis
    ``cos(pi k j / (n - 1))`` that diagonalises it per axis; the mean mode (the constant,
    ``L``'s null space) is dropped, so ``phi`` is defined and ``s``'s mean is ignored."""

    def __init__(self, nodes: tuple[int, ...], spacing, device, dtype) -> None:
        self.forward, self.inverse = [], []
        eigenvalues = []
        for n, h in zip(nodes, spacing, strict=True):
            k = np.arange(n)
            basis = np.cos(np.pi * np.outer(k, k) / (n - 1))  # (j, k)
            self.forward.append(torch.as_tensor(np.linalg.inv(basis), dtype=dtype, device=device))
            self.inverse.append(torch.as_tensor(basis, dtype=dtype, device=device))
            eigenvalues.append(-(2 - 2 * np.cos(np.pi * k / (n - 1))) / float(h) ** 2)
        total = sum(np.meshgrid(*eigenvalues, indexing="ij"))
        total.flat[0] = 1.0
        scale = 1.0 / total
        scale.flat[0] = 0.0  # the mean mode
        self.scale = torch.as_tensor(scale, dtype=dtype, device=device)

    def __call__(self, source: torch.Tensor) -> torch.Tensor:
        """``phi`` ``(B, *nodes)`` of ``source`` ``(B, *nodes)``."""
        dim = len(self.forward)
        coefficients = source
        for axis, matrix in enumerate(self.forward):
            coefficients = _along(matrix, coefficients, source.ndim - dim + axis)
        coefficients = coefficients * self.scale
        for axis, matrix in enumerate(self.inverse):
            coefficients = _along(matrix, coefficients, source.ndim - dim + axis)
        return coefficients


def trapezoid_mean(values: torch.Tensor, dim: int) -> torch.Tensor:
    """The mean ``(B,)`` over a node lattice's last ``dim`` axes with trapezoid weights (end
    nodes count half): a field's average over the domain."""
    weights = values.new_ones(())
    for axis in range(dim):
        n = values.shape[values.ndim - dim + axis]
        w = values.new_ones(n)
        w[0] = w[-1] = 0.5
        weights = weights[..., None] * w / w.sum()
    return (values * weights).flatten(values.ndim - dim).sum(-1)


def interpolate(values: torch.Tensor, points: torch.Tensor, extent) -> torch.Tensor:
    """``values`` ``(B, *shape)`` on the uniform lattice over ``[0, extent]`` (``(d,)``),
    multilinear at ``points`` ``(B, *nodes, d)`` (moved onto the domain), as
    :attr:`Monitor.at` interpolates: ``(B, *nodes)``."""
    high = points.new_tensor(np.asarray(extent, float))
    grid = (points.clamp_min(0.0).minimum(high) * (2.0 / high) - 1.0).flip(-1)
    sampled = torch.nn.functional.grid_sample(
        values[:, None], grid, mode="bilinear", align_corners=True
    )
    return sampled[:, 0]


class MoverNet(nn.Module):
    """``net.displacement(m, extent, nodes) -> grad phi`` ``(B, *nodes, d)``: ``m`` ``(B,
    *shape)`` the monitor (positive) on its uniform lattice over the domain ``[0, extent]``
    (``(d,)``, in units of the largest side), the mesh ``nodes`` per axis.

    The source starts from the linearised Monge-Ampere prior plus the CNN's correction, then
    takes :attr:`MoverNetConfig.steps` damped fixed-point steps towards equidistribution,
    ``s <- s + omega_k clip(theta / m(x) - det(I + H(phi)), +-RESIDUAL_BOUND)``
    (``omega_k`` learned, in (0, 1)), each with the monitor taken at the moved nodes: an
    unrolled Monge-Ampere solver whose fixed point is the equation's solution.
    """

    def __init__(self, config: MoverNetConfig) -> None:
        super().__init__()
        self.config = config
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[config.dim]
        layers, channels = [], FEATURES
        for dilation in config.dilations:
            layers += [
                conv(
                    channels,
                    config.hidden,
                    3,
                    padding=dilation,
                    dilation=dilation,
                    padding_mode="reflect",
                ),  # fmt: skip
                nn.SiLU(),
            ]
            channels = config.hidden
        layers.append(conv(channels, 1, 1))
        nn.init.zeros_(layers[-1].weight)  # untrained: the physics alone
        nn.init.zeros_(layers[-1].bias)
        self.cnn = nn.Sequential(*layers)
        self.damping = nn.Parameter(torch.zeros(config.steps))  # omega = sigmoid: 1/2
        self._solvers: dict[tuple, NeumannPoisson] = {}

    def _solver(self, nodes: tuple[int, ...], spacing, like: torch.Tensor) -> NeumannPoisson:
        key = (nodes, tuple(float(h) for h in spacing), like.device, like.dtype)
        if key not in self._solvers:
            self._solvers[key] = NeumannPoisson(nodes, key[1], like.device, like.dtype)
        return self._solvers[key]

    def with_float32_cnn(self) -> MoverNet:
        """This network, its CNN's weights in float32 (see :meth:`correction`)."""
        self.cnn.float()
        return self

    def correction(self, features: torch.Tensor) -> torch.Tensor:
        """The CNN's source correction ``(B, *nodes)`` of ``features`` ``(B, FEATURES,
        *nodes)``, in float32 whatever the features' precision (torch's float64 dilated
        convolutions take a slow path on the CPU: 2.7x the time), returned in theirs; the
        solve around it stays in the caller's precision."""
        weights = next(self.cnn.parameters())
        return self.cnn(features.to(weights.dtype))[:, 0].to(features.dtype)

    def potential(self, monitor: torch.Tensor, extent, nodes: tuple[int, ...]) -> torch.Tensor:
        """``phi`` ``(B, *nodes)`` (length^2) on the mesh's node lattice."""
        dim = self.config.dim
        extent = np.asarray(extent, float)
        spacing = extent / (np.asarray(nodes) - 1)
        xi = lattice_points(extent, nodes, monitor)
        lattice = (-1, *[1] * dim)
        theta = trapezoid_mean(monitor, dim).reshape(lattice)
        at_nodes = interpolate(monitor, xi.expand(len(monitor), *xi.shape), extent)
        prior = theta / at_nodes - 1.0
        features = torch.stack([torch.log(at_nodes / theta), prior], dim=1)
        source = prior + self.correction(features)
        solve = self._solver(tuple(nodes), spacing, source)
        identity = torch.eye(dim, dtype=source.dtype, device=source.device)
        for omega in torch.sigmoid(self.damping):
            gradient, hessian = lattice_derivatives(solve(source), spacing)
            moved = interpolate(monitor, xi + torch.stack(gradient, dim=-1), extent)
            jacobian = list((identity + hessian).unbind(-1))  # columns of I + H (symmetric)
            residual = theta / moved - determinant(jacobian)
            source = source + omega * residual.clamp(-RESIDUAL_BOUND, RESIDUAL_BOUND)
        return solve(source)

    def displacement(self, monitor: torch.Tensor, extent, nodes: tuple[int, ...]) -> torch.Tensor:
        """``grad phi`` ``(B, *nodes, d)``: the nodes' move from the uniform lattice."""
        spacing = np.asarray(extent, float) / (np.asarray(nodes) - 1)
        gradient, _ = lattice_derivatives(self.potential(monitor, extent, nodes), spacing)
        return torch.stack(gradient, dim=-1)


def lattice_points(extent, nodes: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """The uniform nodes ``(*nodes, d)`` over ``[0, extent]``, as ``like``'s tensors."""
    axes = [torch.linspace(0.0, float(e), n, dtype=like.dtype, device=like.device)
            for e, n in zip(extent, nodes, strict=True)]  # fmt: skip
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def largest_safe_share(
    xi: torch.Tensor, step: torch.Tensor, nodes: tuple[int, ...], domain, shares=SHARES
) -> tuple[float, torch.Tensor]:
    """The largest of ``shares`` (decreasing) whose mesh ``xi + share * step``, kept inside
    ``[0, domain]``, has every corner Jacobian of every cell at least :data:`JACOBIAN_FLOOR` of
    the uniform cell's, and that mesh ``(M, d)``; every share is measured in one batch. Where
    none is: share 0 and the first share's mesh, which the engine's check refuses where a cell
    inverts (writing the uniform mesh, with a warning). ``xi`` ``(M, d)`` the uniform nodes,
    ``step`` ``(M, d)`` the network's move and ``domain`` ``(d,)`` in one length unit."""
    domain = np.asarray(domain, float)
    high = step.new_tensor(domain)
    scale = step.new_tensor(shares)[:, None, None]
    meshes = (xi + scale * step).clamp_min(0.0).minimum(high)  # (S, M, d)
    uniform = float(np.prod(domain / (np.asarray(nodes) - 1)))
    safe = (corner_jacobians(meshes, nodes) >= JACOBIAN_FLOOR * uniform).flatten(1).all(1)
    if not bool(safe.any()):
        return 0.0, meshes[0]
    first = int(torch.nonzero(safe)[0, 0])
    return float(shares[first]), meshes[first]


class MoverWeightsError(WeightsError):
    """Weights that cannot serve a mesh: what is wrong, and what to do."""


def save_mover_net(model: MoverNet, path: str | Path, record: dict | None = None) -> None:
    """Write the weights (``path``, a state dict) and the JSON sidecar beside it (``.json``):
    the architecture, its sizes, and whatever ``record`` adds (data, settings, losses)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    config = asdict(model.config) | {"dilations": list(model.config.dilations)}
    sidecar = {"architecture": ARCHITECTURE, **config, **(record or {})}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))


def load_mover_net(path: str | Path, dim: int, device="cpu", dtype=torch.float64) -> MoverNet:
    """The network saved at ``path`` for ``dim``-dimensional meshes (weights loaded with
    ``weights_only=True``); :class:`MoverWeightsError` if the file or its sidecar is missing
    or unreadable, the weights are of another architecture or dimension, or not finite."""
    path = Path(path)
    record = read_sidecar(
        path,
        ARCHITECTURE,
        dim,
        MoverWeightsError,
        "train mover weights (engine train mover) or fix the path",
        "use weights trained for the learned mesh mover (engine train mover)",
        serves="meshes",
    )
    try:
        sizes = (int(record["hidden"]), tuple(record["dilations"]), int(record["steps"]))
        config = MoverNetConfig(dim, *sizes)
        model = MoverNet(config).double()
        model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    except Exception as error:  # a torn file, a pickle, or tensors of other shapes
        raise MoverWeightsError(
            f"{path} cannot be loaded as the mover network its sidecar describes "
            f"({type(error).__name__}: {str(error).splitlines()[0][:120]})",
            "train the weights again, or restore the file",
        ) from None
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise MoverWeightsError(
            f"{path} holds NaN or infinite weights (a training that diverged)",
            "train the weights again (engine train mover rolls diverging epochs back)",
        )
    return model.to(device=device, dtype=dtype).with_float32_cnn()
