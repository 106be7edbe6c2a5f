"""The board-like environment's tests (pynq 4.0.0, numpy<2): collected only where pynq is
installed (`make board-test` runs them in .venv-board)."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("pynq") else ["test_*.py"]
