"""GRU cell: forward and hand-derived backward through time, both reset placements.

Gate blocks r, z, n (PyTorch's order). One step, for a batch of rows::

    r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))      # reset_after=True (PyTorch)
    n_t = tanh(x_t W_in^T + b_in + (r_t ⊙ h_{t-1}) W_hn^T + b_hn)      # reset_after=False (Cho, d2l, TF1)
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Sequences are time-major, ``x (T, B, D)``. With variable lengths, ``m_t`` (1 on valid steps, 0 on
padded ones) gives ``h_t = h_{t-1} + m_t (h'_t - h_{t-1})`` and ``y_t = m_t h'_t``, h'_t the formula above.

The gate buffers are gate-major, ``(T, 3, B, H)``: every elementwise op in the time loop then runs on
a contiguous ``(B, H)`` block (column slices of a ``(B, 3H)`` row buffer are strided and cost 3-5x
more at small H), and the recurrent product is one batched ``np.matmul`` over the three blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import check_dtype, check_positive_int
from ..errors import ConfigError
from ..ops import sigmoid
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
class GRUConfig:
    """Hyperparameters of a GRU cell."""

    input_size: int  # D, features of x_t
    hidden_size: int  # H, units of h_t
    reset_after: bool = True  # True: r_t ⊙ (h W_hn^T + b_hn) (PyTorch); False: (r_t ⊙ h) W_hn^T + b_hn (Cho/d2l/TF1)

    def __post_init__(self) -> None:
        check_positive_int(self.input_size, "input_size")
        check_positive_int(self.hidden_size, "hidden_size")
        if not isinstance(self.reset_after, (bool, np.bool_)):
            raise ConfigError(f"reset_after must be True or False, got {self.reset_after!r}")


def param_shapes(cfg: GRUConfig) -> dict[str, tuple[int, ...]]:
    """Canonical parameter names and shapes: blocks r, z, n stacked along rows."""
    D, H = cfg.input_size, cfg.hidden_size
    return {"W_ih": (3 * H, D), "W_hh": (3 * H, H), "b_ih": (3 * H,), "b_hh": (3 * H,)}


def init_params(cfg: GRUConfig, rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> dict[str, np.ndarray]:
    """Every parameter uniform in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's default)."""
    return uniform_params(param_shapes(cfg), cfg.hidden_size, rng, check_dtype(dtype))


def zero_state(cfg: GRUConfig, batch: int, dtype: np.dtype | type = np.float32) -> State:
    """h_0 = 0, shape (batch, H)."""
    return np.zeros((batch, cfg.hidden_size), dtype=check_dtype(dtype))


def step(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache (the module docstring's equations); returns (h_t, h_t)."""
    return advance(p, cfg, *check_h_step(p, cfg, x_t, state))


def advance(p: dict[str, np.ndarray], cfg: GRUConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): the layer's ``step`` checks once, then calls this.

    One product for the three x_t blocks and one for the h_{t-1} blocks (two with reset_before,
    whose n block needs r_t first); columns [0, H), [H, 2H), [2H, 3H) are r, z, n.
    """
    H, h_prev, W_hh, b_hh = cfg.hidden_size, state, p["W_hh"], p["b_hh"]
    a = x_t @ p["W_ih"].T  # (B, 3H): x_t W_i*^T + b_i*
    a += p["b_ih"]
    blocks = 3 * H if cfg.reset_after else 2 * H
    gh = h_prev @ W_hh[:blocks].T  # (B, 3H) or (B, 2H): h_{t-1} W_h*^T + b_h*
    gh += b_hh[:blocks]
    rz = sigmoid(a[:, :2 * H] + gh[:, :2 * H])  # (B, 2H): r_t, z_t
    r, z = rz[:, :H], rz[:, H:]
    if cfg.reset_after:
        n = np.tanh(a[:, 2 * H:] + r * gh[:, 2 * H:])
    else:
        n = np.tanh(a[:, 2 * H:] + (r * h_prev) @ W_hh[2 * H:].T + b_hh[2 * H:])
    h = n + z * (h_prev - n)  # (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    return h, h


def _gate_major(a: np.ndarray, G: int) -> np.ndarray:
    """(T, B, G*H) -> contiguous (T, G, B, H), so each gate block a step touches is one contiguous (B, H) array."""
    T, B, GH = a.shape
    return np.ascontiguousarray(a.reshape(T, B, G, GH // G).transpose(0, 2, 1, 3))


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
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, H), h_T (B, H), cache)``.

    ``rec_mask (B, H)`` (recurrent dropout, already scaled) multiplies h_{t-1} only inside the
    recurrent products (h_{t-1} ⊙ rec_mask) W_hh^T, resp. (r_t ⊙ h_{t-1} ⊙ rec_mask) W_hn^T; the
    z-blend uses the unmasked h_{t-1}. ``y`` is zero on padded steps and ``h_T`` is each
    sequence's state at its last valid step.
    ``check_finite=False`` skips the NaN/Inf scan of ``x`` (as in ``scipy.linalg``: for callers that have
    scanned it, such as the layers; non-finite input then gives undefined results, not an error).
    """
    x, h0, rec_mask = check_h_forward(p, cfg, x, state0, rec_mask, finite=check_finite)
    T, B, _ = x.shape
    H, dtype = cfg.hidden_size, x.dtype
    m = step_mask(lengths, T, B, dtype)  # (T, B, 1) or None
    valid = None if m is None else m.astype(bool)
    W_hhT = p["W_hh"].reshape(3, H, H).transpose(0, 2, 1)  # (3, H, H): W_hr^T, W_hz^T, W_hn^T
    b_hn = p["b_hh"][2 * H :]

    # b_hh folds into the input projection, except b_hn when r multiplies it.
    b = p["b_ih"] + p["b_hh"]
    if cfg.reset_after:
        b[2 * H :] = p["b_ih"][2 * H :]
    gates = _gate_major(input_projection(x, p["W_ih"], b), 3)  # (T, 3, B, H); gates[t] becomes [r, z, n] in place
    hs = np.empty((T + 1, B, H), dtype=dtype)  # h_0 .. h_T
    hs[0] = h0
    hn = np.empty((T, B, H), dtype=dtype) if cfg.reset_after else None  # h̃ W_hn^T + b_hn
    y = np.empty((T, B, H), dtype=dtype)  # y[t] = h'_t, masked after the loop
    gh = np.empty((3, B, H), dtype=dtype)  # h̃ W_h*^T for the three blocks
    h_rec = np.empty((B, H), dtype=dtype)  # h̃ = h_{t-1} ⊙ rec_mask, then r_t ⊙ h̃
    for t in range(T):
        h_prev, h_new = hs[t], y[t]
        rz, r, z, n = gates[t, :2], gates[t, 0], gates[t, 1], gates[t, 2]
        h_m = h_prev if rec_mask is None else np.multiply(h_prev, rec_mask, out=h_rec)
        if cfg.reset_after:
            np.matmul(h_m, W_hhT, out=gh)  # (B, H) @ (3, H, H) -> (3, B, H)
            rz += gh[:2]
            sigmoid(rz, out=rz)
            np.add(gh[2], b_hn, out=hn[t])
            n += r * hn[t]
        else:
            rz += np.matmul(h_m, W_hhT[:2], out=gh[:2])  # (B, H) @ (2, H, H) -> (2, B, H)
            sigmoid(rz, out=rz)
            n += np.multiply(r, h_m, out=h_rec) @ W_hhT[2]  # (B, H) @ (H, H)
        np.tanh(n, out=n)
        np.subtract(h_prev, n, out=h_new)  # h'_t = n + z ⊙ (h_{t-1} - n)
        h_new *= z
        h_new += n
        if valid is None:
            hs[t + 1] = h_new
        else:  # h_t = h'_t on valid steps, h_{t-1} on padded ones
            hs[t + 1] = h_prev
            np.copyto(hs[t + 1], h_new, where=valid[t])
    if m is not None:
        y *= m  # y_t = m_t h'_t
    cache = {"x": x, "gates": gates, "hs": hs, "hn": hn, "m": m, "rec_mask": rec_mask}
    return y, hs[T].copy(), cache


infer = inference_of(forward)


def backward(
    p: dict[str, np.ndarray],
    cfg: GRUConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
    *,
    check_finite: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), dh_0 (B, H))``.

    Per step, with g_t = m_t (dy_t + dh_t) the gradient reaching h'_t, h̃ = h_{t-1} ⊙ rec_mask and
    a_r, a_z, a_n the pre-activations::

        da_z = g ⊙ (h_{t-1} - n) ⊙ z (1 - z)
        da_n = g ⊙ (1 - z) ⊙ (1 - n²)
        reset_after:  dr = da_n ⊙ (h̃ W_hn^T + b_hn),  d(h̃ W_hn^T) = da_n ⊙ r
        reset_before: d(r ⊙ h̃) = da_n W_hn,            dr = d(r ⊙ h̃) ⊙ h̃
        da_r = dr ⊙ r (1 - r)
        dh_{t-1} = (1 - m_t) dh_t + g ⊙ z + dh̃ ⊙ rec_mask
    ``check_finite=False`` skips the NaN/Inf scan of ``dy`` (see ``forward``).
    """
    x, gates, hs, hn, m, rec_mask = (cache[k] for k in ("x", "gates", "hs", "hn", "m", "rec_mask"))
    T, B, D = x.shape
    H = cfg.hidden_size
    dtype = hs.dtype
    dy, dh = check_h_backward(dy, dstate, (T, B, H), dtype, finite=check_finite)
    W_hh3 = p["W_hh"].reshape(3, H, H)  # W_hr, W_hz, W_hn
    h_m = hs[:-1] if rec_mask is None else hs[:-1] * rec_mask  # h̃ for every step, (T, B, H)

    # σ' and tanh' from the outputs, for all steps at once: [r(1-r), z(1-z), 1-n²], (T, 3, B, H)
    dact = gates * (1 - gates)
    np.multiply(gates[:, 2], gates[:, 2], out=dact[:, 2])
    np.subtract(1, dact[:, 2], out=dact[:, 2])

    dA = np.empty((T, 3, B, H), dtype=dtype)  # gradients of the recurrent product's blocks r, z, n
    da_n = np.empty((T, B, H), dtype=dtype) if cfg.reset_after else dA[:, 2]
    g = np.empty((B, H), dtype=dtype)
    for t in reversed(range(T)):
        h_prev = hs[t]
        r, z, n = gates[t]
        dr_a, dz_a, dn_rec = dA[t]
        dan = da_n[t]
        if dy is None:
            g[...] = dh
        else:
            np.add(dh, dy[t], out=g)
        if m is not None:
            g *= m[t]  # through h_t = h_{t-1} + m_t (h'_t - h_{t-1})
        np.subtract(h_prev, n, out=dz_a)  # through h' = n + z ⊙ (h_{t-1} - n)
        dz_a *= g
        dz_a *= dact[t, 1]  # through z = σ(a_z)
        np.subtract(1, z, out=dan)
        dan *= g
        dan *= dact[t, 2]  # through n = tanh(a_n)
        if cfg.reset_after:
            np.multiply(dan, hn[t], out=dr_a)  # through a_n = ... + r ⊙ hn
            np.multiply(dan, r, out=dn_rec)  # through hn = h̃ W_hn^T + b_hn
            dr_a *= dact[t, 0]  # through r = σ(a_r)
            dh_m = (dA[t] @ W_hh3).sum(axis=0)  # Σ_g (B, H) @ (H, H), through h̃ W_hh^T
        else:
            drh = dan @ W_hh3[2]  # (B, H) @ (H, H), through a_n = ... + (r ⊙ h̃) W_hn^T
            np.multiply(drh, h_m[t], out=dr_a)
            dr_a *= dact[t, 0]  # through r = σ(a_r)
            dh_m = (dA[t, :2] @ W_hh3[:2]).sum(axis=0)  # through h̃ W_hr^T, h̃ W_hz^T
            dh_m += drh * r
        if rec_mask is not None:
            dh_m *= rec_mask  # through h̃ = h_{t-1} ⊙ rec_mask
        dh_m += g * z  # through z ⊙ h_{t-1}
        if m is None:
            dh = dh_m
        else:
            dh *= 1 - m[t]
            dh += dh_m

    dA = dA.transpose(0, 2, 1, 3).reshape(T, B, 3 * H)  # batch-major rows (t, b) for the GEMMs
    grads, dx = weight_gradients(p, cfg, x, h_m, gates[:, 0], dA, da_n)
    return grads, dx, dh


def weight_gradients(p: dict[str, np.ndarray], cfg: GRUConfig, x: np.ndarray, h_m: np.ndarray, r: np.ndarray,
                     dA: np.ndarray, da_n: np.ndarray,
                     matmul: Callable | None = None,
                     column_sums: Callable | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """After the time loop: every parameter gradient and dx with GEMMs over all steps and rows (t, b).

    ``x (T, B, D)``; ``h_m (T, B, H)`` the h̃ that entered the recurrent product; ``r (T, B, H)`` the
    reset gate; ``dA (T, B, 3H)`` the gradients of the recurrent product's blocks r, z, n (that of
    the n block is da_n ⊙ r with reset_after, da_n without); ``da_n (T, B, H)`` that of the n
    pre-activation. The r and z blocks have one gradient on both sides; the n blocks differ::

        dW_ih = [dA_rz; da_n]^T x          dW_hh = [dA_rz^T h̃; dA_n^T h̃ (reset_after) or dA_n^T (r ⊙ h̃)]
        dx = dA_rz W_i{r,z} + da_n W_in

    ``matmul(A, B, trans_a=, trans_b=)`` is op(A) @ op(B) and ``column_sums(X)`` is ``X.sum(axis=0)``
    (NumPy's by default; the fast engine passes its own).
    """
    if matmul is None:
        def matmul(A, B, trans_a=False, trans_b=False):
            return (A.T if trans_a else A) @ (B.T if trans_b else B)
    if column_sums is None:
        def column_sums(X):
            return X.sum(axis=0)

    T, B, D = x.shape
    H = cfg.hidden_size
    rows = T * B
    dA2, da_n2 = dA.reshape(rows, 3 * H), da_n.reshape(rows, H)
    dA_rz, dA_n = dA2[:, : 2 * H], dA2[:, 2 * H :]
    x2, h_m2 = x.reshape(rows, D), h_m.reshape(rows, H)
    n_in = h_m2 if cfg.reset_after else (r * h_m).reshape(rows, H)  # what W_hn multiplies: h̃ or r ⊙ h̃
    db_hh = column_sums(dA2)  # (3H,): the r and z blocks are also b_ih's
    grads = {  # (2H, TB) @ (TB, ·) and (H, TB) @ (TB, ·) stacked: (3H, D), (3H, H)
        "W_ih": np.concatenate((matmul(dA_rz, x2, trans_a=True), matmul(da_n2, x2, trans_a=True))),
        "W_hh": np.concatenate((matmul(dA_rz, h_m2, trans_a=True), matmul(dA_n, n_in, trans_a=True))),
        "b_ih": np.concatenate((db_hh[: 2 * H], column_sums(da_n2))),
        "b_hh": db_hh,
    }
    dx = matmul(dA_rz, p["W_ih"][: 2 * H]) + matmul(da_n2, p["W_ih"][2 * H :])  # (TB, 2H) @ (2H, D) + (TB, H) @ (H, D)
    return grads, dx.reshape(T, B, D)
