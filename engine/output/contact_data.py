"""Contact data for training (``output.contact_data``): per recorded step, what the contact stage
saw at the interface nodes and what it did there, in an HDF5 file beside the result.

Layout of ``out/name_contact.h5``: root attributes ``dim``, ``bodies``, ``dx`` (m), ``mode``
(``"frame"`` or ``"step"``) and ``fields`` (one line per dataset: name, shape, unit); one group
``/steps/<k>`` (k = 000000, 000001, ...) per record, with attributes ``time`` (s, the end of the
step), ``dt`` (s) and ``step``, and the datasets of :data:`FIELDS`. Each record is flushed as
it is written, so a run that stops keeps every record before it; a resumed run drops the
records after its checkpoint and appends again.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Datasets of one record: name -> (shape, unit, meaning). M interface nodes, B bodies,
#: P particles near the interface.
FIELDS = {
    "node_index": ("(M,)", "", "flat index of the interface node in the grid of nodes (*G)"),
    "node_position": ("(M, d)", "m", "the node's position"),
    "node_mass": ("(M, B)", "kg", "each body's mass there"),
    "velocity_before": ("(M, B, d)", "m/s", "each body's velocity before contact"),
    "velocity_after": (
        "(M, B, d)",
        "m/s",
        "after the built-in response, the torch model's "
        "corrections and the hard constraints: what the particles gather",
    ),
    "correction": ("(M, B, d)", "m/s", "the torch contact model's corrections (zero: none)"),
    "body_normal": ("(M, B, d)", "", "unit normal from the other bodies into each body"),
    "body_in_contact": ("(M, B)", "", "1 where the built-in contact acted between bodies"),
    "collider_distance": ("(M,)", "m", "signed distance to the nearest collider (<= 0 inside)"),
    "collider_normal": ("(M, d)", "", "its outward unit normal"),
    "collider_velocity": ("(M, d)", "m/s", "its surface velocity"),
    "collider_friction": ("(M,)", "", "its Coulomb coefficient"),
    "particle_index": ("(P,)", "", "particles whose stencil touches an interface node"),
    "particle_x": ("(P, d)", "m", "their positions after the step"),
    "particle_v": ("(P, d)", "m/s", "their velocities after the step"),
    "particle_body_id": ("(P,)", "", "their bodies"),
}


def contact_data_path(output: Path) -> Path:
    """``out/name.vtkhdf`` -> ``out/name_contact.h5``."""
    return output.with_name(f"{output.stem}_contact.h5")


class ContactRecorder:
    """Appends records (dicts of :data:`FIELDS` arrays plus ``time``, ``dt``, ``step``) to the
    contact-data file of a result; ``resume_time`` (s) reopens it and drops later records."""

    def __init__(
        self,
        path: Path,
        dim: int,
        bodies: int,
        dx: float,
        mode: str,
        resume_time: float | None = None,
    ) -> None:
        self.path = path
        if resume_time is not None and path.exists():
            self.file = h5py.File(path, "a")
            steps = self.file.require_group("steps")
            for name in list(steps):
                if steps[name].attrs["time"] > resume_time * (1 + 1e-12) + 1e-12:
                    del steps[name]
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = h5py.File(path, "w")
            self.file.attrs.update({"dim": dim, "bodies": bodies, "dx": dx, "mode": mode})
            self.file.attrs["fields"] = "\n".join(
                f"{name} {shape} {unit or '-'}: {meaning}"
                for name, (shape, unit, meaning) in FIELDS.items()
            )
            self.file.create_group("steps")
        self.count = len(self.file["steps"])

    def write(self, record: dict) -> None:
        group = self.file["steps"].create_group(f"{self.count:06d}")
        for key in ("time", "dt", "step"):
            group.attrs[key] = record[key]
        for name in FIELDS:
            group.create_dataset(name, data=np.asarray(record[name]))
        self.count += 1
        self.file.flush()

    def close(self) -> None:
        self.file.close()
