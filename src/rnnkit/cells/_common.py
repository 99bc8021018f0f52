"""Pieces every cell family shares: input checks, the length mask, the input projection, init."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import check_float_array, check_lengths
from ..errors import ShapeError


def check_sequence(x: np.ndarray, input_size: int, dtype: np.dtype, name: str = "x", finite: bool = True) -> np.ndarray:
    """Check a time-major input sequence: float, shape (T, B, input_size), parameters' dtype, and finite unless
    ``finite`` is False (the caller has scanned it: see ``check_finite`` of the cells' functions)."""
    x = check_float_array(x, name, ndim=3, dtype=dtype, allow_nonfinite=not finite)
    if x.shape[2] != input_size:
        raise ShapeError(
            f"{name} must have {input_size} features in its last axis (time-major (T, B, {input_size})), "
            f"got shape {x.shape}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ShapeError(f"{name} must have at least one time step and one sequence, got shape {x.shape}")
    return x


def check_state_array(h: np.ndarray, batch: int, size: int, dtype: np.dtype, name: str) -> np.ndarray:
    """Check one state array of shape (batch, size)."""
    h = check_float_array(h, name, dtype=dtype)
    if h.shape != (batch, size):
        raise ShapeError(f"{name} must have shape ({batch}, {size}) (batch, units), got {h.shape}")
    return h


def check_h_step(p: dict[str, np.ndarray], cfg, x_t: np.ndarray, h_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The checks of a one-state cell's ``step`` (RNN, GRU): x_t (B, D) and h_{t-1} (B, H), finite, in p's dtype."""
    dtype = p["W_ih"].dtype
    x_t = check_float_array(x_t, "x_t", shape=(None, cfg.input_size), dtype=dtype)
    return x_t, check_state_array(h_prev, x_t.shape[0], cfg.hidden_size, dtype, "state")


def check_h_forward(p: dict[str, np.ndarray], cfg, x: np.ndarray, state0: np.ndarray | None,
                    rec_mask: np.ndarray | None, finite: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The checks of a one-state cell's ``forward`` (RNN, GRU): ``x (T, B, D)``, ``h_0 (B, H)`` (zeros when
    None) and ``rec_mask (B, H)`` or None, finite (x unless ``finite`` is False), in p's dtype."""
    dtype = p["W_ih"].dtype
    x = check_sequence(x, cfg.input_size, dtype, finite=finite)
    B, H = x.shape[1], cfg.hidden_size
    h0 = np.zeros((B, H), dtype) if state0 is None else check_state_array(state0, B, H, dtype, "state0")
    if rec_mask is not None:
        rec_mask = check_state_array(rec_mask, B, H, dtype, "rec_mask")
    return x, h0, rec_mask


def check_h_backward(dy: np.ndarray | None, dstate: np.ndarray | None, shape: tuple[int, int, int],
                     dtype: np.dtype, finite: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """The checks of a one-state cell's ``backward``: ``dy`` of ``shape (T, B, H)`` (finite unless ``finite`` is
    False) or None, and dh_T: a copy of ``dstate (B, H)`` (the time loop updates it in place) or zeros."""
    _, B, H = shape
    if dy is not None:
        dy = check_float_array(dy, "dy", shape=shape, dtype=dtype, allow_nonfinite=not finite)
    dh = np.zeros((B, H), dtype) if dstate is None else check_state_array(dstate, B, H, dtype, "dstate").copy()
    return dy, dh


def step_mask(lengths: np.ndarray | None, time: int, batch: int, dtype: np.dtype) -> np.ndarray | None:
    """m[t, b, 0] = 1 where step t is valid for sequence b (t < lengths[b]), else 0; None if all valid."""
    if lengths is None:
        return None
    lengths = check_lengths(lengths, batch, time)
    if (lengths == time).all():
        return None
    return (np.arange(time)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def input_projection(x: np.ndarray, W_ih: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x @ W_ih^T + b over all time steps at once: (T, B, D) -> (T, B, G*H).

    With one input feature the product is a broadcast multiply: OpenBLAS is very slow on
    GEMMs whose inner dimension is 1.
    """
    T, B, D = x.shape
    out = x * W_ih[:, 0] if D == 1 else (x.reshape(T * B, D) @ W_ih.T).reshape(T, B, -1)
    out += b  # in place: a second fresh (T, B, G*H) array costs more than the product at small sizes
    return out


def uniform_params(shapes: dict[str, tuple[int, ...]], hidden_size: int, rng: np.random.Generator, dtype: np.dtype) -> dict[str, np.ndarray]:
    """Every parameter uniform in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's default)."""
    k = 1.0 / np.sqrt(hidden_size)
    return {name: rng.uniform(-k, k, size=shape).astype(dtype) for name, shape in shapes.items()}


def inference_of(forward: Callable) -> Callable:
    """``infer(p, cfg, x, state0=None, lengths=None, *, check_finite=True) -> (y, state_T)``: ``forward`` for
    inference, its cache dropped.

    Every cell module has an ``infer``; this one serves the NumPy reference cells (readable, not fast),
    while the fast cells' own ``infer`` keep one step of their arrays instead of all of them.
    """

    def infer(p: dict[str, np.ndarray], cfg, x: np.ndarray, state0=None, lengths: np.ndarray | None = None, *,
              check_finite: bool = True):
        y, state, _ = forward(p, cfg, x, state0, lengths, check_finite=check_finite)
        return y, state

    infer.__doc__ = f"``forward`` without the cache: ``(y, state_T)`` (see {forward.__module__}.forward)."
    return infer
