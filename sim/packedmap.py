"""One-bit feature maps held packed between layers.

A BINARY (0/1) or BIPOLAR (-1/+1) map (N, H, W, C) is its pixels' channel bits packed as
:func:`sim.bitconv.pack_pixels` packs them: (N, H, W, ceil(C / 8)) uint8, first channel in the
most significant bit, bit 1 meaning 1 (BINARY) or +1 (BIPOLAR), the last byte's spare bits 0.
That is what an XNOR product reads, so a map passed on packed is never unpacked, and padding,
concatenation, duplication and nearest upsampling move an eighth of the bytes.

During :func:`sim.run` a kernel registered with ``packs=True`` is asked (``packed=True``) to
return a :class:`PackedMap` where every reader of its output takes one (``packed_inputs=True``);
a kernel that does not is given the unpacked values (:func:`unpacked`). Graph outputs and
``return_all`` runs hold plain arrays only.
"""

from __future__ import annotations

import numpy as np

from sim.layout import columns_into

# The declared types a packed map holds.
ONE_BIT_TYPES = ("BINARY", "BIPOLAR")
_BIT_WEIGHTS = (1 << np.arange(7, -1, -1)).astype(np.uint8)[None, :, None]


class PackedMap:
    """A one-bit NHWC map as packed channel bits (see the module docstring)."""

    __slots__ = ("bits", "channels", "bipolar")

    def __init__(self, bits: np.ndarray, channels: int, bipolar: bool) -> None:
        if bits.dtype != np.uint8 or bits.shape[-1] != -(-channels // 8):
            raise ValueError(f"packed bits {bits.shape} {bits.dtype} do not hold {channels} channels")
        self.bits, self.channels, self.bipolar = bits, int(channels), bool(bipolar)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.bits.shape[:-1]) + (self.channels,)

    @property
    def ndim(self) -> int:
        return self.bits.ndim

    @property
    def dtype(self) -> np.dtype:
        """The container type of the unpacked values (int8 for BIPOLAR, uint8 for BINARY)."""
        return np.dtype(np.int8 if self.bipolar else np.uint8)

    @property
    def aligned(self) -> bool:
        """The channels fill whole bytes (no spare bits)."""
        return self.channels % 8 == 0

    def unpack(self) -> np.ndarray:
        """The values: uint8 0/1 (BINARY) or int8 -1/+1 (BIPOLAR), (N, H, W, C)."""
        flat = np.unpackbits(self.bits.reshape(-1, self.bits.shape[-1]), axis=-1,
                             count=self.channels)
        values = flat.reshape(self.shape)
        if self.bipolar:
            values = values.view(np.int8)
            values <<= 1
            values -= 1
        return values


def unpacked(value: np.ndarray | PackedMap | None) -> np.ndarray | None:
    """``value`` as a plain array (a :class:`PackedMap` unpacked)."""
    return value.unpack() if isinstance(value, PackedMap) else value


def wrapped_bits(values: np.ndarray, bipolar: bool) -> np.ndarray:
    """The bit (uint8 0/1) a wrap to BINARY or BIPOLAR keeps of integer ``values``: the low bit
    of ``v``, or of ``(v + 1) / 2``."""
    v = values
    if bipolar:
        v = v + 1
        v >>= 1
    return (v & 1).astype(np.uint8, copy=False)


def pack_channel_bits(bits: np.ndarray) -> np.ndarray:
    """Channel-major bits (uint8 0/1) (C, pixels) -> packed (pixels, ceil(C / 8))."""
    if bits.shape[0] % 8:
        bits = np.concatenate([bits, np.zeros((-bits.shape[0] % 8, bits.shape[1]), np.uint8)])
    # the bits of a byte are disjoint, so their weighted sum is the byte (np.packbits along
    # the first axis is 40x slower)
    packed = (bits.reshape(-1, 8, bits.shape[1]) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint8)
    out = np.empty((packed.shape[1], packed.shape[0]), dtype=np.uint8)
    columns_into(out, packed)
    return out
