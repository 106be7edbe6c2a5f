"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def finn_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FINN initialised through the project's adapter, with a session-wide build folder."""
    from hw_gen.finn_adapter import init_finn

    return init_finn(tmp_path_factory.mktemp("finn"))
