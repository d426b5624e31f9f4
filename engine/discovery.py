"""Plugin discovery: the built-ins, installed entry points, a scene's and the command line's.

Plugins come from three places: the entry-point group ``engine`` (installed packages, the
built-in ``engine_plugins`` included), a scene's ``[plugins] load = [...]`` and ``engine run
--plugin``. Loading a plugin runs its code. A plugin that fails to import stops with a
:class:`engine.hooks.calls.PluginError` naming it; an installed one is skipped with a warning.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy

from engine import __version__, builtins
from engine.hooks import PROJECT, specs
from engine.hooks.calls import PluginError, attribute, describe, monitor, tracing


def load_module(spec: str) -> ModuleType:
    """Import ``spec``: a dotted module name, or a ``.py`` file."""
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise PluginError(spec, "load", f"no such file {path}", "check the path")
        name = f"engine_local_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # so that taichi can find the source of its kernels
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            raise PluginError(spec, "import", describe(error), "fix the plugin file") from error
        return module
    try:
        return importlib.import_module(spec)
    except Exception as error:
        raise PluginError(spec, "import", describe(error), "is the package installed?") from error


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    manager.register(plugin, name=name)
    attribute(manager, plugin, name)


def make_plugin_manager(load: list[str] | tuple[str, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, installed entry points and ``load`` registered.

    Entry-point plugins that fail to import are skipped with a warning on stderr, so that one
    broken package cannot break every command; plugins asked for by name (``load``) must load.
    """
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(specs)
    if tracing():
        monitor(manager)
    _register(manager, builtins, "engine.builtins")
    manager.engine_versions = versions = {"engine.builtins": __version__}
    for entry in entry_points(group=PROJECT):
        if manager.has_plugin(entry.name):
            continue
        try:
            _register(manager, entry.load(), entry.name)
            versions[entry.name] = entry.dist.version if entry.dist else "-"
        except Exception as error:
            print(
                f"warning: plugin {entry.name!r} failed to load: {describe(error)}",
                file=sys.stderr,
            )
    for spec in load:
        module = load_module(spec)
        if not manager.is_registered(module):
            _register(manager, module, spec)
    manager.check_pending()
    return manager


def plugin_version(manager: pluggy.PluginManager, name: str) -> str:
    """The version of the package that provides a plugin; ``"-"`` for local modules and files."""
    return getattr(manager, "engine_versions", {}).get(name, "-")
