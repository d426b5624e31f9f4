"""Weights files with a JSON sidecar: the checks every learned component's loader makes before
it reads the tensors (files present, sidecar readable, the right architecture and dimension)."""

from __future__ import annotations

import json
from pathlib import Path


class WeightsError(ValueError):
    """Weights that cannot serve a scene: what is wrong, and what to do."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


def read_sidecar(
    path: Path, architecture: str, dim: int, error, train: str, use: str, serves: str = "scenes"
) -> dict:
    """The sidecar (``path`` with ``.json``) of the weights at ``path``, checked: ``error`` (a
    :class:`WeightsError` class) if either file is missing, the sidecar unreadable (fix:
    ``train``), or it records another ``architecture`` (fix: ``use``) or dimension than
    ``dim`` (the weights being for ``dim``-dimensional ``serves``)."""
    sidecar = path.with_suffix(".json")
    for needed in (path, sidecar):
        if not needed.is_file():
            raise error(f"{needed} does not exist", train)
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError) as failure:
        raise error(f"{sidecar} is not a JSON sidecar ({failure})", train) from None
    if record.get("architecture") != architecture:
        raise error(
            f"{path} holds a {record.get('architecture')!r} model, not a {architecture!r}", use
        )
    if record.get("dim") != dim:
        raise error(
            f"{path} was trained for {record.get('dim')}D {serves}, this scene is {dim}D",
            f"use weights trained in {dim}D",
        )
    return record
