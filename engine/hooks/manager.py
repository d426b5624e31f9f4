"""Plugin discovery and safe hook calls.

Plugins come from three places: the entry-point group ``engine`` (installed packages, the
built-in ``plugins/`` included), a scene's ``[plugins] load = [...]`` and ``engine run --plugin``.
Loading a plugin runs its code. A plugin that fails to import or raises in a hook stops with a
:class:`PluginError` naming the plugin, the hook and what went wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from engine import __version__
from engine.hooks import PROJECT, specs


class PluginError(RuntimeError):
    """A plugin that cannot be loaded or misbehaved in a hook."""

    def __init__(self, plugin: str, hook: str, what: str, fix: str = "") -> None:
        self.plugin, self.hook, self.what = plugin, hook, what
        advice = f"\n    fix: {fix}" if fix else ""
        super().__init__(f"plugin {plugin!r}, {hook}: {what}{advice}")


def _describe(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


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
            raise PluginError(spec, "import", _describe(error), "fix the plugin file") from error
        return module
    try:
        return importlib.import_module(spec)
    except Exception as error:
        raise PluginError(spec, "import", _describe(error), "is the package installed?") from error


def make_plugin_manager(load: list[str] | tuple[str, ...] = ()) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, installed entry points and ``load`` registered.

    Entry-point plugins that fail to import are skipped with a warning on stderr, so that one
    broken package cannot break every command; plugins asked for by name (``load``) must load.
    """
    from engine import builtins

    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(specs)
    manager.register(builtins, name="engine.builtins")
    manager.engine_versions = versions = {"engine.builtins": __version__}
    for entry in entry_points(group=PROJECT):
        if manager.has_plugin(entry.name):
            continue
        try:
            manager.register(entry.load(), name=entry.name)
            versions[entry.name] = entry.dist.version if entry.dist else "-"
        except Exception as error:
            print(
                f"warning: plugin {entry.name!r} failed to load: {_describe(error)}",
                file=sys.stderr,
            )
    for spec in load:
        module = load_module(spec)
        if not manager.is_registered(module):
            manager.register(module, name=spec)
    manager.check_pending()
    return manager


def call_each(manager: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook``; return ``[(plugin name, result), ...]``.

    Any exception becomes a :class:`PluginError` naming the plugin and the hook.
    """
    results = []
    for impl in getattr(manager.hook, hook).get_hookimpls():
        try:
            result = impl.function(**{name: kwargs[name] for name in impl.argnames})
        except PluginError:
            raise
        except Exception as error:
            raise PluginError(impl.plugin_name, hook, _describe(error)) from error
        if _trace:
            print(f"hook {hook} <- {impl.plugin_name}: {_summary(result)}", file=_trace[0])
        if result is not None:
            results.append((impl.plugin_name, result))
    return results


def plugin_version(manager: pluggy.PluginManager, name: str) -> str:
    """The version of the package that provides a plugin; ``"-"`` for local modules and files."""
    return getattr(manager, "engine_versions", {}).get(name, "-")


_trace: list = []  # the stream hook calls are traced to, when enabled


def enable_tracing(stream=None) -> None:
    """Print every hook call, its plugin and a summary of its result (``--trace-hooks``) to
    ``stream`` (default: stderr at the time of the call)."""
    _trace[:] = [stream or sys.stderr]


def disable_tracing() -> None:
    _trace.clear()


def _summary(result: Any) -> str:
    if isinstance(result, list | tuple):
        names = [getattr(item, "name", type(item).__name__) for item in result]
        return f"[{', '.join(map(str, names))}]"
    return type(result).__name__
