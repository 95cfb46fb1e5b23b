"""Shared fixtures: settings that keep every file a test writes inside its tmp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bizstream.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings, with the cache in tmp_path."""
    return Settings().replace(broker={"cache_dir": str(tmp_path / "cache")})
