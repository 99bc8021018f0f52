"""Loss functions: each returns ``(loss, dpred)`` with ``dpred = d loss / d pred``.

Every loss is the **mean over valid elements** (PyTorch's ``reduction="mean"``): with ``N`` valid
elements and a per-element loss ``l_n``, ``loss = (1/N) sum_n l_n``, and ``dpred`` holds
``(1/N) d l_n / d pred_n`` at valid positions and 0 elsewhere. ``dpred`` has the shape and dtype of
``pred``; ``loss`` is a Python float. If no element is valid the loss is 0 and ``dpred`` is all
zeros (PyTorch would return NaN), so an all-padding batch does not poison training.

Argument order is PyTorch's: ``loss_fn(pred, target, ...)``.

Masks are bool or 0/1 arrays of ``pred.shape`` or a leading part of it, e.g. a ``(B, T)`` mask for
``(B, T, F)`` predictions; for ``cross_entropy`` the mask has the shape of ``targets``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._validation import check_float_array, check_probability
from .errors import ConfigError, DataError, DTypeError, ShapeError
from .ops import sigmoid, softplus

LossResult = tuple[float, np.ndarray]


def _check_mask(mask: Any, shape: tuple[int, ...], *, allow_prefix: bool = True) -> np.ndarray | None:
    """Return ``mask`` as a bool array of ``shape`` (or a leading part of it); None stays None."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise DTypeError(f"mask must be bool or 0/1 numbers, got dtype {m.dtype}")
    if m.shape != shape[: m.ndim] or (not allow_prefix and m.ndim != len(shape)):
        hint = f" or a leading part of it (e.g. {shape[:-1]})" if allow_prefix else ""
        raise ShapeError(f"mask must have shape {shape}{hint}, got {m.shape}")
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise DataError("mask must contain only 0/1 (or True/False), got other values; use mask.astype(bool)")
    return m.astype(bool, copy=False)


def _check_target(target: Any, pred: np.ndarray, name: str = "target", pred_name: str = "pred") -> np.ndarray:
    """Return a float ``target`` of ``pred``'s shape, cast to ``pred``'s dtype."""
    t = np.asarray(target)
    if t.dtype.kind != "f":
        raise DTypeError(
            f"{name} must be a float array, got dtype {t.dtype}; convert with {name}.astype({pred_name}.dtype)"
        )
    if t.shape != pred.shape:
        raise ShapeError(f"{name} must have the shape of {pred_name} {pred.shape}, got {t.shape}")
    return check_float_array(t.astype(pred.dtype, copy=False), name)


def _mean_over_valid(l: np.ndarray, dl: np.ndarray, valid: np.ndarray | None) -> LossResult:
    """``loss = (1/N) sum_n valid_n l_n`` and ``dpred = valid dl / N``, with ``N = sum_n valid_n``.

    ``valid`` (None: all) has the shape of ``l`` or a leading part of it and broadcasts over the rest.
    """
    if valid is None or valid.all():
        n = max(l.size, 1)
        return float(np.sum(l, dtype=np.float64)) / n, dl / n

    def expand(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(valid.reshape(valid.shape + (1,) * (a.ndim - valid.ndim)), a.shape)

    v = expand(l)
    n = max(int(v.sum()), 1)
    loss = float(np.sum(l, where=v, dtype=np.float64)) / n
    return loss, np.where(expand(dl), dl / n, 0).astype(dl.dtype, copy=False)


def _regression(
    pred: Any, target: Any, mask: Any, per_element: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
) -> LossResult:
    """Mean over valid elements of ``l`` where ``(l, dl/dpred) = per_element(pred - target)``."""
    pred = check_float_array(pred, "pred")
    d = pred - _check_target(target, pred)
    return _mean_over_valid(*per_element(d), _check_mask(mask, pred.shape))


def mse(pred: Any, target: Any, mask: Any = None) -> LossResult:
    """Mean squared error: ``l = (pred - target)^2``, ``dl/dpred = 2 (pred - target)``."""
    return _regression(pred, target, mask, lambda d: (d * d, 2 * d))


def mae(pred: Any, target: Any, mask: Any = None) -> LossResult:
    """Mean absolute error: ``l = |pred - target|``, ``dl/dpred = sign(pred - target)`` (0 at 0)."""
    return _regression(pred, target, mask, lambda d: (np.abs(d), np.sign(d)))


def huber(pred: Any, target: Any, mask: Any = None, delta: float = 1.0) -> LossResult:
    """Huber loss with ``d = pred - target``::

        l = d^2 / 2                  if |d| <= delta
        l = delta (|d| - delta / 2)  otherwise
        dl/dpred = clip(d, -delta, delta)
    """
    delta = float(delta)
    if not (delta > 0 and np.isfinite(delta)):
        raise ConfigError(f"delta must be a positive finite number, got {delta!r}")

    def per_element(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.abs(d)
        l = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
        return l, np.clip(d, -delta, delta)

    return _regression(pred, target, mask, per_element)


def cross_entropy(
    logits: Any,
    targets: Any,
    mask: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> LossResult:
    """Softmax cross-entropy from logits ``(..., C)`` and integer class targets ``(...)``.

    With ``log p = log_softmax(logits)`` and the smoothed target distribution
    ``q_k = (1 - eps) [k == y] + eps / C`` (``eps = label_smoothing``)::

        l    = -sum_k q_k log p_k
        dl/dlogits_k = p_k - q_k

    An element is valid where ``mask`` is true and ``targets != ignore_index``; invalid targets may
    hold any integer (e.g. the padding id). Matches ``torch.nn.functional.cross_entropy`` with
    ``ignore_index`` and ``label_smoothing``.
    """
    logits = check_float_array(logits, "logits")
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ShapeError(f"logits must have shape (..., C) with C >= 1 classes, got {logits.shape}")
    C = logits.shape[-1]
    eps = check_probability(label_smoothing, "label_smoothing", allow_one=True)
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise DTypeError(
            f"targets must be integer class ids, got dtype {y.dtype}; convert with targets.astype(np.int64)"
        )
    if y.shape != logits.shape[:-1]:
        raise ShapeError(f"targets must have shape {logits.shape[:-1]} (logits without the class axis), got {y.shape}")
    valid = _check_mask(mask, y.shape, allow_prefix=False)
    valid = np.ones(y.shape, dtype=bool) if valid is None else valid.copy()
    if ignore_index is not None:
        valid &= y != ignore_index
    if valid.any() and (y[valid].min() < 0 or y[valid].max() >= C):
        raise DataError(
            f"targets must be class ids in [0, {C - 1}] (C = logits.shape[-1]), got min {y[valid].min()} "
            f"and max {y[valid].max()}; mark padding with mask= or ignore_index="
        )
    # With z = logits - max and s = sum_k exp(z_k): log p_k = z_k - log s, so
    # l = log s - (1 - eps) z_y - (eps / C) sum_k z_k, and p - q needs no (..., C) array q.
    z = logits - logits.max(axis=-1, keepdims=True)  # (..., C)
    p = np.exp(z)
    s = p.sum(axis=-1, keepdims=True)  # (..., 1)
    p /= s
    y_at = np.where(valid, y, 0)[..., None]  # (..., 1) a class id everywhere (invalid rows are zeroed later)
    l = (np.log(s) - (1 - eps) * np.take_along_axis(z, y_at, axis=-1))[..., 0]
    if eps:
        l -= eps / C * z.sum(axis=-1)
        p -= eps / C
    np.put_along_axis(p, y_at, np.take_along_axis(p, y_at, axis=-1) - (1 - eps), axis=-1)  # p - q
    return _mean_over_valid(l, p, valid)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, mask: Any = None) -> LossResult:
    """Sigmoid cross-entropy from logits ``x`` and probabilities ``y`` in [0, 1] (same shape)::

        l = -y log sigma(x) - (1 - y) log(1 - sigma(x)) = softplus(x) - x y
        dl/dx = sigma(x) - y

    ``softplus`` is evaluated without overflow, so logits of any size give finite values.
    """
    logits = check_float_array(logits, "logits")
    y = _check_target(targets, logits, "targets", "logits")
    if y.size and (y.min() < 0 or y.max() > 1):
        raise DataError(f"targets must be probabilities in [0, 1], got min {y.min()} and max {y.max()}")
    return _mean_over_valid(softplus(logits) - logits * y, sigmoid(logits) - y, _check_mask(mask, logits.shape))


LOSSES: dict[str, Callable[..., LossResult]] = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "cross_entropy": cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
}
