"""Full-state checkpoints: capture, restore, and crash-safe files beside the result.

A checkpoint holds everything a run needs to continue exactly: particle arrays (positions,
velocities, affine matrices C, deformation gradients F, plastic state, masses, volumes, ids),
plugin particle fields, mesh-mover vertices, the output meshes' movers' state, and time, step
count, last dt and the fastest speed (which the next automatic dt depends on). Seeding is the
only random step, so the seed is all the RNG state there is. The file is written to a
temporary name and renamed over the previous one, so a crash leaves either the old or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

#: Particle arrays saved (a plugin's particle fields are saved too, under fields/<name>).
PARTICLE_ARRAYS = ("x", "v", "C", "F", "state", "mass", "volume", "material_id", "body_id")
SCALARS = ("time", "step_count", "dt", "max_speed")


@dataclass
class Checkpoint:
    """The state of a simulation after ``frame`` output frames."""

    frame: int
    scalars: dict[str, float]
    arrays: dict[str, np.ndarray]
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    movers: list[np.ndarray] = field(default_factory=list)
    meshes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # by mesh name


def capture(sim, frame: int) -> Checkpoint:
    """Copy a simulation's full state (NumPy copies)."""
    return Checkpoint(
        frame=frame,
        scalars={name: getattr(sim, name) for name in SCALARS},
        arrays={name: sim.numpy(name) for name in PARTICLE_ARRAYS},
        fields={name: sim.numpy(name) for name in sim.fields},
        movers=[mover.vertices() for mover in sim.movers],
    )


def restore(sim, checkpoint: Checkpoint) -> None:
    """Put a captured state back into a simulation built from the same scene."""
    for name, values in checkpoint.arrays.items():
        sim.store.assign(getattr(sim, name), values)
    for name, values in checkpoint.fields.items():
        sim.store.assign(sim.fields[name], values)
    for mover, vertices in zip(sim.movers, checkpoint.movers, strict=True):
        mover.set_vertices(vertices)
    sim.time = float(checkpoint.scalars["time"])
    sim.step_count = int(checkpoint.scalars["step_count"])
    sim.dt = float(checkpoint.scalars["dt"])
    sim.max_speed = float(checkpoint.scalars["max_speed"])
    sim.particles_changed()


def checkpoint_path(output: Path) -> Path:
    """``out/name.vtkhdf`` -> ``out/name_checkpoint.h5``."""
    return output.with_name(f"{output.stem}_checkpoint.h5")


def write_checkpoint(path: Path, checkpoint: Checkpoint, scene_text: str) -> None:
    """Write atomically: to ``path.tmp``, then rename over ``path``."""
    partial = path.with_name(path.name + ".tmp")
    with h5py.File(partial, "w") as f:
        f.attrs["frame"] = checkpoint.frame
        f.attrs.update({name: value for name, value in checkpoint.scalars.items()})
        f.create_dataset("scene", data=scene_text, dtype=h5py.string_dtype())
        for group, arrays in (("arrays", checkpoint.arrays), ("fields", checkpoint.fields)):
            target = f.create_group(group)
            for name, values in arrays.items():
                target.create_dataset(name, data=values)
        movers = f.create_group("movers")
        for index, vertices in enumerate(checkpoint.movers):
            movers.create_dataset(str(index), data=vertices)
        meshes = f.create_group("meshes")
        for name, state in checkpoint.meshes.items():
            group = meshes.create_group(name)
            for key, values in state.items():
                group.create_dataset(key, data=values)
    os.replace(partial, path)


def read_checkpoint(path: Path) -> tuple[Checkpoint, str]:
    """The checkpoint in ``path`` and the scene text it was made with."""
    with h5py.File(path, "r") as f:
        movers = f["movers"]
        checkpoint = Checkpoint(
            frame=int(f.attrs["frame"]),
            scalars={name: f.attrs[name].item() for name in SCALARS},
            arrays={name: f["arrays"][name][()] for name in f["arrays"]},
            fields={name: f["fields"][name][()] for name in f["fields"]},
            movers=[movers[str(index)][()] for index in range(len(movers))],
            meshes={
                name: {key: group[key][()] for key in group}
                for name, group in f.get("meshes", {}).items()
            },
        )
        return checkpoint, f["scene"].asstr()[()]
