"""Calling hooks through pluggy, with errors that name the plugin and the hook.

Hooks are called by pluggy itself, so its order holds: ``tryfirst`` implementations first,
then the others (the last registered first), ``trylast`` ones at the end, and hook wrappers
around them all. :func:`attribute` wraps each plain implementation of a plugin once, when the
plugin is registered, so that an exception it raises becomes a :class:`PluginError` naming it
and the hook, and so that :func:`call_each` can say which plugin returned what. Tracing
(``--trace-hooks``) is pluggy's own hook-call monitoring.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import pluggy


class PluginError(RuntimeError):
    """A plugin that cannot be loaded or misbehaved in a hook."""

    def __init__(self, plugin: str, hook: str, what: str, fix: str = "") -> None:
        self.plugin, self.hook, self.what = plugin, hook, what
        advice = f"\n    fix: {fix}" if fix else ""
        super().__init__(f"plugin {plugin!r}, {hook}: {what}{advice}")


def describe(error: BaseException) -> str:
    """``"KeyError: 'x' (file.py:12)"``: an exception and the line that raised it."""
    frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


_returned: list[list[tuple[str, Any]]] = []  # per active call_each: (plugin, result) in call order


def _attributed(function: Callable, plugin: str, hook: str) -> Callable:
    @functools.wraps(function)
    def call(*args):
        try:
            result = function(*args)
        except PluginError:
            raise
        except Exception as error:
            raise PluginError(plugin, hook, describe(error)) from error
        if _returned:
            _returned[-1].append((plugin, result))
        return result

    return call


def attribute(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Wrap the plain hook implementations ``plugin`` (registered as ``name``) provides.

    Wrappers (``hookwrapper``/``wrapper``) are left as they are: pluggy drives them.
    """
    for caller in manager.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                impl.function = _attributed(impl.function, name, caller.name)


def call_each(manager: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call ``hook`` through pluggy; return ``[(plugin name, result), ...]`` in call order.

    Results that are None are left out (as pluggy does). An exception raised by a plain
    implementation is a :class:`PluginError` naming it; one raised by a hook wrapper names the
    hook's wrappers.
    """
    _returned.append([])
    try:
        results = getattr(manager.hook, hook)(**kwargs)
    except PluginError:
        raise
    except Exception as error:
        wrappers = [
            impl.plugin_name
            for impl in getattr(manager.hook, hook).get_hookimpls()
            if impl.hookwrapper or impl.wrapper
        ]
        raise PluginError(", ".join(wrappers) or "?", hook, describe(error)) from error
    finally:
        returned = _returned.pop()
    owner = {id(result): plugin for plugin, result in returned}
    return [(owner.get(id(result), "a hook wrapper"), result) for result in results]


_trace: list[TextIO | None] = []  # the stream hook calls are traced to, when enabled


def enable_tracing(stream: TextIO | None = None) -> None:
    """Trace hook calls (``--trace-hooks``) on plugin managers made from now on, to ``stream``
    (default: stderr at the time of the call)."""
    _trace[:] = [stream]


def disable_tracing() -> None:
    _trace.clear()


def tracing() -> bool:
    return bool(_trace)


def monitor(manager: pluggy.PluginManager) -> None:
    """Print every hook call of ``manager`` while tracing is enabled: the plugins in the order
    pluggy calls them, then what each returned (pluggy's ``add_hookcall_monitoring``)."""

    def write(line: str) -> None:
        if _trace:
            print(line, file=_trace[0] or sys.stderr)

    def before(hook: str, impls: list, kwargs: dict) -> None:
        order = ", ".join(impl.plugin_name for impl in reversed(impls))
        write(f"hook {hook} -> {order}")

    def after(outcome, hook: str, impls: list, kwargs: dict) -> None:
        if outcome.exception is not None:
            write(f"hook {hook} raised {type(outcome.exception).__name__}")
            return
        for plugin, result in _returned[-1] if _returned else ():
            if result is not None:
                write(f"hook {hook} <- {plugin}: {_summary(result)}")

    manager.add_hookcall_monitoring(before, after)


def _summary(result: Any) -> str:
    if isinstance(result, list | tuple):
        names = [getattr(item, "name", type(item).__name__) for item in result]
        return f"[{', '.join(map(str, names))}]"
    return type(result).__name__
