"""Metrics on small hand-worked cases and on random cases against plain-Python loop references."""

import math

import numpy as np
import pytest

from rnnkit.errors import ConfigError, DataError, DTypeError, ShapeError
from rnnkit.metrics import (
    accuracy,
    bits_per_char,
    confusion_matrix,
    f1_score,
    mae,
    mase,
    perplexity,
    precision,
    precision_recall_f1,
    recall,
    rmse,
)

# ----------------------------------------------------------------------------- hand-worked cases


def test_accuracy_multiclass_from_logits_and_probabilities():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5]])  # argmax 0, 1, 0
    y = np.array([0, 2, 0])
    assert accuracy(y, logits) == pytest.approx(2 / 3)
    assert accuracy(y, np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)) == pytest.approx(2 / 3)
    assert accuracy(y, logits, mask=np.array([1, 1, 0])) == pytest.approx(1 / 2)


def test_accuracy_binary_from_probabilities_and_logits():
    y = np.array([1, 0, 0, 0])
    probs = np.array([0.9, 0.2, 0.6, 0.4])  # predicted 1, 0, 1, 0
    assert accuracy(y, probs) == pytest.approx(3 / 4)
    assert accuracy(y, probs[:, None]) == pytest.approx(3 / 4)  # (N, 1) scores, as from Dense(1)
    assert accuracy(y, np.log(probs / (1 - probs)), from_logits=True) == pytest.approx(3 / 4)
    assert accuracy(y.astype(bool), probs, mask=np.array([True, True, False, True])) == pytest.approx(1.0)


def test_confusion_matrix_rows_are_true_classes():
    M = confusion_matrix(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 1, 1]))
    np.testing.assert_array_equal(M, [[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    assert M.dtype == np.int64
    np.testing.assert_array_equal(confusion_matrix(np.array([0, 1]), np.array([1, 1]), num_classes=3), [[0, 1, 0], [0, 1, 0], [0, 0, 0]])


def test_binary_precision_recall_f1():
    y_true, y_pred = np.array([1, 1, 1, 0, 0]), np.array([1, 0, 0, 1, 0])  # tp 1, fp 1, fn 2
    assert precision(y_true, y_pred) == pytest.approx(1 / 2)
    assert recall(y_true, y_pred) == pytest.approx(1 / 3)
    assert f1_score(y_true, y_pred) == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))
    assert precision(np.array([1, 0]), np.array([0, 0])) == 0.0  # no predicted positive: 0/0 -> 0


def test_macro_precision_recall_f1():
    # confusion (rows true): c0 [1, 1, 0], c1 [0, 2, 0], c2 [1, 0, 0]
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    p, r, f = precision_recall_f1(y_true, y_pred, average="macro")
    assert p == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert r == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert f == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)


def test_language_model_scores():
    assert perplexity(math.log(10)) == pytest.approx(10)
    assert bits_per_char(math.log(2)) == pytest.approx(1)
    assert perplexity(0.0) == 1.0


def test_regression_errors_hand_computed():
    y, y_hat = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    assert mae(y, y_hat) == pytest.approx(1.0)
    assert rmse(y, y_hat) == pytest.approx(math.sqrt(5 / 3))


def test_mase_hand_computed():
    y_train = np.array([1.0, 2.0, 4.0, 7.0])  # lag-1 diffs 1, 2, 3 (mean 2); lag-2 diffs 3, 5 (mean 4)
    y, y_hat = np.array([8.0, 10.0]), np.array([9.0, 7.0])  # mean |error| = 2
    assert mase(y, y_hat, y_train) == pytest.approx(1.0)
    assert mase(y, y_hat, y_train, season=2) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- random cases vs loop references


def counts_reference(y_true, y_pred, c):
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
    return tp, fp, fn


def prf_reference(y_true, y_pred, classes):
    ps, rs, fs = [], [], []
    for c in classes:
        tp, fp, fn = counts_reference(y_true, y_pred, c)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    return np.mean(ps), np.mean(rs), np.mean(fs)


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_random_vs_reference(seed):
    rng = np.random.default_rng(seed)
    B, T, C = 4, 9, 6
    logits = rng.normal(size=(B, T, C))
    y = rng.integers(0, C - 1, size=(B, T))  # class C-1 never true: tests classes seen only in predictions
    mask = rng.random((B, T)) < 0.7
    pairs = [(int(y[b, t]), int(np.argmax(logits[b, t]))) for b in range(B) for t in range(T) if mask[b, t]]
    yt, yp = [t for t, _ in pairs], [p for _, p in pairs]

    assert accuracy(y, logits, mask=mask) == pytest.approx(np.mean([t == p for t, p in pairs]))
    M = confusion_matrix(y, logits.argmax(-1), num_classes=C, mask=mask)
    for i in range(C):
        for j in range(C):
            assert M[i, j] == sum(1 for t, p in pairs if t == i and p == j)
    present = sorted(set(yt) | set(yp))
    ours = precision_recall_f1(y, logits.argmax(-1), average="macro", mask=mask)
    np.testing.assert_allclose(ours, prf_reference(yt, yp, present), rtol=1e-12)

    yb, pb = (rng.random(50) < 0.4).astype(int), rng.random(50)
    lb = [int(v > 0.5) for v in pb]
    assert accuracy(yb, pb) == pytest.approx(np.mean([int(t) == p for t, p in zip(yb, lb)]))
    np.testing.assert_allclose(precision_recall_f1(yb, np.array(lb)), prf_reference(list(yb), lb, [1]), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_regression_metrics_random_vs_reference(seed):
    rng = np.random.default_rng(seed)
    y, y_hat = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    err = [abs(a - b) for a, b in zip(y.ravel(), y_hat.ravel())]
    assert mae(y, y_hat) == pytest.approx(sum(err) / len(err))
    assert rmse(y, y_hat) == pytest.approx(math.sqrt(sum(e * e for e in err) / len(err)))

    season = int(rng.integers(1, 4))
    y_train = rng.normal(size=(20, 3)).cumsum(axis=0)  # three series, one scale each
    scale = [np.mean([abs(y_train[t, k] - y_train[t - season, k]) for t in range(season, 20)]) for k in range(3)]
    ref = np.mean([abs(y[i, k] - y_hat[i, k]) / scale[k] for i in range(7) for k in range(3)])
    assert mase(y, y_hat, y_train, season=season) == pytest.approx(ref)
    assert perplexity(seed + 0.5) == pytest.approx(math.e ** (seed + 0.5))
    assert bits_per_char(seed + 0.5) == pytest.approx((seed + 0.5) / math.log(2))


# ----------------------------------------------------------------------------- errors

BAD = [
    (lambda: accuracy(np.array([0, 1]), np.array([0.2, 1.7])), DataError, r"outside \[0, 1\]; pass from_logits=True"),
    (lambda: accuracy(np.array([0, 1]), np.zeros((3, 4))), ShapeError, r"y_score must have shape \(2,\) \(binary\) or \(2,\) \+ \(C,\)"),
    (lambda: accuracy(np.array([0.0, 1.0]), np.zeros(2)), DTypeError, r"y_true must hold integer class ids, got dtype float64"),
    (lambda: accuracy(np.array([0, 1]), np.zeros((2, 3)), mask=np.zeros(2)), DataError, r"at least one \(unmasked\) element"),
    (lambda: accuracy(np.array([0, 1]), np.zeros((2, 3)), mask=np.ones(3)), ShapeError, r"mask must have the shape of y_true \(2,\)"),
    (lambda: confusion_matrix(np.array([0, 1]), np.array([0])), ShapeError, r"y_pred must have the shape of y_true \(2,\), got \(1,\)"),
    (lambda: confusion_matrix(np.array([0, 3]), np.array([0, 1]), num_classes=3), DataError, r"class ids must be < num_classes=3, got 3"),
    (lambda: confusion_matrix(np.array([0, -1]), np.array([0, 1])), DataError, r"y_true must hold class ids >= 0, got -1"),
    (lambda: precision(np.array([0, 2]), np.array([0, 1])), DataError, r"average='binary' needs labels in \{0, 1\}.*use average='macro'"),
    (lambda: f1_score(np.array([0, 1]), np.array([0, 1]), mask=np.zeros(2, bool)), DataError, r"need at least one"),
    (lambda: recall(np.array([0, 1]), np.array([0, 1]), average="micro"), ConfigError, r"average must be one of \['binary', 'macro'\]"),
    (lambda: perplexity(-0.1), DataError, r"mean cross-entropy must be a finite number >= 0 \(in nats\), got -0.1"),
    (lambda: bits_per_char(float("nan")), DataError, r"got nan"),
    (lambda: mae(np.zeros(3), np.zeros(2)), ShapeError, r"y_hat must have the shape of y \(3,\), got \(2,\)"),
    (lambda: rmse(np.array([np.nan]), np.zeros(1)), DataError, r"y contains 1 NaN"),
    (lambda: mase(np.ones(2), np.ones(2), np.full(5, 3.0)), DataError, r"y_train is constant at lag 1.*use mae"),
    (lambda: mase(np.ones(2), np.ones(2), np.arange(3.0), season=3), DataError, r"more than season=3 time steps.*got shape \(3,\)"),
    (lambda: mase(np.ones(2), np.ones(2), np.arange(5.0), season=0), ConfigError, r"season must be >= 1, got 0"),
    (lambda: mase(np.ones((2, 3)), np.ones((2, 3)), np.arange(10.0).reshape(5, 2)), ShapeError, r"do not broadcast"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_input_raises_specific_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
