"""The fast GRU's per-step products in the "weights first" orientation (out^T = W^T A^T, for large H).

Production uses that path only from 2 MB weight matrices (H >= 512), too large for a parity test;
here its threshold is set to 0, and the fast engine must still agree with the NumPy reference on
every output (same cases and tolerances as tests/cells/test_fast_engine.py), on one and two row blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from rnnkit.cells import gru
from rnnkit.cells.fast import _blas
from tests.cells.test_fast_engine import DTYPES, B, _assert_parity


@pytest.mark.parametrize("blocks", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
def test_weights_first_products_match_reference(reset_after, masked, dtype, blocks, monkeypatch):
    monkeypatch.setattr(_blas, "WEIGHTS_FIRST_MIN", 0)
    monkeypatch.setattr(_blas, "blas_threads", lambda: blocks)
    monkeypatch.setattr(_blas, "MIN_ROWS_PER_THREAD", 1)
    assert len(_blas.split_rows(B)) == blocks
    _assert_parity(gru, gru.GRUConfig(3, 5, reset_after), dtype, np.random.default_rng(3), masked=masked)
