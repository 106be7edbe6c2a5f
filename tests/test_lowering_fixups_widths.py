"""Width minimization of a stand-alone threshold layer on an unsigned input."""

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from hw_gen.finn_adapter import init_finn


def _threshold_layer(thresholds: np.ndarray) -> ModelWrapper:
    channels = thresholds.shape[0]
    node = helper.make_node(
        "Thresholding", ["x", "t"], ["y"], domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow", NumChannels=channels, PE=1, numSteps=thresholds.shape[1],
        inputDataType="UINT8", weightDataType="INT32", outputDataType="BIPOLAR", ActVal=0,
        numInputVectors=[1, 3, 3], name="Thresholding_0")
    graph = helper.make_graph(
        [node], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3, channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, channels])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("t", thresholds.astype(np.float32))
    model.set_tensor_datatype("x", DataType["UINT8"])
    model.set_tensor_datatype("t", DataType["INT32"])
    model.set_tensor_datatype("y", DataType["BIPOLAR"])
    return model


def test_negative_thresholds_on_unsigned_input(tmp_path):
    """Thresholds below 0 on an unsigned input always fire; FINN's weight minimization
    asserted on them (a sign copied for an XNOR side, reading the unit's popcount)."""
    init_finn(tmp_path / "finn_build")
    import finn.core.onnx_exec as oxe

    from hw_gen.lowering.widths import check_datatypes, minimize_widths

    model = _threshold_layer(np.array([[-3.0], [5.0], [0.0]]))
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 3, 3)).astype(np.float32)
    x[0, 0, 0] = [0, 5, 0]
    before = oxe.execute_onnx(model, {"x": x})["y"]
    lowered = minimize_widths(model)
    assert lowered.get_initializer("t").min() >= 0
    assert check_datatypes(lowered) == 1
    after = oxe.execute_onnx(lowered, {"x": x})["y"]
    assert np.array_equal(before, after)
    assert np.array_equal(before[..., 0], np.ones((1, 3, 3)))
