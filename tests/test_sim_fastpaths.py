"""sim's fast paths against plain references that share none of their code: the arg-max of
LabelSelect with K=1, elementwise ops in int32 at the edges of their types, OpenBLAS held
on one thread during a run."""

import numpy as np
import pytest

from sim.blas import blas_controls, one_blas_thread
from sim.bundle import Node
from sim.kernels import get_kernel


def node(op_type: str, **attrs) -> Node:
    return Node(name="n0", op_type=op_type, impl_op_type=op_type, domain="", hw=True,
                inputs=["a", "b"], outputs=["y"], attrs=attrs, out_dtypes=["INT32"])


@pytest.mark.parametrize("dt_range", [(0, 3), (-4, 3), (-(1 << 15), (1 << 15) - 1)])
def test_label_select_k1_is_first_index_of_the_largest(dt_range):
    rng = np.random.default_rng(sum(dt_range) & 0xFFFF)
    x = rng.integers(dt_range[0], dt_range[1] + 1, size=(3, 7, 19))  # narrow types: many ties
    x[0, 0] = dt_range[0]  # every label ties
    got = get_kernel("LabelSelect", True).fn(node("LabelSelect", Labels=19, K=1), [x])
    want = np.zeros(x.shape[:-1] + (1,), dtype=np.int64)
    for idx in np.ndindex(x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        want[idx + (0,)] = row.index(max(row))
    assert got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("op", ["Add", "Sub", "AbsDiff", "Max"])
def test_elementwise_int32_path_exact_at_the_type_edges(op):
    lo, hi = -(1 << 29), (1 << 29) - 1  # INT30
    a = np.array([lo, hi, lo, hi, 0, -1], dtype=np.int64)
    b = np.array([lo, hi, hi, lo, hi, lo], dtype=np.int64)
    kernel = get_kernel(f"Elementwise{op}", True).fn
    got = kernel(node(f"Elementwise{op}", lhs_dtype="INT30", rhs_dtype="INT30"), [a, b])
    plain = {"Add": lambda p, q: p + q, "Sub": lambda p, q: p - q,
             "AbsDiff": lambda p, q: abs(p - q), "Max": max}[op]
    want = [plain(int(p), int(q)) for p, q in zip(a, b)]
    assert [int(v) for v in got] == want


@pytest.mark.skipif(blas_controls() is None, reason="numpy's BLAS is not an OpenBLAS sim can find")
def test_one_blas_thread_inside_and_restored_after():
    get, put = blas_controls()
    before = get()
    put(2)
    try:
        with one_blas_thread():
            assert get() == 1
            with one_blas_thread():
                assert get() == 1
            assert get() == 1
        assert get() == 2
    finally:
        put(before)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("lo, hi, container", [(-16, 15, np.int8), (0, 200, np.uint8),
                                               (-3000, 40, np.int16), (5, 9, np.int32)])
def test_threshold_table_counts_as_plain_comparisons(shared, lo, hi, container):
    from sim.thresholds import count_thresholds

    rng = np.random.default_rng(hi - lo)
    channels, steps = 5, 7
    x = rng.integers(lo, hi + 1, size=(2, 60, 80, channels)).astype(container)
    x[0, 0, 0] = lo
    x[0, 0, 1] = hi
    thr = rng.uniform(lo - 2, hi + 2, size=(1 if shared else channels, steps))
    thr[0, 0] = np.nan
    thr[-1, 1] = np.floor(thr[-1, 1])  # an integer threshold: x == T fires
    got = count_thresholds(x, thr.astype(np.float32), narrow=True)
    t32 = thr.astype(np.float32)
    want = np.zeros(x.shape, dtype=np.int64)
    for idx in np.ndindex(x.shape):
        row = t32[0 if shared else idx[-1]]
        want[idx] = sum(1 for t in row if float(x[idx]) >= float(t))
    assert np.array_equal(got, want)


@pytest.mark.parametrize("loop_max", [0, 1023])
@pytest.mark.parametrize("k", [64, 300, 4608, 65472])
def test_packed_matches_both_paths_count_agreeing_bits(loop_max, k, monkeypatch):
    import sim.exact as exact

    monkeypatch.setattr(exact, "_WORD_LOOP_MAX", loop_max)
    rng = np.random.default_rng(k)
    m, n = (300, 7) if k < 10000 else (3, 2)
    a = rng.integers(0, 2, (m, k), dtype=np.uint8)
    w = rng.integers(0, 2, (n, k), dtype=np.uint8)
    a[0], w[0] = 1, 1  # every bit agrees: the count reaches K
    got = exact.packed_matches(exact.pack_bit_rows(a), exact.pack_bit_rows(w), k)
    want = (a[:, None, :] == w[None, :, :]).sum(axis=-1, dtype=np.int64)
    assert np.array_equal(got, want)
