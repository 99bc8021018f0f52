"""Checks at the public boundary.

Each function raises an :mod:`rnnkit.errors` exception whose message names the
argument, what was expected, what was received, and how to fix it. They are
called once per public call, never inside a time loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ConfigError, DataError, DTypeError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(
    x: Any,
    name: str,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: np.dtype | type | None = None,
    allow_nonfinite: bool = False,
) -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray after checking rank, shape, dtype and finiteness.

    ``shape`` entries that are ``None`` match any size. ``dtype`` (if given) must
    match exactly; otherwise any of float32/float64 is accepted and kept.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or np.isscalar(x):
            x = np.asarray(x)
        else:
            raise DTypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise DTypeError(
            f"{name} must be float32 or float64, got {x.dtype}; convert with {name}.astype(np.float32)"
        )
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise DTypeError(
            f"{name} has dtype {x.dtype} but the parameters are {np.dtype(dtype)}; "
            f"convert with {name}.astype(np.{np.dtype(dtype)}) or build the layer with dtype={x.dtype}"
        )
    if ndim is not None and x.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if shape is not None:
        expected = tuple("*" if s is None else s for s in shape)
        if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
            raise ShapeError(f"{name} must have shape {expected} (* = any), got {x.shape}")
    if not allow_nonfinite and not np.isfinite(x).all():
        raise nonfinite_error(x, name)
    return x


def nonfinite_error(x: np.ndarray, name: str) -> DataError:
    """The error for an array ``x`` found to hold NaN or Inf: how many, and the fix."""
    bad = int(np.size(x) - np.isfinite(x).sum())
    return DataError(f"{name} contains {bad} NaN or Inf value(s); clean or impute the data first")


def check_lengths(lengths: Any, batch: int, time: int, name: str = "lengths") -> np.ndarray:
    """Return per-sequence lengths as an int64 array of shape (batch,), each in [1, time]."""
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ShapeError(f"{name} must have shape ({batch},) (one length per sequence), got {arr.shape}")
    if batch and (arr.min() < 1 or arr.max() > time):
        raise DataError(
            f"{name} must lie in [1, {time}] (the padded time axis), got min {arr.min()} and max {arr.max()}"
        )
    return arr.astype(np.int64)


def lengths_from_mask(mask: Any, name: str = "mask") -> np.ndarray:
    """Turn a (batch, time) mask of leading ones (padding at the end) into lengths."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ShapeError(f"{name} must have shape (batch, time), got {m.shape}")
    m = m.astype(bool)
    lengths = m.sum(axis=1)
    prefix = np.arange(m.shape[1])[None, :] < lengths[:, None]
    if not np.array_equal(m, prefix):
        raise DataError(
            f"{name} must be True on a prefix of each row (padding at the end only); "
            "pass lengths= instead, or move the padding to the end"
        )
    return lengths.astype(np.int64)


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_probability(value: Any, name: str, *, allow_one: bool = False) -> float:
    """Return ``value`` as a float in [0, 1) (or [0, 1] with ``allow_one``)."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}") from None
    upper_ok = p <= 1.0 if allow_one else p < 1.0
    if not (p >= 0.0 and upper_ok):
        raise ConfigError(f"{name} must be in [0, {'1]' if allow_one else '1)'}, got {value!r}")
    return p


def check_optional_positive(value: Any, name: str) -> float | None:
    """Return ``None`` or ``value`` as a positive float (used for clipping thresholds)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number or None, got {value!r}") from None
    if not v > 0 or not np.isfinite(v):
        raise ConfigError(f"{name} must be a positive finite number or None, got {value!r}")
    return v


def check_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Return ``dtype`` as a NumPy float dtype (float32 or float64)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise ConfigError(f"{name} must be float32 or float64, got {dt}")
    return dt


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a NumPy Generator from a seed, an existing Generator, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ConfigError(f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}")
