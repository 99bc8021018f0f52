"""Feature scalers fitted on training data only, stored in model files as plain dicts.

Both scalers are the affine map

    y = (x - shift) / scale          x = y * scale + shift

per feature. A 1-D array is one feature (scalar shift and scale); an array with 2 or more axes has
its features on the last axis, and statistics are taken over all the other axes. So a scaler fitted
on a (N,) series also transforms (M, window, 1) windows and (M, horizon) targets.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._validation import check_float_array
from ..errors import ConfigError, DataError, ModelFileError, ShapeError


class AffineScaler:
    """Base class: subclasses define how ``fit`` chooses shift and scale (``_fit_params``)."""

    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        self.shift_: np.ndarray | None = None  # () or (k,), float64
        self.scale_: np.ndarray | None = None  # () or (k,), float64, never 0

    def _fit_params(self, x: np.ndarray, axis: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, x: np.ndarray) -> AffineScaler:
        """Learn shift and scale from ``x`` (the training part only) and return self."""
        x = check_float_array(x, "x")
        if x.size == 0:
            raise DataError(f"cannot fit {type(self).__name__} on an empty array (shape {x.shape})")
        axis = tuple(range(x.ndim - 1)) if x.ndim >= 2 else None
        self.shift_, self.scale_ = self._fit_params(x.astype(np.float64), axis)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """y = (x - shift) / scale, in x's float dtype."""
        x = self._check_input(x, "x")
        return ((x - self.shift_) / self.scale_).astype(x.dtype, copy=False)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """x = y * scale + shift, in y's float dtype (undoes ``transform``)."""
        y = self._check_input(y, "y")
        return (y * self.scale_ + self.shift_).astype(y.dtype, copy=False)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def _check_input(self, x: np.ndarray, name: str) -> np.ndarray:
        if self.scale_ is None:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(train_values) first")
        x = check_float_array(x, name)
        k = self.scale_.shape
        if k and (x.ndim < 2 or x.shape[-1] != k[0]):
            raise ShapeError(
                f"{name} must have {k[0]} features in its last axis (the scaler was fitted on {k[0]}), "
                f"got shape {x.shape}"
            )
        return x

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: {"type", "shift", "scale"} (+ subclass options)."""
        if self.scale_ is None:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(train_values) before saving it")
        return {"type": self.kind, "shift": self.shift_.tolist(), "scale": self.scale_.tolist(), **self._options()}

    def _options(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AffineScaler:
        """Rebuild a fitted scaler from ``to_dict`` output."""
        if not isinstance(d, dict) or d.get("type") != cls.kind:
            raise ModelFileError(f"expected a {cls.__name__} dict with type {cls.kind!r}, got {d!r}")
        try:
            scaler = cls(**{key: d[key] for key in cls._option_names()})
            shift = np.asarray(d["shift"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise ModelFileError(f"malformed {cls.__name__} dict ({e}); re-save the model") from None
        if shift.shape != scale.shape or shift.ndim > 1 or not (np.all(scale != 0) and np.all(np.isfinite(scale))):
            raise ModelFileError(f"malformed {cls.__name__} dict: shift {shift.shape}, scale {scale!r}")
        scaler.shift_, scaler.scale_ = shift, scale
        return scaler

    @classmethod
    def _option_names(cls) -> tuple[str, ...]:
        return ()


class StandardScaler(AffineScaler):
    """Zero mean, unit variance: shift = mean, scale = std (population; 1 for a constant feature)."""

    kind = "standard"

    def _fit_params(self, x: np.ndarray, axis: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(x.mean(axis=axis))
        std = np.asarray(x.std(axis=axis))
        return mean, np.where(std > 0, std, 1.0)


class MinMaxScaler(AffineScaler):
    """Map [min, max] of the training data onto ``feature_range`` = (lo, hi):

        y = lo + (x - min) * (hi - lo) / (max - min)
        i.e. scale = (max - min) / (hi - lo), shift = min - lo * scale.

    A constant feature maps to lo. Values outside the training range map outside (lo, hi).
    """

    kind = "minmax"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        super().__init__()
        try:
            lo, hi = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise ConfigError(f"feature_range must be two numbers (lo, hi), got {feature_range!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(f"feature_range must be finite with lo < hi, got {feature_range!r}")
        self.feature_range = (lo, hi)

    def _fit_params(self, x: np.ndarray, axis: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.feature_range
        x_min, x_max = np.asarray(x.min(axis=axis)), np.asarray(x.max(axis=axis))
        span = np.where(x_max > x_min, x_max - x_min, 1.0)
        scale = span / (hi - lo)
        return x_min - lo * scale, scale

    def _options(self) -> dict[str, Any]:
        return {"feature_range": list(self.feature_range)}

    @classmethod
    def _option_names(cls) -> tuple[str, ...]:
        return ("feature_range",)


SCALERS: dict[str, type[AffineScaler]] = {cls.kind: cls for cls in (StandardScaler, MinMaxScaler)}


def scaler_from_dict(d: dict[str, Any]) -> AffineScaler:
    """Rebuild whichever scaler ``d`` describes (its "type" is "standard" or "minmax")."""
    kind = d.get("type") if isinstance(d, dict) else None
    if kind not in SCALERS:
        raise ModelFileError(f"unknown scaler type {kind!r}; expected one of {sorted(SCALERS)}")
    return SCALERS[kind].from_dict(d)
