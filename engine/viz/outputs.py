"""Files the drawing commands write, checked before any drawing starts so no work is wasted."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from engine.viz import VizError


def prepare_outputs(files: Iterable[Path]) -> None:
    """Make the folders of ``files`` and check that each file can be written there.

    Raises:
        VizError: a folder cannot be made (a file is in its way, no permission, no such
            place) or written to, or an output names an existing folder or a read-only file.
    """
    files = list(files)
    firsts = {file.parent: file for file in reversed(files)}  # the first file in each folder
    for folder, file in firsts.items():
        _writable_folder(folder, file)
    for file in files:
        if file.is_dir():
            raise VizError(
                f"cannot write {file}: it is a folder; give a file name inside it, "
                f"e.g. {file / ('out' + file.suffix)}"
            )
        if file.exists() and not os.access(file, os.W_OK):
            raise VizError(f"cannot overwrite {file}: it is read-only; give another output name")


def _writable_folder(folder: Path, file: Path) -> None:
    """Make ``folder`` (and its parents) and check a file can be created in it, for ``file``."""
    fix = "give an output path in a folder you can write to"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        in_the_way = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        reason = f"{in_the_way} is a file, not a folder" if in_the_way else error.strerror
        raise VizError(f"cannot write {file}: cannot make {folder} ({reason}); {fix}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".engine-write-check-"):
            pass
    except OSError as error:
        raise VizError(
            f"cannot write {file}: cannot create files in {folder} ({error.strerror}); {fix}"
        ) from None
