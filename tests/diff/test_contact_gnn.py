"""The contact graph network's physics by construction (an untrained network with random
weights: the properties must hold whatever the weights): momentum kept where bodies touch,
corrections rotating with the scene and unchanged by translating it (1e-5), exactly zero where
nothing meets, and bounded; and its cell-list neighbour search finds exactly the pairs a
brute-force search finds."""

import math

import pytest
import torch

from engine.diff.contact_gnn import ContactGNN, ContactGNNConfig, load_contact_gnn, save_contact_gnn
from engine.hooks.records import ContactView

DX, DT = 0.01, 1e-4


def random_view(dim: int, seed: int = 0, nodes: int = 40, bodies: int = 3) -> ContactView:
    """A contact view of ``nodes`` interface nodes on a patch of the grid, float64."""
    g = torch.Generator().manual_seed(seed)
    side = 8 if dim == 2 else 5
    cells = torch.randperm(side**dim, generator=g)[:nodes]
    index = torch.stack(torch.unravel_index(cells, (side,) * dim), dim=1)
    order = torch.argsort(cells)
    cells, index = cells[order], index[order]
    mass = torch.rand(nodes, bodies, generator=g, dtype=torch.float64)
    mass = torch.where(mass < 0.4, torch.zeros_like(mass), mass)
    mass[:, 0] = mass[:, 0].clamp_min(0.05)  # every node has some mass
    normal = torch.randn(nodes, bodies, dim, generator=g, dtype=torch.float64)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    in_contact = (mass > 0) & ((mass > 0).sum(1, keepdim=True) > 1)
    in_contact &= torch.rand(nodes, bodies, generator=g) < 0.8
    collider_normal = torch.randn(nodes, dim, generator=g, dtype=torch.float64)
    collider_normal = collider_normal / collider_normal.norm(dim=-1, keepdim=True)
    velocity = torch.randn(nodes, bodies, dim, generator=g, dtype=torch.float64)
    count = 3 * nodes  # particles scattered over the patch, of every body
    x = torch.rand(count, dim, generator=g, dtype=torch.float64) * side * DX
    v = torch.randn(count, dim, generator=g, dtype=torch.float64)
    body_id = torch.randint(bodies, (count,), generator=g, dtype=torch.int32)
    after = velocity + 0.1 * torch.randn(velocity.shape, generator=g).double()
    # the grid fields after the built-in response: the interface nodes' and more mass elsewhere
    grid_mass = 0.05 * torch.rand(bodies, side**dim, generator=g, dtype=torch.float64)
    grid_velocity = torch.randn(bodies, side**dim, dim, generator=g, dtype=torch.float64)
    grid_mass[:, cells], grid_velocity[:, cells] = mass.T, after.transpose(0, 1)
    empty = torch.zeros(0)
    return ContactView(
        body_velocity=grid_velocity,
        body_mass=grid_mass,
        body_mass_gradient=empty,
        velocity=empty,
        node_index=cells.long(),
        node_row=cells.long(),
        node_position=index.to(torch.float64) * DX,
        node_mass=mass,
        node_velocity_before=velocity,
        node_velocity=after,
        body_normal=torch.where((mass > 0)[..., None], normal, 0.0),
        body_in_contact=in_contact,
        collider_distance=(torch.rand(nodes, generator=g, dtype=torch.float64) * 4 - 1) * DX,
        collider_normal=collider_normal,
        collider_velocity=0.3 * torch.randn(nodes, dim, generator=g, dtype=torch.float64),
        collider_friction=torch.full((nodes,), 0.4, dtype=torch.float64),
        body_friction=0.3,
        x=x,
        v=v,
        body_id=body_id,
        material_id=empty,
        material_constants=empty,
        dt=DT,
        dx=DX,
        time=0.0,
        particles_near=lambda: torch.arange(count),
    )


def moved(view: ContactView, R: torch.Tensor, shift: torch.Tensor) -> ContactView:
    """The same view with the scene rotated by ``R`` and translated by ``shift``."""
    turn = lambda v: v @ R.T  # noqa: E731
    fields = dict(view.__dict__)
    turned = ("node_velocity_before", "node_velocity", "body_normal", "collider_normal", "v")
    for name in (*turned, "body_velocity"):
        fields[name] = turn(fields[name])
    fields["collider_velocity"] = turn(fields["collider_velocity"])
    fields["node_position"] = turn(fields["node_position"]) + shift
    fields["x"] = turn(fields["x"]) + shift
    return ContactView(**fields)


def network(dim: int, bound: float = 1.0) -> ContactGNN:
    torch.manual_seed(1)
    model = ContactGNN(ContactGNNConfig(dim=dim, hidden=32, layers=2, bound=bound)).double()
    for parameter in model.decode[-1].parameters():  # untrained it is ~0; large: test bounds
        torch.nn.init.normal_(parameter, std=20.0)
    return model


def rotation(dim: int) -> torch.Tensor:
    if dim == 2:
        a = 0.7
        return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]).double()
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3)).double())
    return q * torch.sign(torch.linalg.det(q))  # a proper rotation


@pytest.mark.parametrize("dim", [2, 3])
def test_corrections_keep_momentum_where_bodies_touch(dim):
    view = random_view(dim)
    dv = network(dim)(view)
    touching = view.body_in_contact
    momentum = (torch.where(touching, view.node_mass, 0.0)[..., None] * dv).sum(1)
    assert touching.any() and dv[touching].abs().max() > 1e-3  # it does correct
    assert momentum.abs().max() < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_corrections_rotate_with_the_scene_and_ignore_translation(dim):
    view, R = random_view(dim, seed=2), rotation(dim)
    model = network(dim)
    dv = model(view)
    turned = model(moved(view, R, torch.full((dim,), 0.37, dtype=torch.float64)))
    scale = dv.abs().max()
    assert (turned - dv @ R.T).abs().max() < 1e-5 * scale


@pytest.mark.parametrize("dim", [2, 3])
def test_zero_where_nothing_meets_and_bounded(dim):
    view = random_view(dim, seed=4)
    dv = network(dim, bound=0.5)(view)
    active = view.body_in_contact | (view.collider_distance <= view.dx)[:, None]
    active &= view.node_mass > 0
    assert (~active).any() and torch.all(dv[~active] == 0.0)
    # where no momentum projection acts (near a collider only), within bound (|u| + g dt)
    model = network(dim, bound=0.5)
    vertex = model.vertices(view)
    lone = ~vertex["touching"] & vertex["active"]
    size = (vertex["before"] - vertex["reference"]).norm(dim=1) + 9.81 * DT
    got = dv[vertex["rows"], vertex["bodies"]].norm(dim=1)
    assert lone.any() and torch.all(got[lone] <= 0.5 * size[lone] * (1 + 1e-12))
    assert (got[lone] > 0.25 * size[lone]).any()  # the scaled-up decoder saturates: bounds bite


@pytest.mark.parametrize("dim", [2, 3])
def test_no_vertex_leaves_faster_than_it_came(dim):
    view = random_view(dim, seed=8)
    model = network(dim, bound=5.0)  # large corrections: the passivity must bite
    dv = model(view)
    vertex = model.vertices(view)
    rows, bodies = vertex["rows"], vertex["bodies"]
    came = (vertex["before"] - vertex["reference"]).norm(dim=1)
    built_in = (vertex["after"] - vertex["reference"]).norm(dim=1)
    left = (vertex["after"] + dv[rows, bodies] - vertex["reference"]).norm(dim=1)
    assert torch.all(left <= torch.maximum(came, built_in) * (1 + 1e-9) + 1e-12)
    assert torch.isclose(left, torch.maximum(came, built_in)).any()  # it does bite


@pytest.mark.parametrize("dim", [2, 3])
def test_no_body_leaves_a_collider_faster_than_it_came(dim):
    """Along each body's collider normal (mass-weighted over its vertices near colliders), its
    centre of mass after the corrections moves no faster than before the step or after the
    built-in response; a contact of many steps cannot add up its reflections."""
    view = random_view(dim, seed=0)
    model = network(dim, bound=5.0)
    dv = model(view)
    vertex = model.vertices(view)
    rows, body, lone = vertex["rows"], vertex["bodies"], ~vertex["touching"]
    bodies = view.node_mass.shape[1]
    grid_mass = view.body_mass.reshape(bodies, -1)
    total = grid_mass.sum(1)[:, None]
    after = (grid_mass[..., None] * view.body_velocity.reshape(bodies, -1, dim)).sum(1) / total

    def per_body(values):  # (V, ...) summed over each body's vertices
        return values.new_zeros(bodies, *values.shape[1:]).index_add_(0, body, values)

    m = vertex["mass"]
    before = after + per_body(m[:, None] * (vertex["before"] - vertex["after"])) / total
    lone_mass = torch.where(lone, m, 0.0)[:, None]
    normal = per_body(lone_mass * vertex["frame"][:, 0])
    normal = normal / normal.norm(dim=1, keepdim=True)
    collider = per_body(lone_mass * vertex["reference"]) / per_body(lone_mass)
    pushed = per_body(lone_mass * dv[rows, body])
    left = ((after + pushed / total - collider) * normal).sum(1).abs()
    came = ((before - collider) * normal).sum(1).abs()
    built_in = ((after - collider) * normal).sum(1).abs()
    assert torch.all(left <= torch.maximum(came, built_in) * (1 + 1e-9) + 1e-12)
    assert torch.isclose(left, torch.maximum(came, built_in)).any()  # it does bite


def test_gradients_stay_finite_where_corrections_vanish():
    view = random_view(2, seed=8)  # it has vertices far from any contact: zero corrections
    model = network(2, bound=5.0)
    (model(view) ** 2).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_the_graph_has_contact_and_body_edges():
    view = random_view(2, seed=5)
    model = network(2)
    vertex = model.vertices(view)
    senders, receivers = model.edges(view, vertex)
    bodies = vertex["bodies"]
    contact = bodies[senders] != bodies[receivers]
    assert contact.any() and (~contact).any()
    rows = vertex["rows"]
    assert torch.all(rows[senders][contact] == rows[receivers][contact])  # same node
    gap = (view.node_position[rows[senders]] - view.node_position[rows[receivers]]).norm(dim=1)
    assert torch.all(gap[~contact] <= 1.5 * DX) and torch.all(gap[~contact] > 0)


def test_no_interface_nodes_give_an_empty_correction():
    view = random_view(2, nodes=40)
    fields = dict(view.__dict__)
    for name, value in fields.items():
        if isinstance(value, torch.Tensor) and value.numel() and name != "node_index":
            fields[name] = value[:0]
    fields["node_index"] = view.node_index[:0]
    empty = ContactView(**fields)
    assert network(2)(empty).shape == (0, 3, 2)


def test_untrained_network_is_nearly_the_built_in_response():
    view = random_view(2, seed=6)
    dv = ContactGNN(ContactGNNConfig(dim=2)).double()(view)
    assert 0.0 < dv.abs().max() < 1e-2 * view.node_velocity_before.abs().max()


def test_particle_edges_reach_the_particles_of_every_body_near_a_node():
    view = random_view(2, seed=5)
    model = network(2)
    vertex = model.vertices(view)
    particles, receivers = model.particle_edges(view, vertex)
    offset = view.x[particles] - view.node_position[vertex["rows"][receivers]]
    assert torch.all(offset.norm(dim=1) <= 1.5 * DX) and torch.all(vertex["active"][receivers])
    expected = (view.x[:, None] - view.node_position[vertex["rows"]][None]).norm(dim=2)
    expected = (expected <= 1.5 * DX) & vertex["active"][None]  # (particles, vertices)
    assert len(particles) == int(expected.sum()) > 0
    other = view.body_id[particles].long() != vertex["bodies"][receivers]
    assert other.any() and (~other).any()


def test_the_ablation_has_no_edges_between_bodies():
    view = random_view(2, seed=5)
    model = ContactGNN(ContactGNNConfig(dim=2, contact_edges=False)).double()
    vertex = model.vertices(view)
    senders, receivers = model.edges(view, vertex)
    assert len(senders) and torch.all(vertex["bodies"][senders] == vertex["bodies"][receivers])
    particles, receivers = model.particle_edges(view, vertex)
    assert len(particles)
    assert torch.all(view.body_id[particles].long() == vertex["bodies"][receivers])


@pytest.mark.parametrize("dim", [2, 3])
def test_cell_list_search_finds_exactly_the_brute_force_pairs(dim):
    """``_within`` against every (source, query) pair: same key, distance <= radius. Points on
    a lattice of the radius (on cell boundaries, at exactly one radius and at zero distance),
    scattered ones, negative coordinates, sources apart from queries and a search of a set
    against itself; each pair once."""
    g = torch.Generator().manual_seed(dim)
    radius = 0.013

    def points(count):
        lattice = torch.randint(-3, 4, (count // 2, dim), generator=g).double() * radius
        scattered = torch.rand(count - count // 2, dim, generator=g, dtype=torch.float64) - 0.4
        return torch.cat([lattice, scattered * 6 * radius])

    model = ContactGNN(ContactGNNConfig(dim=dim)).double()
    source, query = points(300), points(200)
    source_key = torch.randint(3, (len(source),), generator=g)
    query_key = torch.randint(3, (len(query),), generator=g)
    for s, s_key, q, q_key in [
        (source, source_key, query, query_key),
        (source, source_key, source, source_key),
    ]:
        senders, receivers = model._within(s, s_key, q, q_key, radius)
        found = list(zip(senders.tolist(), receivers.tolist(), strict=True))
        close = (s[:, None] - q[None]).norm(dim=2) <= radius  # (S, Q)
        expected = torch.nonzero(close & (s_key[:, None] == q_key[None])).tolist()
        assert len(found) == len(set(found))  # no pair twice
        assert set(found) == {tuple(pair) for pair in expected}
        assert len(expected) > len(q) // 2 and int(close.sum()) > len(expected)  # keys matter


def test_normalisation_is_fitted_from_collected_features_and_saved(tmp_path):
    view = random_view(2, seed=7)
    model = network(2)
    model.collect = []
    assert torch.all(model(view) == 0.0)  # collecting corrects nothing
    vertex, edge, particle = model.collect[0]
    model.collect = None
    model.fit_normalisation(vertex, edge, particle)
    assert torch.allclose(model.vertex_mean, vertex.mean(0))
    assert torch.allclose(model.particle_mean, particle.mean(0))
    save_contact_gnn(model, tmp_path / "w.pt")
    loaded = load_contact_gnn(tmp_path / "w.pt", 2)
    assert torch.equal(loaded.edge_std, model.edge_std.double())
    assert torch.allclose(loaded(view), model(view))
