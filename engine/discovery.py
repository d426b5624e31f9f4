"""Plugin discovery: the built-ins, installed entry points, a scene's and the command line's.

Plugins come from three places: the entry-point group ``engine`` (installed packages, the
built-in ``engine_plugins`` included), a scene's ``[plugins] load = [...]`` and ``engine run
--plugin``. Loading a plugin runs its code. A plugin that fails to import stops with a
:class:`engine.hooks.calls.PluginError` naming it; an installed one is skipped with a warning.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
import warnings
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


def check_hookimpls(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Refuse a plugin's hook implementations that pluggy would reject with a raw error: a hook
    name that does not exist (``engine_fram``: did you mean ``engine_frame``?) and arguments
    the hook does not pass (``sim`` for ``simulation``). Warn about a function named exactly like
    a hook but not marked ``@hookimpl``, which would never be called."""
    hooks = {
        hook: caller.spec.argnames
        for hook, caller in vars(manager.hook).items()
        if caller.spec is not None
    }
    for attribute_name in dir(plugin):
        function = getattr(plugin, attribute_name, None)
        if not callable(function):
            continue
        if manager.parse_hookimpl_opts(plugin, attribute_name) is None:
            if attribute_name in hooks and not isinstance(function, type):
                warnings.warn(
                    f"plugin {name!r} defines {attribute_name} without @hookimpl, so it is "
                    "never called; decorate it with @hookimpl (from engine.hooks import "
                    "hookimpl)",
                    stacklevel=2,
                )
            continue
        if attribute_name not in hooks:
            close = difflib.get_close_matches(attribute_name, hooks, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise PluginError(
                name,
                attribute_name,
                "there is no such hook",
                f"{hint}the hooks are listed in engine/hooks/specs.py and the README",
            )
        wanted = hooks[attribute_name]
        taken = list(inspect.signature(function).parameters)
        unknown = [arg for arg in taken if arg not in wanted]
        if unknown:
            raise PluginError(
                name,
                attribute_name,
                f"takes {', '.join(unknown)}, which the hook does not pass",
                f"name the arguments as the hook does: {attribute_name}({', '.join(wanted)}) "
                "(any of them, in any order)",
            )


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    check_hookimpls(manager, plugin, name)
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
