"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def finn_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FINN initialised through the project's adapter, once per session, with a build folder
    of its own."""
    from hw_gen.finn_adapter import init_finn

    return init_finn(tmp_path_factory.mktemp("finn"))


@pytest.fixture(scope="session", autouse=True)
def rtlsim_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Verilator model cache for the session: builds share compiled layer models."""
    from hw_gen.rtlsim.verilator import CACHE_ENV

    folder = tmp_path_factory.mktemp("rtlsim_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder
