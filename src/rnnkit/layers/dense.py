"""Dense: an affine map and an activation on the last axis.

Forward, for ``x (..., D)``, ``W (K, D)`` and ``b (K,)`` (PyTorch ``nn.Linear`` layout)::

    a = x W^T + b                                          # (..., K)
    y = f(a)                                               # f in linear, sigmoid, tanh, relu, softmax

Every leading axis is a batch axis, so on a recurrent layer's output ``(B, T, H)`` the same
weights apply at every step: Dense *is* time-distributed, no wrapper is needed.

Backward, with ``dy = dL/dy``::

    da = f'(a) * dy                                        # elementwise f, f' written from y
    da = y * (dy - sum_k dy_k y_k)                         # softmax: the full Jacobian-vector product
    dW = da^T x,   db = sum da,   dx = da W                # sums over every leading axis
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_rng, check_choice, check_dtype, check_float_array, check_positive_int
from ..errors import ConfigError, ShapeError
from ..cells.fast import column_sums, matmul
from ..ops import ACTIVATIONS, softmax
from .base import Layer

DENSE_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "softmax")


class Dense(Layer):
    """``y = f(x W^T + b)`` on the last axis of ``x (..., in_features)`` -> ``(..., out_features)``.

    Args:
        in_features: D, the size of the last input axis.
        out_features: K, the size of the last output axis.
        activation: ``"linear"`` (default), ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"softmax"``.
            For training with ``rnnkit.losses.cross_entropy`` keep it linear: that loss takes logits.
        use_bias: add ``b``; without it the layer has only ``W``.
        dtype: float32 (default) or float64.
        seed: seeds the initialisation, uniform in ``[-1/sqrt(D), 1/sqrt(D)]`` for ``W`` and ``b`` (PyTorch's).

    Parameters: ``W (out_features, in_features)``, ``b (out_features,)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        use_bias: bool = True,
        *,
        dtype: Any = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.activation = check_choice(activation, "activation", DENSE_ACTIVATIONS)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise ConfigError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.dtype = check_dtype(dtype)
        rng = as_rng(seed)
        k = 1.0 / np.sqrt(self.in_features)
        self.params["W"] = rng.uniform(-k, k, (self.out_features, self.in_features)).astype(self.dtype)
        if self.use_bias:
            self.params["b"] = rng.uniform(-k, k, self.out_features).astype(self.dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "dtype": self.dtype.name,
        }

    def output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        features = input_shape[-1] if input_shape else None
        if len(input_shape) < 2 or features not in (None, self.in_features):
            raise ShapeError(
                f"Dense(in_features={self.in_features}) needs inputs of shape (..., {self.in_features}), "
                f"got {input_shape}; set in_features={features} or change the layer before it"
            )
        return (*input_shape[:-1], self.out_features)

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        """``x (..., D)`` -> ``y (..., K)``. ``lengths`` and ``training`` are unused (every step is mapped)."""
        x = check_float_array(x, "x", dtype=self.dtype)
        self.output_shape(x.shape)  # raises ShapeError unless x is (..., in_features)
        a = matmul(x, self.params["W"], trans_b=True)  # x W^T: (..., K)
        if self.use_bias:
            a += self.params["b"]
        y = softmax(a) if self.activation == "softmax" else ACTIVATIONS[self.activation][0](a, out=a)
        self._cache = (x, y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., K)`` -> ``dx (..., D)``; sets ``self.grads`` ``{"W": (K, D), "b": (K,)}``."""
        if self._cache is None:
            raise ConfigError("backward() needs the cache of a forward(); call forward() first")
        x, y = self._cache
        dy = check_float_array(dy, "dy", shape=y.shape, dtype=self.dtype, allow_nonfinite=True)
        if self.activation == "softmax":
            da = y * (dy - np.sum(dy * y, axis=-1, keepdims=True))  # through y = softmax(a): J^T dy
        elif self.activation == "linear":
            da = dy  # y = a
        else:
            da = ACTIVATIONS[self.activation][1](y) * dy  # through y = f(a)
        da2 = da.reshape(-1, self.out_features)  # (N, K), N = product of the leading axes
        self.grads = {"W": matmul(da2, x.reshape(-1, self.in_features), trans_a=True)}  # through a = x W^T: (K, D)
        if self.use_bias:
            self.grads["b"] = column_sums(da2)  # through + b: (K,)
        return matmul(da, self.params["W"])  # through a = x W^T: (..., D)
