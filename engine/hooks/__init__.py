"""The plugin contract: pluggy markers, hook specifications, typed registration records."""

import pluggy

PROJECT = "engine"
#: Mark a plugin's hook implementation: ``@hookimpl def engine_register_materials(): ...``
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
