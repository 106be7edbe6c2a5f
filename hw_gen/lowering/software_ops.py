"""A qonnx custom-op domain for nodes that must stay in software while FINN converts the rest.

A node here is found by qonnx's registry (domain = this module) and executes like its base
op, but FINN's conversions to hardware layers do not recognise its op type.
"""

from qonnx.custom_op.general.multithreshold import MultiThreshold

DOMAIN = __name__


class SoftwareMultiThreshold(MultiThreshold):
    """A MultiThreshold kept out of FINN's InferThresholdingLayer (its input is float)."""
