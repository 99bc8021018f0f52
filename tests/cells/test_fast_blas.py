"""The fast engine's BLAS plumbing (rnnkit.cells.fast._blas): NumPy's OpenBLAS called from compiled code,
row blocks run in parallel threads, and large products split by output rows.

Products are compared with NumPy's own ``@`` in float64 (and float32) on random matrices, for every
transpose combination, strided rows and a lone row (whose stride NumPy may set to anything).
"""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from rnnkit.cells import fast
from rnnkit.cells.fast import _blas, _jit
from rnnkit.errors import DataError

TOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture(params=[1, 3], ids=["one block", "three blocks"])
def blocks(request, monkeypatch):
    """Run on one row block, or on three in parallel threads (whatever the machine's BLAS threads)."""
    monkeypatch.setattr(_blas, "blas_threads", lambda: request.param)
    monkeypatch.setattr(_blas, "GEMM_MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    return request.param


@pytest.fixture(params=["packed kernel", "OpenBLAS"])
def route(request, monkeypatch):
    """Products with A not transposed go through the packed kernel (narrow results) or OpenBLAS (wide ones)."""
    monkeypatch.setattr(_blas, "PACKED_MAX_N", 1 << 30 if request.param == "packed kernel" else 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("M, K, N", [(7, 5, 3), (1, 4, 6), (9, 1, 8), (11, 6, 40)])
def test_matmul_matches_numpy(M, K, N, trans_a, trans_b, dtype, blocks, route):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    expected = (A.T if trans_a else A) @ (B.T if trans_b else B)
    got = _blas.matmul(A, B, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == expected.shape == (M, N) and got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=TOL[dtype], atol=TOL[dtype])


def test_matmul_on_strided_and_lone_rows(blocks, route):
    """Rows with a stride longer than the row (a column slice) and a (1, K) view whose row stride is arbitrary."""
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((6, 10))
    A, B = wide[:, 2:7], rng.standard_normal((5, 4))  # A's rows are 10 apart
    np.testing.assert_allclose(_blas.matmul(A, B), A @ B, rtol=1e-12)
    lone = rng.standard_normal((4, 1)).T  # shape (1, 4), strides (8, 8): NumPy calls it contiguous
    np.testing.assert_allclose(_blas.matmul(lone, B, trans_b=True), lone @ B.T, rtol=1e-12)
    np.testing.assert_allclose(_blas.matmul(B, lone, trans_b=True), B @ lone.T, rtol=1e-12)


@pytest.mark.parametrize("trans_b", [False, True])
def test_a_sum_into_few_rows_is_shared_over_k(trans_b, monkeypatch):
    """da^T X with fewer rows of the result than threads: each thread sums its rows of k, the parts are added."""
    monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
    monkeypatch.setattr(_blas, "GEMM_MIN_ROWS_PER_THREAD", 4)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    blocks, shared = [], _blas._gemm_k_blocks
    monkeypatch.setattr(_blas, "_gemm_k_blocks", lambda i0, i1, edges, *args: (
        blocks.extend((int(edges[i]), int(edges[i + 1])) for i in range(i0, i1)), shared(i0, i1, edges, *args)))
    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 3))  # (K, M): 3 rows of the result, too few for two blocks of 4
    B = rng.standard_normal((6, 50)) if trans_b else rng.standard_normal((50, 6))
    got = _blas.matmul(A, B, trans_a=True, trans_b=trans_b)
    np.testing.assert_allclose(got, A.T @ (B.T if trans_b else B), rtol=1e-12)
    assert sorted(blocks) == [(0, 25), (25, 50)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, N", [(0, 4), (1, 5), (37, 1), (300, 70)])
def test_column_sums_match_numpy(n, N, dtype, blocks):
    rng = np.random.default_rng(n + N)
    X = rng.standard_normal((n, N + 2)).astype(dtype)[:, 1:N + 1]  # rows N + 2 apart
    got = _blas.column_sums(X)
    assert got.shape == (N,) and got.dtype == dtype
    np.testing.assert_allclose(got, X.astype(np.float64).sum(axis=0), rtol=TOL[dtype], atol=TOL[dtype] * max(n, 1))
    np.testing.assert_allclose(fast.column_sums(X), got, rtol=TOL[dtype], atol=TOL[dtype] * max(n, 1))
    ints = np.arange(6).reshape(3, 2)
    np.testing.assert_array_equal(fast.column_sums(ints), [6, 9])  # other dtypes: NumPy's sum


def test_fast_matmul_takes_leading_axes_and_falls_back_for_other_dtypes():
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(fast.matmul(x, W, trans_b=True), x @ W.T, rtol=1e-5, atol=1e-6)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(fast.matmul(ints, ints, trans_b=True), ints @ ints.T)


@pytest.mark.parametrize("threads, n, min_rows, expected", [
    (1, 100, 8, [(0, 100)]),
    (2, 100, 8, [(0, 50), (50, 100)]),
    (2, 15, 8, [(0, 15)]),  # two blocks would have fewer than 8 rows each
    (3, 10, 1, [(0, 3), (3, 6), (6, 10)]),
])
def test_split_rows(threads, n, min_rows, expected, monkeypatch):
    monkeypatch.setattr(_blas, "blas_threads", lambda: threads)
    assert _blas.split_rows(n, min_rows) == expected
    assert _blas.split_rows(n, min_rows, macs=_blas.SPLIT_MIN_MACS - 1) == [(0, n)]  # too little work to split


def test_run_split_restores_the_blas_threads_even_on_error(monkeypatch):
    """While the blocks run OpenBLAS is on one thread; afterwards it is back where it was, also after an error."""
    before = _blas._get_num_threads()
    monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
    monkeypatch.setattr(_blas, "MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    seen = []

    def loop(b0, b1):
        seen.append((b0, b1, _blas._get_num_threads()))
        if b0 > 0:
            raise ValueError("second block failed")

    with pytest.raises(ValueError, match="second block failed"):
        _blas.run_split(loop, 4)
    assert sorted(seen) == [(0, 2, 1), (2, 4, 1)]
    assert _blas._get_num_threads() == before


@numba.njit(nogil=True)
def _steps_in_lockstep(k, counters, steps, failing, seen):
    """Part k: ``steps`` steps, each after every part has published the one before; seen[k, t] = the least step any
    part had published when part k started step t (-1: aborted). Part ``failing`` raises at its second step."""
    parts = seen.shape[0]
    for t in range(steps):
        if not _jit.wait_for_steps(counters, t):
            seen[k, t] = -1
            return
        if k == failing and t == 1:
            raise ValueError("part failed")
        least = steps
        for j in range(parts):
            least = min(least, counters[j * _jit.STEP_COUNTER_STRIDE])
        seen[k, t] = least
        _jit.publish_steps(counters, k, t + 1)


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_run_together_runs_parts_that_wait_for_each_other(parts, monkeypatch):
    """Every part runs at once on its own thread (queued in a pool of fewer threads, parts waiting for each other
    would never finish), step t of every part starts after every part has finished step t - 1, and OpenBLAS is on
    one thread meanwhile."""
    monkeypatch.setattr(_blas, "_pool", lambda: pytest.fail("parts that wait for each other must not use the pool"))
    before, during = _blas._get_num_threads(), []
    steps = 50
    counters, seen = _jit.step_counters(parts), np.zeros((parts, steps), np.int64)

    def loop(*args):
        during.append(_blas._get_num_threads())
        _steps_in_lockstep(*args)

    _blas.run_together(loop, [(k, counters, steps, -1, seen) for k in range(parts)], counters)
    np.testing.assert_array_equal(seen, np.broadcast_to(np.arange(steps), (parts, steps)))
    assert during == [1] * parts and _blas._get_num_threads() == before


def test_a_failing_part_stops_the_others(monkeypatch):
    """A part that raises raises the abort flag: the parts waiting for it return instead of spinning forever, and
    run_together raises the error after every part has returned, with OpenBLAS's thread count back."""
    before = _blas._get_num_threads()
    counters, seen = _jit.step_counters(3), np.zeros((3, 5), np.int64)
    with pytest.raises(ValueError, match="part failed"):
        _blas.run_together(_steps_in_lockstep, [(k, counters, 5, 1, seen) for k in range(3)], counters)
    assert (seen[[0, 2], 2] == -1).all() and (seen[:, 0] == 0).all()
    assert _blas._get_num_threads() == before


def test_split_runs_in_a_forked_child(monkeypatch):
    """The thread pool does not survive fork(); a child process starts its own and the split still runs."""
    import multiprocessing as mp

    monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
    monkeypatch.setattr(_blas, "GEMM_MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    A = np.random.default_rng(4).standard_normal((6, 3))
    _blas.matmul(A, A, trans_b=True)  # the parent's pool exists now
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_blas.matmul, (A, A), {"trans_b": True}).get(timeout=60)
    np.testing.assert_allclose(got, A @ A.T, rtol=1e-12)


@numba.njit(nogil=True, cache=True)
def _mark_rows(b0, b1, out, value):
    for b in range(b0, b1):
        out[b] = value


@numba.njit(parallel=True, nogil=True, cache=True)
def _mark_rows_blocks(edges, *args):
    for k in numba.prange(len(edges) - 1):
        _mark_rows(edges[k], edges[k + 1], *args)


@pytest.mark.parametrize("macs", [1000, float("inf")])
def test_small_splits_go_to_the_spinning_threads(macs, monkeypatch):
    """With a ``parallel`` twin, a split job up to SPINNING_MAX_MACS runs in numba's threads when they spin
    (OpenMP or TBB), a larger one (or any without the twin) in the pool; every row is done either way."""
    monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
    monkeypatch.setattr(_blas, "MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    used = []
    monkeypatch.setattr(_blas, "_pool", lambda pool=_blas._pool: used.append("pool") or pool())
    out = np.zeros(6)
    _blas.run_split(_mark_rows, 6, out, 2.0, macs=macs, parallel=_mark_rows_blocks)
    assert (out == 2.0).all()
    spinning = _blas._spinning_threads()
    assert spinning == (numba.threading_layer() in ("omp", "tbb"))
    assert used == ([] if spinning and macs <= _blas.SPINNING_MAX_MACS else ["pool"])


def test_a_forked_child_splits_in_the_pool_after_the_parent_used_openmp(monkeypatch):
    """GNU OpenMP does not survive fork(): a child of a parent that ran a parallel region uses the pool (and does not
    hang)."""
    import multiprocessing as mp

    monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
    monkeypatch.setattr(_blas, "MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
    out = np.zeros(6)
    _blas.run_split(_mark_rows, 6, out, 1.0, macs=1000, parallel=_mark_rows_blocks)  # the parent's region
    with mp.get_context("fork").Pool(1) as pool:
        spinning, got = pool.apply_async(_split_in_child).get(timeout=60)
    assert spinning is False and (got == 3.0).all()


def _split_in_child() -> tuple[bool, np.ndarray]:
    _blas.blas_threads = lambda: 2  # a forked child inherits the monkeypatched module state but not its patches' undo
    out = np.zeros(6)
    _blas.run_split(_mark_rows, 6, out, 3.0, macs=1000, parallel=_mark_rows_blocks)
    return _blas._spinning_threads(), out


def test_without_numpys_openblas_the_engine_falls_back(monkeypatch):
    """A NumPy whose BLAS is not its bundled OpenBLAS: a warning, no fast module, and NumPy's own products."""
    def no_blas(name):
        raise _blas.BlasUnavailable("no OpenBLAS with cblas_sgemm found beside NumPy")

    monkeypatch.setattr(fast.importlib, "import_module", no_blas)
    with pytest.warns(RuntimeWarning, match="fast engine is unavailable.*no OpenBLAS"):
        assert fast.module_for("lstm") is None
    monkeypatch.setitem(fast._HELPERS, "_blas", None)  # what matmul's first look-up finds then
    A = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(fast.matmul(A, A, trans_b=True), A @ A.T, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("features", [1, 2, 8, 16, 32, 65])
@pytest.mark.parametrize("batch", [5, 67])
def test_time_major_copies_batch_major_inputs(batch, features, dtype, monkeypatch):
    """fast.time_major: a contiguous (T, B, D) copy of x (B, T, D), through the compiled copy for rows of 8 elements
    or more (where it beats NumPy's; 67 sequences are two of its blocks and part of a third) and NumPy's otherwise,
    also for inputs that are not C-contiguous."""
    from rnnkit.cells.fast import _jit

    assert 2 * _jit.COPY_ROW_BLOCK < 67 < 3 * _jit.COPY_ROW_BLOCK
    compiled = []
    copy = _jit.time_major_copy
    monkeypatch.setattr(_jit, "time_major_copy", lambda *a: compiled.append(1) or copy(*a))
    x = np.random.default_rng(6).standard_normal((batch, 7, features)).astype(dtype)
    for source, expect_compiled in ((x, features >= 8), (x[::-1], False)):
        compiled.clear()
        out = fast.time_major(source)
        assert out.flags.c_contiguous and out.dtype == dtype and bool(compiled) == expect_compiled
        np.testing.assert_array_equal(out, source.transpose(1, 0, 2))
        assert not np.shares_memory(out, source)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("features", [2, 16, 65])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("batch", [5, 67])
def test_time_major_checks_finiteness_when_named(batch, features, dtype, bad):
    """fast.time_major(x, name) rejects NaN and ±Inf anywhere (first and last element, and the middle), naming x
    and counting them, on the compiled copy (in any of its blocks of sequences) and on NumPy's (a reversed view);
    without a name it copies them."""
    x = np.random.default_rng(7).uniform(-1e30, 1e30, (batch, 7, features)).astype(dtype)  # large, finite
    for source in (x, x[::-1]):
        np.testing.assert_array_equal(fast.time_major(source, "x"), source.transpose(1, 0, 2))
    for where in ((0, 0, 0), (batch - 1, 6, features - 1), (batch // 2, 3, features // 2)):
        y = x.copy()
        y[where] = bad
        for source in (y, y[::-1]):
            with pytest.raises(DataError, match="^x contains 1 NaN or Inf value"):
                fast.time_major(source, "x")
            np.testing.assert_array_equal(fast.time_major(source), source.transpose(1, 0, 2))
