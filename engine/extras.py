"""Which optional extra a command needs, and one clear line when it is missing.

``pyproject.toml`` declares the extras; :data:`EXTRAS` names the modules of each that the
commands import. A command calls :func:`require` before doing any work, so a missing extra stops
it at once with :class:`MissingExtra` (the ``engine`` command prints it as one ``error:`` line
and exits 2) rather than with a traceback halfway through.
"""

from __future__ import annotations

import importlib

#: Extra (as in ``pip install "mpm-engine[view]"``) -> the modules it provides that are imported.
EXTRAS: dict[str, tuple[str, ...]] = {
    "view": ("pyvista", "vtk", "imageio", "matplotlib"),
    "torch": ("torch",),
    "sweep": ("ray",),
}


class MissingExtra(RuntimeError):
    """``command`` needs ``extra``, and its module ``module`` cannot be imported.

    The message is one line: what needs the extra, which module is missing and how to install it.
    """

    def __init__(self, extra: str, module: str, command: str, reason: str | None = None) -> None:
        self.extra, self.module, self.command = extra, module, command
        problem = f"{module} is not installed" if reason is None else f"{module}: {reason}"
        super().__init__(
            f'{command} needs the "{extra}" extra ({problem}): pip install "mpm-engine[{extra}]" '
            f'(from a source checkout: pip install -e ".[{extra}]")'
        )


def _reason(module: str, error: Exception) -> str | None:
    """``None`` when ``module`` itself is absent, else why importing it failed (one line)."""
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if missing is not None and missing.split(".")[0] == module:
        return None
    first = (str(error).strip().splitlines() or [""])[0]
    return f"cannot be imported ({type(error).__name__}: {first})"


def require(extra: str, command: str, modules: tuple[str, ...] | None = None) -> None:
    """Import each module of ``extra`` (or only ``modules`` of it); raise :class:`MissingExtra`
    naming ``command`` (e.g. ``"engine render"``) for the first that cannot be imported.

    A module counts as missing when it is absent, set to ``None`` in :data:`sys.modules`, or fails
    while importing (a broken install), so the check is the import the command would make.
    """
    wanted = EXTRAS[extra] if modules is None else modules
    unknown = set(wanted) - set(EXTRAS[extra])
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not modules of the {extra!r} extra")
    for module in wanted:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any failure to import means the extra is unusable
            raise MissingExtra(extra, module, command, _reason(module, error)) from None
