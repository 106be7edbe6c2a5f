"""Bit-exact numpy simulator of FINN dataflow graphs (numpy only).

``load_bundle(path)`` reads a bundle written by ``hw_gen.bundle.write_bundle``;
``run(bundle, {input: array})`` executes it and returns the graph outputs (or, with
``return_all=True``, every tensor by name).
"""

from sim.bundle import FORMAT, VERSION, Bundle, Node, SimError, TensorInfo, load_bundle
from sim.graph import run
from sim.kernels import supported_op_types

__all__ = [
    "FORMAT",
    "VERSION",
    "Bundle",
    "Node",
    "SimError",
    "TensorInfo",
    "load_bundle",
    "run",
    "supported_op_types",
]
