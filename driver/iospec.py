"""The I/O description of a deploy package (``io.json``) and the bitstream manifest check.

``io.json`` (format "hwgen-io", version 1) is written by ``hw-gen deploy``:

- ``inputs`` / ``outputs``: one entry per accelerator port, in DMA order, each with
  ``name``, ``dma`` (the IODMA instance: ``idma0``, ``odma0``, ...), ``dtype`` (FINN DataType
  name), ``shape`` (normal shape, batch 1 first), ``folded_shape`` (the stream's words of PE
  elements) and ``packed_shape`` (bytes per word, FINN's driver packing);
- an input also has ``quant``: the model's input quantizer, ``{scale, signed, bits,
  pixel_scale}``: an 8-bit pixel ``k`` is the model input ``k * pixel_scale`` and reaches the
  accelerator as ``round_half_even(k * pixel_scale / scale)``, clipped to the quantizer's range;
- an output has ``kind``: ``labels`` (one label per pixel) or ``scores`` (integer class
  scores), and for scores ``perm`` (the transpose to the model's layout), ``scale`` and
  ``bias`` (per-class lists or scalars: the model's logits are ``scores * scale + bias``);
- ``bundle``: the sim bundle of the accelerator (the simulated backend runs it);
- ``model_sha256``, ``board``, ``clock_ns``: what was built;
- ``runtime_weights`` (builds with ``--runtime-weights``): the writable layers, in FINN's
  AXI-lite order, each ``{name, op_type, kind (weights | thresholds), tensor, shape, dtype,
  axilite}``, ``axilite`` the overlay's AXI-lite interface of its memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.errors import DriverError

IO_NAME = "io.json"
FORMAT = "hwgen-io"
VERSION = 1
# The fields a bitstream's manifest must agree on with the I/O description.
PORT_FIELDS = ("name", "dma", "dtype", "shape", "folded_shape", "packed_shape")


@dataclass(frozen=True)
class Port:
    name: str
    dma: str
    dtype: str
    shape: tuple[int, ...]
    folded_shape: tuple[int, ...]
    packed_shape: tuple[int, ...]
    extra: dict[str, Any]

    @property
    def frame_bytes(self) -> int:
        n = 1
        for s in self.packed_shape[1:]:
            n *= s
        return n

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dma": self.dma, "dtype": self.dtype,
                "shape": list(self.shape), "folded_shape": list(self.folded_shape),
                "packed_shape": list(self.packed_shape)}


@dataclass(frozen=True)
class IOSpec:
    path: Path
    inputs: list[Port]
    outputs: list[Port]
    bundle: str
    model_sha256: str
    board: str
    clock_ns: float
    runtime_weights: tuple[dict[str, Any], ...] = ()


def _port(entry: dict, where: str) -> Port:
    try:
        return Port(
            name=str(entry["name"]), dma=str(entry["dma"]), dtype=str(entry["dtype"]),
            shape=tuple(int(s) for s in entry["shape"]),
            folded_shape=tuple(int(s) for s in entry["folded_shape"]),
            packed_shape=tuple(int(s) for s in entry["packed_shape"]),
            extra={k: v for k, v in entry.items() if k not in PORT_FIELDS},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DriverError(f"{where}: port entry {entry.get('name', '?')!r} is incomplete "
                          f"({exc!r})") from None


def load_spec(package: str | Path) -> IOSpec:
    """Read ``package/io.json``; a one-line :class:`DriverError` if missing or malformed."""
    path = Path(package) / IO_NAME
    if not path.exists():
        raise DriverError(f"{path}: no I/O description (is {package} a deploy package made "
                          "by `hw-gen deploy`?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DriverError(f"{path}: not JSON ({exc})") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise DriverError(f"{path}: format {data.get('format')!r} version "
                          f"{data.get('version')!r}, this driver reads {FORMAT!r} {VERSION}")
    inputs = [_port(e, str(path)) for e in data.get("inputs", [])]
    outputs = [_port(e, str(path)) for e in data.get("outputs", [])]
    if len(inputs) != 1 or not outputs:
        raise DriverError(f"{path}: {len(inputs)} inputs and {len(outputs)} outputs; the "
                          "driver takes one image input and at least one output")
    return IOSpec(path, inputs, outputs, str(data["bundle"]), str(data.get("model_sha256", "")),
                  str(data.get("board", "")), float(data.get("clock_ns", 0.0)),
                  tuple(data.get("runtime_weights") or ()))


def check_manifest(spec: IOSpec, manifest_path: Path) -> dict[str, Any]:
    """Refuse a bitstream whose manifest was built for other ports or another model."""
    if not manifest_path.exists():
        raise DriverError(f"{manifest_path}: no manifest beside the bitstream")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("model_sha256") != spec.model_sha256:
        raise DriverError(f"{manifest_path}: built from model {manifest.get('model_sha256')!r}, "
                          f"the I/O description is for {spec.model_sha256!r}")
    io = manifest.get("io", {})
    for kind, ports in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        theirs = io.get(kind, [])
        ours = [p.describe() for p in ports]
        if len(theirs) != len(ours):
            raise DriverError(f"{manifest_path}: {len(theirs)} {kind}, the I/O description "
                              f"has {len(ours)}")
        for a, b in zip(ours, theirs):
            for key in PORT_FIELDS:
                if a[key] != b.get(key):
                    raise DriverError(
                        f"{manifest_path}: {kind} port {a['name']}: {key} {b.get(key)!r} in the "
                        f"bitstream's manifest, {a[key]!r} in {spec.path.name}")
    return manifest
