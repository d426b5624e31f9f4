"""The engine's own materials, shapes, colliders, contact model, writer and particle fields,
registered through the same hooks a third-party plugin implements."""

from __future__ import annotations

import numpy as np

from engine.geometry.shapes import BUILTIN_SHAPES
from engine.hooks import hookimpl
from engine.hooks.records import ParticleField, WriterType
from engine.materials import BUILTIN_MATERIALS
from engine.output.vtkhdf import ParticleWriter
from engine.solver.colliders import BUILTIN_COLLIDERS
from engine.solver.contact import COULOMB


@hookimpl
def engine_register_materials():
    return list(BUILTIN_MATERIALS)


@hookimpl
def engine_register_shapes():
    return list(BUILTIN_SHAPES)


@hookimpl
def engine_register_colliders():
    return list(BUILTIN_COLLIDERS)


@hookimpl
def engine_register_contact_models():
    return [COULOMB]


@hookimpl
def engine_register_writers():
    return [
        WriterType(
            name="vtkhdf",
            suffixes=(".vtkhdf", ".hdf"),
            create=ParticleWriter,
            resume=ParticleWriter.resume,
        )
    ]


@hookimpl
def engine_register_particle_fields():
    return [
        ParticleField(
            name="rest_position",
            components=("d",),
            unit="m",
            description="Where the particle was seeded (displacement = position - rest_position).",
            initial=lambda positions, body_id: np.array(positions, copy=True),
        )
    ]
