"""Recording contact data (`output.contact_data`): one record per step or per frame of what the
contact stage saw and did at the interface nodes, in `<output>_contact.h5`; runs that do not ask
pay nothing. Physics check on the records: after the built-in multi-field response no body
approaches the other at a shared node (Bardenhagen et al. 2000: the contact condition)."""

import h5py
import numpy as np
import pytest
from two_disks import two_disks

from engine.output.contact_data import FIELDS, contact_data_path
from engine.runner import run_scene
from engine.scene.errors import SceneError
from engine.scene.loader import load_scene
from engine.solver.simulation import Simulation

IMPACT = """
[simulation]
dim = 2
domain = [1.0, 0.5]
resolution = 40
end_time = 0.1
frame_dt = 0.025
dt = 5e-4
gravity = [0.0, -9.81]
boundary = "slip"
body_contact = {body_contact}

[output]
path = "impact.vtkhdf"
contact_data = "{mode}"

{disks}"""


def impact(scene_file, mode: str, body_contact: str = "true"):
    disks = two_disks((0.35, 0.1), (0.6, 0.16))
    return load_scene(scene_file(IMPACT.format(mode=mode, body_contact=body_contact, disks=disks)))


def records(path):
    with h5py.File(contact_data_path(path), "r") as file:
        steps = file["steps"]
        out = [
            {**{name: steps[k][name][()] for name in FIELDS}, **dict(steps[k].attrs)}
            for k in sorted(steps)
        ]
        return out, dict(file.attrs)


def test_every_step_is_recorded_with_the_documented_fields(scene_file):
    loaded = impact(scene_file, "step")
    summary = run_scene(loaded, quiet=True)
    found, attrs = records(summary.output)
    assert attrs["mode"] == "step" and attrs["bodies"] == 2 and attrs["dim"] == 2
    assert len(found) == summary.steps == 200
    assert [r["step"] for r in found] == list(range(1, 201))
    assert np.allclose([r["time"] for r in found], 5e-4 * np.arange(1, 201))
    last = found[-1]
    m = len(last["node_index"])
    assert m > 0 and np.all(np.diff(last["node_index"]) > 0)
    assert last["velocity_before"].shape == last["velocity_after"].shape == (m, 2, 2)
    assert last["collider_distance"].shape == (m,) and not last["correction"].any()
    assert len(last["particle_index"]) == len(last["particle_x"]) > 0
    # the contact condition at shared nodes, over every record with contact
    shared_nodes = 0
    for record in found:
        mass, after, normal = record["node_mass"], record["velocity_after"], record["body_normal"]
        shared = record["body_in_contact"].all(axis=1) & (record["collider_distance"] > 0)
        centre = (mass[..., None] * after).sum(1) / mass.sum(1)[:, None]
        approach = ((after - centre[:, None]) * normal).sum(-1)[shared]
        assert approach.size == 0 or approach.min() > -1e-4
        shared_nodes += int(shared.sum())
    assert shared_nodes > 20  # the disks did meet
    # and the response did something there: approach before, none after
    before = max(
        -((r["velocity_before"][:, 0] - r["velocity_before"][:, 1]) * r["body_normal"][:, 0])
        .sum(-1)
        .min(initial=0.0)
        for r in found
    )
    assert before > 0.1  # m/s of approach removed at some node


def test_frame_mode_records_each_frame_and_its_time(scene_file):
    summary = run_scene(impact(scene_file, "frame"), quiet=True)
    found, attrs = records(summary.output)
    assert attrs["mode"] == "frame"
    assert np.allclose([r["time"] for r in found], [0.025, 0.05, 0.075, 0.1])


def test_runs_that_do_not_ask_pay_nothing(scene_file):
    loaded = impact(scene_file, "none")
    sim = Simulation(loaded)
    assert sim.contact_stage is None and sim.store.backend == "taichi"
    summary = run_scene(loaded, quiet=True)
    assert not contact_data_path(summary.output).exists()


def test_contact_data_need_body_contact(scene_file):
    with pytest.raises(SceneError, match="set simulation.body_contact = true"):
        impact(scene_file, "frame", body_contact="false")
