"""Our own FINN layers, registered with FINN when this package is imported (by
``hw_gen.finn_adapter.init_finn``)."""

from finn.custom_op.fpgadataflow import register_custom_op as register_hw
from finn.custom_op.fpgadataflow.hls import register_custom_op as register_hls

from hw_gen.layers.mbu import MultiBranchUpsample, MultiBranchUpsample_hls
from hw_gen.layers.upsample import FoldedUpsample, FoldedUpsample_hls

LAYERS = {
    "FoldedUpsample": (FoldedUpsample, FoldedUpsample_hls),
    "MultiBranchUpsample": (MultiBranchUpsample, MultiBranchUpsample_hls),
}

for _hw, _hls in LAYERS.values():
    register_hw(_hw)
    register_hls(_hls)
