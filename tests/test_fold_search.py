"""Folding to a board: monotone in the target, legal PE/SIMD, the warning naming the limiting
resource and layer when the board cannot hold the target, --strict-fps."""

import pytest
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import get_board
from hw_gen.errors import HwGenError
from hw_gen.hwmodel.fold_search import fold_at, fold_to_board
from hw_gen.lowering import lower
from lowering_nets import SkipNet, pixels, randomize_bn

BOARD = get_board("Pynq-Z2")
CLK = 10.0


@pytest.fixture(scope="module")
def lowered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fold")
    path = tmp / "skip.onnx"
    export_qonnx(randomize_bn(SkipNet("add", channels=16), seed=4), pixels((1, 3, 16, 16)),
                 str(path), dynamo=False)
    return ModelWrapper(str(lower(path, tmp / "out").dataflow_path))


def _largest(totals):
    return max(totals[k] / BOARD.resources[k] for k in totals if BOARD.resources[k])


def test_higher_target_never_lowers_the_largest_utilisation(lowered):
    previous = 0.0
    for fps in (100, 1_000, 10_000, 100_000, 1_000_000):
        _, _, totals = fold_at(lowered, fps, CLK, BOARD)
        assert _largest(totals) >= previous - 1e-12, fps
        previous = _largest(totals)


def test_every_folding_is_legal(lowered):
    model, _, _ = fold_at(lowered, 1_000_000, CLK, BOARD)
    for node in model.graph.node:
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            continue
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU"):
            mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
            simd, pe = inst.get_nodeattr("SIMD"), inst.get_nodeattr("PE")
            assert mw % simd == 0 and mh % pe == 0 and simd * 1024 >= mw, node.name
            assert inst.get_nodeattr("mem_mode") in ("internal_embedded", "internal_decoupled")
            assert inst.get_nodeattr("ram_style") != "ultra"  # no URAM on the Pynq-Z2
        elif node.op_type.startswith("ConvolutionInputGenerator"):
            assert inst.get_nodeattr("IFMChannels") % inst.get_nodeattr("SIMD") == 0
        options = getattr(inst, "folding_options", None)
        if options is not None:
            for attr, values in options().items():
                assert inst.get_nodeattr(attr) in values, (node.name, attr)
        elif "NumChannels" in inst.get_nodeattr_types():
            fold = "PE" if "PE" in inst.get_nodeattr_types() else "SIMD"
            assert inst.get_nodeattr("NumChannels") % inst.get_nodeattr(fold) == 0, node.name


def test_a_board_that_cannot_hold_the_target_warns_with_the_limit(lowered):
    _, _, low = fold_at(lowered, 1, CLK, BOARD)
    _, _, high = fold_at(lowered, 1_000_000, CLK, BOARD)
    fit = (_largest(low) + _largest(high)) / 2
    result = fold_to_board(lowered, BOARD, CLK, 1_000_000, fit=fit)
    assert result.warning is not None and "\n" not in result.warning
    assert result.warning.startswith("warning: Pynq-Z2 cannot reach 1e+06 frames/s")
    assert "above it" in result.warning and "most of it in" in result.warning
    layer = result.warning.split("most of it in ")[1].split(" ")[0]
    assert lowered.get_node_from_name(layer) is not None
    assert max(result.utilisation.values()) <= fit
    assert result.fps < 1_000_000
    with pytest.raises(HwGenError, match="strict-fps"):
        fold_to_board(lowered, BOARD, CLK, 1_000_000, fit=fit, strict=True)


def test_a_target_that_fits_is_reached_without_warning(lowered):
    result = fold_to_board(lowered, BOARD, CLK, 100)
    assert result.warning is None and result.fps >= 100
