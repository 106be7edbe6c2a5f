"""The dataflow partition as FINN's own FIFO step builds it: width converters, then FIFOs on
every stream (shallow ones too), then specialization and unique names, so the FIFO node names
here are the names FINN's ``step_set_fifo_depths`` gives the same partition."""

from __future__ import annotations

import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError

FIFO_OP = "StreamingFIFO_rtl"


def dataflow_partition(model: ModelWrapper, work_dir: Path) -> ModelWrapper:
    """The one dataflow partition of ``model`` (its hardware layers), as FINN cuts it."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import (
        CreateDataflowPartition,
    )

    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(work_dir)))
    sdps = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(sdps) != 1:
        raise HwGenError(f"{len(sdps)} dataflow partitions (expected one)")
    return ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))


def insert_fifos(partition: ModelWrapper, fpga_part: str) -> ModelWrapper:
    """FINN's FIFO step without sizing: InsertDWC, InsertFIFO(create_shallow_fifos=True),
    SpecializeLayers, GiveUniqueNodeNamesRecursive, GiveReadableTensorNames."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.qonnx.give_unique_node_names_recursive import (
        GiveUniqueNodeNamesRecursive,
    )
    from qonnx.transformation.general import GiveReadableTensorNames

    model = partition.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(fpga_part))
    model = model.transform(GiveUniqueNodeNamesRecursive())
    return model.transform(GiveReadableTensorNames())


def fifo_nodes(model: ModelWrapper) -> list:
    return [n for n in model.graph.node if n.op_type == FIFO_OP]


def write_fifo_config(model: ModelWrapper, path: Path) -> dict:
    """FINN's FIFO-sizing file (what ``ApplyFIFODepthsFromFile`` reads), keyed by FIFO node."""
    info: dict = {"fifo_depths": {}, "fifo_sizes": {}, "impl_style": {}, "ram_style": {}}
    total = 0
    for node in fifo_nodes(model):
        inst = getCustomOp(node)
        depth = int(inst.get_nodeattr("depth"))
        size = int(inst.get_instream_width()) * depth
        info["fifo_depths"][node.name] = depth
        info["fifo_sizes"][node.name] = size
        info["impl_style"][node.name] = inst.get_nodeattr("impl_style")
        info["ram_style"][node.name] = inst.get_nodeattr("ram_style")
        total += size
    info["total_fifo_size_kiB"] = total / 8.0 / 1024.0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1, sort_keys=True))
    return info
