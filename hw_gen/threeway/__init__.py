"""The three-way check: torch == FINN's Python execution == sim at every tensor that carries a
quantized activation, after every lowering step.

```python
from hw_gen.threeway import check_against_torch
result = check_against_torch(torch_model, "out", x)   # x: the float NCHW input torch takes
print(result.summary()); assert result.passed
```

The reference is torch (:func:`check_against_torch`) or, where no torch model is at hand, the
QONNX graph run by qonnx's executor (:func:`check_against_qonnx`, what ``hw-gen lower
--verify`` uses). Which tensor carries which activation is recorded during lowering by
:mod:`hw_gen.lowering.activation_tags`.
"""

from hw_gen.threeway.check import check_against_qonnx, check_against_torch, check_lowering
from hw_gen.threeway.reference import Activation, Reference, qonnx_reference, torch_reference
from hw_gen.threeway.result import StepCheck, TensorCheck, ThreeWayResult

__all__ = [
    "Activation",
    "Reference",
    "StepCheck",
    "TensorCheck",
    "ThreeWayResult",
    "check_against_qonnx",
    "check_against_torch",
    "check_lowering",
    "qonnx_reference",
    "torch_reference",
]
