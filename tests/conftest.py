"""Shared helpers: write a scene to a temporary folder and load or run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.scene.loaded import LoadedScene
from engine.scene.loader import load_scene

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def scene_file(tmp_path):
    """Write TOML text to ``tmp_path/scene.toml`` and return its path."""

    def write(text: str, name: str = "scene.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def load(scene_file):
    """Write TOML text and load it as a validated scene."""

    def make(text: str, overrides: tuple[str, ...] = ()) -> LoadedScene:
        return load_scene(scene_file(text), overrides)

    return make
