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
  never more; and no body's centre of mass leaves a collider faster along its normal than it
  moves before the step (or after the built-in response), so that a contact lasting several
  steps cannot add up its reflections.

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


def _where(mask: torch.Tensor, *values: torch.Tensor) -> tuple:
    """The rows of each of ``values`` (each ``(N, ...)``) where ``mask`` ``(N,)`` holds."""
    kept = torch.nonzero(mask).squeeze(1)
    return tuple(value.index_select(0, kept) for value in values)


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
        # cell-list hashing (not weights: not saved): each axis's weight, the 3^d neighbours'
        weights = torch.tensor([1 << 15 * axis for axis in reversed(range(config.dim))])
        offsets = torch.cartesian_prod(*[torch.tensor([-1, 0, 1])] * config.dim)
        self.register_buffer("cell_weights", weights, persistent=False)
        self.register_buffer(
            "neighbour_cells", (offsets.reshape(-1, config.dim) * weights).sum(1), persistent=False
        )
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
        """Per vertex (a body with mass at an interface node): ``flat`` (node row x B + body),
        node row, body, mass and mass share of its node, node position, velocities before and
        after the built-in response, reference velocity and the velocity relative to it, frame
        (see :meth:`_frame`), and the masks of where it touches another body and where
        corrections may act."""
        mass = view.node_mass  # (M, B)
        bodies_at = mass.shape[1]
        flat = torch.nonzero(mass.reshape(-1) > 0).squeeze(1)  # (V,), by node row, then body
        rows, bodies = flat // bodies_at, flat % bodies_at

        def at_vertex(field):  # (M, B, ...) -> (V, ...)
            return field.flatten(0, 1).index_select(0, flat)

        def at_node(field):  # (M, ...) -> (V, ...)
            return field.index_select(0, rows)

        m, before = at_vertex(mass), at_vertex(view.node_velocity_before)  # (V,), (V, d)
        total = mass.sum(1)
        node_momentum = (mass[..., None] * view.node_velocity_before).sum(1)
        centre = at_node(node_momentum / total.clamp_min(1e-30)[:, None])
        touching = at_vertex(view.body_in_contact)
        normal = torch.where(
            touching[:, None], at_vertex(view.body_normal), at_node(view.collider_normal)
        )
        reference = torch.where(touching[:, None], centre, at_node(view.collider_velocity))
        relative = before - reference
        tangent = self._tangent(relative, normal)
        return {
            "flat": flat,
            "rows": rows,
            "bodies": bodies,
            "mass": m,
            "share": m / at_node(total),
            "position": at_node(view.node_position),
            "before": before,
            "after": at_vertex(view.node_velocity),
            "reference": reference,
            "relative": relative,
            "frame": self._frame(normal, tangent),
            "active": touching | at_node(view.collider_distance <= view.dx),
            "touching": touching,
        }

    def _tangent(self, relative: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        """The sliding direction across ``normal``: in 2D ``normal`` turned by 90 degrees (the
        sign of the sliding velocity enters as a feature); in 3D the unit tangential part of
        ``relative`` (zero where it vanishes)."""
        if self.config.dim == 2:
            return torch.stack([-normal[:, 1], normal[:, 0]], dim=1)
        return _unit(relative - (relative * normal).sum(-1, keepdim=True) * normal)

    def _frame(self, n: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Rows ``(V, d, d)``: the normal ``n``, the tangent ``t`` (and ``n x t`` in 3D)."""
        axes = [n, t] if self.config.dim == 2 else [n, t, torch.cross(n, t, dim=-1)]
        return torch.stack(axes, dim=1)

    @staticmethod
    def _in_frame(frame: torch.Tensor, *vectors: torch.Tensor) -> tuple:
        """The ``vectors`` ``(N, d)`` each, in the ``frame`` rows ``(N, d, d)``."""
        return (frame @ torch.stack(vectors, dim=2)).unbind(2)

    def edges(self, view, vertex: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(senders, receivers)`` ``(E,)``: contact edges between the bodies that touch at a
        node (both ways), and body edges between a body's vertices at nodes one cell apart."""
        rows, bodies, touching = vertex["rows"], vertex["bodies"], vertex["touching"]
        count, bodies_at = len(rows), view.node_mass.shape[1]
        pairs = torch.arange(count, device=rows.device)
        # contact: the other touching bodies at the same node, through a (M, B) table of vertices
        table = torch.full((view.node_mass.numel(),), -1, dtype=torch.long, device=rows.device)
        table = table.index_copy(0, vertex["flat"], torch.where(touching, pairs, -1))
        partners = table.view(-1, bodies_at).index_select(0, rows)  # (V, B)
        linked = (partners >= 0) & (partners != pairs[:, None]) & touching[:, None]
        linked = linked & self.config.contact_edges
        slots = torch.nonzero(linked.reshape(-1)).squeeze(1)  # receiver x B + partner's body
        contact = (partners.reshape(-1).index_select(0, slots), slots // bodies_at)
        # body: a body's vertices within one cell on every axis (distance <= sqrt(d) dx), found
        # by cell lists of that radius: rotation-invariant, unlike a lookup by grid index
        radius = 1.01 * math.sqrt(self.config.dim) * view.dx
        position = vertex["position"]
        senders, receivers = self._within(position, bodies, position, bodies, radius)
        senders, receivers = _where(senders != receivers, senders, receivers)
        return torch.cat([contact[0], senders]), torch.cat([contact[1], receivers])

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
        found, receiver = self._within(
            view.x.index_select(0, near).to(view.node_position.dtype),
            torch.zeros_like(near),
            vertex["position"].index_select(0, active),
            torch.zeros_like(active),
            PARTICLE_RADIUS * view.dx,
        )
        particles, receivers = near.index_select(0, found), active.index_select(0, receiver)
        if not self.config.contact_edges:
            own = view.body_id.index_select(0, particles).long() == vertex["bodies"][receivers]
            particles, receivers = particles[own], receivers[own]
        return particles, receivers

    def _within(self, source, source_key, query, query_key, radius: float):
        """Pairs ``(source index, query index)`` with equal keys and points within ``radius``
        m of each other: cell lists of that size, all 3^d neighbouring cells of every query
        looked up at once (``source`` ``(S, d)``, ``query`` ``(Q, d)`` m, keys ``(S,)``,
        ``(Q,)`` small non-negative integers). Pairs come offset by offset, then query by
        query."""
        hashed, order = self._hash(source_key, torch.floor(source / radius).long()).sort()
        cells = self._hash(query_key, torch.floor(query / radius).long())
        target = (self.neighbour_cells[:, None] + cells).reshape(-1)  # (3^d Q,) offset-major
        start = torch.searchsorted(hashed, target)
        counts = torch.searchsorted(hashed, target, right=True) - start
        which = torch.repeat_interleave(counts)  # each candidate pair's target
        first = (start - (counts.cumsum(0) - counts)).index_select(0, which)
        sender = order.index_select(0, torch.arange(len(which), device=query.device) + first)
        receiver = which % len(query)
        gap = source.index_select(0, sender) - query.index_select(0, receiver)
        return _where(gap.norm(dim=1) <= radius, sender, receiver)

    def _hash(self, key: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """One int64 per (key ``(N,)``, cell ``(N, d)``) of small integers, 15 bits per axis:
        collision-free for cells within +-2^14 and keys below 2^18 (in 3D; 2^33 in 2D); linear
        in the cell, so that a neighbouring cell's hash is the cell's plus
        :attr:`neighbour_cells`."""
        return key * (1 << 15 * self.config.dim) + ((cells + (1 << 14)) * self.cell_weights).sum(1)

    # -- features ------------------------------------------------------------------------------
    def vertex_features(self, view, vertex: dict) -> torch.Tensor:
        """Scalars ``(V, VERTEX_FEATURES)``: velocities before and after the built-in response,
        relative to the reference, in the vertex frame (in cells per step), the collider's
        signed distance (cells), mass share, friction, touching and near flags."""
        scale = view.dt / view.dx  # m/s -> cells per step
        before, after = self._in_frame(
            vertex["frame"], vertex["relative"], vertex["after"] - vertex["reference"]
        )
        before, after = before * scale, after * scale
        pad = [torch.zeros_like(before[:, :1])] * (3 - self.config.dim)
        rows, share = vertex["rows"], vertex["share"]
        distance = (view.collider_distance.index_select(0, rows) / view.dx).clamp(-2.0, 2.0)
        friction = torch.where(
            vertex["touching"],
            torch.full_like(share, float(view.body_friction)),
            view.collider_friction.index_select(0, rows),
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
        position, before = vertex["position"], vertex["before"]
        offset, relative = self._in_frame(
            vertex["frame"].index_select(0, receivers),
            position.index_select(0, senders) - position.index_select(0, receivers),
            before.index_select(0, senders) - before.index_select(0, receivers),
        )
        offset, relative = offset / view.dx, relative * (view.dt / view.dx)
        pad = [torch.zeros_like(offset[:, :1])] * (3 - self.config.dim)
        bodies = vertex["bodies"]
        contact = bodies.index_select(0, senders) != bodies.index_select(0, receivers)
        columns = [offset, *pad, relative[:, :2], offset.norm(dim=1, keepdim=True)]
        columns += [contact[:, None].to(offset.dtype)]
        return torch.cat(columns, dim=1)[:, :EDGE_FEATURES]

    def particle_features(self, view, vertex: dict, particles, receivers) -> torch.Tensor:
        """Scalars ``(P, PARTICLE_FEATURES)``: the particle's position relative to the
        receiver's node and its velocity relative to the receiver's reference, in the receiver's
        frame (cells, cells per step), and whether it is of another body."""
        dtype = view.node_position.dtype
        offset, relative = self._in_frame(
            vertex["frame"].index_select(0, receivers),
            view.x.index_select(0, particles).to(dtype)
            - vertex["position"].index_select(0, receivers),
            view.v.index_select(0, particles).to(dtype)
            - vertex["reference"].index_select(0, receivers),
        )
        offset, relative = offset / view.dx, relative * (view.dt / view.dx)
        pad = [torch.zeros_like(offset[:, :1])] * (3 - self.config.dim)
        body = view.body_id.index_select(0, particles).long()
        other = body != vertex["bodies"].index_select(0, receivers)
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
            sent, received = h.index_select(0, senders), h.index_select(0, receivers)
            e = e + edge_update(torch.cat([e, sent, received], dim=1))
            summed = torch.zeros_like(h).index_add_(0, receivers, e)
            h = h + vertex_update(torch.cat([h, summed], dim=1))
        local = torch.tanh(self.decode(h))  # (V, d) in [-1, 1]
        size = vertex["relative"].norm(dim=1) + 9.81 * view.dt
        local = local * (self.config.bound * size / self.config.dim**0.5)[:, None]
        dv = (vertex["frame"].transpose(1, 2) @ local[..., None])[..., 0]
        dv = torch.where(vertex["active"][:, None], dv, torch.zeros_like(dv))
        dv = self._passive(view, vertex, self._conserve_momentum(view, vertex, dv))
        dv = self._body_passive(view, vertex, dv)
        flat = corrections.flatten(0, 1).index_copy(0, vertex["flat"], dv.to(corrections.dtype))
        return flat.view(corrections.shape)

    @staticmethod
    def _passive(view, vertex: dict, dv: torch.Tensor) -> torch.Tensor:
        """Scale the corrections so that no vertex leaves faster, relative to its reference,
        than it came (``|u_after + dv| <= max(|u_before|, |u_after|)``): contact creates no
        energy. Bodies touching at a node share the smallest scale, which keeps their
        corrections free of momentum."""
        arrived = vertex["relative"].norm(dim=1)
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
        shared = shared.scatter_reduce(0, *_where(touching, rows, scale), "amin")
        scale = torch.where(touching, shared.index_select(0, rows), scale)
        return dv * scale[:, None]

    @staticmethod
    def _body_passive(view, vertex: dict, dv: torch.Tensor) -> torch.Tensor:
        """Scale each body's corrections at colliders so that its centre of mass leaves them no
        faster, along their normal, than it moves before this step or after the built-in
        response. The vertex bound of :meth:`_passive` alone holds step by step: a contact
        that lasts several steps is reflected at each of them, and the reflections add up to a
        rebound faster than the body came (measured: a disk arriving at the domain's top wall
        at 1.25 m/s left it at 2.42). The normal is the body's mass-weighted collider normal
        over its vertices there; its centre of mass comes from the grid fields (one sum over
        the grid per step). Corrections between touching bodies are left as they are."""
        bodies, d = view.node_mass.shape[1], dv.shape[1]
        body, lone = vertex["bodies"], ~vertex["touching"]
        m = vertex["mass"]
        lone_mass = torch.where(lone, m, torch.zeros_like(m))

        def per_body(values):  # (V, ...) -> (B, ...), summed over each body's vertices
            return values.new_zeros(bodies, *values.shape[1:]).index_add_(0, body, values)

        grid_mass = view.body_mass.reshape(bodies, -1).to(dv.dtype)
        grid_velocity = view.body_velocity.reshape(bodies, -1, d).to(dv.dtype)
        total = grid_mass.sum(1).clamp_min(1e-30)[:, None]
        after = (grid_mass[..., None] * grid_velocity).sum(1) / total  # (B, d)
        before = after + per_body(m[:, None] * (vertex["before"] - vertex["after"])) / total
        normal = _unit(per_body(lone_mass[:, None] * vertex["frame"][:, 0]))
        at_colliders = per_body(lone_mass).clamp_min(1e-30)[:, None]
        collider = per_body(lone_mass[:, None] * vertex["reference"]) / at_colliders
        leaving = ((after - collider) * normal).sum(1)  # (B,) after the built-in response
        limit = torch.maximum(leaving.abs(), ((before - collider) * normal).sum(1).abs())
        pushed = (per_body(lone_mass[:, None] * dv) * normal).sum(1) / total[:, 0]
        corrected = leaving + pushed
        over = (corrected.abs() > limit) & (pushed.abs() > 1e-30)
        safe = torch.where(over, pushed, torch.ones_like(pushed))
        scale = torch.where(over, ((torch.sign(corrected) * limit - leaving) / safe), 1.0)
        scale = torch.where(lone, scale.clamp(0.0, 1.0).index_select(0, body), 1.0)
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
        return torch.where(touching[:, None], dv - mean.index_select(0, rows), dv)


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
