"""Run a bundle: nodes in topological order, one kernel each (or one fused kernel for a pair),
outputs checked against the declared shapes and wrapped to the declared data types of
hardware layers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from sim.blas import one_blas_thread
from sim.bundle import Bundle, Node, SimError, TensorInfo
from sim.datatypes import DataTypeError, as_int64, dtype, require_allowed, wrap
from sim.heap import keep_freed_memory
from sim.kernels import get_fusion, get_kernel
from sim.packedmap import PackedMap, unpacked


def _batched(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    return shape if not shape else (shape[0] * batch,) + tuple(shape[1:])


def _prepare_input(info: TensorInfo, value: np.ndarray) -> tuple[np.ndarray, int]:
    """Check a graph input against its declaration; return it in its container and the batch."""
    x = np.asarray(value)
    decl = info.shape
    if decl is not None:
        if x.ndim != len(decl) or tuple(x.shape[1:]) != tuple(decl[1:]) or (
            decl and (decl[0] == 0 or x.shape[0] % decl[0])
        ):
            raise SimError(f"input {info.name!r}: shape {x.shape}, the graph declares {decl} (any batch)")
    batch = x.shape[0] // decl[0] if decl else 1
    dt = dtype(info.dtype)
    if dt.is_float:
        return x.astype(np.float32, copy=False), batch
    if dt.kind == "int" and x.size and x.dtype.kind in "iuf":
        # fast path: the values cast to the container unchanged, within the type's range
        cast = x.astype(dt.container)
        if dt.min <= cast.min() and cast.max() <= dt.max and np.array_equal(cast, x):
            return cast, batch
    try:
        require_allowed(x, dt)
    except DataTypeError as err:
        raise SimError(f"input {info.name!r}: {err}") from err
    if dt.kind == "fixed":
        return x.astype(np.float64), batch
    return as_int64(x).astype(dt.container), batch


def run(
    bundle: Bundle,
    inputs: Mapping[str, np.ndarray],
    *,
    return_all: bool = False,
    on_node: Callable[[Node], None] | None = None,
) -> dict[str, np.ndarray]:
    """Execute ``bundle`` on ``inputs`` (graph input name -> array, any leading batch N).

    Returns the graph outputs by name, or with ``return_all`` every tensor the run produced
    (graph inputs and all intermediates, by tensor name). ``on_node`` is called after each
    node (e.g. to advance a progress bar). Without ``return_all``, pairs of nodes that have
    a fused kernel run together and the tensor between them is not built.
    """
    missing = [t.name for t in bundle.inputs if t.name not in inputs]
    if missing:
        raise SimError(f"missing graph input(s): {', '.join(missing)}")
    unknown = sorted(set(inputs) - {t.name for t in bundle.inputs})
    if unknown:
        raise SimError(f"not graph inputs: {', '.join(unknown)}")
    context: dict[str, np.ndarray] = {}
    batches = set()
    for info in bundle.inputs:
        context[info.name], b = _prepare_input(info, inputs[info.name])
        batches.add(b)
    if len(batches) > 1:
        raise SimError(f"graph inputs disagree on the batch size: {sorted(batches)}")
    batch = batches.pop() if batches else 1

    keep_freed_memory()
    with one_blas_thread():
        _run_nodes(bundle, context, batch, return_all, on_node)
    if return_all:
        return context
    return {t.name: unpacked(context[t.name]) for t in bundle.outputs}


def _run_nodes(bundle: Bundle, context: dict[str, np.ndarray], batch: int, return_all: bool,
               on_node: Callable[[Node], None] | None) -> None:
    """Every node in turn, its outputs added to ``context`` (fused pairs together); without
    ``return_all`` each tensor is dropped after its last reader, so memory holds only the
    tensors still to be read, and one-bit maps whose readers all take them stay packed."""
    fusable = {} if return_all else _fusable(bundle)
    done_after = {} if return_all else _last_reads(bundle)
    packed = set() if return_all else _packed_tensors(bundle, fusable)
    deferred: dict[str, tuple[Node, list[np.ndarray | None]]] = {}
    for index, node in enumerate(bundle.nodes):
        args = _arguments(node, context, bundle, batch, deferred)
        if node.name in fusable:
            deferred[node.outputs[0]] = (node, args)
        elif node.inputs and node.inputs[0] in deferred:
            producer, producer_args = deferred.pop(node.inputs[0])
            produced = _run_fused(producer, node, producer_args, args[1:], batch,
                                  node.outputs[0] in packed)
            if produced is None:  # the fused kernel declined: run both as usual
                context.update(run_node(producer, producer_args, batch))
                produced = run_node(node, _arguments(node, context, bundle, batch, {}), batch,
                                    node.outputs[0] in packed)
            context.update(produced)
        else:
            context.update(run_node(node, args, batch, bool(node.outputs) and node.outputs[0] in packed))
        for name in done_after.get(index, ()):
            context.pop(name, None)
        if on_node is not None:
            on_node(node)


def _packed_tensors(bundle: Bundle, fusable: dict[str, Node]) -> set[str]:
    """Single outputs of kernels that can pack them whose every reader takes packed maps
    (a fused pair's window reads for the pair), graph outputs excluded."""
    readers: dict[str, list[bool]] = {}
    for node in bundle.nodes:
        spec = get_kernel(node.op_type, node.hw)
        takes = bool(spec and spec.packed_inputs)
        if node.name in fusable:
            takes = get_fusion(node, fusable[node.name]).packed_inputs
        for name in node.inputs:
            readers.setdefault(name, []).append(takes)
    by_name = {node.name: node for node in bundle.nodes}
    fused_producer = {c.name: by_name[p] for p, c in fusable.items()}
    outputs = {t.name for t in bundle.outputs}
    packed = set()
    for node in bundle.nodes:
        if len(node.outputs) != 1 or node.outputs[0] in outputs or node.name in fusable:
            continue
        spec = get_kernel(node.op_type, node.hw)
        packs = bool(spec and spec.packs)
        if node.name in fused_producer:
            packs = get_fusion(fused_producer[node.name], node).packs
        if packs and all(readers.get(node.outputs[0], [False])):
            packed.add(node.outputs[0])
    return packed


def _last_reads(bundle: Bundle) -> dict[int, list[str]]:
    """Node index -> the tensors (no graph outputs) nothing after that node reads."""
    last: dict[str, int] = {}
    for index, node in enumerate(bundle.nodes):
        for name in node.inputs + node.outputs:
            last[name] = index
    keep = {t.name for t in bundle.outputs}
    done: dict[int, list[str]] = {}
    for name, index in last.items():
        if name not in keep:
            done.setdefault(index, []).append(name)
    return done


def _arguments(
    node: Node, context: dict[str, np.ndarray], bundle: Bundle, batch: int,
    deferred: Mapping[str, object],
) -> list[np.ndarray | None]:
    """The node's input arrays (constants included), shapes checked; None for a tensor a
    fused pair has not materialised."""
    args: list[np.ndarray | None] = []
    for name, decl in zip(node.inputs, node.in_shapes):
        if name in deferred:
            args.append(None)
        elif name in context:
            arr = context[name]
            expected = None if decl is None else _batched(decl, batch)
            if expected is not None and tuple(arr.shape) != expected:
                raise SimError(
                    f"{node.label()}: input {name!r} has shape {arr.shape}, expected {expected}"
                )
            args.append(arr)
        elif name in bundle.initializers:
            args.append(bundle.initializers[name])
        elif name:
            raise SimError(f"{node.label()}: input tensor {name!r} is not available")
    return args


def _fusable(bundle: Bundle) -> dict[str, Node]:
    """Producer node name -> consumer, for pairs sim has a fused kernel for, where the
    producer's one output feeds only the consumer's first input and is no graph output."""
    users: dict[str, list[Node]] = {}
    for node in bundle.nodes:
        for name in node.inputs:
            users.setdefault(name, []).append(node)
    outputs = {t.name for t in bundle.outputs}
    pairs = {}
    for node in bundle.nodes:
        if len(node.outputs) != 1 or node.outputs[0] in outputs:
            continue
        consumers = users.get(node.outputs[0], [])
        if (len(consumers) == 1 and consumers[0].inputs[0] == node.outputs[0]
                and consumers[0].inputs.count(node.outputs[0]) == 1
                and get_fusion(node, consumers[0]) is not None):
            pairs[node.name] = consumers[0]
    return pairs


def _run_fused(
    producer: Node, consumer: Node, producer_args: list, consumer_rest: list, batch: int,
    pack: bool = False,
) -> dict[str, np.ndarray] | None:
    """The consumer's outputs computed from the producer's inputs without materialising the
    tensor between them; None if the fused kernel does not take this case."""
    fn = get_fusion(producer, consumer)
    if not fn.packed_inputs:
        producer_args = [unpacked(a) for a in producer_args]
    consumer_rest = [unpacked(a) for a in consumer_rest]
    kwargs = {"packed": True} if pack and fn.packs else {}
    try:
        result = fn(producer, consumer, producer_args, consumer_rest, **kwargs)
    except (SimError, DataTypeError) as err:
        msg = str(err)
        raise SimError(msg if msg.startswith("node ") else f"{consumer.label()}: {msg}") from err
    if result is None:
        return None
    return _finish(consumer, get_kernel(consumer.op_type, consumer.hw), result, batch)


def run_node(node: Node, args: list[np.ndarray], batch: int,
             pack: bool = False) -> dict[str, np.ndarray]:
    """Run one node's kernel on ``args`` and wrap hardware outputs to their declared types;
    with ``pack``, a kernel that can may return its one-bit output packed."""
    spec = get_kernel(node.op_type, node.hw)
    if spec is None:
        kind = "hardware layer" if node.hw else "op"
        raise SimError(f"{node.label()}: sim has no kernel for {kind} {node.op_type!r}")
    if not spec.packed_inputs:
        args = [unpacked(a) for a in args]
    kwargs = {"packed": True} if pack and spec.packs else {}
    try:
        result = spec.fn(node, args, **kwargs)
    except (SimError, DataTypeError) as err:
        msg = str(err)
        raise SimError(msg if msg.startswith("node ") else f"{node.label()}: {msg}") from err
    except (ValueError, IndexError, TypeError) as err:
        raise SimError(f"{node.label()}: {err}") from err
    return _finish(node, spec, result, batch)


def _finish(node: Node, spec, result, batch: int) -> dict[str, np.ndarray]:
    """A kernel's result checked against the node's declared outputs (reshaped where the
    kernel allows it) and, for hardware layers, wrapped to their data types."""
    outputs = result if isinstance(result, (list, tuple)) else [result]
    if len(outputs) != len(node.outputs):
        raise SimError(f"{node.label()}: kernel gave {len(outputs)} outputs, node has {len(node.outputs)}")
    produced = {}
    for i, (name, arr) in enumerate(zip(node.outputs, outputs)):
        if isinstance(arr, PackedMap) and not _holds(node.out_dtypes[i], arr):
            arr = arr.unpack()
        if not isinstance(arr, PackedMap):
            arr = np.asarray(arr)
        decl = node.out_shapes[i]
        if decl is not None:
            expected = _batched(decl, batch)
            if tuple(arr.shape) != expected:
                arr = unpacked(arr)
                if spec.reshape and arr.size == math.prod(expected):
                    arr = arr.reshape(expected)
                else:
                    raise SimError(
                        f"{node.label()}: output {name!r} has shape {arr.shape}, expected {expected}"
                    )
        if spec.hw and not isinstance(arr, PackedMap):
            arr = wrap(arr, node.out_dtypes[i])
        produced[name] = arr
    return produced


def _holds(declared: str, packed: PackedMap) -> bool:
    """A packed map holds values of the declared type as they are (no wrap to do)."""
    return declared == ("BIPOLAR" if packed.bipolar else "BINARY")

