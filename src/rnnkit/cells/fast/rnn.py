"""Simple RNN cell, fast engine: the math of ``rnnkit.cells.rnn`` (the readable reference) with fused kernels.

Same functions, signatures, checks, layout (``a_t (B, H)``) and results (to rounding) as the
reference. Per step: one NumPy GEMM for the recurrent product and one compiled kernel for the rest::

    forward:  rec = h̃_{t-1} W_hh^T (GEMM) -> _step_forward: h_new = f(a_x + rec), length blend, y_t
    backward: _step_backward: dh_t = rec ⊙ rec_mask + carried, da_t = v (dh_t + dy_t) f'(h_new)
              -> rec = da_t W_hh (GEMM)

The activation is an integer code (one compiled kernel for all four, one loop per activation);
rec_mask 1 and lengths T stand for "off". The equations are in ``rnnkit.cells.rnn``.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_float_array
from .._common import check_h_step, check_sequence, check_state_array, input_projection
from ..rnn import RNNConfig, State, init_params, param_shapes, zero_state
from ._jit import jit, lengths_or_full, sigmoid, tanh, weights_times_rows

__all__ = ["RNNConfig", "State", "advance", "backward", "forward", "init_params", "param_shapes", "step", "zero_state"]

_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3}


@jit(inline="always")
def _activate(code, a):
    """a = f(a) in place (B, H), f by ``code`` (see _CODES); one loop per f so that each vectorises."""
    B, H = a.shape
    zero = a.dtype.type(0)
    if code == 0:
        for b in range(B):
            for j in range(H):
                a[b, j] = tanh(a[b, j])
    elif code == 1:
        for b in range(B):
            for j in range(H):
                a[b, j] = sigmoid(a[b, j])
    elif code == 2:
        for b in range(B):
            for j in range(H):
                a[b, j] = max(a[b, j], zero)


@jit(inline="always")
def _times_grad(code, h, d):
    """d ⊙= f'(a) in place, f' written from h = f(a) (as rnnkit.ops does)."""
    B, H = h.shape
    zero, one = h.dtype.type(0), h.dtype.type(1)
    if code == 0:
        for b in range(B):
            for j in range(H):
                d[b, j] *= one - h[b, j] * h[b, j]
    elif code == 1:
        for b in range(B):
            for j in range(H):
                d[b, j] *= h[b, j] * (one - h[b, j])
    elif code == 2:
        for b in range(B):
            for j in range(H):
                d[b, j] = d[b, j] if h[b, j] > zero else zero


@jit
def _step_forward(t, lengths, code, a, rec, h_prev, h_out, y_t):
    """h_new = f(a + rec) (B, H); y_t = v_t h_new; carried h_t = h_new on valid rows, h_{t-1} on padded ones."""
    B, H = h_prev.shape
    zero = a.dtype.type(0)
    for b in range(B):
        for j in range(H):
            y_t[b, j] = a[b, j] + rec[b, j]
    _activate(code, y_t)
    for b in range(B):
        for j in range(H):
            h_out[b, j] = y_t[b, j] if t < lengths[b] else h_prev[b, j]
    for b in range(B):
        for j in range(H):
            y_t[b, j] = y_t[b, j] if t < lengths[b] else zero


@jit
def _step_backward(t, lengths, code, rec, rec_mask, dh, dy_t, h_new, da):
    """dh_t = rec ⊙ rec_mask + dh; da_t = v (dh_t + dy_t) ⊙ f'(a_t); dh keeps (1 - v) dh_t for the step before."""
    B, H = dh.shape
    zero = dh.dtype.type(0)
    for b in range(B):
        for j in range(H):
            dh[b, j] += rec[b, j] * rec_mask[b, j]  # through (h_{t-1} ⊙ rec_mask) W_hh^T
    for b in range(B):
        for j in range(H):  # through y_t = v h_new
            da[b, j] = dh[b, j] + dy_t[b, j] if t < lengths[b] else zero
    _times_grad(code, h_new, da)  # through h = f(a)
    for b in range(B):
        for j in range(H):  # padded steps pass dh_t to the step before
            dh[b, j] = zero if t < lengths[b] else dh[b, j]


@jit
def _step(code, x_t, h_prev, W_ih, W_hh, b_ih, b_hh, h):
    """One step compiled whole: h (B, H) = f(b_ih + b_hh + x_t W_ih^T + h_{t-1} W_hh^T), f by ``code``.

    Dot products along the weights' rows: at batch 1 a BLAS call costs more than these products.
    """
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            h[b, j] = b_ih[j] + b_hh[j]
    weights_times_rows(W_ih, x_t, h.T)  # h^T (H, B) += W_ih x_t^T
    weights_times_rows(W_hh, h_prev, h.T)
    _activate(code, h)


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
) -> tuple[np.ndarray, State, dict]:
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, H), h_T (B, H), cache)`` (see the reference)."""
    dtype = p["W_ih"].dtype
    x = check_sequence(x, cfg.input_size, dtype)
    T, B, _ = x.shape
    H = cfg.hidden_size
    h0 = zero_state(cfg, B, dtype) if state0 is None else check_state_array(state0, B, H, dtype, "state0")
    if rec_mask is not None:
        rec_mask = check_state_array(rec_mask, B, H, dtype, "rec_mask")
    lengths = lengths_or_full(lengths, B, T)
    code, W_hhT = _CODES[cfg.activation], p["W_hh"].T

    a = input_projection(x, p["W_ih"], p["b_ih"] + p["b_hh"])  # (T, B, H)
    hs = np.empty((T + 1, B, H), dtype=dtype)  # carried h_0 .. h_T
    hs[0] = h0
    y = np.empty((T, B, H), dtype=dtype)
    rec, h_rec = np.empty((B, H), dtype), np.empty((B, H), dtype)
    for t in range(T):
        h_prev = hs[t] if rec_mask is None else np.multiply(hs[t], rec_mask, out=h_rec)
        np.matmul(h_prev, W_hhT, out=rec)  # (B, H) @ (H, H)
        _step_forward(t, lengths, code, a[t], rec, hs[t], hs[t + 1], y[t])
    cache = {"x": x, "hs": hs, "lengths": lengths, "rec_mask": rec_mask}
    return y, hs[T].copy(), cache


def backward(
    p: dict[str, np.ndarray],
    cfg: RNNConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))`` (see the reference)."""
    x, hs, lengths, rec_mask = cache["x"], cache["hs"], cache["lengths"], cache["rec_mask"]
    T, B, D = x.shape
    H = cfg.hidden_size
    dtype = hs.dtype
    if dy is not None:
        dy = check_float_array(dy, "dy", shape=(T, B, H), dtype=dtype)
    dh = np.zeros((B, H), dtype) if dstate is None else check_state_array(dstate, B, H, dtype, "dstate").copy()
    code, W_hh = _CODES[cfg.activation], p["W_hh"]
    no_dy = np.zeros((B, H), dtype)
    mask = np.ones((B, H), dtype) if rec_mask is None else rec_mask
    da = np.empty((T, B, H), dtype)
    rec = np.zeros((B, H), dtype)  # da_{t+1} W_hh, the recurrent part of dh_t
    for t in reversed(range(T)):
        _step_backward(t, lengths, code, rec, mask, dh, no_dy if dy is None else dy[t], hs[t + 1], da[t])
        np.matmul(da[t], W_hh, out=rec)  # (B, H) @ (H, H), through h̃_{t-1} W_hh^T
    dh += rec * mask  # dh_0

    h_rec = hs[:-1] if rec_mask is None else hs[:-1] * rec_mask  # (T, B, H)
    da2 = da.reshape(T * B, H)
    db = da2.sum(axis=0)
    grads = {
        "W_ih": da2.T @ x.reshape(T * B, D),  # (H, TB) @ (TB, D)
        "W_hh": da2.T @ h_rec.reshape(T * B, H),  # (H, TB) @ (TB, H)
        "b_ih": db,
        "b_hh": db.copy(),
    }
    dx = (da2 @ p["W_ih"]).reshape(T, B, D)  # (TB, H) @ (H, D)
    return grads, dx, dh
