"""Everything the plugins registered, by kind and name, collected once per loaded scene."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pluggy

from engine.hooks.calls import PluginError, call_each
from engine.hooks.records import OutputMeshMoverType

#: (attribute, hook) pairs, in the order ``engine plugins`` lists them.
KINDS = (
    ("materials", "engine_register_materials"),
    ("shapes", "engine_register_shapes"),
    ("colliders", "engine_register_colliders"),
    ("contact_models", "engine_register_contact_models"),
    ("mesh_movers", "engine_register_mesh_movers"),
    ("writers", "engine_register_writers"),
    ("particle_fields", "engine_register_particle_fields"),
)
#: Records one hook returns that belong to another table: (hook's kind, record type) -> kind.
ROUTES = {("mesh_movers", OutputMeshMoverType): "output_mesh_movers"}


def _material_problem(cls) -> str | None:
    """Why a registered material class cannot be used, or None."""
    from engine.materials.base import MAX_STATE, ConstitutiveModel

    if not (isinstance(cls, type) and issubclass(cls, ConstitutiveModel)):
        return "is not a Material or TorchMaterial subclass"
    if len(cls.state_vars) > MAX_STATE:
        return f"declares {len(cls.state_vars)} state variables (at most {MAX_STATE})"
    return None


@dataclass
class Registry:
    """Registered items by kind, each a ``{name: item}`` dict, and which plugin gave each."""

    manager: pluggy.PluginManager
    materials: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, Any] = field(default_factory=dict)
    colliders: dict[str, Any] = field(default_factory=dict)
    contact_models: dict[str, Any] = field(default_factory=dict)
    mesh_movers: dict[str, Any] = field(default_factory=dict)
    output_mesh_movers: dict[str, Any] = field(default_factory=dict)
    writers: dict[str, Any] = field(default_factory=dict)
    particle_fields: dict[str, Any] = field(default_factory=dict)
    provider: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def collect(cls, manager: pluggy.PluginManager) -> Registry:
        """Call every registration hook once; duplicate names are an error naming both plugins."""
        registry = cls(manager)
        for hook_kind, hook in KINDS:
            for plugin, items in call_each(manager, hook):
                for item in items:
                    kind = ROUTES.get((hook_kind, type(item)), hook_kind)
                    table = getattr(registry, kind)
                    name = getattr(item, "name", None)
                    if not isinstance(name, str):
                        raise PluginError(plugin, hook, f"returned {item!r}, which has no name")
                    if kind == "materials" and (problem := _material_problem(item)):
                        raise PluginError(plugin, hook, f"material {name!r} {problem}")
                    if name in table:
                        first = registry.provider[(kind, name)]
                        raise PluginError(
                            plugin,
                            hook,
                            f"{kind[:-1].replace('_', ' ')} {name!r} is registered by both "
                            f"{first!r} and {plugin!r}",
                            "rename one of them",
                        )
                    table[name] = item
                    registry.provider[(kind, name)] = plugin
        return registry

    def provided_by(self, plugin: str) -> dict[str, list[str]]:
        """What one plugin registered: ``{kind: [names]}``."""
        out: dict[str, list[str]] = {}
        for (kind, name), owner in self.provider.items():
            if owner == plugin:
                out.setdefault(kind, []).append(name)
        return out

    def state_variables(self) -> set[str]:
        """Names of all material state variables (valid output fields)."""
        return {name for cls in self.materials.values() for name, _ in cls.state_vars}
