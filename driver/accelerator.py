"""``Accelerator``: the deploy package's accelerator, on the board (pynq) or simulated (sim)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driver.buffers import check_images, from_dma_bytes, quantize_pixels, to_dma_bytes
from driver.errors import DriverError
from driver.iospec import IOSpec, check_manifest, load_spec

BACKENDS = ("pynq", "sim")
BITSTREAM_DIR = "bitstream"


@dataclass
class Output:
    """What the accelerator returned for a batch: per-pixel ``labels`` (N x H x W) where it
    computes them, and integer ``scores`` (N x H x W x K) with the ``scale``, ``bias`` and
    ``perm`` that turn them into the model's logits."""

    labels: np.ndarray | None
    scores: np.ndarray | None
    scale: np.ndarray | None
    bias: np.ndarray | None
    perm: tuple[int, ...] | None

    def logits(self) -> np.ndarray:
        """The model's float logits (its layout), as its software tail computes them."""
        if self.scores is None or self.scale is None:
            raise DriverError("this accelerator returns no scores with a scale")
        moved = np.transpose(self.scores, self.perm).astype(np.float32)
        return moved * self.scale + self.bias

    def predicted(self) -> np.ndarray:
        """Labels N x H x W: the accelerator's own, else the argmax of the logits (first index
        on ties, as the accelerator's label select and numpy's argmax)."""
        if self.labels is not None:
            return self.labels
        if self.scores is None:
            raise DriverError("this accelerator returns neither labels nor scores")
        return np.argmax(self.logits(), axis=self.perm.index(len(self.perm) - 1))


class Accelerator:
    """``Accelerator(package_dir, backend="pynq" | "sim")``; ``execute(images)``.

    ``timeout_s`` bounds the wait for the output DMAs; ``device`` and ``download`` are
    passed to ``pynq.Overlay`` (a test's fake device; ``download=False`` keeps a loaded
    bitstream)."""

    def __init__(self, package_dir: str | Path, backend: str = "pynq", timeout_s: float = 10.0,
                 device=None, download: bool = True) -> None:
        self.package = Path(package_dir)
        if not self.package.is_dir():
            raise DriverError(f"{self.package}: no such deploy package folder")
        if backend not in BACKENDS:
            raise DriverError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        self.spec: IOSpec = load_spec(self.package)
        self.timeout_s = float(timeout_s)
        if backend == "sim":
            from driver.sim_backend import SimBackend

            self.backend = SimBackend(self.package, self.spec)
        else:
            from driver.pynq_backend import PynqBackend

            bitfile = self._bitfile()
            self.manifest = check_manifest(self.spec, bitfile.parent / "manifest.json")
            self.backend = PynqBackend(self.spec, bitfile, device=device, download=download)

    def _bitfile(self) -> Path:
        folder = self.package / BITSTREAM_DIR
        bits = sorted(folder.glob("*.bit"))
        if len(bits) != 1 or not bits[0].with_suffix(".hwh").exists():
            raise DriverError(f"{folder}: expected one .bit with its .hwh (found "
                              f"{len(bits)} .bit); this package was made without a bitstream, "
                              "use backend='sim'")
        return bits[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(H, W, C) of one image."""
        return self.spec.inputs[0].shape[1:]

    def execute(self, images: np.ndarray) -> Output:
        """uint8 images N x H x W x C -> :class:`Output`."""
        port = self.spec.inputs[0]
        images = check_images(images, port)
        packed = to_dma_bytes(quantize_pixels(images, port), port)
        raw = self.backend.run([packed], self.timeout_s)
        return self._outputs([from_dma_bytes(r, p) for r, p in zip(raw, self.spec.outputs)])

    def _outputs(self, values: list[np.ndarray]) -> Output:
        labels = scores = scale = bias = perm = None
        for port, v in zip(self.spec.outputs, values):
            if port.extra.get("kind") == "labels":
                labels = v.reshape(v.shape[:-1]).astype(np.int64) if v.shape[-1] == 1 else v
            elif scores is None:
                scores = v.astype(np.int64)
                if port.extra.get("scale") is not None:
                    scale = np.asarray(port.extra["scale"], dtype=np.float32)
                    bias = np.asarray(port.extra.get("bias", 0.0), dtype=np.float32)
                perm = tuple(port.extra.get("perm") or range(v.ndim))
        return Output(labels, scores, scale, bias, perm)

    def load_weights(self, weights: str | Path) -> None:
        """Write a retrained model's weights and thresholds (``weights.npz`` from ``hw-gen
        weights NEW.onnx --package PKG``) into the runtime-writable layers; nothing is
        written unless every layer's values are there and fit the package."""
        from driver.weights import read_weights

        self.backend.load_weights(read_weights(weights, self.spec))

    def throughput_test(self, batch: int = 8, repeats: int = 3) -> dict[str, float]:
        """Frames/s of the accelerator alone (packed buffers in, packed buffers out) and of
        the whole ``execute`` (packing included), best of ``repeats`` runs of ``batch`` frames."""
        port = self.spec.inputs[0]
        images = np.random.default_rng(0).integers(
            0, 256, (batch,) + tuple(port.shape[1:])).astype(np.uint8)
        packed = [to_dma_bytes(quantize_pixels(images, port), port)]
        run_s = min(_timed(lambda: self.backend.run(packed, self.timeout_s))
                    for _ in range(repeats))
        total_s = min(_timed(lambda: self.execute(images)) for _ in range(repeats))
        return {"backend": self.backend.name, "batch": batch,
                "accelerator_frames_per_s": batch / run_s,
                "execute_frames_per_s": batch / total_s,
                "runtime_ms": run_s * 1e3}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
