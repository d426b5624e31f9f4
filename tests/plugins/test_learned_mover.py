"""The learned output-mesh mover's priors, for any weights (random ones here): a constant
monitor gives the uniform mesh, boundary nodes slide along their faces and corners stay, the
potential solves the lattice's Neumann problem, the shared finite differences agree in NumPy and
torch; each frame's move is the largest listed share of the network's that keeps every cell
valid with a margin (the whole move where it does); bad weights or too few nodes are validation
errors at their keys; a run writes the mesh."""

import json

import numpy as np
import pytest
import torch
from engine_plugins.learned_mover import LearnedMover

import engine.io
from engine.cli import main
from engine.diff.mover_net import (
    JACOBIAN_FLOOR,
    SHARES,
    MoverNet,
    MoverNetConfig,
    NeumannPoisson,
    largest_safe_share,
    save_mover_net,
)
from engine.hooks.records import OutputMeshSpec
from engine.output.lattice import corner_jacobians, mesh_problem, uniform_nodes
from engine.output.lattice_derivatives import lattice_derivatives
from engine.output.monitor import build_monitor

DOMAIN = np.array([1.0, 0.5])
NODES = (17, 9)


def random_weights(path, dim=2, seed=0):
    """Weights whose every parameter is random (the priors must hold for any)."""
    torch.manual_seed(seed)
    net = MoverNet(MoverNetConfig(dim, hidden=4)).double()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 0.3)
    save_mover_net(net, path)
    return path


def bump(points):
    """A sharp bump off the centre (its monitor pulls nodes towards it)."""
    return np.exp(-((points - [0.3, 0.2]) ** 2).sum(-1) / 0.005)


def mover(weights, nodes=NODES, domain=DOMAIN):
    return LearnedMover(OutputMeshSpec(None, nodes, domain, uniform_nodes(domain, nodes), weights))


def test_a_constant_monitor_gives_the_uniform_mesh(tmp_path):
    flat = build_monitor(np.full((33, 17), 2.0), DOMAIN, 1.0)
    points = mover(random_weights(tmp_path / "w.pt")).move(flat)
    np.testing.assert_allclose(points, uniform_nodes(DOMAIN, NODES), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_nodes_slide_along_their_faces_and_corners_stay(tmp_path, seed):
    shape = (33, 17)
    monitor = build_monitor(bump(uniform_nodes(DOMAIN, shape)).reshape(shape), DOMAIN, 3.0)
    points = mover(random_weights(tmp_path / "w.pt", seed=seed)).move(monitor)
    xi = uniform_nodes(DOMAIN, NODES)
    grid, start = points.reshape(*NODES, 2), xi.reshape(*NODES, 2)
    assert np.abs(points - xi).max() > 1e-3  # it moved
    for axis, size in enumerate(DOMAIN):
        for index, face in ((0, 0.0), (-1, size)):
            np.testing.assert_array_equal(np.take(grid, index, axis)[..., axis], face)
    corners = [(0, 0), (0, -1), (-1, 0), (-1, -1)]
    for corner in corners:
        np.testing.assert_array_equal(grid[corner], start[corner])


def test_the_potential_solves_the_mirrored_neumann_problem():
    spacing = (1 / 16, 0.5 / 8)
    source = torch.randn(2, *NODES, dtype=torch.float64)
    phi = NeumannPoisson(NODES, spacing, "cpu", torch.float64)(source)
    _, hessian = lattice_derivatives(phi, spacing)
    laplacian = hessian[..., 0, 0] + hessian[..., 1, 1]
    difference = laplacian - source  # the source less its mean mode: a constant
    assert float(difference.std(dim=(1, 2)).max()) < 1e-10


def test_the_finite_differences_agree_in_numpy_and_torch():
    phi = np.random.default_rng(0).normal(size=(5, 4, 3))
    spacing = (0.1, 0.2, 0.3)
    gradient, hessian = lattice_derivatives(phi, spacing)
    tensor_gradient, tensor_hessian = lattice_derivatives(torch.as_tensor(phi), spacing)
    np.testing.assert_allclose(tensor_hessian.numpy(), hessian, rtol=1e-13)
    for a, b in zip(gradient, tensor_gradient, strict=True):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-13)
    assert np.all(gradient[0][0] == 0) and np.all(gradient[2][..., -1] == 0)  # mirrored faces


def with_step(mover, monkeypatch, step):
    """``mover`` whose network gives ``step`` ``(M, d)`` m (on the unit-sized ``DOMAIN``)."""
    grid = torch.as_tensor(step.reshape(1, *NODES, 2))
    monkeypatch.setattr(mover.net, "displacement", lambda values, extent, nodes: grid)
    return mover


def pushed(cells: float) -> np.ndarray:
    """A move ``(M, d)`` m of one interior node by ``cells`` cell widths along x, nothing else."""
    step = np.zeros((*NODES, 2))
    step[8, 4, 0] = cells * DOMAIN[0] / (NODES[0] - 1)
    return step.reshape(-1, 2)


ANY_MONITOR = build_monitor(np.full((33, 17), 2.0), DOMAIN, 1.0)  # the network is stubbed


def test_an_inverting_move_is_scaled_to_the_largest_safe_share(tmp_path, monkeypatch):
    """Pushed 1.5 cells, the node inverts the cell ahead of it at share 1: its width there is
    1 - 1.5 s of the uniform cell's, so 0.6 is the largest listed share that keeps it above
    the margin (0.7 leaves it negative)."""
    xi, step = uniform_nodes(DOMAIN, NODES), pushed(1.5)
    assert mesh_problem(xi + step, NODES, DOMAIN) is not None  # the whole move inverts a cell
    learned = with_step(mover(random_weights(tmp_path / "w.pt")), monkeypatch, step)
    points = learned.move(ANY_MONITOR)
    assert learned.share == pytest.approx(0.6)
    np.testing.assert_allclose(points, xi + 0.6 * step, atol=1e-15)
    assert mesh_problem(points, NODES, DOMAIN) is None
    uniform = float(np.prod(DOMAIN / (np.asarray(NODES) - 1)))
    assert corner_jacobians(points, NODES).min() >= JACOBIAN_FLOOR * uniform


def test_a_safe_move_is_kept_whole(tmp_path, monkeypatch):
    xi, step = uniform_nodes(DOMAIN, NODES), pushed(0.5)
    learned = with_step(mover(random_weights(tmp_path / "w.pt")), monkeypatch, step)
    np.testing.assert_allclose(learned.move(ANY_MONITOR), xi + step, atol=1e-15)
    assert learned.share == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_no_share_kept_inverts_a_cell(seed):
    """Random moves of every interior node, from a tenth of a cell to five cells: the share
    kept leaves every corner Jacobian above the margin and is the largest listed that does;
    where none does (share 0) the mesh given is one the engine refuses (it then writes the
    uniform mesh, with a warning)."""
    rng = np.random.default_rng(seed)
    xi = uniform_nodes(DOMAIN, NODES)
    step = np.zeros((*NODES, 2))
    step[1:-1, 1:-1] = rng.normal(size=(NODES[0] - 2, NODES[1] - 2, 2)) * [1 / 16, 0.5 / 8]
    step = step.reshape(-1, 2) * [0.1, 0.3, 0.6, 1.0, 2.0, 5.0][seed]
    share, points = largest_safe_share(torch.as_tensor(xi), torch.as_tensor(step), NODES, DOMAIN)
    points = points.numpy()
    floor = JACOBIAN_FLOOR * float(np.prod(DOMAIN / (np.asarray(NODES) - 1)))
    if share == 0:
        assert mesh_problem(points, NODES, DOMAIN) is not None
        return
    assert mesh_problem(points, NODES, DOMAIN) is None
    assert corner_jacobians(points, NODES).min() >= floor
    for larger in (s for s in SHARES if s > share):
        at = np.clip(xi + larger * step, 0.0, DOMAIN)
        assert corner_jacobians(at, NODES).min() < floor


SCENE = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 16
end_time = 0.02
frame_dt = 0.01

[output]
path = "out/run.vtkhdf"

[[output.meshes]]
name = "fields"
nodes = [17, 9]
mover = "learned"
weights = "mover.pt"

[materials.water]
model = "fluid"
density = 1000.0
bulk_modulus = 1.0e5

[[bodies]]
material = "water"
shape = "box"
min = [0.0, 0.0]
max = [0.5, 0.25]
"""


def test_a_run_writes_the_learned_mesh(scene_file, tmp_path):
    random_weights(tmp_path / "mover.pt")
    assert main(["run", str(scene_file(SCENE)), "-q"]) == 0
    mesh = engine.io.open(tmp_path / "out" / "run_mesh_fields.vtkhdf")
    assert mesh.n_frames == 3 and mesh.metadata["mover"] == "learned"
    assert mesh_problem(mesh.points(-1), NODES, DOMAIN) is None


def _corrupt(tmp_path):
    (tmp_path / "mover.pt").write_bytes(b"not a torch file")


def _not_finite(tmp_path):
    state = torch.load(tmp_path / "mover.pt", weights_only=True)
    state["damping"][0] = float("nan")
    torch.save(state, tmp_path / "mover.pt")


def _other_architecture(tmp_path):
    sidecar = tmp_path / "mover.json"
    sidecar.write_text(json.dumps(json.loads(sidecar.read_text()) | {"architecture": "x"}))


def _other_sizes(tmp_path):
    sidecar = tmp_path / "mover.json"
    sidecar.write_text(json.dumps(json.loads(sidecar.read_text()) | {"hidden": 8}))


@pytest.mark.parametrize(
    ("spoil", "change", "key", "message"),
    [
        (lambda p: (p / "mover.pt").unlink(), None, "weights", "does not exist"),
        (lambda p: (p / "mover.json").unlink(), None, "weights", "mover.json does not exist"),
        (_corrupt, None, "weights", "cannot be loaded as the mover network"),
        (_other_architecture, None, "weights", "holds a 'x' model"),
        (_other_sizes, None, "weights", "cannot be loaded as the mover network"),
        (_not_finite, None, "weights", "holds NaN or infinite weights"),
        (None, ("nodes = [17, 9]", "nodes = [17, 5]"), "nodes", "at least 9 nodes per axis"),
        (None, ('weights = "mover.pt"\n', ""), "weights", "needs weights"),
    ],
)
def test_bad_weights_and_nodes_are_validation_errors(
    scene_file, tmp_path, capsys, spoil, change, key, message
):
    random_weights(tmp_path / "mover.pt")
    if spoil is not None:
        spoil(tmp_path)
    scene = SCENE.replace(*change) if change else SCENE
    assert main(["validate", str(scene_file(scene))]) == 2
    err = capsys.readouterr().err
    assert f"output.meshes[0].{key}: " in err and message in err and "fix: " in err


def test_weights_of_another_dimension_are_refused(scene_file, tmp_path, capsys):
    random_weights(tmp_path / "mover.pt", dim=3)
    assert main(["validate", str(scene_file(SCENE))]) == 2
    err = capsys.readouterr().err
    assert "output.meshes[0].weights: " in err and "trained for 3D meshes" in err
    assert "fix: use weights trained in 2D" in err
