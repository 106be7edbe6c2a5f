"""The packed-domain kernels against plain references written here (int64, no packing):
windows gathered pixel by pixel, the MBU's branches by im2col, bilinear taps by gather,
thresholds by broadcast comparison, tiles of a large map, bipolar wrapping."""

from __future__ import annotations

import numpy as np
import pytest

import sim.bitconv as bitconv
from sim.datatypes import wrap
from sim.kernels.mbu import branch_accumulators, branch_sum
from sim.kernels.upsample import axis_taps, bilinear_sum
from sim.kernels.window import conv_out_dim, sliding_window
from sim.exact import packed_matches
from sim.thresholds import count_thresholds


def windows_reference(x, kernel, stride, dilation):
    n, h, w, c = x.shape
    oh = conv_out_dim(h, kernel[0], stride[0], 0, dilation[0])
    ow = conv_out_dim(w, kernel[1], stride[1], 0, dilation[1])
    out = np.zeros((n, oh, ow, kernel[0] * kernel[1] * c), dtype=x.dtype)
    for y in range(oh):
        for xx in range(ow):
            taps = [x[:, y * stride[0] + ky * dilation[0], xx * stride[1] + kx * dilation[1]]
                    for ky in range(kernel[0]) for kx in range(kernel[1])]
            out[:, y, xx] = np.concatenate(taps, axis=-1)
    return out


WINDOW_CASES = [  # (N, H, W, C, kernel, stride, dilation, dtype)
    (1, 7, 9, 3, (3, 3), (1, 1), (1, 1), np.uint8),
    (2, 8, 6, 5, (3, 2), (2, 1), (1, 2), np.int64),
    (1, 9, 9, 1, (1, 1), (2, 2), (1, 1), np.int8),
    (1, 11, 10, 13, (3, 3), (1, 2), (3, 2), np.int16),
    (1, 5, 5, 70, (5, 5), (1, 1), (1, 1), np.uint8),
]


@pytest.mark.parametrize("case", WINDOW_CASES)
def test_sliding_window_equals_pixelwise_gather(case):
    n, h, w, c, k, s, d, dt = case
    x = np.random.default_rng(c).integers(-100 if dt != np.uint8 else 0, 100, (n, h, w, c)).astype(dt)
    assert np.array_equal(sliding_window(x, k, s, d), windows_reference(x, k, s, d))


@pytest.mark.parametrize("c", [1, 7, 8, 13, 64, 70])
def test_packed_windows_count_the_matches_of_unpacked_windows(c):
    rng = np.random.default_rng(c)
    k, s, d = (3, 3), (2, 1), (1, 2)
    x = rng.integers(0, 2, (2, 9, 12, c)).astype(np.uint8)
    w_bits = rng.integers(0, 2, (9 * c, 5)).astype(np.uint8)
    rows = bitconv.window_words(bitconv.pack_pixels(x), k, s, d)
    got = packed_matches(rows, bitconv.weight_words(w_bits, 9, c), 9 * c)
    windows = windows_reference(x, k, s, d).reshape(-1, 9 * c).astype(np.int64)
    want = windows @ w_bits + (1 - windows) @ (1 - w_bits.astype(np.int64))
    assert np.array_equal(got, want)


def test_row_tiles_cover_the_map_in_bounded_pieces(monkeypatch):
    monkeypatch.setattr(bitconv, "TILE_ROWS", 10)
    x = np.random.default_rng(3).integers(0, 2, (2, 13, 7, 9)).astype(np.uint8)
    packed = bitconv.pack_pixels(x)
    whole = bitconv.window_words(packed, (3, 3), (2, 1), (2, 1))
    pieces = list(bitconv.row_tiles(packed, (3, 3), (2, 1), (2, 1)))
    assert max(p.shape[0] for _, p in pieces) <= 10
    ow = whole.shape[0] // (2 * 5)
    assert np.array_equal(np.concatenate([p for _, p in pieces]), whole)
    assert [start * ow for start, _ in pieces] == list(np.cumsum([0] + [p.shape[0] for _, p in pieces[:-1]]))


def mbu_branches_reference(x, weights, dilations):
    """im2col of the -1-padded map, int64 products."""
    n, h, w, cin = x.shape
    out = []
    for k, d in enumerate(dilations):
        xp = np.pad(x.astype(np.int64), ((0, 0), (d, d), (d, d), (0, 0)), constant_values=-1)
        cols = windows_reference(xp, (3, 3), (1, 1), (d, d)).reshape(-1, 9 * cin)
        wmat = weights[k].transpose(2, 3, 1, 0).reshape(9 * cin, -1).astype(np.int64)
        out.append((cols @ wmat).reshape(n, h, w, -1))
    return out


@pytest.mark.parametrize("cin,cout,dilations", [(3, 2, [1]), (13, 5, [1, 2, 3]), (70, 4, [1, 4]),
                                                (16, 16, [1, 2, 3, 4])])
def test_mbu_branches_equal_im2col(cin, cout, dilations, monkeypatch):
    monkeypatch.setattr(bitconv, "TILE_ROWS", 16)  # several tiles per branch
    rng = np.random.default_rng(cin)
    x = rng.choice(np.array([-1, 1], dtype=np.int8), (2, 6, 9, cin))
    weights = rng.choice(np.array([-1, 1], dtype=np.int8), (len(dilations), cout, cin, 3, 3))
    want = mbu_branches_reference(x, weights, dilations)
    got = list(branch_accumulators(x, weights, dilations))
    assert all(np.array_equal(g, r) for g, r in zip(got, want))
    gains = rng.integers(0, 1 << 16, (len(dilations), cout))
    assert np.array_equal(branch_sum(x, weights, gains, dilations),
                          sum(g[:, None, None, :].astype(np.int64) * r
                              for g, r in zip(gains[:, None], want))[..., :])


def bilinear_reference(x, factor):
    x = np.asarray(x, dtype=np.int64)
    r, c = axis_taps(x.shape[1], factor), axis_taps(x.shape[2], factor)
    v = r.w_first[None, :, None, None] * x[:, r.first] + r.w_second[None, :, None, None] * x[:, r.second]
    return c.w_first[None, None, :, None] * v[:, :, c.first] + c.w_second[None, None, :, None] * v[:, :, c.second]


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (3, 1), (7, 9)])
def test_bilinear_by_shifts_equals_gather(factor, h, w):
    x = np.random.default_rng(h * w).integers(-1000, 1000, (2, h, w, 3))
    for dt in (np.int16, np.int32, np.int64):
        assert np.array_equal(bilinear_sum(x.astype(dt), factor), bilinear_reference(x, factor))


@pytest.mark.parametrize("dt", [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32])
def test_narrow_thresholds_count_like_broadcast(dt):
    rng = np.random.default_rng(np.dtype(dt).itemsize)
    info = np.iinfo(dt) if dt != np.bool_ else np.iinfo(np.uint8)
    lo, hi = (0, 1) if dt == np.bool_ else (max(int(info.min), -300), min(int(info.max), 300))
    x = rng.integers(lo, hi + 1, (4, 5, 7)).astype(dt)
    thr = np.sort(rng.uniform(lo - 3, hi + 3, (7, 3)), axis=1)
    thr[0, 0], thr[1, 2] = np.nan, float(info.max) + 5  # never fires
    thr[2, 0] = float(info.min) - 5  # always fires
    thr[3] = np.floor(thr[3])
    want = (x.astype(np.float64)[..., None] >= thr).sum(axis=-1)
    for narrow in (False, True):
        got = count_thresholds(x, thr, narrow=narrow)
        assert got.dtype == (np.int16 if narrow else np.int64)
        assert np.array_equal(got, want)


def test_bipolar_wrap_keeps_signs_and_wraps_the_rest():
    v = np.array([[-1, 1, 1], [-1, -1, 1]], dtype=np.int16)
    assert np.array_equal(wrap(v, "BIPOLAR"), v) and wrap(v, "BIPOLAR").dtype == np.int8
    odd = np.array([0, 2, -3, 3, 1], dtype=np.int16)  # bit (v + 1) / 2 mod 2
    assert np.array_equal(wrap(odd, "BIPOLAR"), [-1, 1, 1, -1, 1])


@pytest.mark.parametrize("signs", ["random", "all_plus"])
def test_mbu_int16_sum_equals_int64_reference_up_to_its_bound(signs):
    from sim.kernels.mbu import multi_branch_upsample

    rng = np.random.default_rng(7)
    cin, cout, dilations = 16, 5, [1, 2, 3, 4]
    shape = (1, 6, 9, cin)
    x = rng.choice(np.array([-1, 1], dtype=np.int8), shape) if signs == "random" \
        else np.ones(shape, dtype=np.int8)
    weights = rng.choice(np.array([-1, 1], dtype=np.int8), (4, cout, cin, 3, 3)) \
        if signs == "random" else np.ones((4, cout, cin, 3, 3), dtype=np.int8)
    # the largest gate for which 4 branches * 9 * 16 * gate * 16 stays below 2^15: int16
    gate = ((1 << 15) - 1) // (4 * 9 * cin * 16)
    gains = np.full((4, cout), gate) if signs == "all_plus" else rng.integers(0, gate + 1, (4, cout))
    got = multi_branch_upsample(x, weights, gains, dilations, "bilinear")
    branches = mbu_branches_reference(x, weights, dilations)
    total = sum(g[None, None, None, :].astype(np.int64) * r for g, r in zip(gains, branches))
    assert got.dtype == np.int16
    assert np.array_equal(got, bilinear_reference(total, 2))


@pytest.mark.parametrize("out_type,packed", [("BINARY", True), ("BINARY", False), ("UINT2", False),
                                             ("BIPOLAR", True)])
@pytest.mark.parametrize("cout,threads", [(5, 1), (13, 2), (16, 2)])
def test_mbu_with_its_thresholds_equals_int64_reference(out_type, packed, cout, threads,
                                                        monkeypatch):
    """The fused MBU + Thresholding (channels-major, wrapped to the MBU's INT10 output, then
    thresholded) against im2col branches, gather bilinear taps, a wrap by hand and broadcast
    thresholds."""
    from sim.bundle import Node
    from sim.kernels.mbu import mbu_thresholds
    from sim.packedmap import PackedMap

    monkeypatch.setattr(bitconv, "THREADS", threads)  # channel groups of 8 on two threads
    rng = np.random.default_rng(11)
    cin, dilations = 13, [1, 3]
    x = rng.choice(np.array([-1, 1], dtype=np.int8), (2, 5, 7, cin))
    weights = rng.choice(np.array([-1, 1], dtype=np.int8), (2, cout, cin, 3, 3))
    gains = rng.integers(0, 4, (2, cout))
    mbu = Node("mbu", "MultiBranchUpsample", "MultiBranchUpsample_hls", "", True, [], [],
               {"Dilations": dilations, "Mode": "bilinear", "gateDataType": "UINT2"}, ["INT10"])
    steps = 1 if out_type in ("BINARY", "BIPOLAR") else 3
    thr = np.sort(rng.integers(-600, 600, (cout, steps)), axis=1).astype(np.float32)
    act = {"UINT2": 0, "BINARY": 0, "BIPOLAR": 0}[out_type]
    node = Node("thr", "Thresholding", "Thresholding_rtl", "", True, [], [],
                {"ActVal": act, "outputDataType": out_type}, [out_type])
    got = mbu_thresholds(mbu, node, [x, weights, gains], [thr], packed=packed)
    total = sum(g[None, None, None, :].astype(np.int64) * r
                for g, r in zip(gains, mbu_branches_reference(x, weights, dilations)))
    up = bilinear_reference(total, 2)
    up = ((up + 512) % 1024) - 512  # INT10 two's complement
    count = (up[..., None] >= thr[None, None, None]).sum(axis=-1)
    want = 2 * count - 1 if out_type == "BIPOLAR" else count
    assert isinstance(got, PackedMap) == packed
    values = got.unpack() if packed else got
    assert np.array_equal(values, want)


@pytest.mark.parametrize("pixel_bytes", [1, 2, 3, 4, 6, 8, 16, 24])
def test_window_words_by_word_equal_the_transposed_rows(pixel_bytes):
    rng = np.random.default_rng(pixel_bytes)
    packed = rng.integers(0, 256, (2, 9, 12, pixel_bytes)).astype(np.uint8)
    for k, s, d in [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 1), (1, 2)), ((1, 1), (1, 1), (1, 1)),
                    ((2, 3), (1, 2), (3, 1))]:
        rows = bitconv.window_words(packed, k, s, d)
        assert np.array_equal(bitconv.window_words_major(packed, k, s, d), rows.T)
