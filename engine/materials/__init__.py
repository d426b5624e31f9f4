"""Constitutive models: the material contract and the built-in models."""

from engine.materials.base import Material, MaterialParams
from engine.materials.elastic import FixedCorotated, NeoHookean
from engine.materials.fluid import Fluid
from engine.materials.sand import Sand
from engine.materials.snow import Snow
from engine.materials.von_mises import VonMises

BUILTIN_MATERIALS = [FixedCorotated, NeoHookean, Snow, Sand, VonMises, Fluid]

__all__ = ["BUILTIN_MATERIALS", "Material", "MaterialParams"]
