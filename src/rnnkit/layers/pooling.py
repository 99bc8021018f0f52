"""Pooling over time: ``(B, T, H)`` sequences with ``lengths`` -> one ``(B, H)`` vector each.

With ``L_b = lengths[b]`` (``T`` when no lengths are given) and the valid-step indicator
``m[b, t] = [t < L_b]``:

    LastStep:  y[b] = x[b, L_b - 1]                     dx[b, t] = [t = L_b - 1] dy[b]
    MeanPool:  y[b] = sum_t m[b, t] x[b, t] / L_b       dx[b, t] = m[b, t] dy[b] / L_b
    MaxPool:   y[b, h] = max_{t < L_b} x[b, t, h]       dx[b, t, h] = [t = t*[b, h]] dy[b, h]

where ``t*[b, h] = argmax_{t < L_b} x[b, t, h]`` (the first one on ties), so each feature's
gradient goes to the one valid step that produced its maximum. Padded steps never reach the
output. A recurrent layer with ``return_sequences=False`` already returns its last valid step;
MaxPool and MeanPool read all its outputs instead (e.g. ``TextClassifier(pooling="max")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_float_array, check_lengths
from ..errors import ConfigError, ShapeError
from .base import Layer


def _sequence_and_lengths(x: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check ``x (B, T, H)`` and return it with per-sequence lengths (all ``T`` when None)."""
    x = check_float_array(x, "x", ndim=3)
    batch, time, _ = x.shape
    if lengths is None:
        return x, np.full(batch, time, dtype=np.int64)
    return x, check_lengths(lengths, batch, time)


class _TimePool(Layer):
    """Shared parts of the pooling layers: no parameters, ``(B, T, H)`` -> ``(B, H)``."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: tuple[tuple[int, ...], np.ndarray] | None = None  # (x.shape, what backward needs)

    def get_config(self) -> dict[str, Any]:
        return {}

    def output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``(B, T, H)`` -> ``(B, H)``."""
        if len(input_shape) != 3:
            raise ShapeError(
                f"{type(self).__name__} pools sequences of shape (batch, time, features), got {input_shape}; "
                "use a recurrent layer with return_sequences=True before it"
            )
        return (input_shape[0], input_shape[2])

    def _saved(self, dy: Any) -> tuple[np.ndarray, tuple[int, ...], np.ndarray]:
        """``dy (B, H)`` checked against the last forward, with that forward's x shape and saved array
        (the lengths; MaxPool: the argmax steps)."""
        if self._cache is None:
            raise ConfigError("backward() needs the cache of a forward(); call forward() first")
        shape, saved = self._cache
        dy = check_float_array(dy, "dy", shape=(shape[0], shape[2]), allow_nonfinite=True)
        return dy, shape, saved


class LastStep(_TimePool):
    """The output at each sequence's last valid step: ``x (B, T, H)``, ``lengths (B,)`` -> ``(B, H)``."""

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        x, lengths = _sequence_and_lengths(x, lengths)
        self._cache = (x.shape, lengths)
        return x[np.arange(x.shape[0]), lengths - 1]  # (B, H)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, shape, lengths = self._saved(dy)
        dx = np.zeros(shape, dtype=dy.dtype)  # (B, T, H)
        dx[np.arange(shape[0]), lengths - 1] = dy  # through y[b] = x[b, L_b - 1]
        return dx


class MeanPool(_TimePool):
    """The mean over each sequence's valid steps: ``x (B, T, H)``, ``lengths (B,)`` -> ``(B, H)``."""

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        x, lengths = _sequence_and_lengths(x, lengths)
        self._cache = (x.shape, lengths)
        m = (np.arange(x.shape[1]) < lengths[:, None]).astype(x.dtype)  # (B, T)
        return np.einsum("bt,bth->bh", m, x) / lengths[:, None].astype(x.dtype)  # (B, H)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, shape, lengths = self._saved(dy)
        m = (np.arange(shape[1]) < lengths[:, None]).astype(dy.dtype)  # (B, T)
        return m[:, :, None] * (dy / lengths[:, None].astype(dy.dtype))[:, None, :]  # through the mean: (B, T, H)


class MaxPool(_TimePool):
    """Each feature's maximum over each sequence's valid steps: ``x (B, T, H)``, ``lengths (B,)`` -> ``(B, H)``."""

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        x, lengths = _sequence_and_lengths(x, lengths)
        padded = np.arange(x.shape[1]) >= lengths[:, None]  # (B, T): 1 - m
        t_star = np.where(padded[:, :, None], -np.inf, x).argmax(axis=1)  # (B, H), valid steps only
        self._cache = (x.shape, t_star)
        return np.take_along_axis(x, t_star[:, None, :], axis=1)[:, 0]  # y[b, h] = x[b, t*[b, h], h]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, shape, t_star = self._saved(dy)
        dx = np.zeros(shape, dtype=dy.dtype)  # (B, T, H)
        np.put_along_axis(dx, t_star[:, None, :], dy[:, None, :], axis=1)  # through y[b, h] = x[b, t*, h]
        return dx
