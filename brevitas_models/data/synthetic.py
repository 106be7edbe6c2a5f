"""A synthetic dense-prediction data set, generated in code: seeded, any size and resolution.

Classes (``CLASS_NAMES``), drawn in this order over a textured background:

0 background   smooth two-colour gradient (muted colours) plus pixel noise
1 blob         filled discs of the *patch* colour (orange) outside every ring
2 line         thin curves, 1 or 2 px wide, in the *line* colour (cyan)
3 ring         large annuli in the *ring* colour (violet)
4 inner        filled discs of the same patch colour as blobs, centred inside a ring: told
               apart from class 1 only by what surrounds them (context)
5 stripes      squares of alternating stripes of the line and ring colours: told apart from
               lines and rings only by the texture of the neighbourhood

A per-pixel (1x1) classifier cannot separate 1 from 4, nor the stripes from lines and rings;
a network that sees context can. Every image gets pixel noise on top.

Determinism: sample ``i`` of split ``split`` is drawn from ``numpy.random.default_rng((seed,
split_id, i))``, so the same (seed, split, index, size) gives the same bytes, whatever else is
generated, and the train and val splits never share a stream.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from brevitas_models.data.common import IGNORE_INDEX, to_float_image
from brevitas_models.errors import ModelError

CLASS_NAMES = ("background", "blob", "line", "ring", "inner", "stripes")
NUM_CLASSES = len(CLASS_NAMES)
BACKGROUND, BLOB, LINE, RING, INNER, STRIPES = range(NUM_CLASSES)
SPLITS = {"train": 0, "val": 1, "test": 2}

# Base colours (RGB in [0, 1]); every object jitters its colour a little around them.
PATCH_COLOUR = np.array([0.95, 0.55, 0.10])
LINE_COLOUR = np.array([0.10, 0.85, 0.90])
RING_COLOUR = np.array([0.60, 0.25, 0.85])
COLOUR_JITTER = 0.06
PIXEL_NOISE = 0.05


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float64)


def _jitter(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    return np.clip(colour + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3), 0.0, 1.0)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    grey_a, grey_b = rng.uniform(0.15, 0.6, 2)
    tint_a, tint_b = rng.uniform(-0.08, 0.08, (2, 3))
    a, b = grey_a + tint_a, grey_b + tint_b
    image = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    # low-frequency blotches: a coarse noise grid, upsampled by repetition and blurred
    cell = max(2, min(h, w) // 8)
    coarse = rng.normal(0.0, 0.05, (h // cell + 2, w // cell + 2, 1))
    blotch = np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:h, :w]
    return image + blotch


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _draw_ring(rng, image, label, yy, xx, rings):
    h, w = label.shape
    scale = min(h, w)
    outer = rng.uniform(0.22, 0.34) * scale
    thickness = max(2.0, rng.uniform(0.05, 0.07) * scale)
    cy = rng.uniform(outer * 0.8, h - outer * 0.8)
    cx = rng.uniform(outer * 0.8, w - outer * 0.8)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    ring = (dist <= outer) & (dist > outer - thickness)
    image[ring] = _jitter(rng, RING_COLOUR)
    label[ring] = RING
    inner_free = outer - thickness
    r = rng.uniform(0.25, 0.5) * inner_free
    offset = rng.uniform(0, max(0.0, inner_free - r - 1.0))
    angle = rng.uniform(0, 2 * np.pi)
    patch = _disc(yy, xx, cy + offset * np.sin(angle), cx + offset * np.cos(angle), r)
    image[patch] = _jitter(rng, PATCH_COLOUR)
    label[patch] = INNER
    rings.append((cy, cx, outer))


def _draw_blob(rng, image, label, yy, xx, rings, tries: int = 20):
    h, w = label.shape
    scale = min(h, w)
    for _ in range(tries):
        r = rng.uniform(0.05, 0.11) * scale
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        if all((cy - ry) ** 2 + (cx - rx) ** 2 > (ro + r + 1.0) ** 2 for ry, rx, ro in rings):
            blob = _disc(yy, xx, cy, cx, r)
            image[blob] = _jitter(rng, PATCH_COLOUR)
            label[blob] = BLOB
            return


def _draw_stripes(rng, image, label, yy, xx):
    h, w = label.shape
    side = rng.uniform(0.16, 0.26) * min(h, w)
    y0, x0 = rng.uniform(0, h - side), rng.uniform(0, w - side)
    square = (yy >= y0) & (yy < y0 + side) & (xx >= x0) & (xx < x0 + side)
    period = int(rng.integers(2, 4)) * 2
    coord = (yy if rng.random() < 0.5 else xx) - (y0 if rng.random() < 0.5 else x0)
    first = (np.floor(coord) % period) < period // 2
    line_colour, ring_colour = _jitter(rng, LINE_COLOUR), _jitter(rng, RING_COLOUR)
    image[square & first] = line_colour
    image[square & ~first] = ring_colour
    label[square] = STRIPES


def _draw_line(rng, image, label):
    """A quadratic Bezier curve, rasterised 1 or 2 px wide."""
    h, w = label.shape
    points = rng.uniform(0, 1, (3, 2)) * np.array([h - 1, w - 1])
    t = np.linspace(0, 1, 4 * (h + w))[:, None]
    curve = (1 - t) ** 2 * points[0] + 2 * (1 - t) * t * points[1] + t**2 * points[2]
    pixels = np.unique(np.round(curve).astype(np.int64), axis=0)
    if rng.random() < 0.5:
        pixels = np.concatenate([pixels, pixels + np.array([0, 1])])
    pixels = pixels[(pixels[:, 0] < h) & (pixels[:, 1] < w)]
    image[pixels[:, 0], pixels[:, 1]] = _jitter(rng, LINE_COLOUR)
    label[pixels[:, 0], pixels[:, 1]] = LINE


def make_sample(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One image (``uint8`` H x W x 3) and its label map (``uint8`` H x W)."""
    image = _background(rng, height, width)
    label = np.full((height, width), BACKGROUND, np.uint8)
    yy, xx = _grid(height, width)
    for _ in range(rng.integers(0, 3)):
        _draw_stripes(rng, image, label, yy, xx)
    rings: list[tuple[float, float, float]] = []
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        _draw_ring(rng, image, label, yy, xx, rings)
    for _ in range(rng.integers(1, 4)):
        _draw_blob(rng, image, label, yy, xx, rings)
    for _ in range(rng.integers(1, 3)):
        _draw_line(rng, image, label)
    image = image + rng.normal(0.0, PIXEL_NOISE, image.shape)
    pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    return pixels, label


def generate(
    count: int, height: int = 64, width: int | None = None, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` samples: images ``uint8`` (N, H, W, 3) and labels ``uint8`` (N, H, W)."""
    width = height if width is None else width
    if split not in SPLITS:
        raise ModelError(f"synthetic data: unknown split {split!r}; known: {', '.join(SPLITS)}")
    if count < 0 or height < 16 or width < 16:
        raise ModelError(
            f"synthetic data: need count >= 0 and a size of at least 16x16, got {count} x {height}x{width}"
        )
    images = np.empty((count, height, width, 3), np.uint8)
    labels = np.empty((count, height, width), np.uint8)
    for i in range(count):
        rng = np.random.default_rng((seed, SPLITS[split], i))
        images[i], labels[i] = make_sample(rng, height, width)
    return images, labels


class SyntheticSegmentation(Dataset):
    """The synthetic set as a torch ``Dataset`` of (float image 3 x H x W in [0, 1] = pixel/255,
    int64 label H x W). Generated once at construction and held in memory as ``uint8``."""

    num_classes = NUM_CLASSES
    class_names = CLASS_NAMES
    ignore_index = IGNORE_INDEX

    def __init__(
        self, split: str = "train", length: int = 1000, size: int | tuple[int, int] = 64, seed: int = 0
    ):
        height, width = (size, size) if isinstance(size, int) else size
        self.split, self.seed = split, seed
        self.images, self.labels = generate(length, height, width, seed, split)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_float_image(self.images[index]), torch.from_numpy(self.labels[index].astype(np.int64))
