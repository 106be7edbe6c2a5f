"""Progress bars over named steps (lowering steps, build steps)."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


@contextlib.contextmanager
def step_bar(total: int, desc: str, disable: bool = False) -> Iterator[Callable[[str], None]]:
    """A progress bar over ``total`` steps; yields the callback that names and counts each."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="step", leave=False, disable=disable) as bar:
        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        yield progress
