"""SurfaceWriter: moving triangle surfaces as transient VTKHDF, read by engine.io and VTK."""

from pathlib import Path

import h5py
import numpy as np
import pytest

import engine.io
from engine.output.vtkhdf import SurfaceWriter, pad_components

pv = pytest.importorskip("pyvista")
vtk = pytest.importorskip("vtk")
trimesh = pytest.importorskip("trimesh")

SCENE = "[scene]\n"
METADATA = {"engine_version": "0.1.0"}
TIMES = (0.0, 0.5)
TETRA_VERTICES = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
TETRA_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def icosphere() -> tuple[np.ndarray, np.ndarray]:
    mesh = trimesh.creation.icosphere(subdivisions=1)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def point_data(vertices: np.ndarray, step: int) -> dict[str, np.ndarray]:
    """Scalar, integer and vector per-vertex arrays."""
    n = len(vertices)
    return {
        "pressure": np.linalg.norm(vertices, axis=1) + step,
        "id": np.arange(n, dtype=np.int64) + 1000 * step,
        "velocity": np.tile([0.0, 0.0, 1.0 + step], (n, 1)),
    }


def write_moving(path: Path, meshes: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Write one frame per (vertices, faces), frame k shifted by k * (0.1, 0.2, 0.3)."""
    writer = SurfaceWriter(path, 3, SCENE, METADATA)
    frames = []
    for step, (vertices, faces) in enumerate(meshes):
        moved = vertices + step * np.array([0.1, 0.2, 0.3])
        data = point_data(moved, step)
        writer.write_frame(float(step) / 2, moved, faces, data, {"area": float(step)})
        frames.append({"vertices": moved, "faces": faces, "arrays": data})
    assert writer.n_frames == len(meshes)
    return frames


def vtk_step(path: Path, step: int):
    reader = pv.get_reader(path).reader
    reader.UpdateInformation()
    reader.SetStep(step)
    reader.Update()
    return reader.GetOutput()


def assert_vtk_frame(output, frame: dict) -> None:
    n_faces = len(frame["faces"])
    assert output.GetNumberOfPoints() == len(frame["vertices"])
    assert output.GetNumberOfPolys() == n_faces
    assert output.GetNumberOfCells() == n_faces
    assert output.GetNumberOfVerts() == 0
    mesh = pv.wrap(output)
    np.testing.assert_array_equal(mesh.points, frame["vertices"])
    np.testing.assert_array_equal(mesh.regular_faces, frame["faces"])
    np.testing.assert_array_equal(mesh.point_data["pressure"], frame["arrays"]["pressure"])
    np.testing.assert_array_equal(mesh.point_data["id"], frame["arrays"]["id"])


def assert_io_frame(result: engine.io.Result, i: int, frame: dict) -> None:
    np.testing.assert_array_equal(result.points(i), frame["vertices"])
    faces = result.faces(i)
    assert faces.dtype == np.int64
    np.testing.assert_array_equal(faces, frame["faces"])
    arrays = result.arrays(i)
    assert list(arrays) == list(frame["arrays"])
    for name, expected in frame["arrays"].items():
        np.testing.assert_array_equal(arrays[name], expected)


def test_round_trip_engine_io(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    frames = write_moving(path, [icosphere()] * 2)
    result = engine.io.open(path)
    assert (result.kind, result.dim, len(result)) == ("surface", 3, 2)
    np.testing.assert_array_equal(result.times, TIMES)
    assert result.fields == ["pressure", "id", "velocity"]
    assert (result.scene_text, result.metadata) == (SCENE, METADATA)
    for i, frame in enumerate(frames):
        assert_io_frame(result, i, frame)
    assert not np.allclose(result.points(0), result.points(1))  # it moved
    np.testing.assert_array_equal(result.diagnostics()["area"], [0.0, 1.0])
    with result:
        iterated = list(result)
    np.testing.assert_array_equal(iterated[1].faces, frames[1]["faces"])
    np.testing.assert_array_equal(iterated[-1].points, frames[-1]["vertices"])


def test_layout(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    vertices, faces = icosphere()
    write_moving(path, [(vertices, faces)] * 2)
    n_v, n_f = len(vertices), len(faces)
    with h5py.File(path, "r") as f:
        assert f["engine"].attrs["kind"] == "surface"
        root = f["VTKHDF"]
        assert root["Steps"].attrs["NSteps"] == 2
        assert root["Points"].shape == (2 * n_v, 3)
        polygons = root["Polygons"]
        assert polygons["NumberOfCells"][:].tolist() == [n_f, n_f]
        assert polygons["NumberOfConnectivityIds"][:].tolist() == [3 * n_f, 3 * n_f]
        offsets = np.arange(0, 3 * n_f + 1, 3)
        np.testing.assert_array_equal(polygons["Offsets"][:], np.tile(offsets, 2))
        np.testing.assert_array_equal(polygons["Connectivity"][:], np.tile(faces.ravel(), 2))
        for topology in ("Vertices", "Lines", "Strips"):
            assert root[topology]["NumberOfCells"][:].tolist() == [0, 0]
            assert root[topology]["Connectivity"].shape == (0,)
        assert root["Steps/CellOffsets"][:].tolist() == [[0, 0, 0, 0], [0, 0, n_f, 0]]
        ids = root["Steps/ConnectivityIdOffsets"][:].tolist()
        assert ids == [[0, 0, 0, 0], [0, 0, 3 * n_f, 0]]


def test_vtk_reads_every_step(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    frames = write_moving(path, [icosphere()] * 2)
    reader = pv.get_reader(path).reader
    reader.UpdateInformation()
    assert reader.GetNumberOfSteps() == 2
    times = reader.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    assert list(times) == list(TIMES)
    for step, frame in enumerate(frames):
        reader.SetStep(step)
        reader.Update()
        assert_vtk_frame(reader.GetOutput(), frame)


def test_vertex_and_face_counts_may_change(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    tetra = (TETRA_VERTICES, TETRA_FACES)
    frames = write_moving(path, [tetra, icosphere(), tetra])
    result = engine.io.open(path)
    reader = pv.get_reader(path).reader
    reader.UpdateInformation()
    for i in (0, 1, 2, 1, 0):  # one reader, stepping back and forth
        assert_io_frame(result, i, frames[i])
        reader.SetStep(i)
        reader.Update()
        assert_vtk_frame(reader.GetOutput(), frames[i])


def test_pyvista_read_gives_first_step(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    frames = write_moving(path, [icosphere()] * 2)
    mesh = pv.read(path)
    assert mesh.n_points == len(frames[0]["vertices"])
    assert mesh.n_cells == len(frames[0]["faces"])
    np.testing.assert_array_equal(mesh.regular_faces, frames[0]["faces"])
    np.testing.assert_array_equal(mesh.point_data["pressure"], frames[0]["arrays"]["pressure"])


def test_frame_as_pyvista(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    frames = write_moving(path, [icosphere()] * 2)
    mesh = engine.io.open(path).frame(1)
    assert mesh.is_all_triangles
    assert mesh.n_cells == len(frames[1]["faces"])
    assert mesh.n_verts == 0
    np.testing.assert_array_equal(mesh.points, frames[1]["vertices"])
    np.testing.assert_array_equal(mesh.regular_faces, frames[1]["faces"])
    assert mesh.point_data["velocity"].shape == (len(frames[1]["vertices"]), 3)


def test_2d_surface_pads_z(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    vertices = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
    writer = SurfaceWriter(path, 2, SCENE, {})
    writer.write_frame(0.0, vertices, faces, {"v": vertices})
    result = engine.io.open(path)
    np.testing.assert_array_equal(result.points(0), vertices)
    np.testing.assert_array_equal(result.faces(0), faces)
    np.testing.assert_array_equal(result.arrays(0)["v"], vertices)
    output = vtk_step(path, 0)
    assert output.GetNumberOfPolys() == 2
    np.testing.assert_array_equal(pv.wrap(output).point_data["v"], pad_components(vertices, 2))


def tear_frame(path: Path, n_points: int, n_faces: int) -> None:
    """Mimic a process killed mid-frame: points, data and polygons appended, Steps not."""
    with h5py.File(path, "a") as f:
        root = f["VTKHDF"]
        for dataset in (root["Points"], *root["PointData"].values()):
            dataset.resize(dataset.shape[0] + n_points, axis=0)
        polygons = root["Polygons"]
        for name, rows in (("Offsets", n_faces + 1), ("Connectivity", 3 * n_faces)):
            polygons[name].resize(polygons[name].shape[0] + rows, axis=0)
        for dataset in (root["NumberOfPoints"], polygons["NumberOfCells"]):
            dataset.resize(dataset.shape[0] + 1, axis=0)
            dataset[-1] = n_points if dataset.name.endswith("Points") else n_faces


def test_torn_frame_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "surface.vtkhdf"
    frames = write_moving(path, [icosphere()] * 2)
    tear_frame(path, 7, 5)
    result = engine.io.open(path)
    assert len(result) == 2
    for i, frame in enumerate(frames):
        assert_io_frame(result, i, frame)
    reader = pv.get_reader(path).reader
    reader.UpdateInformation()
    assert reader.GetNumberOfSteps() == 2
    assert_vtk_frame(vtk_step(path, 1), frames[1])


@pytest.mark.parametrize(
    "faces",
    [
        np.array([[0, 1, 2, 3]]),
        np.array([[0.0, 1.0, 2.0]]),
        np.array([[0, 1, 4]]),
        np.array([[-1, 1, 2]]),
    ],
    ids=["quads", "float", "past-end", "negative"],
)
def test_bad_faces_rejected_before_writing(tmp_path: Path, faces: np.ndarray) -> None:
    path = tmp_path / "surface.vtkhdf"
    writer = SurfaceWriter(path, 3, SCENE, {})
    with pytest.raises(ValueError, match="face"):
        writer.write_frame(0.0, TETRA_VERTICES, faces, {})
    assert writer.n_frames == 0
    with h5py.File(path, "r") as f:
        assert "Points" not in f["VTKHDF"]
        assert f["VTKHDF/Steps"].attrs["NSteps"] == 0


def test_point_data_must_stay_the_same(tmp_path: Path) -> None:
    writer = SurfaceWriter(tmp_path / "surface.vtkhdf", 3, SCENE, {})
    writer.write_frame(0.0, TETRA_VERTICES, TETRA_FACES, {"p": np.zeros(4)})
    with pytest.raises(ValueError, match="changed between frames"):
        writer.write_frame(1.0, TETRA_VERTICES, TETRA_FACES, {"q": np.zeros(4)})
    with pytest.raises(ValueError, match="vertices must be"):
        writer.write_frame(1.0, TETRA_VERTICES[:, :2], TETRA_FACES, {"p": np.zeros(4)})
    assert writer.n_frames == 1


def test_kind_is_reserved_metadata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        SurfaceWriter(tmp_path / "surface.vtkhdf", 3, SCENE, {"kind": "particles"})
