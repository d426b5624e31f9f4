"""engine.io: reading particle .vtkhdf results back, including torn files."""

from pathlib import Path

import h5py
import numpy as np
import pytest

import engine.io
from engine.output.vtkhdf import ParticleWriter

SCENE = "[simulation]\ndim = 2\nend_time = 1.0\n"
METADATA = {"engine_version": "0.1.0", "taichi_version": "1.7.4"}
COUNTS = (4, 6, 2)
TIMES = (0.0, 0.1, 0.2)


def write_run(path: Path, dim: int) -> list[dict]:
    """Write len(COUNTS) frames with scalar, int, vector and tensor fields; return them."""
    rng = np.random.default_rng(10 + dim)
    writer = ParticleWriter(path, dim, SCENE, METADATA)
    frames = []
    for step, (n, time) in enumerate(zip(COUNTS, TIMES, strict=True)):
        frame = {
            "points": rng.random((n, dim)),
            "arrays": {
                "mass": rng.random(n),
                "id": np.arange(n, dtype=np.int32) + 10 * step,
                "velocity": rng.random((n, dim)).astype(np.float32),
                "F": rng.random((n, dim, dim)),
            },
            "diagnostics": {"energy": 2.0 * step, "momentum": np.arange(dim) + step},
        }
        writer.write_frame(time, frame["points"], frame["arrays"], frame["diagnostics"])
        frames.append(frame)
    return frames


def assert_frame_equal(result: engine.io.Result, i: int, frame: dict) -> None:
    np.testing.assert_array_equal(result.points(i), frame["points"])
    arrays = result.arrays(i)
    assert list(arrays) == list(frame["arrays"])
    for name, expected in frame["arrays"].items():
        assert arrays[name].dtype == expected.dtype
        np.testing.assert_array_equal(arrays[name], expected)


@pytest.mark.parametrize("dim", [2, 3])
def test_round_trip(tmp_path: Path, dim: int) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, dim)
    result = engine.io.open(path)
    assert result.path == path
    assert (result.dim, result.n_frames, len(result)) == (dim, 3, 3)
    np.testing.assert_array_equal(result.times, TIMES)
    assert result.fields == ["mass", "id", "velocity", "F"]
    assert result.scene_text == SCENE
    assert result.metadata == METADATA
    for i, frame in enumerate(frames):
        assert_frame_equal(result, i, frame)
    diagnostics = result.diagnostics()
    np.testing.assert_array_equal(diagnostics["energy"], [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(
        diagnostics["momentum"], [np.arange(dim) + step for step in range(3)]
    )


def test_negative_index_and_iteration(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 2)
    result = engine.io.open(path)
    assert_frame_equal(result, -1, frames[-1])
    iterated = list(result)
    assert [frame.index for frame in iterated] == [0, 1, 2]
    assert [frame.time for frame in iterated] == list(TIMES)
    np.testing.assert_array_equal(iterated[1].points, frames[1]["points"])
    np.testing.assert_array_equal(iterated[1].arrays["F"], frames[1]["arrays"]["F"])


def test_context_manager_keeps_file_open(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 3)
    with engine.io.open(path) as result:
        assert result._file is not None
        for frame, expected in zip(result, frames, strict=True):
            np.testing.assert_array_equal(frame.points, expected["points"])
    assert result._file is None
    assert_frame_equal(result, 0, frames[0])


def test_frame_as_pyvista(tmp_path: Path) -> None:
    pytest.importorskip("pyvista")
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 2)
    mesh = engine.io.open(path).frame(1)
    assert mesh.n_points == mesh.n_verts == COUNTS[1]
    np.testing.assert_array_equal(mesh.points[:, :2], frames[1]["points"])
    assert mesh.point_data["F"].shape == (COUNTS[1], 9)
    assert mesh.point_data["velocity"].shape == (COUNTS[1], 3)


def test_particle_file_kind_and_no_faces(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    write_run(path, 2)
    result = engine.io.open(path)
    assert result.kind == "particles"
    assert result[0].faces is None
    with pytest.raises(ValueError, match="not a surface"):
        result.faces(0)


def test_file_without_kind_reads_as_particles(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 2)
    with h5py.File(path, "a") as f:
        del f["engine"].attrs["kind"]  # written before kind was recorded
    result = engine.io.open(path)
    assert result.kind == "particles"
    assert_frame_equal(result, 1, frames[1])


def test_index_out_of_range_names_file(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    write_run(path, 2)
    result = engine.io.open(path)
    for bad in (3, -4):
        with pytest.raises(IndexError, match=r"run\.vtkhdf.*3 frames"):
            result.points(bad)


def tear_frame(path: Path, n: int) -> None:
    """Mimic a process killed mid-frame: bulk data appended, Steps not updated."""
    with h5py.File(path, "a") as f:
        root = f["VTKHDF"]
        for dataset in (root["Points"], *root["PointData"].values()):
            dataset.resize(dataset.shape[0] + n, axis=0)
        root["NumberOfPoints"].resize(len(COUNTS) + 1, axis=0)
        root["NumberOfPoints"][-1] = n


def test_torn_frame_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    frames = write_run(path, 2)
    tear_frame(path, 7)
    result = engine.io.open(path)
    assert result.n_frames == len(COUNTS)
    for i, frame in enumerate(frames):
        assert_frame_equal(result, i, frame)
    assert len(result.diagnostics()["energy"]) == len(COUNTS)


def test_vtk_ignores_torn_frame(tmp_path: Path) -> None:
    vtk = pytest.importorskip("vtk")
    path = tmp_path / "run.vtkhdf"
    write_run(path, 3)
    tear_frame(path, 7)
    reader = vtk.vtkHDFReader()
    reader.SetFileName(str(path))
    reader.UpdateInformation()
    assert reader.GetNumberOfSteps() == len(COUNTS)
    reader.SetStep(len(COUNTS) - 1)
    reader.Update()
    assert reader.GetOutput().GetNumberOfPoints() == COUNTS[-1]


def test_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    ParticleWriter(path, 3, SCENE, METADATA)
    result = engine.io.open(path)
    assert (len(result), result.fields, result.diagnostics()) == (0, [], {})
    assert result.times.shape == (0,)
    with pytest.raises(IndexError):
        result.points(0)


def test_file_readable_between_frames(tmp_path: Path) -> None:
    path = tmp_path / "run.vtkhdf"
    writer = ParticleWriter(path, 2, SCENE, {})
    for step in range(2):
        writer.write_frame(float(step), np.full((3, 2), step), {"id": np.arange(3)}, {})
        result = engine.io.open(path)
        assert len(result) == step + 1
        np.testing.assert_array_equal(result.points(-1), np.full((3, 2), step))
