"""Constitutive models. Importing this package registers the built-in ones."""

from engine.materials import elastic, fluid, sand, snow, von_mises  # noqa: F401  (registration)
from engine.materials.base import MATERIALS, Material, MaterialParams, register_material

__all__ = ["MATERIALS", "Material", "MaterialParams", "register_material"]
