"""LSTM cell, fast engine: the math of ``rnnkit.cells.lstm`` (the readable reference) with fused kernels.

Same functions, signatures, checks, layout and results (to rounding) as the reference: arrays inside
the loop are feature-major (``a_t (4H, B)``, ``h_t (R, B)``, ``c_t (H, B)``), the recurrent product
stays one NumPy GEMM per step (NumPy's OpenBLAS, the only BLAS pool in the process), and all the
elementwise work of a step is one compiled kernel::

    forward:  rec = W_hh h̃_{t-1} (GEMM) -> _cell_forward: i, f, g, o, c_t, tanh(c_t), m_t
              [h_raw = W_hr m_t (GEMM)] -> _emit: clip, length blend, y_t
    backward: _dh_new: dL/dh_raw -> [dm = W_hr^T dh_raw (GEMM)] -> _cell_backward: da_t, dc_{t-1}
              -> rec = W_hh^T da_t (GEMM)

For small problems (``COMPILED_LOOP_MAX_MACS``) the same steps run as one compiled time loop
(``_loop_forward``/``_loop_backward``, hand-written products): no per-step Python or BLAS call.
``step`` (streaming) is one compiled call as well.

Each kernel loop writes one array (LLVM then vectorises it along B). Options that are off become
neutral values (peepholes 0, clips ±inf, rec_mask 1, lengths T), so each kernel is compiled once
per dtype. The equations are in ``rnnkit.cells.lstm``.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_float_array
from ...errors import ShapeError
from .._common import check_sequence
from ..lstm import (
    LSTMConfig,
    State,
    _check_params,
    _check_state,
    _input_projection,
    init_params,
    param_shapes,
    zero_state,
)
from ._jit import (
    jit,
    lengths_or_full,
    sigmoid,
    tanh,
    weights_times_cols,
    weights_times_rows,
)

__all__ = ["LSTMConfig", "State", "advance", "backward", "forward", "init_params", "param_shapes", "step", "zero_state"]


@jit
def _cell_forward(t, lengths, a, rec, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m):
    """Step t: a = a_x + rec (4H, B) becomes [i, f, g, o] in place; c_raw, carried c, tanh(c), m (H, B)."""
    H, B = c_prev.shape
    i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
    ri, rf, rg, ro = rec[:H], rec[H:2 * H], rec[2 * H:3 * H], rec[3 * H:]
    for j in range(H):
        for b in range(B):
            i[j, b] = sigmoid(i[j, b] + ri[j, b] + w_ci[j] * c_prev[j, b])
    for j in range(H):
        for b in range(B):
            f[j, b] = sigmoid(f[j, b] + rf[j, b] + w_cf[j] * c_prev[j, b])
    for j in range(H):
        for b in range(B):
            g[j, b] = tanh(g[j, b] + rg[j, b])
    for j in range(H):
        for b in range(B):
            c_raw[j, b] = f[j, b] * c_prev[j, b] + i[j, b] * g[j, b]  # c_t = f ⊙ c_{t-1} + i ⊙ g
    for j in range(H):
        for b in range(B):
            c_out[j, b] = min(max(c_raw[j, b], -cell_clip), cell_clip) if t < lengths[b] else c_prev[j, b]
    for j in range(H):
        for b in range(B):
            tanh_c[j, b] = tanh(min(max(c_raw[j, b], -cell_clip), cell_clip))
    for j in range(H):
        for b in range(B):  # o = σ(a_o + w_co ⊙ c_t)
            o[j, b] = sigmoid(o[j, b] + ro[j, b] + w_co[j] * min(max(c_raw[j, b], -cell_clip), cell_clip))
    for j in range(H):
        for b in range(B):
            m[j, b] = o[j, b] * tanh_c[j, b]  # m_t = o ⊙ tanh(c_t)


@jit
def _emit(t, lengths, h_raw, proj_clip, h_prev, h_out, y_t):
    """h_new = clip(h_raw) (R, B); y_t = v_t h_new; carried h_t = h_new on valid rows, h_{t-1} on padded ones."""
    R, B = h_prev.shape
    zero = h_raw.dtype.type(0)
    for j in range(R):
        for b in range(B):
            y_t[j, b] = min(max(h_raw[j, b], -proj_clip), proj_clip) if t < lengths[b] else zero
    for j in range(R):
        for b in range(B):
            h_out[j, b] = y_t[j, b] if t < lengths[b] else h_prev[j, b]


@jit
def _dh_new(t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out):
    """dh_t = rec ⊙ rec_mask + dh, then out = dL/dh_raw = v (dh_t + dy_t) [|h_raw| <= proj_clip] (R, B).

    ``dh`` enters holding the part of dh_t that the step after carried back, and leaves holding
    the part this step carries back, (1 - v_t) dh_t.
    """
    R, B = dh.shape
    zero = dh.dtype.type(0)
    for j in range(R):
        for b in range(B):
            dh[j, b] += rec[j, b] * rec_mask[j, b]  # through (h_{t-1} ⊙ rec_mask) W_hh^T
    for j in range(R):
        for b in range(B):  # through y_t = v h_new, h_t = h_{t-1} + v (h_new - h_{t-1}), clip(W_hr m)
            out[j, b] = dh[j, b] + dy_t[j, b] if t < lengths[b] and abs(h_raw[j, b]) <= proj_clip else zero
    for j in range(R):
        for b in range(B):
            dh[j, b] = zero if t < lengths[b] else dh[j, b]


@jit
def _cell_backward(t, lengths, dm, dc, gates, c_prev, c_raw, tanh_c, w_ci, w_cf, w_co, cell_clip, da):
    """Through m = o tanh(c), the clip, c = f c_{t-1} + i g and the gates: dm, dc_t (H, B) -> da_t (4H, B), dc_{t-1}.

    Padded rows (t >= lengths[b]) get da = 0 and pass dc on unchanged.
    """
    H, B = dc.shape
    one, zero = dc.dtype.type(1), dc.dtype.type(0)
    i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
    da_i, da_f, da_g, da_o = da[:H], da[H:2 * H], da[2 * H:3 * H], da[3 * H:]
    for j in range(H):
        for b in range(B):  # through m = o tanh(c), o = σ(a_o)
            da_o[j, b] = dm[j, b] * tanh_c[j, b] * o[j, b] * (one - o[j, b]) if t < lengths[b] else zero
    for j in range(H):
        for b in range(B):  # dL/dc_t: through m = o tanh(c), a_o += w_co ⊙ c_t, clip(c)
            d = dc[j, b] + dm[j, b] * o[j, b] * (one - tanh_c[j, b] * tanh_c[j, b]) + da_o[j, b] * w_co[j]
            dc[j, b] = d if abs(c_raw[j, b]) <= cell_clip or not t < lengths[b] else zero
    for j in range(H):
        for b in range(B):  # through c = f c_{t-1} + i g, i = σ(a_i)
            da_i[j, b] = dc[j, b] * g[j, b] * i[j, b] * (one - i[j, b]) if t < lengths[b] else zero
    for j in range(H):
        for b in range(B):  # through f = σ(a_f)
            da_f[j, b] = dc[j, b] * c_prev[j, b] * f[j, b] * (one - f[j, b]) if t < lengths[b] else zero
    for j in range(H):
        for b in range(B):  # through g = tanh(a_g)
            da_g[j, b] = dc[j, b] * i[j, b] * (one - g[j, b] * g[j, b]) if t < lengths[b] else zero
    for j in range(H):
        for b in range(B):  # dc_{t-1}: through f ⊙ c_{t-1} and the peepholes on c_{t-1}
            dc[j, b] = dc[j, b] * f[j, b] + da_i[j, b] * w_ci[j] + da_f[j, b] * w_cf[j] if t < lengths[b] else dc[j, b]


@jit
def _project(W_ih, x_t, b, a):
    """a (4H, B) = W_ih x_t + b for a few input features, x_t feature-major (D, B): one step's input projection.

    Done step by step, the pre-activations are written once and read back from cache by the cell.
    """
    for n in range(a.shape[0]):
        for k in range(a.shape[1]):
            a[n, k] = b[n]
        for d in range(x_t.shape[0]):
            w = W_ih[n, d]
            for k in range(a.shape[1]):
                a[n, k] += w * x_t[d, k]


@jit
def _loop_forward(W_ih, x_T, bias, lengths, gates, W_hh, W_hr, mask, w_ci, w_cf, w_co, cell_clip, proj_clip, hs, cs, c_raw, h_raw,
                  tanh_c, m, y):
    """The forward time loop of _run compiled whole, products by weights_times_cols (small problems only).

    ``m`` is ``h_raw`` itself when there is no projection (``W_hr`` of shape (0, H)); ``x_T`` is
    empty when ``gates`` already hold the input projection.
    """
    T = gates.shape[0]
    rec, h_in = np.empty(gates.shape[1:], gates.dtype), np.empty(hs.shape[1:], hs.dtype)
    for t in range(T):
        if x_T.shape[0] > 0:
            _project(W_ih, x_T[t], bias, gates[t])
        for j in range(h_in.shape[0]):
            for b in range(h_in.shape[1]):
                h_in[j, b] = hs[t, j, b] * mask[j, b]  # h̃_{t-1} = h_{t-1} ⊙ rec_mask
        weights_times_cols(W_hh, h_in, rec)
        h_raw_t, c_raw_t = h_raw[min(t, len(h_raw) - 1)], c_raw[min(t, len(c_raw) - 1)]
        m_t = m[min(t, len(m) - 1)]
        _cell_forward(t, lengths, gates[t], rec, cs[t], w_ci, w_cf, w_co, cell_clip, c_raw_t, cs[t + 1], tanh_c[t], m_t)
        if W_hr.shape[0] > 0:
            weights_times_cols(W_hr, m_t, h_raw_t)
        _emit(t, lengths, h_raw_t, proj_clip, hs[t], hs[t + 1], y[t])


@jit
def _loop_backward(lengths, gates, cs, c_raw, tanh_c, h_raw, W_hhT, W_hrT, mask, w_ci, w_cf, w_co, cell_clip,
                   proj_clip, dy_T, dh, dc, dh_raw, dm, da):
    """The backward time loop compiled whole (small problems only); ``dm`` is ``dh_raw[0]`` without projection."""
    T = gates.shape[0]
    rec = np.zeros(dh.shape, dh.dtype)
    for t in range(T - 1, -1, -1):
        _dh_new(t, lengths, rec, mask, dh, dy_T[min(t, len(dy_T) - 1)], h_raw[min(t, len(h_raw) - 1)], proj_clip,
                dh_raw[t])
        if W_hrT.shape[1] > 0:
            weights_times_cols(W_hrT, dh_raw[t], dm)
        _cell_backward(t, lengths, dm if W_hrT.shape[1] > 0 else dh_raw[t], dc, gates[t], cs[t], c_raw[t], tanh_c[t],
                       w_ci, w_cf, w_co, cell_clip, da[t])
        weights_times_cols(W_hhT, da[t], rec)
    for j in range(dh.shape[0]):
        for b in range(dh.shape[1]):
            dh[j, b] += rec[j, b] * mask[j, b]  # dh_0


COMPILED_LOOP_MAX_MACS = 1 << 16  # multiply-adds of a step's recurrent product (4H·R·B) up to which
# the whole time loop runs compiled (hand-written products): below it a BLAS call plus the Python
# per-step overhead costs more than the product itself (measured: docs in notes/engine_report.md).


STEPWISE_PROJECTION_MAX_D = 16  # input sizes up to which W_ih x_t is computed inside the time loop


def _compiled_loop(B: int, H: int, R: int) -> bool:
    """Whether the time loop of a (B, H, R) problem runs compiled whole rather than around NumPy's GEMMs."""
    return 4 * H * R * B <= COMPILED_LOOP_MAX_MACS


def _options(p: dict[str, np.ndarray], cfg: LSTMConfig) -> tuple:
    """(w_ci, w_cf, w_co, cell_clip, proj_clip) with neutral values for what is off."""
    dtype, H = p["W_ih"].dtype, cfg.hidden_size
    peep = tuple(p[k] for k in ("w_ci", "w_cf", "w_co")) if cfg.peepholes else (np.zeros(H, dtype),) * 3
    clip = tuple(dtype.type(np.inf if c is None else c) for c in (cfg.cell_clip, cfg.proj_clip))
    return peep + clip


@jit
def _step(x_t, h_prev, c_prev, W_ih, W_hh, W_hr, b_ih, b_hh, forget_bias, peepholes, w_ci, w_cf, w_co, cell_clip,
          proj_clip, c, h):
    """One step, compiled whole: a = b + W_ih x_t + W_hh h_{t-1} (4H, B), then the cell; h (R, B) = clip(W_hr m) or m.

    ``b = b_ih + b_hh`` plus ``forget_bias`` on the f block, formed here (no array per call).
    ``x_t (B, D)`` and ``h_prev (B, R)`` are row-major, ``c_prev (H, B)`` and the outputs ``c``, ``h`` feature-major.
    """
    B, H = x_t.shape[0], c_prev.shape[0]
    a = np.empty((4 * H, B), c.dtype)  # the gates' pre-activations, then i, f, g, o
    c_raw, tanh_c, m = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    for n in range(4 * H):
        bias = b_ih[n] + b_hh[n]
        a[n, :] = bias + forget_bias if H <= n < 2 * H else bias
    weights_times_rows(W_ih, x_t, a)
    weights_times_rows(W_hh, h_prev, a)
    rec = np.zeros_like(a)
    # _cell_forward loops over units outside and rows inside. With one row, the (H, 1) arrays are (1, H) ones in
    # memory; on those views the units run in the inner, vectorised loop (about 3x faster). The kernel then reads
    # peephole 0 for every unit, which is right only for the zeros of a cell without peepholes.
    if B == 1 and not peepholes:
        _cell_forward(0, np.ones(H, np.int64), a.reshape(4, H), rec.reshape(4, H), c_prev.reshape(1, H), w_ci, w_cf,
                      w_co, cell_clip, c_raw.reshape(1, H), c.reshape(1, H), tanh_c.reshape(1, H), m.reshape(1, H))
    else:
        _cell_forward(0, np.ones(B, np.int64), a, rec, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c, tanh_c, m)
    always = np.ones(B, np.int64)  # t = 0 < 1: every row is valid
    h_raw = m
    if W_hr.shape[0] > 0:  # the projection
        h_raw = np.zeros(h.shape, h.dtype)
        weights_times_rows(W_hr, np.ascontiguousarray(m.T), h_raw)
    _emit(0, always, h_raw, proj_clip, h, h, h)  # every row valid: h_t = y_t = clip(h_raw), no h_{t-1} needed


def step(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State | None) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache: ``x_t (B, D)``, ``state (h, c)`` or None -> ``(h_t, (h_t, c_t))``.

    One compiled call (a BLAS call costs more than these products at batch 1).
    """
    p = _check_params(p, cfg)
    x_t = check_float_array(x_t, "x_t", ndim=2, shape=(None, cfg.input_size), dtype=p["W_ih"].dtype)
    if x_t.shape[0] == 0:
        raise ShapeError(f"x_t must hold at least one sequence (shape (B, {cfg.input_size})), got {x_t.shape}")
    return advance(p, cfg, x_t, _check_state(state, x_t.shape[0], cfg, x_t.dtype, "state"))


def advance(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): one compiled call."""
    (h0, c0), B, H, R, dtype = state, x_t.shape[0], cfg.hidden_size, cfg.output_size, x_t.dtype
    W_hr = p["W_hr"] if cfg.proj_size else np.empty((0, H), dtype)
    c, h = np.empty((H, B), dtype), np.empty((R, B), dtype)
    x_t, h0, c0 = np.ascontiguousarray(x_t), np.ascontiguousarray(h0), np.ascontiguousarray(c0.T)  # c0: (H, B)
    _step(x_t, h0, c0, p["W_ih"], p["W_hh"], W_hr, p["b_ih"], p["b_hh"], dtype.type(cfg.forget_bias), cfg.peepholes,
          *_options(p, cfg), c, h)  # contiguous inputs: one compiled version serves x[:, t] slices too
    h = np.ascontiguousarray(h.T)
    return h, (h, np.ascontiguousarray(c.T))


def forward(
    p: dict[str, np.ndarray],
    cfg: LSTMConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    rec_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, State, dict]:
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, R), (h_T, c_T), cache)`` (see the reference)."""
    p = _check_params(p, cfg)
    x = check_sequence(x, cfg.input_size, p["W_ih"].dtype)
    T, B, _ = x.shape
    h0, c0 = _check_state(state0, B, cfg, x.dtype, "state0")
    if rec_mask is not None:
        rec_mask = check_float_array(rec_mask, "rec_mask", shape=(B, cfg.output_size), dtype=x.dtype)
    return _run(p, cfg, x, h0, c0, lengths_or_full(lengths, B, T), rec_mask)


def _loop_forward_blas(p, P, x_T, b, lengths, gates, mask, w_ci, w_cf, w_co, cell_clip, proj_clip, hs, cs, c_raw, h_raw,
                       tanh_c, m, y) -> None:
    """The forward time loop in Python around NumPy's GEMMs (the same steps as _loop_forward)."""
    T, G4H, B = gates.shape
    rec, h_in = np.empty((G4H, B), gates.dtype), np.empty(hs.shape[1:], hs.dtype)
    for t in range(T):
        if len(x_T):
            _project(p["W_ih"], x_T[t], b, gates[t])
        h_prev = hs[t] if mask is None else np.multiply(hs[t], mask, out=h_in)
        np.matmul(p["W_hh"], h_prev, out=rec)  # (4H, R) @ (R, B)
        h_raw_t, c_raw_t = h_raw[min(t, len(h_raw) - 1)], c_raw[min(t, len(c_raw) - 1)]
        m_t = m[t] if P else h_raw_t
        _cell_forward(t, lengths, gates[t], rec, cs[t], w_ci, w_cf, w_co, cell_clip, c_raw_t, cs[t + 1], tanh_c[t], m_t)
        if P:
            np.matmul(p["W_hr"], m_t, out=h_raw_t)  # (P, H) @ (H, B)
        _emit(t, lengths, h_raw_t, proj_clip, hs[t], hs[t + 1], y[t])


def _run(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
         lengths: np.ndarray, rec_mask: np.ndarray | None) -> tuple[np.ndarray, State, dict]:
    """The time loop of forward on checked inputs, feature-major inside (``a_t (4H, B)``, ``h_t (R, B)``)."""
    T, B, _ = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    w_ci, w_cf, w_co, cell_clip, proj_clip = _options(p, cfg)
    b = p["b_ih"] + p["b_hh"]
    b[H:2 * H] += cfg.forget_bias  # TF1: a constant on the forget pre-activation
    # (T, 4H, B): pre-activations, then i, f, g, o in place. Few input features: projected step by step.
    x_T = np.ascontiguousarray(x.transpose(0, 2, 1)) if cfg.input_size <= STEPWISE_PROJECTION_MAX_D \
        else np.empty((0, cfg.input_size, B), dtype)
    gates = np.empty((T, 4 * H, B), dtype) if len(x_T) else _input_projection(x, p["W_ih"], b)
    hs, cs = np.empty((T + 1, R, B), dtype), np.empty((T + 1, H, B), dtype)  # carried h_0..h_T, c_0..c_T
    hs[0], cs[0] = h0.T, c0.T
    # c_t before its clip and the step's h before its clip: kept for every step only when a clip needs them
    c_raw = np.empty((T if cfg.cell_clip is not None else 1, H, B), dtype)
    h_raw = np.empty((T if cfg.proj_clip is not None else 1, R, B), dtype)
    tanh_c = np.empty((T, H, B), dtype)
    m = np.empty((T, H, B), dtype) if P else None  # o ⊙ tanh(c), the projection's input
    y = np.empty((T, R, B), dtype)
    mask = None if rec_mask is None else np.ascontiguousarray(rec_mask.T)  # (R, B)
    if _compiled_loop(B, H, R):
        W_hr = p["W_hr"] if P else np.empty((0, H), dtype)
        _loop_forward(p["W_ih"], x_T, b, lengths, gates, p["W_hh"], W_hr, np.ones((R, B), dtype) if mask is None else mask,
                      w_ci, w_cf, w_co, cell_clip, proj_clip, hs, cs, c_raw, h_raw, tanh_c, m if P else h_raw, y)
    else:
        _loop_forward_blas(p, P, x_T, b, lengths, gates, mask, w_ci, w_cf, w_co, cell_clip, proj_clip, hs, cs, c_raw, h_raw,
                           tanh_c, m, y)
    cache = {"x": x, "gates": gates, "hs": hs, "cs": cs, "tanh_c": tanh_c, "m": m, "lengths": lengths, "mask": mask,
             "c_raw": c_raw if cfg.cell_clip is not None else cs[1:],  # without a clip any c passes
             "h_raw": h_raw if cfg.proj_clip is not None else hs[1:]}
    return np.ascontiguousarray(y.transpose(0, 2, 1)), (hs[T].T.copy(), cs[T].T.copy()), cache


def _loop_backward_blas(p, P, lengths, gates, cs, c_raw, tanh_c, h_raw, ones, w_ci, w_cf, w_co, cell_clip, proj_clip,
                        dy_T, dh, dc, dh_raw, dm, da) -> None:
    """The backward time loop in Python around NumPy's GEMMs (the same steps as _loop_backward)."""
    rec = np.zeros(dh.shape, dh.dtype)  # W_hh^T da_{t+1}, the recurrent part of dh_t
    W_hhT = p["W_hh"].T  # (R, 4H)
    T = len(gates)
    for t in reversed(range(T)):
        _dh_new(t, lengths, rec, ones, dh, dy_T[min(t, len(dy_T) - 1)], h_raw[t], proj_clip, dh_raw[t])
        if P:
            np.matmul(p["W_hr"].T, dh_raw[t], out=dm)  # through h = W_hr m: (H, P) @ (P, B)
        _cell_backward(t, lengths, dm if P else dh_raw[t], dc, gates[t], cs[t], c_raw[t], tanh_c[t], w_ci, w_cf, w_co,
                       cell_clip, da[t])
        np.matmul(W_hhT, da[t], out=rec)  # through W_hh h̃_{t-1}: (R, 4H) @ (4H, B)
    dh += rec * ones  # dh_0


def backward(
    p: dict[str, np.ndarray],
    cfg: LSTMConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), (dh_0, dc_0))`` (see the reference)."""
    x, gates, hs, cs, lengths, mask = (cache[k] for k in ("x", "gates", "hs", "cs", "lengths", "mask"))
    T, B, D = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    if dy is not None:
        dy = check_float_array(dy, "dy", shape=(T, B, R), dtype=dtype)
    dh, dc = (np.ascontiguousarray(s.T) for s in _check_state(dstate, B, cfg, dtype, "dstate"))  # (R, B), (H, B)
    w_ci, w_cf, w_co, cell_clip, proj_clip = _options(p, cfg)
    dy_T = np.zeros((1, R, B), dtype) if dy is None else np.ascontiguousarray(dy.transpose(0, 2, 1))  # (T, R, B)
    ones = np.ones((R, B), dtype) if mask is None else mask
    da = np.empty((T, 4 * H, B), dtype)  # dL/da_t for the pre-activations [i, f, g, o]
    dh_raw = np.empty((T, R, B), dtype)  # dL/dh_raw_t (the projection's output when P > 0)
    dm = np.empty((H, B), dtype) if P else None
    if _compiled_loop(B, H, R):
        W_hrT = np.ascontiguousarray(p["W_hr"].T) if P else np.empty((H, 0), dtype)
        _loop_backward(lengths, gates, cs, cache["c_raw"], cache["tanh_c"], cache["h_raw"],
                       np.ascontiguousarray(p["W_hh"].T), W_hrT, ones, w_ci, w_cf, w_co, cell_clip, proj_clip, dy_T,
                       dh, dc, dh_raw, dm if P else dh_raw[0], da)
    else:
        _loop_backward_blas(p, P, lengths, gates, cs, cache["c_raw"], cache["tanh_c"], cache["h_raw"], ones, w_ci, w_cf,
                            w_co, cell_clip, proj_clip, dy_T, dh, dc, dh_raw, dm, da)

    grads = {}
    if cfg.peepholes:
        da4 = da.reshape(T, 4, H, B)
        grads["w_ci"] = np.einsum("thb,thb->h", da4[:, 0], cs[:-1])
        grads["w_cf"] = np.einsum("thb,thb->h", da4[:, 1], cs[:-1])
        grads["w_co"] = np.einsum("thb,thb->h", da4[:, 3], cs[1:])  # c_t; padded rows have da = 0
    # Sums over all steps and rows (t, b), each one GEMM on (4H, T*B) (a cheap copy; (T*B, 4H) is a slow one).
    da_cols = np.ascontiguousarray(da.transpose(1, 0, 2)).reshape(4 * H, T * B)
    del da, dy_T  # lower the peak memory
    h_in = hs[:-1] if mask is None else hs[:-1] * mask  # (T, R, B): h̃_{t-1}
    h_cols = np.ascontiguousarray(h_in.transpose(1, 0, 2)).reshape(R, T * B)
    db = da_cols.sum(axis=1)
    grads.update({"W_ih": da_cols @ x.reshape(T * B, D),  # (4H, TB) @ (TB, D)
                  "W_hh": da_cols @ h_cols.T,  # (4H, TB) @ (TB, R)
                  "b_ih": db, "b_hh": db.copy()})
    if P:
        grads["W_hr"] = np.tensordot(dh_raw, cache["m"], axes=([0, 2], [0, 2]))  # (P, H)
    dx = (da_cols.T @ p["W_ih"]).reshape(T, B, D)  # (TB, 4H) @ (4H, D)
    return grads, dx, (np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T))
