"""Central finite differences in float64, the reference every hand-written backward is checked against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place (and restoring it)."""
    assert x.dtype == np.float64, "finite differences need float64"
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * eps)
    return grad


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, name: str, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Fail with the worst element named if the two gradients differ."""
    assert analytic.shape == numeric.shape, f"{name}: shape {analytic.shape} != {numeric.shape}"
    err = np.abs(analytic - numeric)
    tol = atol + rtol * np.abs(numeric)
    if not (err <= tol).all():
        k = np.unravel_index(np.argmax(err - tol), err.shape)
        raise AssertionError(
            f"{name}: analytic {analytic[k]:.10g} vs numeric {numeric[k]:.10g} at {k} "
            f"(max abs err {err.max():.3g})"
        )
