"""GRU cell, fast engine: the math of ``rnnkit.cells.gru`` (the readable reference), compiled.

Same functions, signatures, checks and results (to rounding) as the reference. Arrays are
batch-major like the reference's inputs and outputs (pre-activations, then gates, ``a_t (B, 3H)``
in PyTorch's order r, z, n; ``h_t (B, H)``), so no large array is transposed. The whole time loop
is one compiled function; its per-step products multiply by weights packed once per call
(``_kernel.pack``, ``_kernel.times_packed``); h̃ = h_{t-1} ⊙ rec_mask::

    forward, reset_after:  rec = h̃ W_h{r,z,n}^T -> _rz: r, z -> _candidate: hn = rec_n + b_hn, n, h', y_t
    forward, reset_before: rec = h̃ W_h{r,z}^T -> _rz -> rec_n = (r ⊙ h̃) W_hn^T -> _candidate
    backward: _gates_backward: g, dA_z, da_n, dA_n (dA_r too with reset_after)
              -> [reset_before: drh = da_n W_hn -> _reset_backward: dA_r]
              -> drec = dA_{r,z(,n)} W_h{r,z(,n)} [-> _step_gradients: dx_t, dW_ih, dW_hh, db] -> _dh_prev

dA is the gradient of the recurrent product's blocks, da_n that of the n pre-activation.
Rows of a batch never meet inside the loop, so ``_blas.run_split`` runs one loop per block of rows,
one block per BLAS thread, in parallel. The input projection (forward; inside the loop for few
input features) is a GEMM over all T·B rows. When the weight gradients fit in the cache, the
backward loop computes ``dx_t`` and adds each step's part of them while dA_t and da_n_t are in the
cache (``_step_gradients``, ``_gradients``); otherwise they and ``dx`` are GEMMs over all T·B rows
after the loop (``rnnkit.cells.gru.weight_gradients``), through ``_blas.matmul``.

Each kernel loop writes one array (LLVM then vectorises it along the units); the biases are added
in the kernels. rec_mask 1 and lengths T stand for "off", so each kernel is compiled once per dtype.
"""

from __future__ import annotations

import numba
import numpy as np

from .._common import check_h_backward, check_h_forward, check_h_step
from ..gru import (
    GRUConfig,
    State,
    init_params,
    param_shapes,
    weight_gradients,
    zero_state,
)
from ._blas import column_sums, matmul, run_split, split_rows
from ._gradients import add_input_gradients, in_loop, parts, totals
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
from ._kernel import add_transposed_times, no_panels, pack, times_packed

__all__ = ["GRUConfig", "State", "advance", "backward", "forward", "infer", "init_params", "param_shapes", "step", "zero_state"]


@jit
def _rz(b0, b1, a, rec, bias):
    """Rows b0..b1: r, z = σ(a + rec + b) in place on the first 2H columns of a (B, 3H); rec (B, ≥ 2H)."""
    wide_vectors()
    H2 = 2 * (a.shape[1] // 3)
    for b in range(b0, b1):
        for j in range(H2):
            a[b, j] = sigmoid(a[b, j] + rec[b, j] + bias[j])


@jit
def _candidate(b0, b1, t, lengths, reset_after, a, rec_n, n0, bias, b_hn, h_prev, hn, h_out, y_t):
    """Rows b0..b1: n = tanh(a_n + b_n + r ⊙ hn), hn = rec_n + b_hn (reset_after, kept in hn), or
    tanh(a_n + b_n + rec_n) (reset_before, b_n holding b_hn); h' = n + z ⊙ (h_{t-1} - n); y_t = v h';
    carried h_t = h' on valid rows, h_{t-1} on padded ones. The recurrent n block is rec_n[:, n0:n0 + H]."""
    wide_vectors()
    H = h_prev.shape[1]
    zero = a.dtype.type(0)
    distinct = not same_memory(y_t, h_out)  # y_t is h_t itself: a training forward of full sequences
    for b in range(b0, b1):
        if reset_after:
            for j in range(H):
                hn[b, j] = rec_n[b, n0 + j] + b_hn[j]
            for j in range(H):
                a[b, 2 * H + j] = tanh(a[b, 2 * H + j] + bias[2 * H + j] + a[b, j] * hn[b, j])
        else:
            for j in range(H):
                a[b, 2 * H + j] = tanh(a[b, 2 * H + j] + bias[2 * H + j] + rec_n[b, n0 + j])
        if t < lengths[b]:
            for j in range(H):
                n = a[b, 2 * H + j]
                y_t[b, j] = n + a[b, H + j] * (h_prev[b, j] - n)
            if distinct:
                for j in range(H):
                    h_out[b, j] = y_t[b, j]
        else:
            for j in range(H):
                y_t[b, j] = zero
            for j in range(H):
                h_out[b, j] = h_prev[b, j]


@jit
def _gates_backward(b0, b1, t, lengths, reset_after, dh, dy_t, gates, h_prev, hn, g, dA, da_n):
    """Rows b0..b1: g = dh + dy_t; dA_z = g (h_{t-1} - n) z(1-z); da_n = g (1-z)(1-n²);
    dA_n = da_n ⊙ r (reset_after: through hn = h̃ W_hn^T + b_hn) or da_n (reset_before: through
    (r ⊙ h̃) W_hn^T); with reset_after also dA_r = da_n ⊙ hn ⊙ r(1-r). Padded rows get zeros."""
    wide_vectors()
    H = dh.shape[1]
    one, zero = dh.dtype.type(1), dh.dtype.type(0)
    for b in range(b0, b1):
        if not t < lengths[b]:  # h_t = h_{t-1} there: nothing reaches this step's gates
            for n in range(3 * H):
                dA[b, n] = zero
            for j in range(H):
                da_n[b, j] = zero
            continue
        for j in range(H):
            g[b, j] = dh[b, j] + dy_t[b, j]
        for j in range(H):  # through h' = n + z (h_{t-1} - n), z = σ(a_z)
            z = gates[b, H + j]
            dA[b, H + j] = g[b, j] * (h_prev[b, j] - gates[b, 2 * H + j]) * z * (one - z)
        for j in range(H):  # through n = tanh(a_n)
            n = gates[b, 2 * H + j]
            da_n[b, j] = g[b, j] * (one - gates[b, H + j]) * (one - n * n)
        if reset_after:
            for j in range(H):  # through a_n = ... + r ⊙ hn, r = σ(a_r)
                r = gates[b, j]
                dA[b, j] = da_n[b, j] * hn[b, j] * r * (one - r)
            for j in range(H):
                dA[b, 2 * H + j] = da_n[b, j] * gates[b, j]
        else:
            for j in range(H):
                dA[b, 2 * H + j] = da_n[b, j]


@jit
def _reset_backward(b0, b1, t, lengths, drh, h_prev, rec_mask, gates, dA):
    """reset_before, rows b0..b1: dA_r = drh ⊙ h̃ ⊙ r(1-r), drh = da_n W_hn (through (r ⊙ h̃) W_hn^T)."""
    wide_vectors()
    H = drh.shape[1]
    one, zero = drh.dtype.type(1), drh.dtype.type(0)
    for b in range(b0, b1):
        if t < lengths[b]:
            for j in range(H):
                r = gates[b, j]
                dA[b, j] = drh[b, j] * h_prev[b, j] * rec_mask[b, j] * r * (one - r)
        else:
            for j in range(H):
                dA[b, j] = zero


@jit
def _dh_prev(b0, b1, t, lengths, reset_after, drec, drh, gates, rec_mask, g, dh):
    """Rows b0..b1: dh_{t-1} = (drec [+ drh ⊙ r]) ⊙ rec_mask + g ⊙ z on valid rows; padded rows keep dh_t."""
    wide_vectors()
    H = dh.shape[1]
    for b in range(b0, b1):
        if not t < lengths[b]:
            continue
        if reset_after:
            for j in range(H):
                dh[b, j] = drec[b, j] * rec_mask[b, j] + g[b, j] * gates[b, H + j]
        else:
            for j in range(H):
                dh[b, j] = (drec[b, j] + drh[b, j] * gates[b, j]) * rec_mask[b, j] + g[b, j] * gates[b, H + j]


STEPWISE_PROJECTION_MAX_D = 16  # input sizes up to which x_t W_ih^T is computed inside the time loop


@jit
def _forward_rows(b0, b1, reset_after, x, P_ih, bias, b_hn, P_hx, P_hn, rec_mask, masked, lengths, gates, hs, hn, y,
                  rec, rec_n, h_in, rh):
    """The forward time loop over rows b0..b1 (see the module docstring).

    ``P_ih``, W_ih^T packed, has no panel when ``gates`` already hold the input projection x_t W_ih^T,
    otherwise it is done here step by step (few input features, or inference; ``gates`` start empty).
    ``P_hx``: W_h{r,z,n}^T (H, 3H) with reset_after, W_h{r,z}^T (H, 2H) with reset_before, packed;
    ``P_hn``: W_hn^T packed (used with reset_before). ``gates``, ``hs`` (h_t) and ``hn`` hold step t at
    ``[t % len]``: a training forward keeps every step for the backward, an inference forward one
    (two states, alternating); ``hn`` has one step only without reset_after (unused there).
    """
    T = y.shape[0]
    H = hs.shape[2]
    for t in range(T):
        a, h = gates[t % len(gates)], hs[t % len(hs)]
        if P_ih.shape[0] > 0:
            times_packed(b0, b1, x[t], P_ih, a, 0.0)
        h_m = masked_state(b0, b1, h, masked, rec_mask, h_in)  # h̃_{t-1}
        times_packed(b0, b1, h_m, P_hx, rec, 0.0)
        _rz(b0, b1, a, rec, bias)
        if not reset_after:
            for b in range(b0, b1):
                for j in range(H):
                    rh[b, j] = a[b, j] * h_m[b, j]  # r ⊙ h̃
            times_packed(b0, b1, rh, P_hn, rec_n, 0.0)
        _candidate(b0, b1, t, lengths, reset_after, a, rec if reset_after else rec_n, 2 * H if reset_after else 0,
                   bias, b_hn, h, hn[t % len(hn)], hs[(t + 1) % len(hs)], y[t])


@jit
def _step_gradients(b0, b1, reset_after, starts, dA_t, da_n_t, x_t, h_in, r_t, da_x, rh, P_ih, dx_t, dW_ih_parts,
                    dW_hh_parts, db_ih_parts, db_hh_parts):
    """Rows b0..b1 of a step, while dA_t (B, 3H) and da_n_t (B, H) are in the cache, into the parts of the block
    that starts at b0 (``starts``: the blocks' first rows):

    - the input side (``add_input_gradients``: dx_t, dW_ih, db_ih) with the pre-activations' gradient
      da_x = [dA_r, dA_z, da_n] (into the scratch ``da_x`` with reset_after; dA_t itself with reset_before);
    - dW_hh^T (H, 3H) += h̃^T dA_t (reset_after) or [h̃^T dA_{r,z}, (r ⊙ h̃)^T da_n] (reset_before, r ⊙ h̃ into
      the scratch ``rh``), h̃ = ``h_in``; with reset_after db_hh (3H,) += Σ_b dA_t[b] (with reset_before
      dA_t is da_x, so db_hh is db_ih).
    """
    wide_vectors()
    part, H = np.searchsorted(starts, b0), da_n_t.shape[1]
    if reset_after:
        for b in range(b0, b1):
            for n in range(2 * H):
                da_x[b, n] = dA_t[b, n]
            for j in range(H):
                da_x[b, 2 * H + j] = da_n_t[b, j]
        add_input_gradients(b0, b1, part, da_x, x_t, P_ih, dx_t, dW_ih_parts, db_ih_parts)
        add_transposed_times(b0, b1, h_in, dA_t, dW_hh_parts[part])
        db_hh = db_hh_parts[part]
        for b in range(b0, b1):
            for n in range(3 * H):
                db_hh[n] += dA_t[b, n]
    else:
        add_input_gradients(b0, b1, part, dA_t, x_t, P_ih, dx_t, dW_ih_parts, db_ih_parts)
        add_transposed_times(b0, b1, h_in, dA_t[:, :2 * H], dW_hh_parts[part][:, :2 * H])
        for b in range(b0, b1):
            for j in range(H):
                rh[b, j] = r_t[b, j] * h_in[b, j]
        add_transposed_times(b0, b1, rh, da_n_t, dW_hh_parts[part][:, 2 * H:])


@jit
def _backward_rows(b0, b1, reset_after, lengths, gates, hs, hn, rec_mask, P_hx, P_hn, dy, dh, dA, da_n, g, drh, drec,
                   x, masked, h_in, da_x, rh, P_ih, dx, starts, dW_ih_parts, dW_hh_parts, db_ih_parts, db_hh_parts):
    """The backward time loop over rows b0..b1 (``P_hx``, ``P_hn``: W_hx and W_hn packed, not transposed).

    ``dh`` enters as the gradient of h_T and leaves as that of h_0. When ``P_ih`` (W_ih packed) has panels,
    each step's ``dx[t]`` and its parts of the weight and bias gradients are computed as soon as dA_t and
    da_n_t are (``_step_gradients``, h̃_{t-1} into the scratch ``h_in``), and ``dA``, ``da_n`` hold a single
    step; otherwise they are left to GEMMs after the loop (``weight_gradients``)."""
    T = gates.shape[0]
    K = P_hx.shape[1]  # the columns of dA that multiply W_hx
    for t in range(T - 1, -1, -1):
        dA_t, da_n_t = dA[t % len(dA)], da_n[min(t, len(da_n) - 1)]
        _gates_backward(b0, b1, t, lengths, reset_after, dh, dy[min(t, len(dy) - 1)], gates[t], hs[t],
                        hn[min(t, len(hn) - 1)], g, dA_t, da_n_t)
        if not reset_after:
            times_packed(b0, b1, da_n_t, P_hn, drh, 0.0)  # through (r ⊙ h̃) W_hn^T
            _reset_backward(b0, b1, t, lengths, drh, hs[t], rec_mask, gates[t], dA_t)
        times_packed(b0, b1, dA_t[:, :K], P_hx, drec, 0.0)  # through h̃ W_hx^T
        if P_ih.shape[0] > 0:  # the weight gradients' parts and dx_t, while dA_t, da_n_t are in the cache
            _step_gradients(b0, b1, reset_after, starts, dA_t, da_n_t, x[t],
                            masked_state(b0, b1, hs[t], masked, rec_mask, h_in), gates[t], da_x, rh, P_ih, dx[t],
                            dW_ih_parts, dW_hh_parts, db_ih_parts, db_hh_parts)
        _dh_prev(b0, b1, t, lengths, reset_after, drec, drh, gates[t], rec_mask, g, dh)


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
def _biases(reset_after, b_ih, b_hh):
    """(b (3H,), b_hn (H,)): b_hh folds into b_ih, except b_hn when r multiplies it (reset_after; else b_hn = 0)."""
    H = b_hh.shape[0] // 3
    b, b_hn = b_ih + b_hh, np.zeros(H, b_hh.dtype)
    if reset_after:
        b[2 * H:] = b_ih[2 * H:]
        b_hn[:] = b_hh[2 * H:]
    return b, b_hn


@jit
def _step(reset_after, x_t, h_prev, W_ih, W_hh, b_ih, b_hh, h):
    """One step compiled whole: a (B, 3H) = x_t W_ih^T, rec = h_{t-1} W_h*^T (reset_before: the r, z
    blocks, then rec_n = (r ⊙ h_{t-1}) W_hn^T), then the cell (_rz, _candidate, which add the biases).
    Dot products along the weights' rows: at batch 1 a BLAS call costs more than these products.
    """
    B, H = h_prev.shape
    bias, b_hn = _biases(reset_after, b_ih, b_hh)
    a = np.zeros((B, 3 * H), h.dtype)
    rec = np.zeros((B, (3 if reset_after else 2) * H), h.dtype)
    rec_n = np.zeros((B, H), h.dtype)  # reset_before: (r ⊙ h_{t-1}) W_hn^T; reset_after: hn
    weights_times_rows(W_ih, x_t, a.T)  # a^T (3H, B) += W_ih x_t^T
    weights_times_rows(W_hh[:rec.shape[1]], h_prev, rec.T)
    _rz(0, B, a, rec, bias)
    if not reset_after:
        weights_times_rows(W_hh[2 * H:], a[:, :H] * h_prev, rec_n.T)
    always = np.ones(B, np.int64)  # t = 0 < 1: every row is valid
    _candidate(0, B, 0, always, reset_after, a, rec if reset_after else rec_n, 2 * H if reset_after else 0, bias,
               b_hn, h_prev, rec_n, h, h)


def _recurrent_panels(p: dict[str, np.ndarray], cfg: GRUConfig, trans: bool) -> tuple[np.ndarray, np.ndarray]:
    """(W_hx, W_hn) packed, transposed for the forward (``trans``); W_hx: the blocks of W_hh that multiply h̃
    (r, z, n; r, z if reset_before)."""
    H, W_hh = cfg.hidden_size, p["W_hh"]
    return pack(W_hh[:(3 if cfg.reset_after else 2) * H], trans), pack(W_hh[2 * H:], trans)


def step(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache (the reference's equations); returns (h_t, h_t)."""
    return advance(p, cfg, *check_h_step(p, cfg, x_t, state))


def advance(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): one compiled call."""
    h = np.empty(state.shape, state.dtype)
    _step(cfg.reset_after, np.ascontiguousarray(x_t), np.ascontiguousarray(state), p["W_ih"], p["W_hh"], p["b_ih"],
          p["b_hh"], h)  # contiguous inputs: one compiled version serves x[:, t] slices too
    return h, h


def forward(
    p: dict[str, np.ndarray],
    cfg: GRUConfig,
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
    cfg: GRUConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> tuple[np.ndarray, State]:
    """``forward`` keeping nothing for a backward: ``(y (T, B, H), h_T)``; the loop keeps one step of its
    arrays (two of the state) and projects the input step by step."""
    x, h0, _ = check_h_forward(p, cfg, x, state0, None, finite=check_finite)
    y, h, _ = _run(p, cfg, x, h0, lengths, None, keep=False)
    return y, h


def _run(p: dict[str, np.ndarray], cfg: GRUConfig, x: np.ndarray, h0: np.ndarray, lengths: np.ndarray | None,
         rec_mask: np.ndarray | None, keep: bool) -> tuple[np.ndarray, State, dict]:
    """The forward of checked ``x``, ``h0``, ``rec_mask``: the input projection, then the time loops over row
    blocks; ``keep``: keep every step for the backward (the cache), else one step (the cache is None)."""
    T, B, D = x.shape
    H, dtype = cfg.hidden_size, x.dtype
    lengths = lengths_or_full(lengths, B, T)
    x = rows_contiguous(x)  # x[t]: rows read in place, any row stride
    G = 3 if cfg.reset_after else 2  # the blocks of W_hh that multiply h̃ directly
    steps = T if keep else 1  # steps of the per-step arrays held at once
    if D <= STEPWISE_PROJECTION_MAX_D or not keep:  # projected step by step inside the loop
        P_ih, gates = pack(p["W_ih"], True), aligned_empty((steps, B, 3 * H), dtype)
    else:  # (T, B, 3H): x_t W_ih^T from one GEMM, then r, z, n in place
        P_ih = no_panels(D, dtype)
        gates = matmul(x.reshape(T * B, D), p["W_ih"], trans_b=True).reshape(T, B, 3 * H)
    hs = aligned_empty((steps + 1, B, H), dtype)  # carried h_0 .. h_T
    hs[0] = h0
    hn = aligned_empty((steps if cfg.reset_after else 1, B, H), dtype)  # h̃ W_hn^T + b_hn, kept for backward (reset_after)
    y, y_out = output_sequence(hs, T, lengths, keep)
    mask = aligned_full((B, H), 1, dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
    bias, b_hn = _biases(cfg.reset_after, p["b_ih"], p["b_hh"])
    run_split(_forward_rows, B, cfg.reset_after, x, P_ih, bias, b_hn, *_recurrent_panels(p, cfg, True), mask,
              rec_mask is not None, lengths, gates, hs, hn, y, aligned_empty((B, G * H), dtype),
              *(aligned_empty((B, H), dtype) for _ in range(3)),  # rec, rec_n, h_in, rh
              macs=T * B * 3 * H * (H + D * (len(P_ih) > 0)), parallel=_forward_blocks)
    h_T = hs[T % len(hs)].copy()
    if not keep:
        return y_out, h_T, None
    cache = {"x": x, "gates": gates, "hs": hs, "hn": hn, "lengths": lengths, "mask": mask,
             "masked": rec_mask is not None}
    return y_out, h_T, cache


def backward(
    p: dict[str, np.ndarray],
    cfg: GRUConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
    *,
    check_finite: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))`` (see the reference)."""
    x, gates, hs, hn, lengths, mask = (cache[k] for k in ("x", "gates", "hs", "hn", "lengths", "mask"))
    T, B, D = x.shape
    H, dtype = cfg.hidden_size, hs.dtype
    dy, dh = check_h_backward(dy, dstate, (T, B, H), dtype, finite=check_finite)
    dy, dh = dy_steps(dy, B, H, dtype), aligned_copy(dh)  # dh: updated in place
    macs = T * B * 3 * H * H
    blocks = split_rows(B, macs=macs)
    summed = in_loop(blocks, D, H, 3 * H, dtype)  # dx and the weight and bias gradients inside the loop
    steps = 1 if summed else T  # of dA and (reset_after) da_n held at once
    dA = aligned_empty((steps, B, 3 * H), dtype)  # gradients of the recurrent product's blocks r, z, n
    da_n = aligned_empty((steps if cfg.reset_after else 1, B, H), dtype)  # of a_n; reset_before: dA's n block itself
    P_ih, dx, starts, dW_ih_parts, dW_hh_parts, db_ih_parts = parts(blocks, p["W_ih"], T, B, H, summed)
    db_hh_parts = aligned_full(db_ih_parts.shape if cfg.reset_after else (0, 3 * H), 0, dtype)  # else db_ih
    run_split(_backward_rows, B, cfg.reset_after, lengths, gates, hs, hn, mask, *_recurrent_panels(p, cfg, False), dy,
              dh, dA, da_n, *(aligned_empty((B, H), dtype) for _ in range(3)),  # g, drh, drec
              x, cache["masked"], aligned_empty((B, H), dtype), aligned_empty((B, 3 * H), dtype),  # h_in, da_x
              aligned_empty((B, H), dtype), P_ih, dx, starts, dW_ih_parts, dW_hh_parts, db_ih_parts, db_hh_parts,  # rh
              blocks=blocks, macs=macs, parallel=_backward_blocks)
    if summed:
        dW_ih, dW_hh, db_ih = totals(dW_ih_parts, dW_hh_parts, db_ih_parts)
        db_hh = db_hh_parts.sum(axis=0) if cfg.reset_after else db_ih.copy()
        grads = {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db_ih, "b_hh": db_hh}
    else:
        h_m = hs[:-1] * mask if cache["masked"] else hs[:-1]  # (T, B, H): h̃ for every step
        grads, dx = weight_gradients(p, cfg, x, h_m, gates[:, :, :H], dA, da_n if cfg.reset_after else dA[:, :, 2 * H:],
                                     matmul, column_sums)
    return grads, dx, dh
