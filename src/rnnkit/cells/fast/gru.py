"""GRU cell, fast engine: the math of ``rnnkit.cells.gru`` (the readable reference) with fused kernels.

Same functions, signatures, checks, gate-major layout (``gates (T, 3, B, H)``) and results (to
rounding) as the reference. The recurrent products stay NumPy GEMMs; the elementwise work between
them is compiled, each kernel loop writing one array over contiguous (B, H) blocks::

    forward, reset_after:  gh = h̃ W_h*^T (GEMM) -> _rz -> _candidate: hn, n, h', blend, y_t
    forward, reset_before: gh[:2] = h̃ W_h{r,z}^T (GEMM) -> _rz -> (r ⊙ h̃) W_hn^T (GEMM) -> _candidate
    backward: _gates_backward: g, da_z, da_n (da_r too when reset_after) -> [reset_before: drh = da_n W_hn
              (GEMM) -> _reset_backward] -> Σ_k dA_k W_hk (GEMMs) -> _dh_prev

rec_mask 1 and lengths T stand for "off". The equations are in ``rnnkit.cells.gru``.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_float_array
from .._common import check_h_step, check_sequence, check_state_array, input_projection
from ..gru import (
    GRUConfig,
    State,
    _gate_major,
    weight_gradients,
    init_params,
    param_shapes,
    zero_state,
)
from ._jit import jit, lengths_or_full, sigmoid, tanh, weights_times_rows

__all__ = ["GRUConfig", "State", "advance", "backward", "forward", "init_params", "param_shapes", "step", "zero_state"]


@jit
def _rz(a, gh):
    """r, z = σ(a + gh) in place on the first two blocks of a (3, B, H)."""
    _, B, H = a.shape
    for k in range(2):
        for b in range(B):
            for j in range(H):
                a[k, b, j] = sigmoid(a[k, b, j] + gh[k, b, j])


@jit
def _candidate(t, lengths, reset_after, a, gh_n, b_hn, h_prev, hn, h_out, y_t):
    """n = tanh(a_n + r ⊙ hn) with hn = gh_n + b_hn (reset_after), or tanh(a_n + gh_n) (reset_before);
    h' = n + z ⊙ (h_{t-1} - n); y_t = v h'; carried h_t = h' on valid rows, h_{t-1} on padded ones."""
    _, B, H = a.shape
    r, z, n = a[0], a[1], a[2]
    zero = a.dtype.type(0)
    for b in range(B):
        for j in range(H):
            hn[b, j] = gh_n[b, j] + b_hn[j]
    if reset_after:
        for b in range(B):
            for j in range(H):
                n[b, j] = tanh(n[b, j] + r[b, j] * hn[b, j])
    else:
        for b in range(B):
            for j in range(H):
                n[b, j] = tanh(n[b, j] + hn[b, j])
    for b in range(B):
        for j in range(H):
            y_t[b, j] = n[b, j] + z[b, j] * (h_prev[b, j] - n[b, j]) if t < lengths[b] else zero
    for b in range(B):
        for j in range(H):
            h_out[b, j] = y_t[b, j] if t < lengths[b] else h_prev[b, j]


@jit
def _gates_backward(t, lengths, reset_after, dh, dy_t, gates, h_prev, hn, g, dA, da_n):
    """g = v (dh + dy_t); da_z = g (h_{t-1} - n) z(1-z); da_n = g (1-z)(1-n²); with reset_after also
    da_r = da_n ⊙ hn ⊙ r(1-r) and dA_n = da_n ⊙ r (the gradient of h̃ W_hn^T + b_hn)."""
    _, B, H = gates.shape
    r, z, n = gates[0], gates[1], gates[2]
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    for b in range(B):
        for j in range(H):
            g[b, j] = dh[b, j] + dy_t[b, j] if t < lengths[b] else zero  # through h_t = h_{t-1} + v (h' - h_{t-1})
    for b in range(B):
        for j in range(H):  # through h' = n + z (h_{t-1} - n), z = σ(a_z)
            dA[1, b, j] = g[b, j] * (h_prev[b, j] - n[b, j]) * z[b, j] * (one - z[b, j])
    for b in range(B):
        for j in range(H):  # through n = tanh(a_n)
            da_n[b, j] = g[b, j] * (one - z[b, j]) * (one - n[b, j] * n[b, j])
    if reset_after:
        for b in range(B):
            for j in range(H):  # through a_n = ... + r ⊙ hn, r = σ(a_r)
                dA[0, b, j] = da_n[b, j] * hn[b, j] * r[b, j] * (one - r[b, j])
        for b in range(B):
            for j in range(H):  # through hn = h̃ W_hn^T + b_hn
                dA[2, b, j] = da_n[b, j] * r[b, j]


@jit
def _reset_backward(drh, h_m, r, da_r):
    """reset_before: da_r = (da_n W_hn) ⊙ h̃ ⊙ r(1-r), through a_n = ... + (r ⊙ h̃) W_hn^T."""
    B, H = r.shape
    one = r.dtype.type(1)
    for b in range(B):
        for j in range(H):
            da_r[b, j] = drh[b, j] * h_m[b, j] * r[b, j] * (one - r[b, j])


@jit
def _dh_prev(t, lengths, reset_after, prod, drh, r, rec_mask, g, z, dh):
    """dh_{t-1} = (Σ_k dA_k W_hk [+ drh ⊙ r]) ⊙ rec_mask + g ⊙ z + (1 - v) dh_t, in dh."""
    B, H = dh.shape
    zero = dh.dtype.type(0)
    for b in range(B):
        for j in range(H):
            d_rec = prod[0, b, j] + prod[1, b, j] + (prod[2, b, j] if reset_after else drh[b, j] * r[b, j])
            dh[b, j] = d_rec * rec_mask[b, j] + g[b, j] * z[b, j] + (zero if t < lengths[b] else dh[b, j])


@jit
def _step(reset_after, x_t, h_prev, W_ih, W_hh, b_ih, b_hh, a, gh, hn, h):
    """One step compiled whole, gate-major like forward (``a``, ``gh`` (3, B, H)); h (B, H) = h_t.

    a = x_t W_i*^T + b_i* (+ b_h* for r, z), gh = h_{t-1} W_h*^T (reset_before: (r ⊙ h_{t-1}) W_hn^T
    for n, after r), then the cell (_rz, _candidate, which adds b_hn). Dot products along the
    weights' rows: at batch 1 a BLAS call costs more than these products.
    """
    _, B, H = a.shape
    zero = a.dtype.type(0)
    for k in range(3):
        for b in range(B):
            for j in range(H):
                a[k, b, j] = b_ih[k * H + j] + (b_hh[k * H + j] if k < 2 else zero)
                gh[k, b, j] = zero
        weights_times_rows(W_ih[k * H:(k + 1) * H], x_t, a[k].T)  # a_k^T (H, B) += W_ik x_t^T
    for k in range(3 if reset_after else 2):
        weights_times_rows(W_hh[k * H:(k + 1) * H], h_prev, gh[k].T)
    _rz(a, gh)
    if not reset_after:
        weights_times_rows(W_hh[2 * H:], a[0] * h_prev, gh[2].T)
    _candidate(0, np.ones(B, np.int64), reset_after, a, gh[2], b_hh[2 * H:], h_prev, hn, h, h)  # every row valid


def step(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache (the reference's equations); returns (h_t, h_t)."""
    return advance(p, cfg, *check_h_step(p, cfg, x_t, state))


def advance(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): one compiled call."""
    (B, H), dtype = state.shape, state.dtype
    a, gh = np.empty((3, B, H), dtype), np.empty((3, B, H), dtype)
    hn, h = np.empty((B, H), dtype), np.empty((B, H), dtype)
    _step(cfg.reset_after, np.ascontiguousarray(x_t), np.ascontiguousarray(state), p["W_ih"], p["W_hh"], p["b_ih"],
          p["b_hh"], a, gh, hn, h)  # contiguous inputs: one compiled version serves x[:, t] slices too
    return h, h


def forward(
    p: dict[str, np.ndarray],
    cfg: GRUConfig,
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
    W_hhT = p["W_hh"].reshape(3, H, H).transpose(0, 2, 1)  # (3, H, H): W_hr^T, W_hz^T, W_hn^T
    b = p["b_ih"] + p["b_hh"]  # b_hh folds into the input projection, except b_hn when r multiplies it
    if cfg.reset_after:
        b[2 * H:] = p["b_ih"][2 * H:]
    b_hn = p["b_hh"][2 * H:] if cfg.reset_after else np.zeros(H, dtype)
    gates = _gate_major(input_projection(x, p["W_ih"], b), 3)  # (T, 3, B, H); gates[t] becomes [r, z, n]
    hs = np.empty((T + 1, B, H), dtype)  # carried h_0 .. h_T
    hs[0] = h0
    hn = np.empty((T if cfg.reset_after else 1, B, H), dtype)  # h̃ W_hn^T + b_hn (kept when reset_after)
    y = np.empty((T, B, H), dtype)
    gh = np.empty((3, B, H), dtype)  # the recurrent products of the three blocks
    h_rec, rh = np.empty((B, H), dtype), np.empty((B, H), dtype)
    for t in range(T):
        h_m = hs[t] if rec_mask is None else np.multiply(hs[t], rec_mask, out=h_rec)
        if cfg.reset_after:
            np.matmul(h_m, W_hhT, out=gh)  # (B, H) @ (3, H, H) -> (3, B, H)
            _rz(gates[t], gh)
        else:
            np.matmul(h_m, W_hhT[:2], out=gh[:2])  # (B, H) @ (2, H, H) -> (2, B, H)
            _rz(gates[t], gh)
            np.matmul(np.multiply(gates[t, 0], h_m, out=rh), W_hhT[2], out=gh[2])  # (r ⊙ h̃) W_hn^T
        _candidate(t, lengths, cfg.reset_after, gates[t], gh[2], b_hn, hs[t], hn[min(t, len(hn) - 1)], hs[t + 1], y[t])
    cache = {"x": x, "gates": gates, "hs": hs, "hn": hn, "lengths": lengths, "rec_mask": rec_mask}
    return y, hs[T].copy(), cache


def backward(
    p: dict[str, np.ndarray],
    cfg: GRUConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))`` (see the reference)."""
    x, gates, hs, hn, lengths, rec_mask = (cache[k] for k in ("x", "gates", "hs", "hn", "lengths", "rec_mask"))
    T, B, D = x.shape
    H = cfg.hidden_size
    dtype = hs.dtype
    if dy is not None:
        dy = check_float_array(dy, "dy", shape=(T, B, H), dtype=dtype)
    dh = np.zeros((B, H), dtype) if dstate is None else check_state_array(dstate, B, H, dtype, "dstate").copy()
    W_hh3 = p["W_hh"].reshape(3, H, H)  # W_hr, W_hz, W_hn
    h_m = hs[:-1] if rec_mask is None else hs[:-1] * rec_mask  # h̃ for every step, (T, B, H)
    mask = np.ones((B, H), dtype) if rec_mask is None else rec_mask
    no_dy = np.zeros((B, H), dtype)
    dA = np.empty((T, 3, B, H), dtype)  # gradients of the recurrent product's blocks r, z, n
    da_n = np.empty((T, B, H), dtype) if cfg.reset_after else dA[:, 2]
    g, drh, prod = np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty((3, B, H), dtype)
    for t in reversed(range(T)):
        _gates_backward(t, lengths, cfg.reset_after, dh, no_dy if dy is None else dy[t], gates[t], hs[t],
                        hn[min(t, len(hn) - 1)], g, dA[t], da_n[t])
        if cfg.reset_after:
            np.matmul(dA[t], W_hh3, out=prod)  # (3, B, H) @ (3, H, H), through h̃ W_h*^T
        else:
            np.matmul(da_n[t], W_hh3[2], out=drh)  # through (r ⊙ h̃) W_hn^T
            _reset_backward(drh, h_m[t], gates[t, 0], dA[t, 0])
            np.matmul(dA[t, :2], W_hh3[:2], out=prod[:2])  # through h̃ W_hr^T, h̃ W_hz^T
        _dh_prev(t, lengths, cfg.reset_after, prod, drh, gates[t, 0], mask, g, gates[t, 1], dh)

    grads, dx = weight_gradients(p, cfg, x, h_m, gates, dA, da_n)
    return grads, dx, dh
