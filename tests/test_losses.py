"""Losses and their gradients against torch.nn.functional, finite differences and hand-computed values."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.errors import ConfigError, DataError, DTypeError, ShapeError
from rnnkit.losses import LOSSES, binary_cross_entropy_with_logits, cross_entropy, huber, mae, mse
from tests.gradcheck import assert_grad_close, numerical_grad

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-7), np.float64: dict(rtol=1e-11, atol=1e-14)}


def torch_loss_and_grad(fn, pred, *args, **kwargs):
    """Loss value and d loss / d pred from torch autograd (same dtype as ``pred``)."""
    p = torch.tensor(pred, requires_grad=True)
    loss = fn(p, *args, **kwargs)
    loss.backward()
    return loss.item(), p.grad.numpy()


def assert_matches(ours, ref, dtype):
    (loss, dpred), (ref_loss, ref_dpred) = ours, ref
    assert dpred.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss, ref_loss, **TOL[dtype])
    np.testing.assert_allclose(dpred, ref_dpred, **TOL[dtype])


REGRESSION = [
    (mse, {}, F.mse_loss),
    (mae, {}, F.l1_loss),
    (huber, {}, F.huber_loss),
    (huber, {"delta": 0.4}, F.huber_loss),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours, kwargs, theirs", REGRESSION, ids=["mse", "mae", "huber", "huber_delta"])
def test_regression_losses_match_torch(ours, kwargs, theirs, dtype, rng):
    pred = rng.normal(size=(4, 6, 3)).astype(dtype)
    target = rng.normal(size=(4, 6, 3)).astype(dtype)
    assert_matches(ours(pred, target, **kwargs), torch_loss_and_grad(theirs, pred, torch.tensor(target), **kwargs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours, kwargs, theirs", REGRESSION, ids=["mse", "mae", "huber", "huber_delta"])
def test_regression_mask_equals_loss_on_selected_elements(ours, kwargs, theirs, dtype, rng):
    pred = rng.normal(size=(4, 6, 3)).astype(dtype)
    target = rng.normal(size=(4, 6, 3)).astype(dtype)
    mask = rng.random((4, 6)) < 0.6  # (B, T) mask over (B, T, F) predictions

    def on_selected(p):
        return theirs(p[torch.from_numpy(mask)], torch.from_numpy(target[mask]), **kwargs)

    assert_matches(ours(pred, target, mask=mask, **kwargs), torch_loss_and_grad(on_selected, pred), dtype)
    full_mask = np.broadcast_to(mask[..., None], pred.shape).astype(np.int64)  # 0/1, full shape
    assert_matches(ours(pred, target, mask=full_mask, **kwargs), torch_loss_and_grad(on_selected, pred), dtype)


def test_masked_mse_hand_computed():
    loss, dpred = mse(np.array([1.0, 2.0, 3.0]), np.zeros(3), mask=np.array([1, 0, 1]))
    assert loss == pytest.approx((1 + 9) / 2)
    np.testing.assert_allclose(dpred, [2 * 1 / 2, 0.0, 2 * 3 / 2])


def test_huber_hand_computed():
    # d = [0.5, -3]; delta = 1: l = [0.125, 1 * (3 - 0.5)] ; dl = [0.5, -1]; mean over 2
    loss, dpred = huber(np.array([0.5, -3.0]), np.zeros(2))
    assert loss == pytest.approx((0.125 + 2.5) / 2)
    np.testing.assert_allclose(dpred, [0.25, -0.5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cross_entropy_matches_torch_with_ignore_index(label_smoothing, dtype, rng):
    B, T, C = 3, 5, 7
    logits = (3 * rng.normal(size=(B, T, C))).astype(dtype)
    targets = rng.integers(0, C, size=(B, T))
    targets[rng.random((B, T)) < 0.3] = -100

    def theirs(x):
        return F.cross_entropy(
            x.reshape(-1, C), torch.from_numpy(targets.reshape(-1)), ignore_index=-100, label_smoothing=label_smoothing
        )

    ours = cross_entropy(logits, targets, ignore_index=-100, label_smoothing=label_smoothing)
    assert_matches(ours, torch_loss_and_grad(theirs, logits), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_mask_and_ignore_index_equal_loss_on_selected_rows(dtype, rng):
    B, T, C = 4, 6, 5
    logits = rng.normal(size=(B, T, C)).astype(dtype)
    targets = rng.integers(0, C, size=(B, T))
    mask = rng.random((B, T)) < 0.7
    targets[~mask] = -1  # padding ids outside [0, C) are allowed where masked
    targets[0, 0], mask[0, 0] = 3, True
    keep = mask & (targets != 3)

    def theirs(x):
        return F.cross_entropy(x[torch.from_numpy(keep)], torch.from_numpy(targets[keep]), label_smoothing=0.1)

    ours = cross_entropy(logits, targets, mask=mask, ignore_index=3, label_smoothing=0.1)
    assert_matches(ours, torch_loss_and_grad(theirs, logits), dtype)


def test_cross_entropy_hand_computed():
    # uniform logits over 2 classes: l = ln 2, dl = p - onehot = [-0.5, 0.5]; second row masked out
    loss, dlogits = cross_entropy(np.array([[0.0, 0.0], [5.0, -1.0]]), np.array([0, 1]), mask=np.array([True, False]))
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(dlogits, [[-0.5, 0.5], [0.0, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_matches_torch(dtype, rng):
    logits = (4 * rng.normal(size=(5, 4))).astype(dtype)
    targets = rng.random((5, 4)).astype(dtype)
    theirs = torch_loss_and_grad(F.binary_cross_entropy_with_logits, logits, torch.from_numpy(targets))
    assert_matches(binary_cross_entropy_with_logits(logits, targets), theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_mask_equals_loss_on_selected(dtype, rng):
    logits = rng.normal(size=(5, 4)).astype(dtype)
    targets = (rng.random((5, 4)) < 0.5).astype(dtype)
    mask = rng.random((5, 4)) < 0.5

    def theirs(x):
        m = torch.from_numpy(mask)
        return F.binary_cross_entropy_with_logits(x[m], torch.from_numpy(targets)[m])

    assert_matches(binary_cross_entropy_with_logits(logits, targets, mask=mask), torch_loss_and_grad(theirs, logits), dtype)


def test_bce_hand_computed():
    # x = 0: l = ln 2, dl = sigma(0) - y = 0.5 - y
    loss, dx = binary_cross_entropy_with_logits(np.zeros(2), np.array([1.0, 0.25]))
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(dx, [(0.5 - 1.0) / 2, (0.5 - 0.25) / 2])


CALLS = {
    "mse": lambda p, t, m: mse(p, t, mask=m),
    "mae": lambda p, t, m: mae(p, t, mask=m),
    "huber": lambda p, t, m: huber(p, t, mask=m, delta=0.5),
    "cross_entropy": lambda p, t, m: cross_entropy(p, (np.abs(t[..., 0]) * 10).astype(int) % 4, mask=m[..., 0], label_smoothing=0.2),
    "bce": lambda p, t, m: binary_cross_entropy_with_logits(p, 1 / (1 + np.exp(-t)), mask=m),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_gradient_matches_finite_differences(name, rng):
    pred = rng.normal(size=(2, 3, 4))
    target = rng.normal(size=(2, 3, 4))
    mask = np.broadcast_to((rng.random((2, 3)) < 0.7)[..., None], pred.shape)
    _, dpred = CALLS[name](pred, target, mask)
    numeric = numerical_grad(lambda: CALLS[name](pred, target, mask)[0], pred)
    assert_grad_close(dpred, numeric, name, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_are_finite_and_match_torch(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    targets = np.array([1, 0])
    loss, dlogits = cross_entropy(logits, targets)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    ref = torch_loss_and_grad(F.cross_entropy, logits, torch.from_numpy(targets))
    assert_matches((loss, dlogits), ref, dtype)

    x = logits.ravel()
    y = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 0.3], dtype=dtype)
    loss, dx = binary_cross_entropy_with_logits(x, y)
    assert np.isfinite(loss) and np.isfinite(dx).all()
    assert_matches((loss, dx), torch_loss_and_grad(F.binary_cross_entropy_with_logits, x, torch.from_numpy(y)), dtype)


def test_no_valid_element_gives_zero_loss_and_gradient():
    loss, dlogits = cross_entropy(np.ones((2, 3)), np.array([-100, -100]), ignore_index=-100)
    assert loss == 0.0 and not dlogits.any()
    loss, dpred = mse(np.ones(3), np.zeros(3), mask=np.zeros(3, dtype=bool))
    assert loss == 0.0 and not dpred.any()


def test_registry_names_the_functions():
    assert LOSSES["mse"] is mse and LOSSES["cross_entropy"] is cross_entropy
    assert set(LOSSES) == {"mse", "mae", "huber", "cross_entropy", "binary_cross_entropy_with_logits"}


BAD_INPUTS = [
    (lambda: mse(np.zeros((2, 3)), np.zeros((3, 2))), ShapeError, r"target must have the shape of pred \(2, 3\), got \(3, 2\)"),
    (lambda: mse(np.zeros(3), np.zeros(3, dtype=int)), DTypeError, r"target must be a float array, got dtype int64"),
    (lambda: mse(np.zeros(3, dtype=int), np.zeros(3)), DTypeError, r"pred must be float32 or float64, got int64"),
    (lambda: mae(np.array([0.0, np.nan]), np.zeros(2)), DataError, r"pred contains 1 NaN"),
    (lambda: mae(np.zeros(2), np.array([np.inf, 0.0])), DataError, r"target contains 1 NaN or Inf"),
    (lambda: mse(np.zeros((2, 3)), np.zeros((2, 3)), mask=np.ones(3)), ShapeError, r"mask must have shape \(2, 3\)"),
    (lambda: mse(np.zeros(2), np.zeros(2), mask=np.array([0, 2])), DataError, r"mask must contain only 0/1"),
    (lambda: huber(np.zeros(2), np.zeros(2), delta=0.0), ConfigError, r"delta must be a positive finite number, got 0.0"),
    (lambda: cross_entropy(np.zeros((2, 4)), np.array([0, 4])), DataError, r"class ids in \[0, 3\].*max 4"),
    (lambda: cross_entropy(np.zeros((2, 4)), np.array([-1, 0])), DataError, r"class ids in \[0, 3\].*min -1"),
    (lambda: cross_entropy(np.zeros((2, 4)), np.array([0.0, 1.0])), DTypeError, r"targets must be integer class ids, got dtype float64"),
    (lambda: cross_entropy(np.zeros((2, 4)), np.array([0, 1, 2])), ShapeError, r"targets must have shape \(2,\).*got \(3,\)"),
    (lambda: cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3), int), mask=np.ones(2)), ShapeError, r"mask must have shape \(2, 3\), got \(2,\)"),
    (lambda: cross_entropy(np.zeros((2, 4)), np.array([0, 1]), label_smoothing=1.5), ConfigError, r"label_smoothing must be in \[0, 1\]"),
    (lambda: cross_entropy(np.zeros((2, 4), np.float16), np.array([0, 1])), DTypeError, r"logits must be float32 or float64, got float16"),
    (lambda: binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 1.5])), DataError, r"targets must be probabilities in \[0, 1\].*max 1.5"),
    (lambda: binary_cross_entropy_with_logits(np.zeros(2), np.zeros(3)), ShapeError, r"targets must have the shape of logits \(2,\), got \(3,\)"),
]


@pytest.mark.parametrize("call, error, match", BAD_INPUTS)
def test_bad_input_raises_specific_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
