"""An independent NumPy re-implementation of TF1 ``LSTMCell.call`` (seed 000, interop-notes §2).

TF1 layout: ``kernel (D+R, 4H)`` over ``concat([x, m_prev])`` with gate columns i, j, f, o; one
``bias (4H,)``; ``forget_bias`` added at run time; peepholes ``w_i_diag``, ``w_f_diag``, ``w_o_diag``;
``cell_clip`` on the cell state; ``projection/kernel (H, P)`` and ``proj_clip``. The state tuple is
``LSTMStateTuple(c, m)``: c first, unlike rnnkit's ``(h, c)``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def lstm_cell_call(inputs, state, w, forget_bias=1.0, cell_clip=None, proj_clip=None, trace=None):
    """TF1 ``LSTMCell.call``, line for line; ``trace`` (a dict of lists) collects pre-clip values."""
    c_prev, m_prev = state
    lstm_matrix = np.concatenate([inputs, m_prev], axis=1) @ w["kernel"] + w["bias"]
    i, j, f, o = np.split(lstm_matrix, 4, axis=1)
    if "w_f_diag" in w:
        c = sigmoid(f + forget_bias + w["w_f_diag"] * c_prev) * c_prev + sigmoid(i + w["w_i_diag"] * c_prev) * np.tanh(j)
    else:
        c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * np.tanh(j)
    if trace is not None:
        trace.setdefault("c", []).append(c)
    if cell_clip is not None:
        c = np.clip(c, -cell_clip, cell_clip)
    if "w_o_diag" in w:
        m = sigmoid(o + w["w_o_diag"] * c) * np.tanh(c)
    else:
        m = sigmoid(o) * np.tanh(c)
    if "projection/kernel" in w:
        m = m @ w["projection/kernel"]
        if trace is not None:
            trace.setdefault("proj", []).append(m)
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return m, (c, m)


def to_tf1(p: dict[str, np.ndarray], H: int) -> dict[str, np.ndarray]:
    """rnnkit parameters (gate rows i, f, g, o) -> TF1 variables (gate columns i, j=g, f, o)."""
    order = [0, 2, 1, 3]  # TF1 block k takes rnnkit block order[k]

    def reorder(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * H:(k + 1) * H] for k in order])

    w = {"kernel": reorder(np.concatenate([p["W_ih"], p["W_hh"]], axis=1)).T, "bias": reorder(p["b_ih"] + p["b_hh"])}
    if "w_ci" in p:
        w.update(w_i_diag=p["w_ci"], w_f_diag=p["w_cf"], w_o_diag=p["w_co"])
    if "W_hr" in p:
        w["projection/kernel"] = p["W_hr"].T
    return w


def run_tf1(p, cfg, x, h0, c0):
    """Unroll the TF1 cell over ``x (T, B, D)``; return ``(outputs (T, B, R), (c_T, m_T), trace)``."""
    w, trace, state, outputs = to_tf1(p, cfg.hidden_size), {}, (c0, h0), []
    for x_t in x:
        m, state = lstm_cell_call(x_t, state, w, cfg.forget_bias, cfg.cell_clip, cfg.proj_clip, trace)
        outputs.append(m)
    return np.stack(outputs), state, {k: np.stack(v) for k, v in trace.items()}
