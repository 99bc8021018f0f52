"""Evaluation metrics (NumPy in, Python floats out).

Argument order is scikit-learn's: ``metric(y_true, y_pred)``. Classification metrics take an
optional bool/0-1 ``mask`` of ``y_true``'s shape that selects the elements to count (e.g. to skip
padding). Division by zero in precision/recall/F1 gives 0 (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import check_choice, check_float_array, check_positive_int
from .errors import DataError, DTypeError, ShapeError


def _check_labels(y: Any, name: str) -> np.ndarray:
    """Return ``y`` as an int64 array of class ids >= 0 (bools count as 0/1)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biu":
        raise DTypeError(
            f"{name} must hold integer class ids, got dtype {y.dtype}; convert with {name}.astype(np.int64)"
        )
    if y.size and y.min() < 0:
        raise DataError(f"{name} must hold class ids >= 0, got {y.min()}")
    return y.astype(np.int64)


def _select(mask: Any, *arrays: np.ndarray) -> list[np.ndarray]:
    """Flatten ``arrays`` (all of ``arrays[0]``'s shape), keeping only elements where ``mask`` is true."""
    if mask is None:
        return [a.ravel() for a in arrays]
    m = np.asarray(mask)
    if m.shape != arrays[0].shape:
        raise ShapeError(f"mask must have the shape of y_true {arrays[0].shape}, got {m.shape}")
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise DataError("mask must contain only 0/1 (or True/False); use mask.astype(bool)")
    return [a[m.astype(bool)] for a in arrays]


def _predict_labels(y_score: Any, y_true_shape: tuple[int, ...], from_logits: bool = False) -> np.ndarray:
    """Class ids from scores: binary if ``y_score`` has ``y_true``'s shape (or one more axis of size 1),
    multi-class ``argmax`` over the last axis if it has one more axis of size ``C > 1``.

    Binary: ``y_score > 0`` for logits, ``y_score > 0.5`` for probabilities.
    """
    s = check_float_array(y_score, "y_score")
    if s.shape == tuple(y_true_shape) + (1,):
        s = s[..., 0]
    if s.shape == tuple(y_true_shape):
        if not from_logits and s.size and (s.min() < 0 or s.max() > 1):
            raise DataError("y_score holds values outside [0, 1]; pass from_logits=True if these are logits")
        return (s > (0.0 if from_logits else 0.5)).astype(np.int64)
    if s.shape[:-1] == tuple(y_true_shape):
        return s.argmax(axis=-1)
    raise ShapeError(
        f"y_score must have shape {tuple(y_true_shape)} (binary) or {tuple(y_true_shape)} + (C,) (multi-class) "
        f"to match y_true, got {s.shape}"
    )


def accuracy(y_true: Any, y_score: Any, mask: Any = None, from_logits: bool = False) -> float:
    """Fraction of (valid) elements whose predicted class equals ``y_true``; see ``_predict_labels``."""
    y = _check_labels(y_true, "y_true")
    y_pred = _predict_labels(y_score, y.shape, from_logits)
    y, y_pred = _select(mask, y, y_pred)
    if y.size == 0:
        raise DataError("accuracy needs at least one (unmasked) element, got none")
    return float(np.mean(y == y_pred))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None, mask: Any = None) -> np.ndarray:
    """``M[i, j]`` = number of elements of true class ``i`` predicted as ``j``; int64 ``(C, C)``.

    ``C = num_classes`` or ``1 + max(y_true, y_pred)``.
    """
    y, y_hat = _check_labels(y_true, "y_true"), _check_labels(y_pred, "y_pred")
    if y.shape != y_hat.shape:
        raise ShapeError(f"y_pred must have the shape of y_true {y.shape}, got {y_hat.shape}")
    y, y_hat = _select(mask, y, y_hat)
    C = num_classes if num_classes is not None else int(max(y.max(initial=-1), y_hat.max(initial=-1))) + 1
    if y.size and max(y.max(), y_hat.max()) >= C:
        raise DataError(f"class ids must be < num_classes={C}, got {max(y.max(), y_hat.max())}")
    return np.bincount(C * y + y_hat, minlength=C * C).reshape(C, C)


def precision_recall_f1(
    y_true: Any, y_pred: Any, average: str = "binary", mask: Any = None
) -> tuple[float, float, float]:
    """Precision ``tp/(tp+fp)``, recall ``tp/(tp+fn)`` and ``F1 = 2 tp / (2 tp + fp + fn)``.

    ``average="binary"``: of class 1, with ``y_true``/``y_pred`` in {0, 1}.
    ``average="macro"``: unweighted mean of the per-class values over the classes that occur in
    ``y_true`` or ``y_pred`` (as scikit-learn).
    """
    check_choice(average, "average", ("binary", "macro"))
    M = confusion_matrix(y_true, y_pred, mask=mask)
    if M.sum() == 0:
        raise DataError("precision/recall/F1 need at least one (unmasked) element, got none")
    if average == "binary":
        if M.shape[0] > 2:
            raise DataError(
                f"average='binary' needs labels in {{0, 1}}, got class ids up to {M.shape[0] - 1}; use average='macro'"
            )
        M = np.pad(M, (0, 2 - M.shape[0]))  # (2, 2) even if class 1 never occurs
    tp = np.diag(M).astype(np.float64)
    fp, fn = M.sum(axis=0) - tp, M.sum(axis=1) - tp

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    p, r, f1 = ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)  # per class
    if average == "binary":
        return float(p[1]), float(r[1]), float(f1[1])
    present = (M.sum(axis=0) + M.sum(axis=1)) > 0
    return float(p[present].mean()), float(r[present].mean()), float(f1[present].mean())


def precision(y_true: Any, y_pred: Any, average: str = "binary", mask: Any = None) -> float:
    """Precision ``tp / (tp + fp)``; see ``precision_recall_f1``."""
    return precision_recall_f1(y_true, y_pred, average, mask)[0]


def recall(y_true: Any, y_pred: Any, average: str = "binary", mask: Any = None) -> float:
    """Recall ``tp / (tp + fn)``; see ``precision_recall_f1``."""
    return precision_recall_f1(y_true, y_pred, average, mask)[1]


def f1_score(y_true: Any, y_pred: Any, average: str = "binary", mask: Any = None) -> float:
    """F1 ``= 2 tp / (2 tp + fp + fn)``, the harmonic mean of precision and recall."""
    return precision_recall_f1(y_true, y_pred, average, mask)[2]


def _check_mean_ce(mean_ce: float) -> float:
    ce = float(mean_ce)
    if not (ce >= 0 and math.isfinite(ce)):
        raise DataError(f"mean cross-entropy must be a finite number >= 0 (in nats), got {mean_ce!r}")
    return ce


def perplexity(mean_ce: float) -> float:
    """``exp(CE)`` from the mean cross-entropy ``CE`` in nats per token."""
    return math.exp(_check_mean_ce(mean_ce))


def bits_per_char(mean_ce: float) -> float:
    """``CE / ln 2`` from the mean cross-entropy ``CE`` in nats per character."""
    return _check_mean_ce(mean_ce) / math.log(2)


def _check_pair(y: Any, y_hat: Any) -> tuple[np.ndarray, np.ndarray]:
    y, y_hat = check_float_array(y, "y"), check_float_array(y_hat, "y_hat")
    if y.shape != y_hat.shape:
        raise ShapeError(f"y_hat must have the shape of y {y.shape}, got {y_hat.shape}")
    if y.size == 0:
        raise DataError("y is empty; the metric needs at least one value")
    return y, y_hat


def mae(y: Any, y_hat: Any) -> float:
    """Mean absolute error ``mean |y - y_hat|``."""
    y, y_hat = _check_pair(y, y_hat)
    return float(np.mean(np.abs(y - y_hat), dtype=np.float64))


def rmse(y: Any, y_hat: Any) -> float:
    """Root mean squared error ``sqrt(mean (y - y_hat)^2)``."""
    y, y_hat = _check_pair(y, y_hat)
    return math.sqrt(float(np.mean(np.square(y - y_hat), dtype=np.float64)))


def mase(y: Any, y_hat: Any, y_train: Any, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006)::

        MASE = mean |y - y_hat| / s,   s = mean_t |y_train[t] - y_train[t - m]|   (m = season)

    ``s`` is the in-sample MAE of the seasonal naive forecast; time is axis 0 of ``y_train``, and
    its other axes (one scale per series) must broadcast against ``y``. MASE < 1 beats that forecast.
    """
    y, y_hat = _check_pair(y, y_hat)
    y_train = check_float_array(y_train, "y_train")
    season = check_positive_int(season, "season")
    if y_train.ndim == 0 or y_train.shape[0] <= season:
        raise DataError(f"y_train needs more than season={season} time steps on axis 0, got shape {y_train.shape}")
    s = np.mean(np.abs(y_train[season:] - y_train[:-season]), axis=0, dtype=np.float64)
    if np.any(s == 0):
        raise DataError(f"y_train is constant at lag {season}, so the MASE scale is 0; use mae instead")
    try:
        return float(np.mean(np.abs(y - y_hat) / s))
    except ValueError:
        raise ShapeError(f"y_train's series axes {y_train.shape[1:]} do not broadcast against y {y.shape}") from None
