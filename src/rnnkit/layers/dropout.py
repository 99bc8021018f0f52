"""Dropout: inverted dropout, active only in training.

With rate ``p`` and a fresh mask ``m`` per call, ``m = 1/(1-p)`` with probability ``1-p`` and
``0`` otherwise (so ``E[y] = x`` and inference needs no rescaling)::

    y  = x * m            (training)        y  = x     (inference)
    dx = dy * m           (training)        dx = dy    (inference)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_rng, check_float_array, check_probability
from ..errors import ConfigError
from .base import Layer


class Dropout(Layer):
    """Zero each element with probability ``rate`` during training and scale the rest by ``1/(1-rate)``.

    Args:
        rate: p in [0, 1), the probability of dropping an element.
        seed: seeds ``self.rng``, the Generator the masks are drawn from (one mask per training
            forward). The same seed gives the same masks; to replay a mask, reset
            ``layer.rng = np.random.default_rng(s)`` before the forward (as gradient checks do).

    No parameters. Shapes are unchanged.
    """

    def __init__(self, rate: float, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__()
        self.rate = check_probability(rate, "rate")
        self.rng = as_rng(seed)
        self._mask: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None  # input shape of the last forward

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        """``y = x * m`` when ``training`` (a new mask each call), else ``y = x``. ``lengths`` is unused."""
        x = check_float_array(x, "x")
        self._shape = x.shape
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.rate
        self._mask = keep.astype(x.dtype)
        self._mask *= 1.0 / (1.0 - self.rate)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dx = dy * m`` (the mask of the last forward), or ``dy`` if it ran in inference mode."""
        if self._shape is None:
            raise ConfigError("backward() needs the cache of a forward(); call forward() first")
        dy = check_float_array(dy, "dy", shape=self._shape, allow_nonfinite=True)
        if self._mask is None:
            return dy
        return dy * self._mask  # through y = x * m
