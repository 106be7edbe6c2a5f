"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def finn_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FINN initialised through the project's adapter, once per session, with a build folder
    of its own."""
    from hw_gen.finn_adapter import init_finn

    return init_finn(tmp_path_factory.mktemp("finn"))
