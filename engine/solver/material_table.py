"""The scene's materials as the constitutive stage sees them: Taichi constants and torch laws."""

from __future__ import annotations

import math

import numpy as np

from engine.hooks.calls import PluginError
from engine.materials.base import MAX_CONSTANTS, MAX_STATE, Material
from engine.materials.torch_base import TorchMaterial


class MaterialTable:
    """Per scene material (in scene order): its class, packed constants and dispatch index.

    Taichi materials dispatch at compile time by ``model_index`` (position in
    :attr:`taichi_models`); torch materials get index -1 and a law instance in :attr:`torch_laws`.
    """

    def __init__(self, scene, registry, base_dir, dx: float) -> None:
        self.names = list(scene.materials)
        self.params = list(scene.materials.values())
        self.classes = [registry.materials[p.model] for p in self.params]
        self.providers = [registry.provider[("materials", p.model)] for p in self.params]
        taichi = {cls for cls in self.classes if issubclass(cls, Material)}
        self.taichi_models = tuple(sorted(taichi, key=lambda cls: cls.name))
        self.model_index = np.array(
            [self.taichi_models.index(c) if c in taichi else -1 for c in self.classes], np.int32
        )
        self.constants = np.zeros((len(self.classes), MAX_CONSTANTS))
        for row, (cls, params) in enumerate(zip(self.classes, self.params, strict=True)):
            if issubclass(cls, Material):
                packed = cls.pack(params)
                self.constants[row, : len(packed)] = packed
        self.wave_speed = max(
            c.wave_speed(p) for c, p in zip(self.classes, self.params, strict=True)
        )
        self.critical_dt = min(
            [
                c.critical_dt(p, dx, scene.simulation.dim)
                for c, p in zip(self.classes, self.params, strict=True)
            ]
            + [math.inf]
        )
        self.base_dir = base_dir
        self.torch_laws: list[tuple[int, TorchMaterial]] = []

    @property
    def uses_torch(self) -> bool:
        return any(issubclass(cls, TorchMaterial) for cls in self.classes)

    def build_torch_laws(self, device, dtype) -> None:
        """Instantiate each torch material's law (loads weights) on ``device``."""
        for row, (cls, params) in enumerate(zip(self.classes, self.params, strict=True)):
            if issubclass(cls, TorchMaterial):
                try:
                    law = cls(params, self.base_dir, device, dtype)
                except Exception as error:
                    raise PluginError(
                        self.providers[row], f"{cls.__name__}()", str(error)
                    ) from error
                self.torch_laws.append((row, law))

    def initial_state(self, material_id: np.ndarray) -> np.ndarray:
        """Plastic state ``(N, MAX_STATE)`` at seeding, from each material's declared defaults."""
        table = np.zeros((len(self.classes), MAX_STATE))
        for row, cls in enumerate(self.classes):
            for column, (_, initial) in enumerate(cls.state_vars):
                table[row, column] = initial
        return table[material_id]
