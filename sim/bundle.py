"""The sim bundle: a FINN dataflow graph as ``<name>.json`` + ``<name>.npz`` (numpy only).

``hw_gen/bundle.py`` writes it from a qonnx ModelWrapper; this module reads it. JSON layout
(version 1, keys sorted):

- ``format``: "hwgen-sim-bundle"; ``version``: 1; ``name``: model name;
- ``npz``: file name of the array archive beside the JSON; ``npz_sha256``: its hash;
- ``inputs`` / ``outputs``: ``[{name, shape, dtype, folded_shape}]`` in graph order, dtype a
  FINN DataType name, ``folded_shape`` the stream's folded shape when a hardware layer
  consumes (produces) the tensor, else null;
- ``tensors``: ``{name: {shape, dtype}}`` for every non-constant tensor (shape may be null);
- ``initializers``: ``{name: {npz_key, shape, dtype}}``, the constant inputs, stored in the
  npz under ``npz_key`` with their ONNX values and numpy dtype unchanged;
- ``nodes``: topological order, each ``{name, op_type, impl_op_type, domain, hw, inputs,
  outputs, attrs, out_dtypes, derived, partition}``. ``op_type`` is normalised (``MVAU_hls`` ->
  ``MVAU``), ``impl_op_type`` keeps the original; ``hw`` marks FINN hardware layers
  (``backend="fpgadataflow"``); ``attrs`` holds the node attributes under FINN's names
  with FINN's defaults filled in; ``out_dtypes`` the declared output DataTypes; ``derived``
  facts computed from the graph that a kernel needs (e.g. a VVAU's input order);
  ``partition`` the StreamingDataflowPartition node it was inlined from, or null.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "hwgen-sim-bundle"
VERSION = 1

_MISSING = object()


class SimError(RuntimeError):
    """A bundle or graph sim cannot run; the message names the node or tensor at fault."""


@dataclass(frozen=True)
class TensorInfo:
    """Declared shape (batch as exported, usually 1) and FINN DataType name of a tensor."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str
    folded_shape: tuple[int, ...] | None = None


@dataclass
class Node:
    """One graph node as the kernels see it."""

    name: str
    op_type: str
    impl_op_type: str
    domain: str
    hw: bool
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    out_dtypes: list[str]
    derived: dict[str, Any] = field(default_factory=dict)
    partition: str | None = None
    in_shapes: list[tuple[int, ...] | None] = field(default_factory=list)
    out_shapes: list[tuple[int, ...] | None] = field(default_factory=list)

    def attr(self, key: str, default: Any = _MISSING) -> Any:
        """A node attribute; a missing one without default is an error naming the node."""
        if key in self.attrs:
            return self.attrs[key]
        if default is _MISSING:
            raise SimError(f"node {self.name} ({self.impl_op_type}): attribute {key!r} missing")
        return default

    def label(self) -> str:
        return f"node {self.name} ({self.impl_op_type})"


@dataclass
class Bundle:
    """A loaded bundle: graph I/O, tensors, nodes in topological order and constant arrays."""

    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    initializers: dict[str, np.ndarray]

    @classmethod
    def from_parts(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Bundle:
        """Build from the JSON document (as a dict) and the npz arrays (by ``npz_key``)."""
        if spec.get("format") != FORMAT:
            raise SimError(f"not a sim bundle (format {spec.get('format')!r}, want {FORMAT!r})")
        if spec.get("version") != VERSION:
            raise SimError(f"sim bundle version {spec.get('version')!r} not supported (want {VERSION})")
        tensors = {name: _tensor(name, t) for name, t in spec["tensors"].items()}
        inits: dict[str, np.ndarray] = {}
        for name, info in spec["initializers"].items():
            key = info["npz_key"]
            if key not in arrays:
                raise SimError(f"initializer {name!r}: array {key!r} missing from the npz")
            inits[name] = np.asarray(arrays[key])
        nodes = []
        for n in spec["nodes"]:
            node = Node(
                name=n["name"],
                op_type=n["op_type"],
                impl_op_type=n["impl_op_type"],
                domain=n["domain"],
                hw=bool(n["hw"]),
                inputs=list(n["inputs"]),
                outputs=list(n["outputs"]),
                attrs=dict(n["attrs"]),
                out_dtypes=list(n["out_dtypes"]),
                derived=dict(n.get("derived") or {}),
                partition=n.get("partition"),
            )
            node.in_shapes = [_shape_of(t, tensors, inits) for t in node.inputs]
            node.out_shapes = [_shape_of(t, tensors, inits) for t in node.outputs]
            nodes.append(node)
        return cls(
            name=spec["name"],
            inputs=[_tensor(t["name"], t) for t in spec["inputs"]],
            outputs=[_tensor(t["name"], t) for t in spec["outputs"]],
            tensors=tensors,
            nodes=nodes,
            initializers=inits,
        )


def _tensor(name: str, t: dict[str, Any]) -> TensorInfo:
    shape = None if t.get("shape") is None else tuple(int(s) for s in t["shape"])
    folded = None if t.get("folded_shape") is None else tuple(int(s) for s in t["folded_shape"])
    return TensorInfo(name, shape, t["dtype"], folded)


def _shape_of(
    name: str, tensors: dict[str, TensorInfo], inits: dict[str, np.ndarray]
) -> tuple[int, ...] | None:
    if name in inits:
        return tuple(inits[name].shape)
    info = tensors.get(name)
    return None if info is None else info.shape


def bundle_paths(path: str | Path) -> tuple[Path, Path]:
    """(json, npz) paths for a bundle given by its stem or its JSON path."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def load_bundle(path: str | Path) -> Bundle:
    """Read ``<stem>.json`` and the npz it names; checks format, version and the npz hash."""
    json_path, _ = bundle_paths(path)
    if not json_path.exists():
        raise SimError(f"bundle {json_path} not found")
    spec = json.loads(json_path.read_text())
    npz_path = json_path.with_name(spec.get("npz", json_path.stem + ".npz"))
    if not npz_path.exists():
        raise SimError(f"bundle arrays {npz_path} not found")
    digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    if spec.get("npz_sha256") not in (None, digest):
        raise SimError(f"{npz_path} does not match {json_path.name} (sha256 differs)")
    with np.load(npz_path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return Bundle.from_parts(spec, arrays)
