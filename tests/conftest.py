import os

import pytest

os.environ.setdefault("SANITIZE_QUANT_TENSORS", "0")


@pytest.fixture(scope="session", autouse=True)
def finn_build_dir(tmp_path_factory):
    """FINN's settings, initialised once per test session with a build folder of its own."""
    from hw_gen.finn_adapter import init_finn

    return init_finn(tmp_path_factory.mktemp("finn_build"))
