"""The model side: quantizers, blocks, networks, data sets, training, metrics, QONNX export.

See README.md in this folder.
"""

import os

# OpenMP threads that spin while they wait make 2-thread training 5-10x slower on a busy
# 2-core machine (measured 4.2 s against 0.5 s a step); passive waiting costs nothing on an idle
# one. libgomp reads this when it loads, so it only takes effect if this package is imported
# before torch; entry points should set it in the environment themselves.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
