"""Simple (Elman) RNN cell: forward and hand-derived backward through time.

One step, for a batch of rows (``x_t (B, D)``, ``h_{t-1} (B, H)``)::

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh        # (B, H)
    h_t = f(a_t)                                           # f in tanh | relu | sigmoid | linear

Sequences are time-major, ``x (T, B, D)``. With variable lengths, ``m_t`` (1 on valid steps, 0 on
padded ones) gives ``h_t = h_{t-1} + m_t (f(a_t) - h_{t-1})`` and ``y_t = m_t f(a_t)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, check_dtype, check_positive_int
from ..ops import ACTIVATIONS
from ._common import (
    check_h_backward,
    check_h_forward,
    check_h_step,
    inference_of,
    input_projection,
    step_mask,
    uniform_params,
)

State = np.ndarray  # h (B, H)


@dataclass(frozen=True)
class RNNConfig:
    """Hyperparameters of a simple RNN cell."""

    input_size: int  # D, features of x_t
    hidden_size: int  # H, units of h_t
    activation: str = "tanh"  # f: one of rnnkit.ops.ACTIVATIONS (tanh, relu, sigmoid, linear)

    def __post_init__(self) -> None:
        check_positive_int(self.input_size, "input_size")
        check_positive_int(self.hidden_size, "hidden_size")
        check_choice(self.activation, "activation", list(ACTIVATIONS))


def param_shapes(cfg: RNNConfig) -> dict[str, tuple[int, ...]]:
    """Canonical parameter names and shapes (PyTorch's layout, a single gate block)."""
    D, H = cfg.input_size, cfg.hidden_size
    return {"W_ih": (H, D), "W_hh": (H, H), "b_ih": (H,), "b_hh": (H,)}


def init_params(cfg: RNNConfig, rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> dict[str, np.ndarray]:
    """Every parameter uniform in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's default)."""
    return uniform_params(param_shapes(cfg), cfg.hidden_size, rng, check_dtype(dtype))


def zero_state(cfg: RNNConfig, batch: int, dtype: np.dtype | type = np.float32) -> State:
    """h_0 = 0, shape (batch, H)."""
    return np.zeros((batch, cfg.hidden_size), dtype=check_dtype(dtype))


def step(p: dict[str, np.ndarray], cfg: RNNConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); returns (h_t, h_t)."""
    return advance(p, cfg, *check_h_step(p, cfg, x_t, state))


def advance(p: dict[str, np.ndarray], cfg: RNNConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): the layer's ``step`` checks once, then calls this."""
    f, _ = ACTIVATIONS[cfg.activation]
    h = f(x_t @ p["W_ih"].T + p["b_ih"] + state @ p["W_hh"].T + p["b_hh"])  # (B, H); state is h_{t-1}
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
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, H), h_T (B, H), cache)``.

    ``rec_mask (B, H)`` (recurrent dropout, already scaled) multiplies h_{t-1} only inside the
    recurrent product: a_t = ... + (h_{t-1} ⊙ rec_mask) W_hh^T. ``y`` is zero on padded steps and
    ``h_T`` is each sequence's state at its last valid step.
    ``check_finite=False`` skips the NaN/Inf scan of ``x`` (as in ``scipy.linalg``: for callers that have
    scanned it, such as the layers; non-finite input then gives undefined results, not an error).
    """
    x, h0, rec_mask = check_h_forward(p, cfg, x, state0, rec_mask, finite=check_finite)
    T, B, _ = x.shape
    H, dtype = cfg.hidden_size, x.dtype
    m = step_mask(lengths, T, B, dtype)  # (T, B, 1) or None
    valid = None if m is None else m.astype(bool)
    f, _ = ACTIVATIONS[cfg.activation]
    W_hhT = p["W_hh"].T

    a = input_projection(x, p["W_ih"], p["b_ih"] + p["b_hh"])  # (T, B, H); a[t] becomes f(a_t) in place
    hs = np.empty((T + 1, B, H), dtype=dtype)  # h_0 .. h_T
    hs[0] = h0
    h_rec = np.empty((B, H), dtype=dtype)  # h_{t-1} ⊙ rec_mask
    for t in range(T):
        h_prev = hs[t]
        if rec_mask is not None:
            h_prev = np.multiply(h_prev, rec_mask, out=h_rec)
        a[t] += h_prev @ W_hhT  # (B, H) @ (H, H)
        f(a[t], out=a[t])
        if valid is None:
            hs[t + 1] = a[t]
        else:  # h_t = f(a_t) on valid steps, h_{t-1} on padded ones
            hs[t + 1] = hs[t]
            np.copyto(hs[t + 1], a[t], where=valid[t])
    y = a if m is None else np.multiply(a, m, out=a)  # y_t = m_t f(a_t)
    cache = {"x": x, "hs": hs, "m": m, "rec_mask": rec_mask}
    return y, hs[T].copy(), cache


infer = inference_of(forward)


def backward(
    p: dict[str, np.ndarray],
    cfg: RNNConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
    *,
    check_finite: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))``.

    Per step, with g_t = m_t (dy_t + dh_t) the gradient reaching f(a_t)::

        da_t = g_t ⊙ f'(a_t)                                    # f' written from h_t = f(a_t)
        dh_{t-1} = (1 - m_t) dh_t + (da_t W_hh) ⊙ rec_mask
        dW_ih = Σ_t da_t^T x_t,  dW_hh = Σ_t da_t^T (h_{t-1} ⊙ rec_mask),  db_ih = db_hh = Σ_t da_t
    ``check_finite=False`` skips the NaN/Inf scan of ``dy`` (see ``forward``).
    """
    x, hs, m, rec_mask = cache["x"], cache["hs"], cache["m"], cache["rec_mask"]
    T, B, D = x.shape
    H = cfg.hidden_size
    dtype = hs.dtype
    dy, dh = check_h_backward(dy, dstate, (T, B, H), dtype, finite=check_finite)
    _, f_grad = ACTIVATIONS[cfg.activation]
    # f'(a_t) from the stored h_t: exact on valid steps; padded steps get g_t = 0 anyway.
    da = f_grad(hs[1:])  # (T, B, H), becomes da_t in place
    W_hh = p["W_hh"]

    g = np.empty((B, H), dtype=dtype)
    for t in reversed(range(T)):
        if dy is None:
            g[...] = dh
        else:
            np.add(dh, dy[t], out=g)
        if m is not None:
            g *= m[t]
            dh *= 1 - m[t]  # through h_t = h_{t-1} + m_t (...): the carried part
        da[t] *= g  # through h = f(a)
        dh_rec = da[t] @ W_hh  # (B, H) @ (H, H), through a_t = ... + h_{t-1} W_hh^T
        if rec_mask is not None:
            dh_rec *= rec_mask
        if m is None:
            dh = dh_rec
        else:
            dh += dh_rec

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
