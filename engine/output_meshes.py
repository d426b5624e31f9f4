"""A run's output meshes (``[[output.meshes]]``), once per output frame, never per step.

For each mesh: the monitor field is sampled from the particles on a uniform lattice (at least
the mesh's nodes and the simulation grid's per axis) and turned into the monitor
(:func:`engine.output.monitor.build_monitor`); the mover places the nodes; the engine checks
the mesh (finite nodes inside the domain, boundary nodes on their faces, no inverted cell) and,
where it fails, warns and writes the uniform mesh for that frame; the listed fields are sampled
at the nodes (:func:`engine.solver.sampled_fields.sample_fields`) and the frame is appended to
``<output>_mesh_<name>.vtkhdf`` (:class:`engine.output.vtkhdf.MeshWriter`) with the monitor at
the nodes and, per frame, the mover's wall time, whether it fell back, and the equidistribution
spread.
"""

from __future__ import annotations

import json
import time as clock
import warnings
from pathlib import Path

import numpy as np

from engine.hooks.calls import PluginError, describe
from engine.hooks.records import OutputMeshSpec
from engine.output.lattice import lattice_cells, mesh_problem, uniform_nodes
from engine.output.mesh_quality import equidistribution_spread
from engine.output.monitor import build_monitor, monitor_shape
from engine.output.vtkhdf import MeshWriter, mesh_path
from engine.scene.loaded import LoadedScene
from engine.solver.sampled_fields import sample_fields
from engine.solver.simulation import Simulation


class OutputMesh:
    """One ``[[output.meshes]]`` table of a run: its mover and its file.

    With ``resume_after`` frames, the file is reopened and continued after them.
    """

    def __init__(
        self,
        params,
        loaded: LoadedScene,
        sim: Simulation,
        output: Path,
        metadata: dict[str, str],
        resume_after: int = 0,
    ) -> None:
        self.params = params
        self.nodes = tuple(params.nodes)
        self.domain = np.asarray(loaded.scene.simulation.domain, float)
        self.xi = uniform_nodes(self.domain, self.nodes)
        self.cells = lattice_cells(self.nodes)
        self.monitor_shape = monitor_shape(self.nodes, tuple(sim.grid.cells))
        self.monitor_points = uniform_nodes(self.domain, self.monitor_shape)
        weights = loaded.resolve(params.weights) if params.weights else None
        spec = OutputMeshSpec(params, self.nodes, self.domain, self.xi, weights, sim.device)
        self.plugin = loaded.registry.provider[("output_mesh_movers", params.mover)]
        create = loaded.registry.output_mesh_movers[params.mover].create
        self.mover = self._call("create", create, spec)
        path = mesh_path(output, params.name)
        if resume_after:
            self.writer = MeshWriter.resume(path, resume_after)
        else:
            described = {"mesh": params.name, "nodes": json.dumps(list(self.nodes))}
            described["mover"] = params.mover
            self.writer = MeshWriter(path, len(self.nodes), loaded.text, metadata | described)

    def _call(self, what: str, function, *args):
        """Call the mover's ``what``; an exception names the plugin and the mover."""
        try:
            return function(*args)
        except PluginError:
            raise
        except Exception as error:
            where = f"output mesh mover {self.params.mover!r}.{what}"
            raise PluginError(self.plugin, where, describe(error)) from error

    def write(self, sim: Simulation) -> None:
        """Move the nodes for the current state and append the frame."""
        params = self.params
        field = sample_fields(sim, self.monitor_points, [params.monitor])[params.monitor]
        monitor = build_monitor(field.reshape(*self.monitor_shape, -1), self.domain, params.alpha)
        started = clock.perf_counter()
        points = np.asarray(self._call("move", self.mover.move, monitor), float)
        seconds = clock.perf_counter() - started
        if points.shape != self.xi.shape:
            raise PluginError(
                self.plugin,
                f"output mesh mover {params.mover!r}.move",
                f"returned shape {points.shape}, expected {self.xi.shape}",
            )
        problem = mesh_problem(points, self.nodes, self.domain)
        if problem is not None:
            warnings.warn(
                f"output mesh {params.name!r} at t = {sim.time:.6g} s: mover {params.mover!r} "
                f"gave a mesh that cannot be used ({problem}); the uniform mesh is written "
                "for this frame",
                stacklevel=2,
            )
            points = self.xi
        data = sample_fields(sim, points, params.fields)
        data["monitor"] = monitor.at(points)
        diagnostics = {
            "move_seconds": seconds,
            "fallback": float(problem is not None),
            "equidistribution": equidistribution_spread(points, self.nodes, monitor.at),
        }
        self.writer.write_frame(sim.time, points, self.cells, data, diagnostics)

    def state(self) -> dict[str, np.ndarray]:
        return {key: np.asarray(value) for key, value in self.mover.state().items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self._call("set_state", self.mover.set_state, state)


class OutputMeshes:
    """Every output mesh of a run, by name; see :class:`OutputMesh`."""

    def __init__(
        self,
        loaded: LoadedScene,
        sim: Simulation,
        output: Path,
        metadata: dict[str, str],
        resume_after: int = 0,
    ) -> None:
        self.meshes = {
            params.name: OutputMesh(params, loaded, sim, output, metadata, resume_after)
            for params in loaded.scene.output.meshes
        }

    def write(self, sim: Simulation) -> None:
        for mesh in self.meshes.values():
            mesh.write(sim)

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Each mover's state, by mesh name (for checkpoints)."""
        return {name: mesh.state() for name, mesh in self.meshes.items()}

    def set_state(self, state: dict[str, dict[str, np.ndarray]]) -> None:
        for name, mesh in self.meshes.items():
            mesh.set_state(state.get(name, {}))

    def close(self) -> None:
        for mesh in self.meshes.values():
            mesh.writer.close()
