"""The accelerator's PYNQ driver, shipped in every deploy package (numpy; pynq on the board;
``sim/`` for the simulated backend).

    from driver import Accelerator
    acc = Accelerator("PKG", backend="sim")      # "pynq" on the board
    out = acc.execute(images)                    # uint8 N x H x W x C
    out.labels, out.scores, out.logits(), out.predicted()
    acc.load_weights("weights.npz")              # a package built with --runtime-weights
"""

from driver.accelerator import Accelerator, Output
from driver.errors import DriverError

__all__ = ["Accelerator", "DriverError", "Output"]
