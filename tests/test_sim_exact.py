"""sim's fast integer paths (float32/float64 BLAS, packed popcount, lookup-table popcount)
against an int64 reference, on both sides of the float32 bound 2^24."""

from __future__ import annotations

import numpy as np
import pytest

from sim.exact import FLOAT32_EXACT, matmul_int, matmul_method, xnor_method, xnor_popcount


def reference_matches(a_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    return np.stack([(a_bits[:, :, None] == w_bits[None, :, j : j + 1]).sum(axis=1)[:, 0]
                     for j in range(w_bits.shape[1])], axis=1).astype(np.int64)


@pytest.mark.parametrize("k", [1, 7, 63, 64, 65, 200, 576, 1000, 2049, 5000])
@pytest.mark.parametrize("method", ["auto", "float32", "popcount", "popcount_lut"])
def test_xnor_methods_agree_with_reference(k, method):
    rng = np.random.default_rng(k)
    a = rng.integers(0, 2, size=(37, k), dtype=np.uint8)
    w = rng.integers(0, 2, size=(k, 11), dtype=np.uint8)
    assert np.array_equal(xnor_popcount(a, w, method=method), reference_matches(a, w))


@pytest.mark.parametrize("k", [FLOAT32_EXACT - 1, FLOAT32_EXACT + 1])
def test_xnor_near_float32_bound(k):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, size=(2, k), dtype=np.uint8)
    w = np.stack([a[0], a[1], 1 - a[0]], axis=1)  # counts K, ~K/2 and 0: the extremes
    same = int((a[0] == a[1]).sum())
    expected = np.array([[k, same, 0], [same, k, k - same]])
    below = k < FLOAT32_EXACT
    for method in ("auto", "popcount", "popcount_lut") + (("float32",) if below else ()):
        assert np.array_equal(xnor_popcount(a, w, method=method), expected), method
    if not below:
        # the bound matters: a count of 2^24 + 1 has no float32
        assert not np.array_equal(xnor_popcount(a, w, method="float32"), expected)


def test_xnor_method_choice():
    if hasattr(np, "bitwise_count"):
        assert xnor_method(576) == xnor_method(FLOAT32_EXACT + 1) == "popcount"
    else:  # numpy 1.26: float32 beats the lookup table while it is exact
        assert xnor_method(FLOAT32_EXACT - 1) == "float32"
        assert xnor_method(FLOAT32_EXACT) == "popcount_lut"


def _extreme(k: int, value_a: int, value_w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(k)
    a = rng.integers(-value_a, value_a + 1, size=(5, k))
    a[0] = value_a  # a row that drives the sum to the bound
    w = rng.integers(-value_w, value_w + 1, size=(k, 4))
    w[:, 0] = value_w
    return a, w


@pytest.mark.parametrize("k", [1024, 1041, 1100])
def test_matmul_near_float32_bound(k):
    a, w = _extreme(k, 127, 127)
    expected = a.astype(np.int64) @ w.astype(np.int64)
    bound = 127 * 127 * k
    assert matmul_method(127, 127, k) == ("float32" if bound < FLOAT32_EXACT else "float64")
    for method in ("auto", "float64", "int64"):
        assert np.array_equal(matmul_int(a, w, method=method), expected)
    if bound < FLOAT32_EXACT:
        assert np.array_equal(matmul_int(a, w, method="float32"), expected)
    elif k == 1041:
        # 1041 * 127^2 is odd and above 2^24: float32 cannot hold it, whatever the order
        assert not np.array_equal(matmul_int(a, w, method="float32"), expected)


def test_matmul_beyond_float64_uses_int64_modulo_2_64():
    a = np.full((2, 3), 2**40, dtype=np.int64)
    w = np.full((3, 2), 2**20, dtype=np.int64)
    assert matmul_method(2**40, 2**20, 3) == "int64"
    assert np.array_equal(matmul_int(a, w), np.full((2, 2), 3 * 2**60, dtype=np.int64))
