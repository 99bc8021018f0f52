"""Simple RNN cell, fast engine: the math of ``rnnkit.cells.rnn`` (the readable reference), compiled.

Same functions, signatures, checks and results (to rounding) as the reference. Arrays are
batch-major like the reference's inputs and outputs (``a_t``, ``h_t``, ``y_t`` all ``(B, H)``), so
nothing is transposed. The whole time loop is one compiled function; its per-step product
multiplies by W_hh packed once per call (``_kernel.pack``, ``_kernel.times_packed``)::

    forward:  a_t = a_x + h̃_{t-1} W_hh^T -> _cell_forward: h_new = f(a_t + b_ih + b_hh),
              length blend: carried h_t, y_t = v_t h_new (in place of a_t)
    backward: _cell_backward: dh_t = rec ⊙ rec_mask + carried, da_t = v_t (dh_t + dy_t) ⊙ f'(a_t)
              -> rec = da_t W_hh [-> add_step_gradients: dx_t, dW_ih, dW_hh, db]

with v_t = 1 on valid steps (t < lengths[b]) and 0 on padded ones. Rows of a batch never meet
inside the loop, so ``_blas.run_split`` runs one loop per block of rows, one block per BLAS
thread, in parallel. With many input features the input projection ``a_x = x W_ih^T`` is one GEMM
over all T·B rows before the loop; with one or two (OpenBLAS is slow at inner dimension 1, and a
GEMM call costs more than the product on small problems) a step's pre-activation is one product
on [x_t, h̃_{t-1}] by [W_ih, W_hh]^T packed (``_kernel.times_packed_pair``), written where y_t goes:
in a training forward whose sequences all have T steps, y is the cache's h_1..h_T itself
(``_jit.output_sequence``). When the weight gradients fit in the cache, the backward loop computes
``dx_t`` and adds each step's part of dW_ih, dW_hh and db while ``da_t`` is in the cache
(``_gradients``); otherwise they and ``dx`` are single GEMMs over all T·B rows after the loop
(``_blas.matmul``, never ``@``: see ``_blas``).

Each kernel loop writes one array (LLVM then vectorises it along the units); the activation is an
integer code (``_CODES``) with one loop per activation. rec_mask 1 and lengths T stand for "off",
so each kernel is compiled once per dtype. The equations are in ``rnnkit.cells.rnn``.
"""

from __future__ import annotations

import numba
import numpy as np

from .._common import check_h_backward, check_h_forward, check_h_step
from ..rnn import RNNConfig, State, init_params, param_shapes, zero_state
from ._blas import matmul, run_split, split_rows
from ._gradients import add_step_gradients, after_loop, in_loop, parts, totals
from ._jit import (
    aligned_copy,
    aligned_empty,
    aligned_full,
    dy_steps,
    jit,
    lengths_or_full,
    masked_state,
    output_sequence,
    rows_contiguous,
    same_memory,
    sigmoid,
    tanh,
    weights_times_rows,
    wide_vectors,
)
from ._kernel import no_panels, pack, times_packed, times_packed_pair

__all__ = ["RNNConfig", "State", "advance", "backward", "forward", "infer", "init_params", "param_shapes", "step", "zero_state"]

_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3}
STEPWISE_PROJECTION_MAX_D = 2  # input sizes up to which x_t W_ih^T is computed inside the time loop:
# with more, one GEMM before the loop is faster (measured at (B, T, H) = (64, 200, 16), D = 2..8)


@jit
def _cell_forward(b0, b1, t, lengths, code, bias, a, h_prev, h_out):
    """Rows b0..b1 of step t: a (B, H) = f(a + bias), which leaves as y_t = v_t f(a).

    Carried h_t = f(a) on valid rows (v_t = 1: t < lengths[b]), h_{t-1} on padded ones.
    """
    wide_vectors()
    H = a.shape[1]
    zero = a.dtype.type(0)
    distinct = not same_memory(a, h_out)  # y_t is h_t itself: a training forward of full sequences
    for b in range(b0, b1):
        if code == 0:
            for j in range(H):
                a[b, j] = tanh(a[b, j] + bias[j])
        elif code == 1:
            for j in range(H):
                a[b, j] = sigmoid(a[b, j] + bias[j])
        elif code == 2:
            for j in range(H):
                a[b, j] = max(a[b, j] + bias[j], zero)
        else:
            for j in range(H):
                a[b, j] += bias[j]
        if t < lengths[b]:
            if distinct:
                for j in range(H):
                    h_out[b, j] = a[b, j]
        else:
            for j in range(H):
                h_out[b, j] = h_prev[b, j]
            for j in range(H):
                a[b, j] = zero


@jit
def _cell_backward(b0, b1, t, lengths, code, rec, rec_mask, dh, dy_t, h, da):
    """Rows b0..b1: dh_t = rec ⊙ rec_mask + dh; da_t (B, H) = v (dh_t + dy_t) ⊙ f'(a_t), f' written from h = f(a_t).

    ``dh`` enters holding the part of dh_t that the step after carried back, and leaves holding
    the part this step carries back, (1 - v_t) dh_t. Padded rows get da = 0.
    """
    wide_vectors()
    H = dh.shape[1]
    zero, one = dh.dtype.type(0), dh.dtype.type(1)
    for b in range(b0, b1):
        for j in range(H):
            dh[b, j] += rec[b, j] * rec_mask[b, j]  # through h̃_{t-1} W_hh^T, h̃ = h ⊙ rec_mask
        if not t < lengths[b]:
            for j in range(H):
                da[b, j] = zero
            continue
        if code == 0:
            for j in range(H):
                da[b, j] = (dh[b, j] + dy_t[b, j]) * (one - h[b, j] * h[b, j])
        elif code == 1:
            for j in range(H):
                da[b, j] = (dh[b, j] + dy_t[b, j]) * h[b, j] * (one - h[b, j])
        elif code == 2:
            for j in range(H):
                da[b, j] = dh[b, j] + dy_t[b, j] if h[b, j] > zero else zero
        else:
            for j in range(H):
                da[b, j] = dh[b, j] + dy_t[b, j]
        for j in range(H):
            dh[b, j] = zero


@jit
def _forward_rows(b0, b1, code, x, P_xh, bias, P_hh, rec_mask, masked, lengths, a, hs, h_in):
    """The forward time loop over rows b0..b1 (see the module docstring).

    With few input features ``P_xh`` is [W_ih, W_hh]^T packed, ``a (T, B, H)`` starts empty and a step's
    pre-activation is one product on [x_t, h̃_{t-1}] (``times_packed_pair``); otherwise ``P_xh`` has no
    panel, ``a`` holds the input projection x_t W_ih^T and h̃_{t-1} W_hh^T (``P_hh``: W_hh^T packed) is
    added on. ``a`` leaves holding y. ``hs`` holds h_t at ``hs[t % len(hs)]``: every state for a training
    forward's backward, two (alternating) in inference.
    """
    T = a.shape[0]
    for t in range(T):
        h = hs[t % len(hs)]
        h_prev = masked_state(b0, b1, h, masked, rec_mask, h_in)  # h̃_{t-1}
        if P_xh.shape[0] > 0:  # few input features (OpenBLAS is slow at inner dimension 1)
            times_packed_pair(b0, b1, x[t], h_prev, P_xh, a[t], 0.0)
        else:
            times_packed(b0, b1, h_prev, P_hh, a[t], 1.0)
        _cell_forward(b0, b1, t, lengths, code, bias, a[t], h, hs[(t + 1) % len(hs)])


@jit
def _backward_rows(b0, b1, code, lengths, hs, P_hh, rec_mask, dy, dh, rec, da, x, masked, h_in, P_ih, dx, starts,
                   dW_ih_parts, dW_hh_parts, db_parts):
    """The backward time loop over rows b0..b1 (``P_hh``: W_hh packed); ``dy`` has one zero step when only the
    final state has a gradient.

    ``dh`` enters as the gradient of the final state and leaves as that of the initial one. When ``P_ih``
    (W_ih packed) has panels, each step's ``dx[t]`` and its parts of the sums for dW_ih, dW_hh and db are
    computed as soon as ``da_t`` is (``_gradients.add_step_gradients``, h̃_{t-1} into the scratch ``h_in``),
    and ``da`` holds a single step (``da[t % len(da)]``); otherwise they are left to GEMMs after the loop.
    """
    T = hs.shape[0] - 1
    for t in range(T - 1, -1, -1):
        da_t = da[t % len(da)]
        _cell_backward(b0, b1, t, lengths, code, rec, rec_mask, dh, dy[min(t, len(dy) - 1)], hs[t + 1], da_t)
        times_packed(b0, b1, da_t, P_hh, rec, 0.0)  # through a_t += h̃_{t-1} W_hh^T
        if P_ih.shape[0] > 0:  # the weight gradients' parts and dx_t, while da_t is in the cache
            add_step_gradients(b0, b1, starts, da_t, x[t], masked_state(b0, b1, hs[t], masked, rec_mask, h_in), P_ih,
                               dx[t], dW_ih_parts, dW_hh_parts, db_parts)
    for b in range(b0, b1):
        for j in range(dh.shape[1]):
            dh[b, j] += rec[b, j] * rec_mask[b, j]  # dh_0


@numba.njit(parallel=True, nogil=True, cache=True)
def _forward_blocks(edges, *args):
    """``_forward_rows`` on the row blocks [edges[k], edges[k + 1]) in parallel threads (``_blas.run_split``)."""
    for k in numba.prange(len(edges) - 1):
        _forward_rows(edges[k], edges[k + 1], *args)


@numba.njit(parallel=True, nogil=True, cache=True)
def _backward_blocks(edges, *args):
    """``_backward_rows`` on the row blocks [edges[k], edges[k + 1]) in parallel threads (``_blas.run_split``)."""
    for k in numba.prange(len(edges) - 1):
        _backward_rows(edges[k], edges[k + 1], *args)


@jit
def _step(code, x_t, h_prev, W_ih, W_hh, b_ih, b_hh, h):
    """One step compiled whole: h (B, H) = f(b_ih + b_hh + x_t W_ih^T + h_{t-1} W_hh^T), f by ``code``.

    Dot products along the weights' rows: at batch 1 a BLAS call costs more than these products.
    """
    B, H = h.shape
    a = np.zeros((B, H), h.dtype)
    weights_times_rows(W_ih, x_t, a.T)  # a^T (H, B) += W_ih x_t^T
    weights_times_rows(W_hh, h_prev, a.T)
    always = np.ones(B, np.int64)  # t = 0 < 1: every row is valid
    _cell_forward(0, B, 0, always, code, b_ih + b_hh, a, h_prev, h)


def step(p: dict[str, np.ndarray], cfg: RNNConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); returns (h_t, h_t)."""
    return advance(p, cfg, *check_h_step(p, cfg, x_t, state))


def advance(p: dict[str, np.ndarray], cfg: RNNConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): one compiled call."""
    h = np.empty(state.shape, state.dtype)  # contiguous inputs: one compiled version serves x[:, t] slices too
    _step(_CODES[cfg.activation], np.ascontiguousarray(x_t), np.ascontiguousarray(state), p["W_ih"], p["W_hh"],
          p["b_ih"], p["b_hh"], h)
    return h, h


def forward(
    p: dict[str, np.ndarray],
    cfg: RNNConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    rec_mask: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> tuple[np.ndarray, State, dict]:
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, H), h_T (B, H), cache)`` (see the reference)."""
    x, h0, rec_mask = check_h_forward(p, cfg, x, state0, rec_mask, finite=check_finite)
    return _run(p, cfg, x, h0, lengths, rec_mask, keep=True)


def infer(
    p: dict[str, np.ndarray],
    cfg: RNNConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> tuple[np.ndarray, State]:
    """``forward`` keeping nothing for a backward: ``(y (T, B, H), h_T)``; the loop keeps two states, not T + 1."""
    x, h0, _ = check_h_forward(p, cfg, x, state0, None, finite=check_finite)
    y, h, _ = _run(p, cfg, x, h0, lengths, None, keep=False)
    return y, h


def _run(p: dict[str, np.ndarray], cfg: RNNConfig, x: np.ndarray, h0: np.ndarray, lengths: np.ndarray | None,
         rec_mask: np.ndarray | None, keep: bool) -> tuple[np.ndarray, State, dict]:
    """The forward of checked ``x``, ``h0``, ``rec_mask``; ``keep``: keep every state for the backward (the
    cache), else two (the cache is None)."""
    T, B, D = x.shape
    H, dtype = cfg.hidden_size, x.dtype
    lengths = lengths_or_full(lengths, B, T)
    x = rows_contiguous(x)  # x[t]: rows read in place, any row stride
    hs = aligned_empty((T + 1 if keep else 2, B, H), dtype)  # carried h_0 .. h_T
    hs[0] = h0
    # a (T, B, H): the pre-activations, which become y in place; y: the output returned
    if D <= STEPWISE_PROJECTION_MAX_D:  # few input features: one product per step on [x_t, h̃_{t-1}]
        P_xh, P_hh = pack(np.concatenate([p["W_ih"], p["W_hh"]], axis=1), True), no_panels(H, dtype)
        a, y = output_sequence(hs, T, lengths, keep)
    else:  # x_t W_ih^T from one GEMM; the loop adds the rest
        P_xh, P_hh = no_panels(D + H, dtype), pack(p["W_hh"], True)
        a = y = matmul(x.reshape(T * B, D), p["W_ih"], trans_b=True).reshape(T, B, H)
    mask = aligned_full((B, H), 1, dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
    run_split(_forward_rows, B, _CODES[cfg.activation], x, P_xh, p["b_ih"] + p["b_hh"], P_hh, mask,
              rec_mask is not None, lengths, a, hs, aligned_empty((B, H), dtype), macs=T * B * H * (H + D * (len(P_xh) > 0)),
              parallel=_forward_blocks)
    h_T = hs[T % len(hs)].copy()
    if not keep:
        return y, h_T, None
    cache = {"x": x, "hs": hs, "lengths": lengths, "rec_mask": rec_mask}
    return y, h_T, cache


def backward(
    p: dict[str, np.ndarray],
    cfg: RNNConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
    *,
    check_finite: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))`` (see the reference)."""
    x, hs, lengths, rec_mask = cache["x"], cache["hs"], cache["lengths"], cache["rec_mask"]
    T, B, D = x.shape
    H = cfg.hidden_size
    dtype = hs.dtype
    dy, dh = check_h_backward(dy, dstate, (T, B, H), dtype, finite=check_finite)
    dy, dh = dy_steps(dy, B, H, dtype), aligned_copy(dh)  # dh: updated in place
    mask = aligned_full((B, H), 1, dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
    macs = T * B * H * H
    blocks = split_rows(B, macs=macs)
    summed = in_loop(blocks, D, H, H, dtype)  # dx, dW_ih, dW_hh, db inside the loop
    da = aligned_empty((1 if summed else T, B, H), dtype)  # dL/da_t
    P_ih, dx, starts, *sums = parts(blocks, p["W_ih"], T, B, H, summed)
    run_split(_backward_rows, B, _CODES[cfg.activation], lengths, hs, pack(p["W_hh"], False), mask, dy, dh,
              aligned_full((B, H), 0, dtype), da, x, rec_mask is not None, aligned_empty((B, H), dtype), P_ih, dx,
              starts, *sums, blocks=blocks, macs=macs, parallel=_backward_blocks)
    if summed:
        dW_ih, dW_hh, db = totals(*sums)
    else:
        h_in = hs[:-1] if rec_mask is None else hs[:-1] * mask  # (T, B, H): h̃_{t-1}
        dW_ih, dW_hh, db, dx = after_loop(da, x, h_in, p["W_ih"])
    grads = {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db, "b_hh": db.copy()}
    return grads, dx, dh
