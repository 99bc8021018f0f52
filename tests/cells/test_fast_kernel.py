"""The product kernel (rnnkit.cells.fast._kernel) against NumPy's matmul.

``times_packed``: shapes cover every tile height (8, 4, 2, 1 rows), full panels and narrow last ones
(one vector or two, written through a lane mask that must leave the columns past them alone), row blocks
beyond ROW_BLOCK (beyond STREAMED_ROW_BLOCK for weights over STREAMED_BYTES), an empty inner dimension, strided
rows of A and of the output, a row range that leaves other rows alone, beta 0 and 1, W packed as given or
transposed, float32 and float64.
``add_transposed_times`` (X^T G added on, both used in place): the same tile heights and panel widths,
row ranges, strided rows of every operand, and rows outside the range that hold NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from rnnkit.cells.fast import _kernel

TOL = {np.float64: 1e-12, np.float32: 2e-6}


def _strided(rng, rows: int, cols: int, dtype) -> np.ndarray:
    """A (rows, cols) view whose rows are cols + 3 elements apart and start 1 element in."""
    return rng.standard_normal((rows, cols + 3)).astype(dtype)[:, 1:cols + 1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M, K, N", [(1, 1, 1), (15, 5, 7), (8, 16, 64), (3, 37, 148), (140, 9, 40), (6, 0, 33),
                                     (11, 4, 16), (9, 6, 48), (7, 3, 20)])
@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_times_packed_matches_numpy(M, K, N, trans, beta, dtype):
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    A, W = _strided(rng, M, K, dtype), rng.standard_normal((K, N)).astype(dtype)
    P = _kernel.pack(np.ascontiguousarray(W.T) if trans else W, trans)
    assert P.shape == (-(-N // _kernel.panel_width(dtype)), K, _kernel.panel_width(dtype))
    out = _strided(rng, M, N, dtype)
    expected = A @ W + beta * out
    _kernel.times_packed(0, M, A, P, out, beta)
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(out - expected).max() <= TOL[dtype] * scale * max(K, 1)


@pytest.mark.parametrize("pair", [False, True])
def test_weights_beyond_the_caches_take_smaller_row_blocks(pair):
    """Packed weights over STREAMED_BYTES: rows go STREAMED_ROW_BLOCK at a time (here two blocks and a part), with the
    same results as NumPy, and rows outside b0..b1 left alone."""
    rng = np.random.default_rng(5)
    K1, K2, N, M = 8, 512, 4064, 2 * _kernel.STREAMED_ROW_BLOCK + 13
    W = rng.standard_normal((N, K1 + K2)).astype(np.float32)
    P = _kernel.pack(W, True)
    assert P.nbytes > _kernel.STREAMED_BYTES
    A = rng.standard_normal((M, K1 + K2)).astype(np.float32)
    start = rng.standard_normal((M, N)).astype(np.float32)
    out, b0, b1 = start.copy(), 2, M - 1
    if pair:
        _kernel.times_packed_pair(b0, b1, A[:, :K1], A[:, K1:], P, out, 1.0)
    else:
        _kernel.times_packed(b0, b1, A, P, out, 1.0)
    expected = A.astype(np.float64) @ W.T.astype(np.float64) + start
    assert np.abs(out[b0:b1] - expected[b0:b1]).max() <= TOL[np.float32] * np.abs(expected).max() * (K1 + K2)
    np.testing.assert_array_equal(out[:b0], start[:b0])
    np.testing.assert_array_equal(out[b1:], start[b1:])


def test_times_packed_touches_only_its_rows():
    rng = np.random.default_rng(0)
    A, W = rng.standard_normal((13, 6)), rng.standard_normal((6, 45))
    out = np.full((13, 45), 7.0)
    _kernel.times_packed(3, 10, A, _kernel.pack(W, False), out, 0.0)
    np.testing.assert_allclose(out[3:10], A[3:10] @ W, rtol=1e-12)
    assert (out[:3] == 7.0).all() and (out[10:] == 7.0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N", [1, 5, 8, 15, 16, 17, 31, 33, 47])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_narrow_panels_leave_the_columns_past_them_alone(N, beta, dtype):
    """The last panel's masked stores write its N columns and nothing past them (the rest of each row is 7)."""
    rng = np.random.default_rng(N)
    A, W, G = (rng.standard_normal(shape).astype(dtype) for shape in ((19, 6), (6, N), (19, N)))
    for product in ("times_packed", "add_transposed_times"):
        full = np.full((19 if product == "times_packed" else 6, N + 40), 7.0, dtype)
        out = full[:, :N]
        if product == "times_packed":
            expected = A @ W + beta * out
            _kernel.times_packed(0, 19, A, _kernel.pack(W, False), out, beta)
        else:
            expected = out + A.T @ G
            _kernel.add_transposed_times(0, 19, A, G, out)
        np.testing.assert_allclose(out, expected, rtol=TOL[dtype] * 20, atol=TOL[dtype] * 20)
        assert (full[:, N:] == 7.0).all()


def test_pack_pads_with_zeros_and_reads_any_layout():
    W = np.arange(2.0 * 20).reshape(2, 20)
    for given, trans in ((W, False), (np.asfortranarray(W), False), (W.T.copy(), True)):
        P = _kernel.pack(given, trans)
        assert P.shape == (2, 2, 16)
        np.testing.assert_array_equal(P[0], W[:, :16])
        np.testing.assert_array_equal(P[1, :, :4], W[:, 16:])
        assert not P[1, :, 4:].any()


@pytest.mark.parametrize("trans", [False, True])
def test_pack_of_chosen_columns_is_the_pack_of_their_copy(trans):
    """``pack(W, trans, columns)`` packs op(W)[:, columns] (one thread's units of the gates) without copying them."""
    op = np.random.default_rng(0).standard_normal((24, 40)).astype(np.float32)  # op(W) (K, N)
    W = op.T.copy() if trans else op
    columns = np.array([3, 0, 17, 18, 19, 39, 5] + list(range(20, 37)), np.int64)  # 24: a full panel and part of one
    expected = _kernel.pack(np.ascontiguousarray(op[:, columns]), False)
    np.testing.assert_array_equal(_kernel.pack(W, trans, columns), expected)


def test_times_packed_rejects_mismatched_operands():
    P = _kernel.pack(np.ones((4, 20)), False)
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.times_packed(0, 2, np.ones((2, 5)), P, np.zeros((2, 20)), 0.0)  # inner 5, panels of 4 rows
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.times_packed(0, 2, np.ones((2, 4)), P, np.zeros((2, 40)), 0.0)  # 40 columns need 3 panels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B, M, N, b0, b1", [(1, 1, 1, 0, 1), (15, 15, 7, 0, 15), (64, 16, 64, 0, 64),
                                             (40, 13, 37, 3, 29), (50, 65, 512, 10, 50), (9, 3, 8, 2, 7),
                                             (33, 17, 100, 0, 33), (5, 7, 24, 1, 4), (6, 4, 48, 3, 3),
                                             (20, 9, 48, 2, 18), (64, 16, 16, 0, 64)])
def test_add_transposed_times_matches_numpy(B, M, N, b0, b1, dtype):
    """Rows outside b0..b1 hold NaN: a read of them would show in the result. A last panel of one whole vector
    (float32: 48 and 16 columns; float64: 24 and 8) is read in place, narrower or wider ones through a copy."""
    rng = np.random.default_rng(B * 1000 + M * 10 + N)
    X, G, out = _strided(rng, B, M, dtype), _strided(rng, B, N, dtype), _strided(rng, M, N, dtype)
    X[:b0], X[b1:], G[:b0], G[b1:] = np.nan, np.nan, np.nan, np.nan
    expected = out + X[b0:b1].T @ G[b0:b1]
    _kernel.add_transposed_times(b0, b1, X, G, out)
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(out - expected).max() <= TOL[dtype] * scale * max(b1 - b0, 1)


def test_add_transposed_times_rejects_mismatched_operands():
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.add_transposed_times(0, 2, np.ones((2, 3)), np.ones((2, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.add_transposed_times(0, 2, np.ones((2, 3)), np.ones((3, 5)), np.zeros((3, 5)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("M, K1, K2, N", [(1, 1, 1, 1), (15, 5, 7, 7), (64, 8, 16, 64), (3, 37, 2, 148), (140, 1, 64, 40),
                                          (6, 0, 5, 33), (11, 4, 0, 16), (9, 6, 3, 48), (7, 3, 17, 20)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_times_packed_pair_matches_the_joined_product(M, K1, K2, N, beta, dtype):
    """[A1, A2] P with A1, A2 apart in memory (strided rows): equal to times_packed on the joined [A1, A2] (the same
    sums in the same order), and to NumPy; rows outside b0..b1 are left alone."""
    rng = np.random.default_rng(M * 1000 + K1 * 100 + K2 * 10 + N)
    A1, A2 = _strided(rng, M, K1, dtype), _strided(rng, M, K2, dtype)
    W = rng.standard_normal((N, K1 + K2)).astype(dtype)
    P = _kernel.pack(W, True)
    start = _strided(rng, M, N, dtype)
    joined, out = start.copy(), start.copy()
    b0, b1 = (1, M - 1) if M > 2 else (0, M)
    _kernel.times_packed(b0, b1, np.concatenate([A1, A2], axis=1), P, joined, beta)
    _kernel.times_packed_pair(b0, b1, A1, A2, P, out, beta)
    np.testing.assert_array_equal(out, joined)
    expected = np.concatenate([A1, A2], axis=1) @ W.T + beta * start
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(out[b0:b1] - expected[b0:b1]).max() <= TOL[dtype] * scale * max(K1 + K2, 1)
    np.testing.assert_array_equal(out[:b0], start[:b0])
    np.testing.assert_array_equal(out[b1:], start[b1:])
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.times_packed_pair(0, M, A1, A2[:, :K2 - 1] if K2 else A1, P, out, beta)
