"""The packed-weight product kernel (rnnkit.cells.fast._kernel) against NumPy's matmul.

Shapes cover every tile height (8, 4, 2, 1 rows), full panels and narrow last ones (of 16 columns
in float32: written directly; of fewer or more: through the scratch tile), row blocks beyond ROW_BLOCK, an empty inner dimension, strided rows of A and of the output, a row range that
leaves other rows alone, beta 0 and 1, W packed as given or transposed, float32 and float64.
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


def test_times_packed_touches_only_its_rows():
    rng = np.random.default_rng(0)
    A, W = rng.standard_normal((13, 6)), rng.standard_normal((6, 45))
    out = np.full((13, 45), 7.0)
    _kernel.times_packed(3, 10, A, _kernel.pack(W, False), out, 0.0)
    np.testing.assert_allclose(out[3:10], A[3:10] @ W, rtol=1e-12)
    assert (out[:3] == 7.0).all() and (out[10:] == 7.0).all()


def test_pack_pads_with_zeros_and_reads_any_layout():
    W = np.arange(2.0 * 20).reshape(2, 20)
    for given, trans in ((W, False), (np.asfortranarray(W), False), (W.T.copy(), True)):
        P = _kernel.pack(given, trans)
        assert P.shape == (2, 2, 16)
        np.testing.assert_array_equal(P[0], W[:, :16])
        np.testing.assert_array_equal(P[1, :, :4], W[:, 16:])
        assert not P[1, :, 4:].any()


def test_times_packed_rejects_mismatched_operands():
    P = _kernel.pack(np.ones((4, 20)), False)
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.times_packed(0, 2, np.ones((2, 5)), P, np.zeros((2, 20)), 0.0)  # inner 5, panels of 4 rows
    with pytest.raises(ValueError, match="do not fit"):
        _kernel.times_packed(0, 2, np.ones((2, 4)), P, np.zeros((2, 40)), 0.0)  # 40 columns need 3 panels
