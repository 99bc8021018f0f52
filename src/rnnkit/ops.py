"""Numerically stable elementwise functions and their derivatives.

Derivatives of activations are written from the *output* ``y = f(a)``, which
the forward pass already holds, e.g. ``tanh'(a) = 1 - y**2``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(a) = 1 / (1 + exp(-a)), evaluated as (1 + tanh(a/2)) / 2 (no overflow)."""
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(a)_k = exp(a_k - max a) / sum_j exp(a_j - max a)."""
    z = a - a.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(a)_k = a_k - max a - log sum_j exp(a_j - max a)."""
    z = a - a.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softplus(a: np.ndarray) -> np.ndarray:
    """log(1 + exp(a)) without overflow."""
    return np.logaddexp(0.0, a)


# Activations of simple RNNs and dense layers: name -> (f, f' written from y = f(a)).
def _tanh_grad(y: np.ndarray) -> np.ndarray:
    return 1.0 - y * y


def _sigmoid_grad(y: np.ndarray) -> np.ndarray:
    return y * (1.0 - y)


def _relu(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(a, 0.0, out=out)


def _relu_grad(y: np.ndarray) -> np.ndarray:
    return (y > 0).astype(y.dtype)


def _linear(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return a.copy()
    out[...] = a
    return out


def _linear_grad(y: np.ndarray) -> np.ndarray:
    return np.ones_like(y)


ACTIVATIONS = {
    "tanh": (lambda a, out=None: np.tanh(a, out=out), _tanh_grad),
    "sigmoid": (sigmoid, _sigmoid_grad),
    "relu": (_relu, _relu_grad),
    "linear": (_linear, _linear_grad),
}
