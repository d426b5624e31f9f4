"""The contact graph network: velocity corrections at the interface nodes of a
:class:`~engine.hooks.records.ContactView`, with its physics built in (GNS / MeshGraphNets style
encode-process-decode message passing, in plain torch).

Graph: one vertex per (interface node, body with mass there); "contact" edges join the bodies
that meet at a node (HCMT's contact edges, MeshGraphNets' world edges), "body" edges join a
body's vertices at neighbouring nodes (within sqrt(d) cells), and "particle" edges bring every
vertex the particles within :data:`PARTICLE_RADIUS` cells of its node, its own body's and the
other bodies' (these tell where each surface is: the gap the grid cannot see). Neighbours are
found by cell lists (sorting and ``searchsorted``, no Python loops over vertices); messages are
summed with ``index_add_``.

Physics by construction:

- **Frames.** Every vector enters in the receiving vertex's own frame: its contact normal ``n``
  (the body normal where it touches another body, else the nearest collider's normal) and the
  direction ``t`` of its sliding velocity relative to the centre of mass (or to the collider)
  across ``n`` (in 2D always ``n`` turned by 90°); the decoded correction is
  ``a n + b t (+ c n x t)``. Rotating and translating the scene rotates the corrections
  (positions enter only as differences).
- **Momentum.** Where bodies touch, the corrections of the bodies at a node are made to carry no
  momentum: ``dv_b -= sum_c m_c dv_c / sum_c m_c``. At a collider, momentum goes to the collider.
- **Zero where nothing meets.** A vertex that touches no other body and lies more than a cell
  from any collider gets exactly zero.
- **Bounded.** ``|dv| <= bound (|u| + |g| dt)`` before the momentum projection, ``u`` the
  vertex's velocity relative to its reference (centre of mass or collider), via ``tanh``.
- **Passive.** No vertex leaves faster, relative to its reference, than it came (or than the
  built-in response leaves it): corrections can give back the energy the coarse contact loses,
  never more.

Shapes: ``M`` interface nodes, ``B`` bodies, ``d`` dimensions, ``V`` vertices, ``E`` edges.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.diff.sidecar import WeightsError, read_sidecar

#: Scalars per vertex fed to the encoder, per edge, and per particle edge.
VERTEX_FEATURES = 12
EDGE_FEATURES = 7
PARTICLE_FEATURES = 7
#: Particles within this many cells of a vertex's node send it a particle edge (the quadratic
#: B-spline's reach).
PARTICLE_RADIUS = 1.5
#: The feature kinds, each normalised by its own buffers.
KINDS = ("vertex", "edge", "particle")


@dataclass(frozen=True)
class ContactGNNConfig:
    """Sizes of the network (the architecture a weights file records)."""

    dim: int
    hidden: int = 32
    layers: int = 2  # message-passing steps
    bound: float = 0.25  # corrections at most bound x (|u| + |g| dt)
    contact_edges: bool = True  # False: the ablation without edges across the interface


def mlp(inputs: int, hidden: int, outputs: int, norm: bool = True) -> nn.Sequential:
    """Two hidden layers of ``hidden`` with SiLU, optionally LayerNorm on the output."""
    layers = [nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()]
    layers.append(nn.Linear(hidden, outputs))
    if norm:
        layers.append(nn.LayerNorm(outputs))
    return nn.Sequential(*layers)


def _unit(v: torch.Tensor) -> torch.Tensor:
    """``v`` ``(..., d)`` normalised, zero where it vanishes."""
    length = v.norm(dim=-1, keepdim=True)
    return torch.where(length > 1e-12, v / length.clamp_min(1e-30), torch.zeros_like(v))


class ContactGNN(nn.Module):
    """``model(view) -> corrections (M, B, d)`` m/s, as a torch contact model returns them."""

    def __init__(self, config: ContactGNNConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.encode_vertex = mlp(VERTEX_FEATURES, h, h)
        self.encode_edge = mlp(EDGE_FEATURES, h, h)
        self.encode_particle = mlp(PARTICLE_FEATURES, h, h)
        self.particle_update = mlp(2 * h, h, h)
        self.edge_updates = nn.ModuleList(mlp(3 * h, h, h) for _ in range(config.layers))
        self.vertex_updates = nn.ModuleList(mlp(2 * h, h, h) for _ in range(config.layers))
        self.decode = mlp(h, h, config.dim, norm=False)
        # untrained: nearly the built-in response (not exactly: the hard constraints act only
        # where a correction is non-zero, so an exact zero would pass no gradient)
        nn.init.normal_(self.decode[-1].weight, std=1e-3)
        nn.init.zeros_(self.decode[-1].bias)
        # feature normalisation (fitted to data by training; saved with the weights)
        self.register_buffer("vertex_mean", torch.zeros(VERTEX_FEATURES))
        self.register_buffer("vertex_std", torch.ones(VERTEX_FEATURES))
        self.register_buffer("edge_mean", torch.zeros(EDGE_FEATURES))
        self.register_buffer("edge_std", torch.ones(EDGE_FEATURES))
        self.register_buffer("particle_mean", torch.zeros(PARTICLE_FEATURES))
        self.register_buffer("particle_std", torch.ones(PARTICLE_FEATURES))
        #: Standard deviation of the Gaussian noise added to the normalised features (training).
        self.noise = 0.0
        #: When a list, each call appends its ``(vertex, edge, particle)`` features and corrects
        #: nothing.
        self.collect: list | None = None

    def fit_normalisation(
        self, vertex: torch.Tensor, edge: torch.Tensor, particle: torch.Tensor
    ) -> None:
        """Set the feature means and standard deviations from samples ``(V, VERTEX_FEATURES)``,
        ``(E, EDGE_FEATURES)`` and ``(P, PARTICLE_FEATURES)`` (a constant feature keeps unit
        scale)."""
        for name, samples in zip(KINDS, (vertex, edge, particle), strict=True):
            std = samples.std(0) if len(samples) > 1 else torch.ones(samples.shape[1])
            getattr(self, f"{name}_mean").copy_(samples.mean(0) if len(samples) else 0.0)
            getattr(self, f"{name}_std").copy_(torch.where(std > 1e-9, std, 1.0))

    def _normalised(self, features: torch.Tensor, kind: str) -> torch.Tensor:
        mean, std = getattr(self, f"{kind}_mean"), getattr(self, f"{kind}_std")
        out = (features - mean.to(features.dtype)) / std.to(features.dtype)
        if self.noise > 0:
            out = out + self.noise * torch.randn_like(out)
        return out

    # -- the graph -----------------------------------------------------------------------------
    def vertices(self, view) -> dict:
        """Per vertex (a body with mass at an interface node): node row, body, mass, frame,
        reference velocity and the mask of where corrections may act."""
        mass = view.node_mass  # (M, B)
        rows, bodies = torch.nonzero(mass > 0, as_tuple=True)
        m = mass[rows, bodies]
        before = view.node_velocity_before[rows, bodies]  # (V, d)
        after = view.node_velocity[rows, bodies]
        node_momentum = (mass[..., None] * view.node_velocity_before).sum(1)
        centre = (node_momentum / mass.sum(1, keepdim=True).clamp_min(1e-30))[rows]
        touching = view.body_in_contact[rows, bodies]
        near = view.collider_distance[rows] <= view.dx
        normal = torch.where(
            touching[:, None], view.body_normal[rows, bodies], view.collider_normal[rows]
        )
        reference = torch.where(touching[:, None], centre, view.collider_velocity[rows])
        relative = before - reference
        tangent = self._tangent(relative, normal)
        return {
            "rows": rows,
            "bodies": bodies,
            "mass": m,
            "before": before,
            "after": after,
            "normal": normal,
            "tangent": tangent,
            "reference": reference,
            "active": touching | near,
            "touching": touching,
        }

    def _tangent(self, relative: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        """The sliding direction across ``normal``: in 2D ``normal`` turned by 90 degrees (the
        sign of the sliding velocity enters as a feature); in 3D the unit tangential part of
        ``relative`` (zero where it vanishes)."""
        if self.config.dim == 2:
            return torch.stack([-normal[:, 1], normal[:, 0]], dim=1)
        return _unit(relative - (relative * normal).sum(-1, keepdim=True) * normal)

    def _frame(self, vertex: dict) -> torch.Tensor:
        """Rows ``(V, d, d)``: ``n``, ``t`` (and ``n x t`` in 3D)."""
        n, t = vertex["normal"], vertex["tangent"]
        axes = [n, t] if self.config.dim == 2 else [n, t, torch.cross(n, t, dim=-1)]
        return torch.stack(axes, dim=1)

    def edges(self, view, vertex: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(senders, receivers)`` ``(E,)``: contact edges between the bodies that touch at a
        node (both ways), and body edges between a body's vertices at nodes one cell apart."""
        rows, bodies = vertex["rows"], vertex["bodies"]
        count = len(rows)
        pairs = torch.arange(count, device=rows.device)
        # contact: the other touching bodies at the same node, through a (M, B) table of vertices
        table = torch.full(view.node_mass.shape, -1, dtype=torch.long, device=rows.device)
        table[rows, bodies] = torch.where(vertex["touching"], pairs, -1)
        partners = table[rows]  # (V, B)
        linked = (partners >= 0) & (partners != pairs[:, None]) & vertex["touching"][:, None]
        linked = linked & self.config.contact_edges
        receivers_at, slot = torch.nonzero(linked, as_tuple=True)
        contact = (partners[receivers_at, slot], receivers_at)
        # body: a body's vertices within one cell on every axis (distance <= sqrt(d) dx), found
        # by cell lists of that radius: rotation-invariant, unlike a lookup by grid index
        radius = 1.01 * math.sqrt(self.config.dim) * view.dx
        position = view.node_position[rows]
        near = self._within(position, bodies, position, bodies, radius)
        near = (near[0][near[0] != near[1]], near[1][near[0] != near[1]])
        return torch.cat([contact[0], near[0]]), torch.cat([contact[1], near[1]])

    def particle_edges(self, view, vertex: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(particles, receivers)`` ``(P,)``: the particles near the interface
        (``view.near_interface``) within :data:`PARTICLE_RADIUS` cells of an active vertex's
        node, any body's (the ablation: the vertex's own body's only). Empty if the view lists
        no particles."""
        near = view.near_interface
        if near is None or len(near) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=vertex["rows"].device)
            return empty, empty
        active = torch.nonzero(vertex["active"]).squeeze(1)
        anywhere = torch.zeros_like(vertex["bodies"][active])
        found, receiver = self._within(
            view.x[near].to(view.node_position.dtype),
            torch.zeros_like(near),
            view.node_position[vertex["rows"][active]],
            anywhere,
            PARTICLE_RADIUS * view.dx,
        )
        particles, receivers = near[found], active[receiver]
        if not self.config.contact_edges:
            own = view.body_id[particles].long() == vertex["bodies"][receivers]
            particles, receivers = particles[own], receivers[own]
        return particles, receivers

    def _within(self, source, source_key, query, query_key, radius: float):
        """Pairs ``(source index, query index)`` with equal keys and points within ``radius``
        m of each other: cell lists of that size (``source`` ``(S, d)``, ``query`` ``(Q, d)``
        m, keys ``(S,)``, ``(Q,)`` small non-negative integers)."""
        bins = torch.floor(source / radius).long()
        hashed, order = self._hash(torch.cat([source_key[:, None], bins], dim=1)).sort()
        query_bins = torch.floor(query / radius).long()
        offsets = torch.cartesian_prod(*[torch.tensor([-1, 0, 1])] * self.config.dim)
        queries = torch.arange(len(query), device=query.device)
        found, asked = [], []
        for offset in offsets.reshape(-1, self.config.dim).to(query.device):  # 3^d bins
            target = self._hash(torch.cat([query_key[:, None], query_bins + offset], dim=1))
            start = torch.searchsorted(hashed, target)
            counts = torch.searchsorted(hashed, target, right=True) - start
            receiver = torch.repeat_interleave(queries, counts)
            first = torch.repeat_interleave(start - (counts.cumsum(0) - counts), counts)
            sender = order[torch.arange(len(receiver), device=query.device) + first]
            keep = (source[sender] - query[receiver]).norm(dim=1) <= radius
            found.append(sender[keep])
            asked.append(receiver[keep])
        return torch.cat(found), torch.cat(asked)

    @staticmethod
    def _hash(key: torch.Tensor) -> torch.Tensor:
        """One int64 per row of small integers ``(V, 1 + d)`` (body, cell), collision-free
        for cells within +-2^14 and 2^20 bodies."""
        shifted = key + torch.tensor([0] + [1 << 14] * (key.shape[1] - 1), device=key.device)
        out = shifted[:, 0]
        for column in range(1, key.shape[1]):
            out = out * (1 << 15) + shifted[:, column]
        return out

    # -- features ------------------------------------------------------------------------------
    def vertex_features(self, view, vertex: dict) -> torch.Tensor:
        """Scalars ``(V, VERTEX_FEATURES)``: velocities before and after the built-in response,
        relative to the reference, in the vertex frame (in cells per step), the collider's
        signed distance (cells), mass share, friction, touching and near flags."""
        frame = self._frame(vertex)  # (V, d, d)
        scale = view.dt / view.dx  # m/s -> cells per step
        before = (frame @ (vertex["before"] - vertex["reference"])[..., None])[..., 0] * scale
        after = (frame @ (vertex["after"] - vertex["reference"])[..., None])[..., 0] * scale
        pad = [torch.zeros_like(before[:, :1])] * (3 - self.config.dim)
        rows = vertex["rows"]
        share = vertex["mass"] / view.node_mass.sum(1)[rows]
        distance = (view.collider_distance[rows] / view.dx).clamp(-2.0, 2.0)
        friction = torch.where(
            vertex["touching"],
            torch.full_like(share, float(view.body_friction)),
            view.collider_friction[rows],
        )
        gravity = torch.full_like(share, 9.81 * view.dt * scale)
        flags = torch.stack([vertex["touching"], vertex["active"]], dim=1).to(share.dtype)
        columns = [before, *pad, after, *pad, distance[:, None], share[:, None]]
        columns += [friction[:, None], gravity[:, None], flags]
        return torch.cat(columns, dim=1)[:, :VERTEX_FEATURES]

    def edge_features(self, view, vertex: dict, senders, receivers) -> torch.Tensor:
        """Scalars ``(E, EDGE_FEATURES)``: the sender's position and velocity relative to the
        receiver, in the receiver's frame (cells, cells per step), their norms, and whether the
        edge is a contact edge."""
        frame = self._frame(vertex)[receivers]
        rows = vertex["rows"]
        offset = view.node_position[rows[senders]] - view.node_position[rows[receivers]]
        offset = (frame @ offset[..., None])[..., 0] / view.dx
        relative = vertex["before"][senders] - vertex["before"][receivers]
        relative = (frame @ relative[..., None])[..., 0] * (view.dt / view.dx)
        pad = [torch.zeros_like(offset[:, :1])] * (3 - self.config.dim)
        contact = (vertex["bodies"][senders] != vertex["bodies"][receivers]).to(offset.dtype)
        columns = [offset, *pad, relative[:, :2], offset.norm(dim=1, keepdim=True)]
        columns += [contact[:, None]]
        return torch.cat(columns, dim=1)[:, :EDGE_FEATURES]

    def particle_features(self, view, vertex: dict, particles, receivers) -> torch.Tensor:
        """Scalars ``(P, PARTICLE_FEATURES)``: the particle's position relative to the
        receiver's node and its velocity relative to the receiver's reference, in the receiver's
        frame (cells, cells per step), and whether it is of another body."""
        frame = self._frame(vertex)[receivers]
        dtype = view.node_position.dtype
        offset = view.x[particles].to(dtype) - view.node_position[vertex["rows"][receivers]]
        offset = (frame @ offset[..., None])[..., 0] / view.dx
        relative = view.v[particles].to(dtype) - vertex["reference"][receivers]
        relative = (frame @ relative[..., None])[..., 0] * (view.dt / view.dx)
        pad = [torch.zeros_like(offset[:, :1])] * (3 - self.config.dim)
        other = view.body_id[particles].long() != vertex["bodies"][receivers]
        return torch.cat([offset, *pad, relative, *pad, other[:, None].to(dtype)], dim=1)

    # -- the step --------------------------------------------------------------------------------
    def forward(self, view) -> torch.Tensor:
        corrections = torch.zeros_like(view.node_velocity)
        vertex = self.vertices(view)
        if len(vertex["rows"]) == 0:
            return corrections
        senders, receivers = self.edges(view, vertex)
        particles, near = self.particle_edges(view, vertex)
        vertex_features = self.vertex_features(view, vertex)
        edge_features = self.edge_features(view, vertex, senders, receivers)
        particle_features = self.particle_features(view, vertex, particles, near)
        if self.collect is not None:
            features = (vertex_features, edge_features, particle_features)
            self.collect.append(tuple(f.detach() for f in features))
            return corrections
        h = self.encode_vertex(self._normalised(vertex_features, "vertex"))
        p = self.encode_particle(self._normalised(particle_features, "particle"))
        h = h + self.particle_update(torch.cat([h, torch.zeros_like(h).index_add_(0, near, p)], 1))
        e = self.encode_edge(self._normalised(edge_features, "edge"))
        for edge_update, vertex_update in zip(self.edge_updates, self.vertex_updates, strict=True):
            e = e + edge_update(torch.cat([e, h[senders], h[receivers]], dim=1))
            summed = torch.zeros_like(h).index_add_(0, receivers, e)
            h = h + vertex_update(torch.cat([h, summed], dim=1))
        local = torch.tanh(self.decode(h))  # (V, d) in [-1, 1]
        size = (vertex["before"] - vertex["reference"]).norm(dim=1) + 9.81 * view.dt
        local = local * (self.config.bound * size / self.config.dim**0.5)[:, None]
        dv = (self._frame(vertex).transpose(1, 2) @ local[..., None])[..., 0]
        dv = torch.where(vertex["active"][:, None], dv, torch.zeros_like(dv))
        dv = self._passive(view, vertex, self._conserve_momentum(view, vertex, dv))
        corrections[vertex["rows"], vertex["bodies"]] = dv.to(corrections.dtype)
        return corrections

    @staticmethod
    def _passive(view, vertex: dict, dv: torch.Tensor) -> torch.Tensor:
        """Scale the corrections so that no vertex leaves faster, relative to its reference,
        than it came (``|u_after + dv| <= max(|u_before|, |u_after|)``): contact creates no
        energy. Bodies touching at a node share the smallest scale, which keeps their
        corrections free of momentum."""
        arrived = (vertex["before"] - vertex["reference"]).norm(dim=1)
        built_in = vertex["after"] - vertex["reference"]  # (V, d)
        limit = torch.maximum(arrived, built_in.norm(dim=1))
        a, b = (dv * dv).sum(1), (built_in * dv).sum(1)  # |u + s dv|^2 = limit^2 at s:
        c = (built_in * built_in).sum(1) - limit**2  # <= 0
        moved = a > 1e-30  # elsewhere no correction: nothing to scale (and no NaN gradient)
        a = torch.where(moved, a, torch.ones_like(a))
        root = (-b + torch.sqrt((b * b - a * c).clamp_min(1e-30))) / a
        scale = torch.where(moved, root.clamp(0.0, 1.0), torch.ones_like(a))
        rows, touching = vertex["rows"], vertex["touching"]
        shared = torch.ones(len(view.node_index), dtype=dv.dtype, device=dv.device)
        shared = shared.scatter_reduce(0, rows[touching], scale[touching], "amin")
        scale = torch.where(touching, shared[rows], scale)
        return dv * scale[:, None]

    @staticmethod
    def _conserve_momentum(view, vertex: dict, dv: torch.Tensor) -> torch.Tensor:
        """Where bodies touch, remove each node's mass-weighted mean correction from its
        touching bodies' corrections: they then carry no momentum."""
        rows, m, touching = vertex["rows"], vertex["mass"], vertex["touching"]
        weight = torch.where(touching, m, torch.zeros_like(m))
        count = len(view.node_index)
        momentum = dv.new_zeros(count, dv.shape[1]).index_add_(0, rows, weight[:, None] * dv)
        total = dv.new_zeros(count).index_add_(0, rows, weight)
        mean = momentum / total.clamp_min(1e-30)[:, None]
        return torch.where(touching[:, None], dv - mean[rows], dv)


#: The sidecar's ``architecture`` for this network.
ARCHITECTURE = "contact_gnn"


class ContactWeightsError(WeightsError):
    """Weights that cannot serve a scene: what is wrong, and what to do."""


def save_contact_gnn(model: ContactGNN, path: str | Path, record: dict | None = None) -> None:
    """Write the weights (``path``, a state dict) and the JSON sidecar beside it (``.json``):
    the architecture, its sizes, and whatever ``record`` adds (data, settings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    sidecar = {"architecture": ARCHITECTURE, **asdict(model.config), **(record or {})}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))


def load_contact_gnn(path: str | Path, dim: int, device="cpu", dtype=torch.float64) -> ContactGNN:
    """The network saved at ``path`` for a ``dim``-dimensional scene (weights loaded with
    ``weights_only=True``); :class:`ContactWeightsError` if the file or its sidecar is missing or
    unreadable, or the weights are of another architecture or dimension."""
    path = Path(path)
    record = read_sidecar(
        path,
        ARCHITECTURE,
        dim,
        ContactWeightsError,
        "train contact weights (engine train contact) or fix the path",
        "use weights trained for the contact model",
    )
    names = ("dim", "hidden", "layers", "bound", "contact_edges")
    sizes = {name: record[name] for name in names if name in record}
    model = ContactGNN(ContactGNNConfig(**sizes)).double()  # loads float64 weights unrounded
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        model.load_state_dict(state)
    except Exception as error:  # a torn file, a pickle, or tensors of other shapes
        raise ContactWeightsError(
            f"{path} cannot be loaded as the contact network its sidecar describes "
            f"({type(error).__name__}: {str(error).splitlines()[0][:120]})",
            "train the weights again, or restore the file",
        ) from None
    return model.to(device=device, dtype=dtype)
