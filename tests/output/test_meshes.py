"""Output meshes ([[output.meshes]]): the scene keys, the mesh files, the movers' contract
(create, move once per output frame, state in checkpoints), the check that falls back to the
uniform mesh, and what `engine info` says."""

import h5py
import numpy as np
import pytest

import engine.io
from engine.cli import main
from engine.output.lattice import (
    cell_volumes,
    corner_jacobians,
    lattice_cells,
    mesh_problem,
    uniform_nodes,
)
from engine.output.vtkhdf import MeshWriter

pv = pytest.importorskip("pyvista")

SCENE = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 16
end_time = 0.1
frame_dt = 0.01
gravity = [0.0, -9.81]

[output]
path = "out/run.vtkhdf"
checkpoint_every = 3

[[output.meshes]]
name = "fields"
nodes = [9, 5]
fields = ["density", "velocity", "pressure"]

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

#: A mover that slides the interior nodes along x a little more every frame, counting frames in
#: its state; "inverting" folds one cell over.
MOVERS = """
import numpy as np

from engine.hooks import hookimpl
from engine.hooks.records import OutputMeshMoverType


class Drift:
    def __init__(self, spec):
        self.spec, self.frames = spec, 0
        lattice = np.indices(spec.nodes).reshape(len(spec.nodes), -1).T
        self.interior = np.all((lattice > 0) & (lattice < np.array(spec.nodes) - 1), axis=1)

    def move(self, monitor):
        self.frames += 1
        points = self.spec.xi.copy()
        points[self.interior, 0] += 0.001 * self.frames
        return points

    def state(self):
        return {"frames": np.array(self.frames)}

    def set_state(self, state):
        self.frames = int(state["frames"])


class Inverting(Drift):
    def move(self, monitor):
        points = self.spec.xi.copy()
        points[self.interior.nonzero()[0][0], 0] += 0.3
        return points


@hookimpl
def engine_register_mesh_movers():
    return [
        OutputMeshMoverType(name="drift", create=Drift),
        OutputMeshMoverType(name="inverting", create=Inverting),
    ]
"""

CRASH = """
from engine.hooks import hookimpl

@hookimpl
def engine_frame(simulation, frame):
    if frame == 8:
        raise RuntimeError("power cut")
"""


def test_lattice_cells_are_vtk_quads_and_hexahedra_and_inversion_is_caught():
    for nodes, domain in (((3, 4), [2.0, 3.0]), ((2, 3, 4), [1.0, 1.0, 1.0])):
        points = uniform_nodes(np.array(domain), nodes)
        assert np.all(corner_jacobians(points, nodes) > 0)
        assert cell_volumes(points, nodes).sum() == pytest.approx(np.prod(domain))
        assert mesh_problem(points, nodes, np.array(domain)) is None
    np.testing.assert_array_equal(lattice_cells((3, 4))[0], [0, 4, 5, 1])  # counter-clockwise
    folded = uniform_nodes(np.array([2.0, 3.0]), (3, 4))
    folded[5] = [1.9, 2.2]  # an interior node pushed past its neighbours
    assert "cells are inverted" in mesh_problem(folded, (3, 4), np.array([2.0, 3.0]))
    sliding = uniform_nodes(np.array([2.0, 3.0]), (3, 4))
    sliding[1] += [0.1, 0.0]  # a node of the face x = 0 pulled off it
    assert "boundary nodes left their faces" in mesh_problem(sliding, (3, 4), np.array([2, 3]))


@pytest.mark.parametrize("dim", [2, 3])
def test_mesh_file_round_trip_and_vtk_reads_every_step(tmp_path, dim):
    nodes = (3, 4) if dim == 2 else (2, 3, 2)
    points = uniform_nodes(np.ones(dim), nodes)
    cells = lattice_cells(nodes)
    path = tmp_path / "mesh.vtkhdf"
    writer = MeshWriter(path, dim, "[scene]\n", {"engine_version": "0"})
    for step in range(3):
        moved = points + 0.01 * step
        data = {"density": np.full(len(points), step + 1.0), "velocity": moved}
        writer.write_frame(0.5 * step, moved, cells, data, {"fallback": 0.0})
    mesh = engine.io.open(path)  # the writer is not closed: as after a crash
    assert (mesh.kind, mesh.n_frames, mesh.fields) == ("mesh", 3, ["density", "velocity"])
    np.testing.assert_array_equal(mesh.cells(2), cells)
    np.testing.assert_allclose(mesh.points(2), points + 0.02)
    np.testing.assert_allclose(mesh.arrays(1)["velocity"], points + 0.01)
    with h5py.File(path) as f:
        assert f["VTKHDF"].attrs["Type"] == b"UnstructuredGrid"
        assert f["VTKHDF/Steps/CellOffsets"].shape == (3, 1)
    reader = pv.get_reader(path).reader
    reader.UpdateInformation()
    assert reader.GetNumberOfSteps() == 3
    reader.SetStep(2)
    reader.Update()
    grid = pv.wrap(reader.GetOutput())
    assert isinstance(grid, pv.UnstructuredGrid) and grid.n_cells == len(cells)
    assert set(grid.celltypes) == {pv.CellType.QUAD if dim == 2 else pv.CellType.HEXAHEDRON}
    np.testing.assert_allclose(grid.points[:, :dim], points + 0.02)
    np.testing.assert_array_equal(grid.point_data["density"], 3.0)
    assert isinstance(mesh.frame(0), pv.UnstructuredGrid)
    with pytest.raises(ValueError, match="not a surface"):
        engine.io.open(path).faces(0)
    resumed = MeshWriter.resume(path, 2)  # a resumed run drops the frames after its checkpoint
    resumed.write_frame(1.0, points, cells, data, {"fallback": 1.0})
    np.testing.assert_array_equal(engine.io.open(path).diagnostics()["fallback"], [0, 0, 1])


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        ("nodes = [9, 5, 3]", "output.meshes[0].nodes", "3 components"),
        ("nodes = [9, 1]", "output.meshes[0].nodes[1]", "greater than or equal to 2"),
        ('mover = "monge_ampere_x"', "output.meshes[0].mover", "unknown output mesh mover"),
        ('monitor = "J"', "output.meshes[0].monitor", "not a field sampled at mesh nodes"),
        ('fields = ["density", "stress"]', "output.meshes[0].fields[1]", "not a field sampled"),
        ('weights = "mover.pt"', "output.meshes[0].weights", "reads no weights"),
        ('name = "a/b"', "output.meshes[0].name", "should match pattern"),
    ],
)
def test_bad_mesh_tables_are_validation_errors(scene_file, capsys, change, key, message):
    key_name = change.split(" =")[0]
    lines = [line for line in SCENE.splitlines() if not line.startswith(f"{key_name} =")]
    at = lines.index("[[output.meshes]]") + 1
    scene = "\n".join(lines[:at] + [change] + lines[at:])
    assert main(["validate", str(scene_file(scene))]) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err and message in err and "fix: " in err


def test_two_meshes_of_one_name_are_refused(scene_file, capsys):
    twice = SCENE.replace(
        "[materials.water]",
        '[[output.meshes]]\nname = "fields"\nnodes = [3, 3]\n\n[materials.water]',
    )
    assert main(["validate", str(scene_file(twice))]) == 2
    assert "output.meshes[1].name: output mesh name 'fields' is used twice" in (
        capsys.readouterr().err
    )


def test_a_run_writes_the_uniform_mesh_with_sampled_fields(scene_file, tmp_path, capsys):
    scene = scene_file(SCENE)
    assert main(["run", str(scene), "-q"]) == 0
    mesh = engine.io.open(tmp_path / "out" / "run_mesh_fields.vtkhdf")
    assert mesh.n_frames == 11 and mesh.dim == 2
    assert mesh.fields == ["density", "velocity", "pressure", "monitor"]
    assert mesh.metadata["nodes"] == "[9, 5]" and mesh.metadata["mover"] == "uniform"
    np.testing.assert_allclose(mesh.points(-1), uniform_nodes(np.array([1.0, 0.5]), (9, 5)))
    first = mesh.arrays(0)
    x, y = mesh.points(0).T
    inside = (x > 0) & (x < 0.3) & (y > 0) & (y < 0.2)  # 2 cells or more inside the water
    assert inside.sum() == 2 and first["density"][inside] == pytest.approx(1000.0, rel=0.05)
    assert np.all(first["density"][mesh.points(0)[:, 0] > 0.7] == 0.0)
    assert np.all(mesh.arrays(-1)["pressure"][inside] > 0)  # hydrostatic
    assert mesh.diagnostics()["fallback"].sum() == 0
    assert main(["info", str(tmp_path / "out" / "run.vtkhdf")]) == 0
    out = capsys.readouterr().out
    assert (
        "mesh fields: run_mesh_fields.vtkhdf, 11 frames, 45 nodes [9, 5] (32 quads), mover "
        "uniform" in out
    )


def test_mover_state_goes_through_checkpoints_and_resume_is_bitwise(scene_file, tmp_path):
    (tmp_path / "movers.py").write_text(MOVERS)
    (tmp_path / "crash.py").write_text(CRASH)
    scene = SCENE.replace("[output]", '[plugins]\nload = ["movers.py"]\n\n[output]')
    scene = scene_file(scene.replace('name = "fields"', 'name = "fields"\nmover = "drift"'))
    reference = tmp_path / "reference.vtkhdf"
    assert main(["run", str(scene), "-q", "--set", f'output.path="{reference}"']) == 0
    assert main(["run", str(scene), "-q", "--plugin", str(tmp_path / "crash.py")]) == 1
    crashed = tmp_path / "out" / "run_mesh_fields.vtkhdf"
    assert engine.io.open(crashed).n_frames == 8  # frames 0..7 written before the crash
    assert main(["run", str(scene), "-q", "--resume"]) == 0  # from the checkpoint at frame 6
    done, uninterrupted = (
        engine.io.open(crashed),
        engine.io.open(tmp_path / "reference_mesh_fields.vtkhdf"),
    )
    assert done.n_frames == uninterrupted.n_frames == 11
    for i in range(11):
        np.testing.assert_array_equal(done.points(i), uninterrupted.points(i))
        for name, values in uninterrupted.arrays(i).items():
            np.testing.assert_array_equal(done.arrays(i)[name], values)
    uniform = uniform_nodes(np.array([1.0, 0.5]), (9, 5))
    shift = done.points(-1)[22, 0] - uniform[22, 0]  # an interior node
    assert shift == pytest.approx(0.011)  # moved once per output frame, 11 frames


def test_an_inverted_mesh_falls_back_to_uniform_with_a_warning(scene_file, tmp_path, capsys):
    (tmp_path / "movers.py").write_text(MOVERS)
    scene = SCENE.replace("[output]", '[plugins]\nload = ["movers.py"]\n\n[output]')
    scene = scene.replace('name = "fields"', 'name = "fields"\nmover = "inverting"')
    assert main(["run", str(scene_file(scene)), "-q", "--set", "simulation.end_time=0.02"]) == 0
    assert "mover 'inverting' gave a mesh that cannot be used (2 of 32 cells are inverted" in (
        capsys.readouterr().err
    )
    mesh = engine.io.open(tmp_path / "out" / "run_mesh_fields.vtkhdf")
    np.testing.assert_array_equal(mesh.diagnostics()["fallback"], [1, 1, 1])
    np.testing.assert_allclose(mesh.points(-1), uniform_nodes(np.array([1.0, 0.5]), (9, 5)))
