"""Looking at results: `engine render` (movies, images), `engine view` (a window), `engine info`.

The modules import PyVista and matplotlib only where they draw, so ``engine.viz`` itself and
:class:`VizError` load without the ``view`` extra.
"""


class VizError(Exception):
    """Bad input to a visualisation command; the message says what to change."""
