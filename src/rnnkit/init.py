"""Parameter initialisers: ``init(shape, rng, dtype, **options) -> ndarray``.

Weights use PyTorch's orientation ``(fan_out, fan_in)`` (e.g. ``W_ih (G*H, D)``); for more than two
dimensions the trailing ones are a receptive field, as in ``torch.nn.init``. ``rng`` is a
``numpy.random.Generator`` or a seed; the same seed gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._validation import as_rng, check_dtype
from .errors import ConfigError, ShapeError

Shape = Sequence[int]


def _check_shape(shape: Any) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative ints."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ConfigError(f"shape must be a tuple of non-negative integers, got {shape!r}")
    return tuple(int(d) for d in dims)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out) = (shape[1] * r, shape[0] * r)`` with ``r = prod(shape[2:])``."""
    if len(shape) < 2:
        raise ShapeError(
            f"fan-based initialisers need a weight with >= 2 dimensions (fan_out, fan_in), got shape {shape}"
        )
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape: Shape, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """All zeros (``rng`` is unused)."""
    return np.zeros(_check_shape(shape), dtype=check_dtype(dtype))


def uniform(
    shape: Shape, rng: Any = None, dtype: Any = np.float32, *, low: float = -0.05, high: float = 0.05
) -> np.ndarray:
    """``W ~ U(low, high)`` elementwise."""
    if not low < high:
        raise ConfigError(f"uniform needs low < high, got low={low}, high={high}")
    return as_rng(rng).uniform(low, high, _check_shape(shape)).astype(check_dtype(dtype))


def normal(
    shape: Shape, rng: Any = None, dtype: Any = np.float32, *, mean: float = 0.0, std: float = 0.05
) -> np.ndarray:
    """``W ~ N(mean, std^2)`` elementwise."""
    if not std >= 0:
        raise ConfigError(f"std must be >= 0, got {std}")
    return as_rng(rng).normal(mean, std, _check_shape(shape)).astype(check_dtype(dtype))


def glorot_uniform(shape: Shape, rng: Any = None, dtype: Any = np.float32, *, gain: float = 1.0) -> np.ndarray:
    """Glorot/Xavier uniform: ``W ~ U(-a, a)``, ``a = gain sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_check_shape(shape))
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, rng, dtype, low=-a, high=a)


def glorot_normal(shape: Shape, rng: Any = None, dtype: Any = np.float32, *, gain: float = 1.0) -> np.ndarray:
    """Glorot/Xavier normal: ``W ~ N(0, std^2)``, ``std = gain sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(_check_shape(shape))
    return normal(shape, rng, dtype, std=gain * np.sqrt(2.0 / (fan_in + fan_out)))


def orthogonal(shape: Shape, rng: Any = None, dtype: Any = np.float32, *, gain: float = 1.0) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``.

    With ``rows = shape[0]`` and ``cols = prod(shape[1:])``: draw ``A ~ N(0, 1)`` of shape
    ``(max, min)``, factor ``A = Q R``, fix signs ``Q <- Q diag(sign(diag R))`` (so ``Q`` is
    uniformly distributed), transpose back if ``rows < cols``. Then ``W W^T = gain^2 I`` if
    ``rows <= cols`` and ``W^T W = gain^2 I`` if ``rows >= cols``.
    """
    dims = _check_shape(shape)
    if len(dims) < 2:
        raise ShapeError(f"orthogonal needs a weight with >= 2 dimensions, got shape {dims}")
    rows, cols = dims[0], int(np.prod(dims[1:]))
    a = as_rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)  # q: (max, min) with orthonormal columns
    q *= np.sign(np.diag(r))
    w = q.T if rows < cols else q  # (rows, cols)
    return (gain * w).reshape(dims).astype(check_dtype(dtype))


def lstm_forget_bias(b: np.ndarray, hidden_size: int, value: float = 1.0) -> np.ndarray:
    """Set the forget-gate block ``b[H:2H]`` of an LSTM bias ``(4H,)`` (gate order i, f, g, o) to ``value``.

    Modifies ``b`` in place and returns it. A positive forget bias keeps the cell state early in
    training (Jozefowicz et al. 2015). Apply it to one of ``b_ih``/``b_hh``: the two are summed.
    """
    if not isinstance(b, np.ndarray) or b.shape != (4 * hidden_size,):
        raise ShapeError(
            f"b must be an LSTM bias of shape (4 * hidden_size,) = ({4 * hidden_size},), got {np.shape(b)}"
        )
    b[hidden_size : 2 * hidden_size] = value
    return b


INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "zeros": zeros,
    "uniform": uniform,
    "normal": normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "orthogonal": orthogonal,
}
