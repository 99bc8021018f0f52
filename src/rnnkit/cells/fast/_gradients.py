"""Weight gradients summed inside a backward time loop, step by step, while each step's gradients are in the cache.

A cell's pre-activations are ``a_t = x_t W_ih^T + h̃_{t-1} W_hh^T + b`` (B, G), G = gate blocks × H, so
once the backward loop has ``da_t`` it owes::

    dx_t = da_t W_ih (B, D),   dW_ih += da_t^T x_t,   dW_hh += da_t^T h̃_{t-1},   db += Σ_b da_t[b]

Summed after the loop these are GEMMs over all T·B rows, which need ``da`` for every step: a
(T, B, G) array written by the loop and read back three times. ``add_step_gradients`` does them
inside the loop instead, each row block into its own part of the sums (``parts``; added at the
end by ``totals``), with the packed kernel (``times_packed`` for dx_t, ``add_transposed_times`` for
the sums, kept transposed: dW^T (D or R, G)). That pays while the sums stay in the cache
(``STEP_GRADIENTS_MAX_BYTES``) and a step has enough rows and columns to amortise loading and storing
them (``STEP_GRADIENTS_MIN_ROWS``, ``STEP_GRADIENTS_MIN_COLUMNS``); otherwise the cells keep the GEMMs
after the loop (``after_loop``).
"""

from __future__ import annotations

import numpy as np

from ._blas import column_sums, matmul
from ._jit import aligned_empty, aligned_full, jit, wide_vectors
from ._kernel import add_transposed_times, no_panels, pack, times_packed

STEP_GRADIENTS_MAX_BYTES = 512 * 1024  # dW_ih and dW_hh together up to which they are summed step by step
# (measured, LSTM: (D, H) = (65, 128), 395 KB: 13.6 -> 12.6 ms a training step on one core; (65, 256), 1.3 MB: 87 -> 92)
STEP_GRADIENTS_MIN_ROWS = 8  # rows per block from which they are (a step's sums over fewer rows are mostly loads and
# stores of the sums; LSTM backward at (B, T, D, H) = (1, 50, 1, 16): 66 µs after the loop, 72 inside; (16, 8, 2, 16): 69, 53)
STEP_GRADIENTS_MIN_COLUMNS = 32  # pre-activations per row from which they are (fewer fill less than two vectors of
# a tile: a simple RNN's backward at (64, 200, 8, 16): 1.01 ms after the loop, 1.15 inside)


def in_loop(blocks: list[tuple[int, int]], D: int, R: int, G: int, dtype: np.dtype) -> bool:
    """Whether a backward over row ``blocks`` sums the weight gradients of W_ih (G, D) and W_hh (G, R) in its loop."""
    return (D + R) * G * np.dtype(dtype).itemsize <= STEP_GRADIENTS_MAX_BYTES and G >= STEP_GRADIENTS_MIN_COLUMNS \
        and min(b1 - b0 for b0, b1 in blocks) >= STEP_GRADIENTS_MIN_ROWS


def parts(blocks: list[tuple[int, int]], W_ih: np.ndarray, T: int, B: int, R: int, summed: bool) -> tuple:
    """``(P_ih, dx, starts, dW_ih_parts, dW_hh_parts, db_parts)`` for ``add_step_gradients`` over row ``blocks``:
    W_ih (G, D) packed, dx (T, B, D), the blocks' first rows, and one zeroed part of each sum per block. Without
    ``summed`` (the loop leaves them to GEMMs) P_ih has no panel and the arrays are empty."""
    G, D = W_ih.shape
    dtype, starts = W_ih.dtype, np.array([b0 for b0, _ in blocks], np.int64)
    if not summed:
        empty = tuple(np.empty((0, *shape, G), dtype) for shape in ((D,), (R,), ()))
        return no_panels(G, dtype), np.empty((0, B, D), dtype), starts, *empty
    sums = tuple(aligned_full((len(blocks), *shape, G), 0, dtype) for shape in ((D,), (R,), ()))
    return pack(W_ih, False), aligned_empty((T, B, D), dtype), starts, *sums


@jit
def add_input_gradients(b0, b1, part, da_t, x_t, P_ih, dx_t, dW_ih_parts, db_parts):
    """Rows b0..b1 of a step: dx_t = da_t W_ih (B, D) (``P_ih``: W_ih packed), and into the block's ``part`` of the
    sums dW_ih^T (D, G) += x_t^T da_t and db (G,) += Σ_b da_t[b]."""
    wide_vectors()
    times_packed(b0, b1, da_t, P_ih, dx_t, 0.0)
    add_transposed_times(b0, b1, x_t, da_t, dW_ih_parts[part])
    db = db_parts[part]
    for b in range(b0, b1):
        for n in range(da_t.shape[1]):
            db[n] += da_t[b, n]


@jit
def add_step_gradients(b0, b1, starts, da_t, x_t, h_in, P_ih, dx_t, dW_ih_parts, dW_hh_parts, db_parts):
    """Rows b0..b1 of a step, while da_t (B, G) is in the cache: ``add_input_gradients``, and dW_hh^T (R, G) +=
    h̃_{t-1}^T da_t (``h_in`` = h̃_{t-1}), into the part of the block that starts at b0 (``starts``: the blocks'
    first rows)."""
    part = np.searchsorted(starts, b0)
    add_input_gradients(b0, b1, part, da_t, x_t, P_ih, dx_t, dW_ih_parts, db_parts)
    add_transposed_times(b0, b1, h_in, da_t, dW_hh_parts[part])


def totals(dW_ih_parts: np.ndarray, dW_hh_parts: np.ndarray, db_parts: np.ndarray) -> tuple:
    """``(dW_ih (G, D), dW_hh (G, R), db (G,))``: the blocks' parts added, the weight gradients transposed back."""
    dW_ih, dW_hh = (np.ascontiguousarray(p.sum(axis=0).T) for p in (dW_ih_parts, dW_hh_parts))
    return dW_ih, dW_hh, db_parts.sum(axis=0)


def after_loop(da: np.ndarray, x: np.ndarray, h_in: np.ndarray, W_ih: np.ndarray) -> tuple:
    """``(dW_ih (G, D), dW_hh (G, R), db (G,), dx (T, B, D))`` as GEMMs over all T·B rows, from every step's ``da
    (T, B, G)``, ``x (T, B, D)`` and ``h_in (T, B, R)`` = h̃_{t-1}: when the loop left the sums to them."""
    T, B, G = da.shape
    da_rows = da.reshape(T * B, G)
    dW_ih = matmul(da_rows, x.reshape(T * B, -1), trans_a=True)  # (G, TB) @ (TB, D)
    dW_hh = matmul(da_rows, h_in.reshape(T * B, -1), trans_a=True)  # (G, TB) @ (TB, R)
    dx = matmul(da_rows, W_ih).reshape(T, B, -1)  # (TB, G) @ (G, D)
    return dW_ih, dW_hh, column_sums(da_rows), dx
