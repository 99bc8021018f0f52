"""NumPy's own OpenBLAS, called from compiled code, and the batch split that runs time loops on every core.

``gemm(A, trans_a, B, trans_b, C, beta)``: ``C = op(A) op(B) + beta C`` on 2-D arrays whose rows are
contiguous (any row stride), float32 or float64, callable inside numba functions (and without the
GIL). It calls the ``cblas_?gemm`` of the OpenBLAS that NumPy itself loaded (found with ctypes,
linked by name, so numba's on-disk cache stays valid across processes): one BLAS in the process.
``matmul`` uses it for the wide products over all T·B rows; narrow ones and the time loops'
per-step products go through the packed kernel (``_kernel``).

``run_split(loop, B, *args)`` calls ``loop(b0, b1, *args)`` on row blocks of the batch, one per
thread: rows of a batch never interact inside a time loop, so each thread runs a whole loop on its
rows (products on a one-thread BLAS), in parallel, with no synchronisation per step. The number of blocks is
the number of threads NumPy's OpenBLAS is set to use (``OPENBLAS_NUM_THREADS``, threadpoolctl), so a
one-thread setting stays on one core. ``run_together`` runs parts of one time loop that do wait for each
other step by step (an LSTM forward split by units), each on a thread of its own. Sums over all T·B rows into
a few (``column_sums`` for the bias gradients, and ``matmul``'s ``da^T X`` when the result has too few rows to
share) split those rows instead, each thread's part added at the end.

numba caches each compiled function with the code it calls from here: after editing this file,
delete ``cells/fast/__pycache__/*.nbi`` and ``*.nbc`` (an installed release is cached afresh).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import overload

from ._jit import abort_steps, aligned_empty, rows_contiguous
from ._kernel import pack, times_packed

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (prefix, suffix) of the symbols of NumPy's 64-bit-integer OpenBLAS builds, newest wheels first:
# scipy-openblas64 (NumPy >= 2.0), openblas64_ (NumPy 1.22-1.26).
_NAMINGS = (("scipy_", "64_"), ("", "64_"))


class BlasUnavailable(ImportError):
    """NumPy's BLAS is not an OpenBLAS this module can call (e.g. a NumPy built against MKL)."""


def _numpy_openblas() -> tuple[Path, str, str]:
    """(path of NumPy's OpenBLAS, symbol prefix, suffix), or BlasUnavailable."""
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(folder.glob("lib*openblas*.so*")) if folder.is_dir() else []:
        lib = ctypes.CDLL(str(path))
        for prefix, suffix in _NAMINGS:
            if hasattr(lib, f"{prefix}cblas_sgemm{suffix}"):
                return path, prefix, suffix
    raise BlasUnavailable(f"no OpenBLAS with cblas_sgemm found beside NumPy in {folder}")


_PATH, _PREFIX, _SUFFIX = _numpy_openblas()
llvm.load_library_permanently(str(_PATH))  # its symbols become visible to numba's linker
_LIB = ctypes.CDLL(str(_PATH))
_get_num_threads = getattr(_LIB, f"{_PREFIX}openblas_get_num_threads{_SUFFIX}")
_set_num_threads = getattr(_LIB, f"{_PREFIX}openblas_set_num_threads{_SUFFIX}")
_set_num_threads.argtypes = [ctypes.c_int]


def _cblas(real: types.Float) -> types.ExternalFunction:
    ld = types.int64
    signature = types.void(types.int32, types.int32, types.int32, ld, ld, ld, real, types.intp, ld, types.intp, ld,
                           real, types.intp, ld)  # order, transA, transB, M, N, K, α, A, lda, B, ldb, β, C, ldc
    letter = "s" if real == types.float32 else "d"
    return types.ExternalFunction(f"{_PREFIX}cblas_{letter}gemm{_SUFFIX}", signature)


_SGEMM, _DGEMM = _cblas(types.float32), _cblas(types.float64)


def gemm(A, trans_a, B, trans_b, C, beta):  # compiled only: see the overload
    """C (M, N) = op(A) op(B) + beta C, op(X) = X.T if trans else X; rows of A, B, C contiguous."""
    raise NotImplementedError("gemm runs inside compiled functions only")


@overload(gemm)
def _gemm_overload(A, trans_a, B, trans_b, C, beta):
    cblas = _SGEMM if C.dtype == types.float32 else _DGEMM
    real = C.dtype

    def impl(A, trans_a, B, trans_b, C, beta):
        M, N = C.shape
        K = A.shape[0] if trans_a else A.shape[1]
        if M == 0 or N == 0:
            return
        cblas(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, M, N, K, real(1.0),
              A.ctypes.data, _leading(A), B.ctypes.data, _leading(B), real(beta), C.ctypes.data, _leading(C))

    return impl


@numba.njit(cache=True, nogil=True)
def _leading(X):
    """The leading dimension BLAS needs: the row stride in elements (for one row, NumPy's stride may be anything)."""
    return X.strides[0] // X.itemsize if X.shape[0] > 1 else max(X.shape[1], 1)


MIN_ROWS_PER_THREAD = 8  # fewer rows per thread: the per-step products get too thin to gain
GEMM_MIN_ROWS_PER_THREAD = 64  # the same for one large product split by its output rows
SPLIT_MIN_MACS = 1 << 20  # less work than this (multiply-adds in all): one block (handing a block to another thread
# costs about 30 µs; measured: binary-add's loops, 32K multiply-adds, ran 2.5x slower split)


def blas_threads() -> int:
    """The number of threads NumPy's OpenBLAS is set to use now."""
    return max(1, int(_get_num_threads()))


def split_rows(n: int, min_rows: int | None = None, macs: float = float("inf")) -> list[tuple[int, int]]:
    """Contiguous row blocks [b0, b1) of n rows, one per BLAS thread, each of at least min_rows rows, for a job of
    ``macs`` multiply-adds; one block when the job is smaller than ``SPLIT_MIN_MACS``.

    ``min_rows`` defaults to ``MIN_ROWS_PER_THREAD``.
    """
    k = 1 if macs < SPLIT_MIN_MACS else max(1, min(blas_threads(), n // (min_rows or MIN_ROWS_PER_THREAD)))
    edges = [n * i // k for i in range(k + 1)]
    return list(itertools.pairwise(edges))


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="rnnkit")
    return _POOL


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a new pool there."""
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


SPINNING_MAX_MACS = 1 << 29  # jobs (multiply-adds in all) up to which the blocks go to numba's OpenMP threads
# rather than the pool, when given a ``parallel`` twin: waking a pool thread and handing the result back costs
# about 80 µs a call on these machines (measured: a do-nothing split, 78 µs), OpenMP's spinning threads about
# 2 µs, and a time loop on a pool thread ran slower too (two threads, old limit 2^26 -> 2^29, alternated: LSTM
# (32, 100, 65, 128) training 12.4-15.4 -> 11.5-12.5 ms, GRU (512, 50, 1, 64) 19.5-20.2 -> 16.4-17.2, RNN
# (512, 50, 1, 128) 18.4-19.9 -> 16.6-17.8). Larger jobs keep the pool: OpenMP's threads spin on (some
# milliseconds) after each parallel region, and slowed the GEMMs that follow on the pool (RNN (32, 100, 65, 512),
# 945M multiply-adds, with its weight gradients as GEMMs after the loop: 32.5-34.5 -> 36.4-37.8 ms at 2^30).

_SPINNING: bool | None = None  # whether numba's threading layer spins between regions (None: not known yet)


@numba.njit(parallel=True, nogil=True, cache=True)
def _first_region(flags):
    """A parallel region that does nothing but start numba's threading layer."""
    for k in numba.prange(flags.shape[0]):
        flags[k] = 1


def _spinning_threads() -> bool:
    """Whether numba's threading layer is OpenMP or TBB (threads that spin between parallel regions, started here
    on first use) rather than its ``workqueue`` (which sleeps, about 120 µs a region)."""
    global _SPINNING
    if _SPINNING is None:
        _first_region(np.zeros(2, np.int64))
        _SPINNING = numba.threading_layer() in ("omp", "tbb")
    return _SPINNING


def _no_spinning_in_child() -> None:
    """GNU OpenMP does not survive a fork: a forked child uses the pool."""
    global _SPINNING
    _SPINNING = False


os.register_at_fork(after_in_child=_no_spinning_in_child)


def run_split(loop, n: int, *args, min_rows: int | None = None, macs: float = float("inf"),
              blocks: list[tuple[int, int]] | None = None, parallel=None) -> None:
    """``loop(b0, b1, *args)`` for each row block of ``blocks`` (default ``split_rows(n, min_rows, macs)``), in
    parallel threads (the first block on the calling thread).

    ``loop`` must be a compiled ``nogil`` function that touches only rows [b0, b1). While it runs,
    OpenBLAS is set to one thread, then set back: each block's products stay on its own core, and
    OpenBLAS's own threads, which spin for about 0.1 s after each multi-threaded call, never compete
    with the blocks. (The setting is process-wide: OpenBLAS's pthreads build has no per-thread one.)

    ``parallel``: ``loop``'s twin ``parallel(edges, *args)`` compiled with ``numba.prange`` over the blocks
    [edges[k], edges[k + 1]) (see ``cells.fast.lstm._forward_blocks``). Jobs up to ``SPINNING_MAX_MACS``
    run through it when numba's threading layer spins (``_spinning_threads``); others use the pool. Each
    cell module defines its twins next to its loops, four lines each: one generic twin taking ``loop`` as an
    argument cannot be cached by numba (the loop's dispatcher type differs in every process), and compiled
    for 3.7 s in every process that used it.
    """
    blocks = split_rows(n, min_rows, macs) if blocks is None else blocks
    if len(blocks) == 1 and blas_threads() == 1:
        loop(0, n, *args)
        return
    with _one_blas_thread():
        if parallel is not None and len(blocks) > 1 and macs <= SPINNING_MAX_MACS and _spinning_threads():
            numba.set_num_threads(min(len(blocks), numba.config.NUMBA_NUM_THREADS))
            parallel(np.array([b0 for b0, _ in blocks] + [blocks[-1][1]], np.int64), *args)
            return
        others = [_pool().submit(loop, b0, b1, *args) for b0, b1 in blocks[1:]]
        try:
            loop(*blocks[0], *args)
        finally:  # every block has finished before the thread count goes back
            errors = [error for error in (f.exception() for f in others) if error is not None]
        if errors:
            raise errors[0]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """OpenBLAS set to one thread inside the block (process-wide), then set back."""
    threads = _get_num_threads()
    _set_num_threads(1)
    try:
        yield
    finally:
        _set_num_threads(threads)


def run_together(loop, parts: list[tuple], counters: np.ndarray) -> None:
    """``loop(*args)`` for every ``args`` of ``parts`` at once, for parts of one time loop that wait for each other
    step by step on ``counters`` (``_jit.wait_for_steps``): the first on the calling thread, every other on a
    thread of its own. In the pool a part could be queued behind one that waits for it; its own thread always
    runs. If a part raises (or a thread cannot start), the abort flag stops the others' waits and the error is
    raised here. OpenBLAS is set to one thread meanwhile, as in ``run_split``.
    """
    errors: list[BaseException] = []

    def part(args: tuple) -> None:
        try:
            loop(*args)
        except BaseException as error:
            errors.append(error)
            abort_steps(counters)

    threads = [threading.Thread(target=part, args=(args,), name="rnnkit-part") for args in parts[1:]]
    started = []
    with _one_blas_thread():
        try:
            for thread in threads:
                thread.start()
                started.append(thread)
            part(parts[0])
        except BaseException:
            abort_steps(counters)
            raise
        finally:  # every part has returned before the thread count goes back
            for thread in started:
                thread.join()
    if errors:
        raise errors[0]


@numba.njit(cache=True, nogil=True)
def _gemm_rows(m0, m1, A, trans_a, B, trans_b, C):
    """Rows m0..m1 of C = op(A) op(B)."""
    gemm(A[:, m0:m1] if trans_a else A[m0:m1], trans_a, B, trans_b, C[m0:m1], 0.0)


@numba.njit(cache=True, nogil=True)
def _gemm_k_blocks(i0, i1, edges, A, B, trans_b, partial):
    """Blocks i0..i1 of a sum over k: partial[i] = A[k_i:k_{i+1}]^T op(B)[k_i:k_{i+1}], k_i = edges[i]."""
    for i in range(i0, i1):
        k0, k1 = edges[i], edges[i + 1]
        gemm(A[k0:k1], True, B[:, k0:k1] if trans_b else B[k0:k1], trans_b, partial[i], 0.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _column_sum_blocks(i0, i1, edges, X, partial):
    """Blocks i0..i1 of the rows of X (n, N): partial[i] = Σ_{k_i <= r < k_{i+1}} X[r], k_i = edges[i]."""
    for i in range(i0, i1):
        for r in range(edges[i], edges[i + 1]):
            for j in range(X.shape[1]):
                partial[i, j] += X[r, j]


def _over_row_blocks(loop, n: int, *args, shape: tuple[int, ...], dtype: np.dtype, macs: float) -> np.ndarray:
    """A sum over the n rows of the operands, shared by the BLAS threads: ``loop(i0, i1, edges, *args, partial)``
    puts block i's part in ``partial[i]`` (blocks of ``split_rows``); returns Σ_i partial[i], of ``shape``."""
    blocks = split_rows(n, GEMM_MIN_ROWS_PER_THREAD, macs)
    edges = np.array([b0 for b0, _ in blocks] + [n], np.int64)
    partial = np.zeros((len(blocks), *shape), dtype)
    run_split(loop, len(blocks), edges, *args, partial, min_rows=1)
    return partial[0] if len(blocks) == 1 else partial.sum(axis=0)


def column_sums(X: np.ndarray) -> np.ndarray:
    """Σ_r X[r, :] of a 2-D X (n, N) with contiguous rows, (N,): the bias gradients' sums over all T·B rows,
    row blocks summed in parallel threads (NumPy's ``X.sum(axis=0)`` runs on one)."""
    X = rows_contiguous(X)
    return _over_row_blocks(_column_sum_blocks, X.shape[0], X, shape=(X.shape[1],), dtype=X.dtype, macs=X.size)


PACKED_MAX_N = 256  # output columns up to which A op(B) goes through the packed kernel (``_kernel``) rather than
# OpenBLAS (measured on 6400 rows, one core: 6400x256 @ 256x86 98 -> 131 GFLOP/s, 6400x86 @ 86x256 122 -> 155,
# 6400x256 @ 256x256 130 -> 158; wider outputs favour OpenBLAS: 6400x128 @ 128x512 134 against 101)


def matmul(A: np.ndarray, B: np.ndarray, *, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """op(A) @ op(B) (op(X) = X.T if trans), a new array, its rows split over the BLAS threads (``run_split``).

    Narrow results (at most ``PACKED_MAX_N`` columns, A not transposed) multiply by op(B) packed once. A
    transposed A with too few columns to share out (a weight gradient of a small layer, ``da^T X``) has
    the sum over its rows shared instead, each thread's part added at the end.
    """
    A, B = rows_contiguous(A), rows_contiguous(B)
    C = aligned_empty((A.shape[1] if trans_a else A.shape[0], B.shape[0] if trans_b else B.shape[1]), A.dtype)
    macs = C.shape[0] * C.shape[1] * (A.shape[0] if trans_a else A.shape[1])
    if not trans_a and C.shape[1] <= PACKED_MAX_N:
        run_split(times_packed, C.shape[0], A, pack(B, trans_b), C, 0.0, min_rows=GEMM_MIN_ROWS_PER_THREAD, macs=macs)
    elif trans_a and len(split_rows(C.shape[0], GEMM_MIN_ROWS_PER_THREAD, macs)) < blas_threads():
        # a sum over many rows (k) into few: the threads share the rows of the sum instead of those of C
        C = _over_row_blocks(_gemm_k_blocks, A.shape[0], A, B, trans_b, shape=C.shape, dtype=C.dtype, macs=macs)
    else:
        run_split(_gemm_rows, C.shape[0], A, trans_a, B, trans_b, C, min_rows=GEMM_MIN_ROWS_PER_THREAD, macs=macs)
    return C
