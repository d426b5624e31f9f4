"""ParticleWriter: VTKHDF layout, VTK/pyvista readability, padding and input validation."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.output.vtkhdf import ParticleWriter, pad_components

pv = pytest.importorskip("pyvista")
vtk = pytest.importorskip("vtk")

COUNTS = (5, 3, 8)
TIMES = (0.0, 0.25, 0.5)


def make_frame(rng: np.random.Generator, n: int, dim: int, step: int) -> tuple:
    """Positions (n, dim), point data (scalar, int, vector, tensor) and diagnostics."""
    positions = rng.random((n, dim))
    point_data = {
        "mass": rng.random(n),
        "material": np.arange(n, dtype=np.int64) + 100 * step,
        "velocity": rng.random((n, dim)),
        "F": rng.random((n, dim, dim)),
    }
    diagnostics = {"kinetic_energy": float(step), "momentum": np.full(dim, step, float)}
    return positions, point_data, diagnostics


def write_run(path: Path, dim: int) -> list[tuple]:
    """Write len(COUNTS) frames and return what was written per frame."""
    rng = np.random.default_rng(dim)
    writer = ParticleWriter(path, dim, "[scene]\n", {"engine_version": "0.1.0"})
    frames = []
    for step, (n, time) in enumerate(zip(COUNTS, TIMES, strict=True)):
        positions, point_data, diagnostics = make_frame(rng, n, dim, step)
        writer.write_frame(time, positions, point_data, diagnostics)
        frames.append((positions, point_data))
    assert writer.n_frames == len(COUNTS)
    return frames


def vtk_reader(path: Path):
    reader = vtk.vtkHDFReader()
    reader.SetFileName(str(path))
    reader.UpdateInformation()
    return reader


def test_pad_components_2d() -> None:
    vectors = np.array([[1.0, 2.0]])
    tensors = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    assert pad_components(vectors, 2).tolist() == [[1.0, 2.0, 0.0]]
    assert pad_components(tensors, 2).tolist() == [[1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]]
    assert pad_components(np.array([7]), 2).tolist() == [7]


def test_pad_components_3d_is_row_major() -> None:
    tensors = np.arange(9.0).reshape(1, 3, 3)
    assert pad_components(tensors, 3).tolist() == [list(range(9))]
    assert pad_components(np.ones((4, 3)), 3).shape == (4, 3)


def test_pad_components_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="not"):
        pad_components(np.ones((4, 3)), 2)


def test_layout_attributes_and_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "run.vtkhdf"
    write_run(path, 2)
    with h5py.File(path, "r") as f:
        root = f["VTKHDF"]
        assert root.attrs["Version"].tolist() == [2, 2]
        assert root.attrs["Type"] == b"PolyData"
        assert root.attrs.get_id("Type").dtype.kind == "S"  # fixed-length, not variable-length
        assert root["Points"].shape == (sum(COUNTS), 3)
        assert root["PointData/material"].dtype == np.int32
        assert root["PointData/F"].shape == (sum(COUNTS), 9)
        assert root["Steps"].attrs["NSteps"] == 3
        assert root["Steps/CellOffsets"].shape == (3, 4)
        for topology in ("Vertices", "Lines", "Polygons", "Strips"):
            assert root[topology]["NumberOfCells"].shape == (3,)
        assert f["engine"].attrs["dim"] == 2
        assert f["engine"].attrs["kind"] == "particles"


@pytest.mark.parametrize("dim", [2, 3])
def test_vtk_reads_every_step(tmp_path: Path, dim: int) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, dim)
    reader = vtk_reader(path)
    assert reader.GetNumberOfSteps() == len(COUNTS)
    info = reader.GetOutputInformation(0)
    times = info.Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    assert list(times) == list(TIMES)
    for step, (positions, point_data) in enumerate(frames):
        reader.SetStep(step)
        reader.Update()
        mesh = pv.wrap(reader.GetOutput())
        assert mesh.n_points == COUNTS[step]
        assert mesh.n_verts == COUNTS[step]
        np.testing.assert_array_equal(mesh.points[:, :dim], positions)
        np.testing.assert_array_equal(mesh.point_data["material"], point_data["material"])
        np.testing.assert_array_equal(mesh.point_data["F"], pad_components(point_data["F"], dim))


def test_vtk_update_time_step(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    write_run(path, 3)
    reader = vtk_reader(path)
    reader.UpdateTimeStep(TIMES[2])
    assert reader.GetOutput().GetNumberOfPoints() == COUNTS[2]


def test_pyvista_read_gives_first_step(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 2)
    mesh = pv.read(path)
    assert mesh.n_points == COUNTS[0]
    np.testing.assert_array_equal(mesh.point_data["mass"], frames[0][1]["mass"])
    assert pv.get_reader(path).reader.GetNumberOfSteps() == len(COUNTS)


@pytest.mark.parametrize(
    "change",
    [
        lambda data: data.pop("mass"),
        lambda data: data.update(extra=np.zeros(4)),
        lambda data: data.update(velocity=np.zeros(4)),
        lambda data: data.update(material=np.zeros(4)),
    ],
    ids=["dropped", "added", "reshaped", "int-to-float"],
)
def test_point_data_must_stay_the_same(tmp_path: Path, change) -> None:
    writer = ParticleWriter(tmp_path / "run.vtkhdf", 2, "", {})
    rng = np.random.default_rng(0)
    positions, point_data, diagnostics = make_frame(rng, 4, 2, 0)
    writer.write_frame(0.0, positions, point_data, diagnostics)
    change(point_data)
    with pytest.raises(ValueError, match="changed between frames"):
        writer.write_frame(1.0, positions, point_data, diagnostics)
    assert writer.n_frames == 1


def test_diagnostics_must_stay_the_same(tmp_path: Path) -> None:
    writer = ParticleWriter(tmp_path / "run.vtkhdf", 2, "", {})
    writer.write_frame(0.0, np.zeros((1, 2)), {}, {"energy": 1.0})
    with pytest.raises(ValueError, match="diagnostics changed"):
        writer.write_frame(1.0, np.zeros((1, 2)), {}, {"energy": np.ones(2)})


@pytest.mark.parametrize(
    ("positions", "point_data"),
    [
        (np.zeros((4, 3)), {}),
        (np.zeros((4, 2)), {"mass": np.zeros(5)}),
        (np.zeros((4, 2)), {"bad/name": np.zeros(4)}),
        (np.zeros((4, 2)), {"ids": np.full(4, 2**40)}),
    ],
    ids=["positions-dim", "length", "name", "int32-overflow"],
)
def test_bad_input_rejected_before_writing(tmp_path: Path, positions, point_data) -> None:
    writer = ParticleWriter(tmp_path / "run.vtkhdf", 2, "", {})
    with pytest.raises(ValueError):
        writer.write_frame(0.0, positions, point_data, {})
    with h5py.File(tmp_path / "run.vtkhdf", "r") as f:
        assert "Points" not in f["VTKHDF"]
        assert f["VTKHDF/Steps"].attrs["NSteps"] == 0


def test_reserved_metadata_and_dim(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        ParticleWriter(tmp_path / "a.vtkhdf", 2, "", {"dim": "2"})
    with pytest.raises(ValueError, match="dim"):
        ParticleWriter(tmp_path / "b.vtkhdf", 4, "", {})


def test_a_run_killed_while_creating_its_file_leaves_the_old_result_whole(
    tmp_path: Path, monkeypatch
) -> None:
    """The new file is made aside and swapped in with one rename; a kill before the rename
    (simulated by a failing rename) leaves the previous result file as it was."""
    path = tmp_path / "run.vtkhdf"
    write_run(path, 2)
    before = path.read_bytes()

    def killed(*args) -> None:
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr("engine.output.vtkhdf.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ParticleWriter(path, 2, "[scene]\n", {})
    assert path.read_bytes() == before
    with h5py.File(path, "r") as f:
        assert f["VTKHDF/Steps"].attrs["NSteps"] == len(COUNTS)
