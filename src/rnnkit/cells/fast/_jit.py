"""The pieces every fast cell shares: the numba decorator, the wide-vector hint, σ and tanh on scalars, the step mask,
arrays on cache-line boundaries, step counters for parts of a time loop that wait for each other, and freed memory
kept for reuse (``MEMORY_KEPT``, set when this module loads: see ``_memory``).

``jit`` compiles with ``cache=True`` (the machine code is reused by the next process),
``error_model="numpy"`` (no division checks, which would block vectorisation) and
``fastmath={"contract"}``: ``a * b + c`` may become one fused multiply-add (rounded once, so no less
accurate), which makes the gate math about 1.45x faster (the polynomials of σ and tanh below are
chains of them; measured on an LSTM step at (B, H) = (64, 256): 49 → 34 µs). Nothing is reordered.

No SVML here, so ``math.tanh`` is a scalar libm call (about 50 ns per float32 element, 100x
NumPy's SIMD ``np.tanh``). float32 uses instead the rational approximation Eigen and XLA use
(odd degree-13 over even degree-6 polynomial, |error| < 3e-7 against the exact tanh, NumPy's
float32 ``np.tanh`` is within 6e-8), which LLVM vectorises. float64 keeps ``math.tanh``: the
float64 path is for checking, not for speed. σ(a) = ½ tanh(a/2) + ½ as in ``rnnkit.ops.sigmoid``.
"""

from __future__ import annotations

import functools
import math
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ..._validation import check_lengths, nonfinite_error
from ._memory import keep_freed_memory

MEMORY_KEPT = keep_freed_memory()  # whether glibc's malloc now keeps freed memory for the next step's arrays
jit = functools.partial(numba.njit, cache=True, error_model="numpy", nogil=True, fastmath={"contract"})


@intrinsic
def wide_vectors(typingctx):
    """``wide_vectors()``, first in a compiled function: LLVM may vectorise its loops 512 bits wide.

    LLVM's default on AVX-512 machines is 256-bit vectors for loops it vectorises itself (the packed
    kernel's tiles are explicit 512-bit vector code and need no hint). The gate math gains 4-13 % per
    LSTM forward with 16 float32 lanes (measured at H = 16 to 256 on this machine). The hint is the
    function attribute ``"prefer-vector-width"="512"``; a machine without 512-bit vectors ignores it.
    """

    def codegen(context, builder, signature, args):
        # llvmlite checks attribute names against a fixed list; a string attribute with a value goes
        # into the underlying set as written, as LLVM's IR spells it.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.void(), codegen


_TANH_CLAMP = np.float32(7.90531110763549805)  # tanh(±7.905) rounds to ±1 in float32
_ALPHA = tuple(np.float32(a) for a in (  # numerator coefficients of x, x^3, ..., x^13
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_BETA = tuple(np.float32(b) for b in (  # denominator coefficients of 1, x^2, x^4, x^6
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))


def tanh(x: float) -> float:
    """tanh(x) in x's precision (compiled only; see the module docstring)."""
    return math.tanh(x)


@overload(tanh, inline="always")
def _tanh_overload(x):
    if x == types.float32:
        a1, a3, a5, a7, a9, a11, a13 = _ALPHA
        b0, b2, b4, b6 = _BETA
        clamp = _TANH_CLAMP

        def tanh32(x):
            x = min(max(x, -clamp), clamp)
            x2 = x * x
            p = ((((((a13 * x2 + a11) * x2 + a9) * x2 + a7) * x2 + a5) * x2 + a3) * x2 + a1) * x
            q = ((b6 * x2 + b4) * x2 + b2) * x2 + b0
            return p / q

        return tanh32
    return lambda x: math.tanh(x)


def sigmoid(x: float) -> float:
    """σ(x) = ½ tanh(x/2) + ½, in x's precision (compiled only)."""
    return 0.5 * math.tanh(0.5 * x) + 0.5


@overload(sigmoid, inline="always")
def _sigmoid_overload(x):
    half = np.float32(0.5) if x == types.float32 else 0.5  # a bare 0.5 would promote float32 to float64
    return lambda x: half * tanh(half * x) + half


@jit
def masked_state(b0, b1, h_prev, masked, rec_mask, h_in):
    """Rows b0..b1 of h̃_{t-1} = h_{t-1} ⊙ rec_mask, written into ``h_in`` (B, R); ``h_prev`` itself when not masked."""
    if not masked:
        return h_prev
    for b in range(b0, b1):
        for j in range(h_prev.shape[1]):
            h_in[b, j] = h_prev[b, j] * rec_mask[b, j]
    return h_in


CACHE_LINE = 64  # bytes: one cache line, and one AVX-512 vector
ALIGNED_MIN_BYTES = 16384  # smaller arrays are NumPy's own: aligning one costs about 1.5 µs of Python, which
# showed in the smallest configurations' calls (B, T, D, H = 1, 50, 1, 16: 44 → 61 µs an inference)


def aligned_empty(shape: int | tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` whose data starts on a cache-line boundary (NumPy's start 16 bytes past one),
    from ``ALIGNED_MIN_BYTES`` on.

    The compiled loops read and write arrays row by row, one vector of units at a time; rows of a
    multiple of 64 bytes then never straddle two lines, so no vector access is split in two, and two
    threads' row blocks never share a line. Measured with every array of the LSTM's loops aligned, a
    training step at (B, T, D, H) = (512, 50, 1, 64): 23.5 → 21.7 ms (one core); (32, 100, 65, 128):
    8.4 → 7.9 (two); (64, 200, 8, 16): 2.84 → 2.68 (one); inference 2-5 % faster.

    The size comes from ``shape`` before anything is allocated: allocating with NumPy first (to read
    ``nbytes``) and then the aligned buffer raised a training step's peak memory by 40 % at (64, 100,
    65, 256) and slowed (64, 200, 8, 16) from 2.9 to 3.9 ms.
    """
    size = (shape if isinstance(shape, int) else math.prod(shape)) * np.dtype(dtype).itemsize
    if size < ALIGNED_MIN_BYTES:
        return np.empty(shape, dtype)
    buffer = np.empty(size + CACHE_LINE, np.uint8)
    start = -buffer.ctypes.data % CACHE_LINE
    return buffer[start:start + size].view(dtype).reshape(shape)


def aligned_full(shape: int | tuple[int, ...], value: float, dtype: np.dtype) -> np.ndarray:
    """``np.full(shape, value, dtype)`` on a cache-line boundary (``aligned_empty``)."""
    array = aligned_empty(shape, dtype)
    array.fill(value)
    return array


def rows_contiguous(x: np.ndarray) -> np.ndarray:
    """``x`` itself when its rows (last axis) are contiguous and its other strides positive (e.g. a time-major view
    of a batch-major array, whose rows the loops and the kernel read in place), else a contiguous copy."""
    return x if x.strides[-1] == x.itemsize and min(x.strides) > 0 else np.ascontiguousarray(x)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` on a cache-line boundary (``aligned_empty``)."""
    array = aligned_empty(a.shape, a.dtype)
    array[...] = a
    return array


@jit
def same_memory(a, b):
    """Whether arrays ``a`` and ``b`` start at the same address (an output step that is the carried state itself)."""
    return a.ctypes.data == b.ctypes.data


def output_sequence(hs: np.ndarray, T: int, lengths: np.ndarray, keep: bool) -> tuple[np.ndarray, np.ndarray]:
    """The (T, B, R) output y of a forward whose carried states are ``hs``, as (the array the time loop writes,
    the array the forward returns).

    For a training forward (``keep``: ``hs (T + 1, B, R)`` holds every state) in which every sequence has all
    T steps (``lengths``), y_t = h_t on every step: both are ``hs[1:]``, which the backward reads, and the one
    returned is read-only. Each step's output is then written once (a training step of the simple RNN at
    (B, T, D, H) = (512, 50, 1, 64), one core: 9.6 → 8.3 ms, with its joined product per step). Otherwise
    both are one new array.
    """
    if not (keep and bool((lengths == T).all())):
        y = aligned_empty((T,) + hs.shape[1:], hs.dtype)
        return y, y
    y = hs[1:]
    y.flags.writeable = False
    return hs[1:], y


@jit
def time_major_copy(batch_major, out):
    """out (T, B, R) = batch_major (B, T, R) with its axes 0 and 1 swapped, ``batch_major`` C-contiguous; returns
    whether every element is finite (checked on each step of ``out`` while it is in the cache: the input is read
    once).

    One compiled loop that writes the rows of R of ``out`` whole (NumPy's strided copy pays about 10 ns
    per row of 16 floats: (64, 200, 16) 51 µs; this loop 21, and 457 against 480 µs at (512, 50, 64)),
    ``COPY_ROW_BLOCK`` sequences at a time: each sequence is read in order, so the hardware prefetcher
    follows a few dozen streams, where a pass over all B for each t jumps T·R elements per row.
    """
    nonfinite = out.dtype.type(0)
    T, B = out.shape[0], out.shape[1]
    for b0 in range(0, B, COPY_ROW_BLOCK):
        b1 = min(b0 + COPY_ROW_BLOCK, B)
        for t in range(T):
            for b in range(b0, b1):
                for j in range(out.shape[2]):
                    out[t, b, j] = batch_major[b, t, j]
            nonfinite += _zero_sum(out[t, b0:b1].reshape(-1))
    return nonfinite == 0


COPY_ROW_BLOCK = 32  # sequences ``time_major_copy`` copies at a time. Measured from beyond the cache (128 MB of
# other traffic between copies), float32, (B, T, R), all B at once -> 32 at a time: (512, 50, 64) 1.65 -> 1.39
# ms, (64, 200, 16) 298 -> 248 µs, (64, 200, 8) 224 -> 158, (64, 100, 256) 1.44 -> 1.36 ms, (64, 100, 1024)
# 5.8 -> 5.5; blocks of 16 about the same, of 64 no gain


@numba.njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"})
def _zero_sum(v):
    """Σ_i 0·v_i: 0 when every element of ``v`` (1-D) is finite, NaN when one is NaN or ±Inf (Inf·0 is NaN, and NaN
    survives any order of additions, so the sum may be reassociated into vectors)."""
    zero = v.dtype.type(0)
    total = zero
    for i in range(v.shape[0]):
        total += v[i] * zero
    return total


COMPILED_COPY_MIN_ROW = 8  # row length (elements) from which ``time_major`` uses the compiled copy: there it beats
# NumPy's strided copy, which pays per row (measured, float32, (B, T, R): (64, 200, 8) 54 -> 18 µs, (64, 200, 16)
# 55 -> 26, (512, 50, 64) 480 -> 457), is even with it on longer rows ((32, 100, 65) 30 / 27, (64, 100, 256)
# 454 / 468) and checks finiteness on the way; for rows of 1 or 2 NumPy's copy is faster ((512, 50, 1) 6.5
# against 25 µs)


def time_major(batch_major: np.ndarray, name: str | None = None) -> np.ndarray:
    """An aligned C-contiguous (T, B, R) copy of ``batch_major (B, T, R)``: ``time_major_copy`` for C-contiguous
    rows of ``COMPILED_COPY_MIN_ROW`` elements or more, NumPy's copy otherwise (any layout).

    ``name``: also check that every element is finite, raising the ``DataError`` of ``check_float_array``
    that names it; the compiled copy checks as it copies, so the array is read once (a training step's
    input and output gradient, read from beyond the L2 cache after the time loops).
    """
    B, T, R = batch_major.shape
    out = aligned_empty((T, B, R), batch_major.dtype)
    if batch_major.flags.c_contiguous and R >= COMPILED_COPY_MIN_ROW:
        finite = time_major_copy(batch_major, out)
    else:
        out[...] = batch_major.transpose(1, 0, 2)
        finite = name is None or np.isfinite(out).all()
    if name is not None and not finite:
        raise nonfinite_error(batch_major, name)
    return out


def dy_steps(dy: np.ndarray | None, batch: int, size: int, dtype: np.dtype) -> np.ndarray:
    """``dy (T, B, R)`` contiguous for the compiled loops (a copy is aligned), or one zero step when None (they read
    dy[min(t, len(dy) - 1)]). The recurrent layer passes a contiguous time-major copy (``time_major``, made while
    it checks dout), or a direction's columns of one; a time-major view of a batch-major array is copied by
    ``time_major`` from the batch-major array itself."""
    if dy is None:
        return aligned_full((1, batch, size), 0, dtype)
    if dy.flags.c_contiguous:
        return dy
    return time_major(dy.transpose(1, 0, 2))


def lengths_or_full(lengths: np.ndarray | None, batch: int, time: int) -> np.ndarray:
    """Checked lengths (B,) as int64, T everywhere when None: kernels test ``t < lengths[b]``."""
    return np.full(batch, time, np.int64) if lengths is None else check_lengths(lengths, batch, time)


@numba.njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"})
def weights_times_rows(W, x, out):
    """out (N, B) = W (N, K) @ x (B, K)^T + out: dot products along W's contiguous rows.

    For one streaming step (B small), where a BLAS call costs more than the product. Sums may be
    reassociated (and fused multiply-adds used) so that LLVM vectorises them: results agree with a
    BLAS product to rounding, not bitwise.
    """
    N, K = W.shape
    for b in range(x.shape[0]):
        for n in range(N):
            s = out[n, b]
            for k in range(K):
                s += W[n, k] * x[b, k]
            out[n, b] = s


STEP_COUNTER_STRIDE = 16  # int64 slots from one part's step counter to the next: 128 bytes, never one cache line


def step_counters(parts: int) -> np.ndarray:
    """Zeroed step counters for ``parts`` parts of a time loop that wait for each other (``publish_steps``,
    ``wait_for_steps``), each on a cache line of its own, and an abort flag after them (``abort_steps``)."""
    return np.zeros((parts + 1) * STEP_COUNTER_STRIDE, np.int64)


def abort_steps(counters: np.ndarray) -> None:
    """Raise the abort flag: every ``wait_for_steps`` on ``counters`` returns False from now on."""
    counters[-STEP_COUNTER_STRIDE] = 1


@intrinsic
def _load_acquire(typingctx, counters, i):
    """counters[i], an atomic load with acquire ordering: what its writer stored before it is visible after it."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.load_atomic(builder.gep(data, [args[1]]), "acquire", 8)

    return types.int64(counters, i), codegen


@intrinsic
def _store_release(typingctx, counters, i, value):
    """counters[i] = value, an atomic store with release ordering: every store before it is visible first."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        builder.store_atomic(args[2], builder.gep(data, [args[1]]), "release", 8)
        return context.get_dummy_value()

    return types.void(counters, i, value), codegen


@intrinsic
def _spin_pause(typingctx):
    """x86's ``pause`` in a spin-wait loop (frees the core's resources for its sibling); nothing elsewhere."""

    def codegen(context, builder, signature, args):
        if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
            module = builder.module
            pause = module.globals.get("llvm.x86.sse2.pause") or ir.Function(
                module, ir.FunctionType(ir.VoidType(), []), name="llvm.x86.sse2.pause")
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@jit
def publish_steps(counters, k, steps):
    """Part k has finished ``steps`` steps: its writes of them become visible to every ``wait_for_steps``."""
    _store_release(counters, k * STEP_COUNTER_STRIDE, steps)


@jit
def wait_for_steps(counters, steps):
    """Spin until every part has published ``steps`` steps (True), or until the abort flag is raised (False)."""
    parts = counters.shape[0] // STEP_COUNTER_STRIDE - 1
    for k in range(parts):
        while _load_acquire(counters, k * STEP_COUNTER_STRIDE) < steps:
            if _load_acquire(counters, parts * STEP_COUNTER_STRIDE) != 0:
                return False
            _spin_pause()
    return True
