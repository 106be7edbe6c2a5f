"""Kernel registry: one function per (normalised) op type.

A kernel is ``fn(node, inputs) -> list[np.ndarray]`` (a single array is accepted too), where
``inputs`` are the node's input arrays in order, constants included. Hardware layers
(nodes with FINN's ``backend="fpgadataflow"``, ``hw=True``) and plain ONNX / qonnx ops
(``hw=False``) have separate name spaces: FINN has hardware layers named like ONNX ops
(Reshape, Squeeze). Hardware kernels compute exact integers; the executor then wraps each
output to the node's declared output DataType, as the hardware's fixed-width stream does.
``reshape=True`` lets the executor reshape an output of the right size to the declared
shape, as FINN's ``execute_node`` does for those layers. ``packed_inputs=True``: the kernel
takes :class:`sim.packedmap.PackedMap` inputs (others are given unpacked values);
``packs=True``: it accepts a keyword ``packed`` and may then return one-bit outputs as
PackedMaps (:mod:`sim.packedmap`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.bundle import Node

KernelFn = Callable[[Node, list[np.ndarray]], "list[np.ndarray] | np.ndarray"]


@dataclass(frozen=True)
class KernelSpec:
    op_type: str
    fn: KernelFn
    hw: bool
    reshape: bool
    packed_inputs: bool = False
    packs: bool = False


KERNELS: dict[tuple[bool, str], KernelSpec] = {}


def register(*op_types: str, hw: bool = True, reshape: bool = False, packed_inputs: bool = False,
             packs: bool = False) -> Callable[[KernelFn], KernelFn]:
    """Decorator: register ``fn`` as the kernel of each of ``op_types`` (normalised names)."""

    def deco(fn: KernelFn) -> KernelFn:
        for op in op_types:
            if (hw, op) in KERNELS:
                raise ValueError(f"a sim kernel for op type {op!r} (hw={hw}) is already registered")
            KERNELS[(hw, op)] = KernelSpec(op, fn, hw, reshape, packed_inputs, packs)
        return fn

    return deco


def normalise_op_type(op_type: str) -> str:
    """``X_hls`` / ``X_rtl`` -> ``X``."""
    for suffix in ("_hls", "_rtl"):
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type


def supported_op_types(hw: bool) -> list[str]:
    """Normalised op types sim can execute, sorted: hardware layers or plain ONNX/qonnx ops."""
    return sorted(op for is_hw, op in KERNELS if is_hw == hw)


def get_kernel(op_type: str, hw: bool) -> KernelSpec | None:
    """The kernel for a (possibly ``_hls``/``_rtl``-suffixed) op type, or None."""
    return KERNELS.get((hw, normalise_op_type(op_type)))


# A fused kernel computes a consumer's output from its producer's inputs without the tensor
# between them: ``fn(producer, consumer, producer_inputs, consumer_inputs_after_the_first)``,
# returning the consumer's output, or None to decline (the executor then runs both nodes).
# It must give the same integers as the two kernels in turn. A fused kernel takes PackedMap
# producer inputs and a keyword ``packed`` (see ``register``'s flags) where registered so.
FusionFn = Callable[[Node, Node, list[np.ndarray], list[np.ndarray]], "np.ndarray | None"]


@dataclass(frozen=True)
class FusionSpec:
    fn: FusionFn
    packed_inputs: bool = False
    packs: bool = False

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


FUSIONS: dict[tuple[str, str], FusionSpec] = {}


def register_fusion(producer: str, consumer: str, packed_inputs: bool = False,
                    packs: bool = False) -> Callable[[FusionFn], FusionFn]:
    """Decorator: register a fused kernel for two hardware layers (normalised op types)."""

    def deco(fn: FusionFn) -> FusionFn:
        FUSIONS[(producer, consumer)] = FusionSpec(fn, packed_inputs, packs)
        return fn

    return deco


def get_fusion(producer: Node, consumer: Node) -> FusionSpec | None:
    if not (producer.hw and consumer.hw):
        return None
    return FUSIONS.get((normalise_op_type(producer.op_type), normalise_op_type(consumer.op_type)))


# Importing the kernel modules fills the registry.
from sim.kernels import (  # noqa: E402,F401,I001
    attention, elementwise, fused, matrix, mbu, onnx_ops, streamlined, streams, upsample,
    window,
)
