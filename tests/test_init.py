"""Initialisers: orthogonality, distribution statistics, torch parity of fans and of the QR sign fix."""

import numpy as np
import pytest
import torch

from rnnkit.errors import ConfigError, ShapeError
from rnnkit.init import (
    INITIALIZERS,
    glorot_normal,
    glorot_uniform,
    lstm_forget_bias,
    normal,
    orthogonal,
    uniform,
    zeros,
)


@pytest.mark.parametrize("dtype, atol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("shape", [(8, 8), (3, 7), (2, 3, 4)])  # square, wide, wide with a receptive field
def test_orthogonal_rows_are_orthonormal(shape, dtype, atol):
    W = orthogonal(shape, np.random.default_rng(1), dtype).reshape(shape[0], -1)
    assert W.dtype == np.dtype(dtype)
    np.testing.assert_allclose(W @ W.T, np.eye(shape[0]), atol=atol)


def test_orthogonal_tall_has_orthonormal_columns_and_gain():
    W = orthogonal((12, 4), np.random.default_rng(2), np.float64, gain=2.0)  # e.g. W_hh of a 3-gate cell, H = 4
    np.testing.assert_allclose(W.T @ W, 4.0 * np.eye(4), atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3)])
def test_orthogonal_equals_torch_on_the_same_normal_draw(shape, monkeypatch):
    """torch.nn.init.orthogonal_ fed the Gaussian matrix we draw gives the same matrix (QR sign fix included)."""
    rows, cols = shape
    A = np.random.default_rng(3).standard_normal((max(rows, cols), min(rows, cols)))  # what orthogonal() draws

    def fake_normal_(tensor, mean=0.0, std=1.0, **kwargs):  # torch draws (rows, cols) and transposes if rows < cols
        tensor.copy_(torch.from_numpy(A.T if rows < cols else A))
        return tensor

    monkeypatch.setattr(torch.Tensor, "normal_", fake_normal_)
    ref = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=1.5).numpy()
    np.testing.assert_allclose(orthogonal(shape, np.random.default_rng(3), np.float64, gain=1.5), ref, atol=1e-12)


def torch_fans(shape):
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", [(200, 300), (40, 30, 5)])
def test_glorot_uniform_bound_and_std(shape):
    fan_in, fan_out = torch_fans(shape)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    W = glorot_uniform(shape, np.random.default_rng(4))
    assert W.dtype == np.float32 and W.shape == shape
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a
    assert W.std() == pytest.approx(a / np.sqrt(3), rel=0.02)
    assert abs(W.mean()) < 4 * a / np.sqrt(3 * W.size)  # 4 standard errors


@pytest.mark.parametrize("shape", [(200, 300), (40, 30, 5)])
def test_glorot_normal_std(shape):
    fan_in, fan_out = torch_fans(shape)
    W = glorot_normal(shape, np.random.default_rng(5), np.float64, gain=0.5)
    std = 0.5 * np.sqrt(2.0 / (fan_in + fan_out))
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 4 * std / np.sqrt(W.size)


def test_uniform_and_normal_parameters():
    U = uniform((100, 100), np.random.default_rng(6), low=-0.2, high=0.6)
    assert U.min() >= -0.2 and U.max() < 0.6 and U.mean() == pytest.approx(0.2, abs=0.01)
    N = normal((100, 100), np.random.default_rng(7), np.float64, std=0.3)
    assert N.std() == pytest.approx(0.3, rel=0.02) and abs(N.mean()) < 0.01
    Z = zeros((2, 3), dtype=np.float64)
    assert Z.dtype == np.float64 and not Z.any()


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_same_seed_same_numbers(name):
    init = INITIALIZERS[name]
    a, b = init((6, 4), 11, np.float32), init((6, 4), np.random.default_rng(11), np.float32)
    np.testing.assert_array_equal(a, b)
    if name != "zeros":
        assert not np.array_equal(a, init((6, 4), 12, np.float32))


def test_registry():
    assert set(INITIALIZERS) == {"zeros", "uniform", "normal", "glorot_uniform", "glorot_normal", "orthogonal"}
    assert INITIALIZERS["orthogonal"] is orthogonal


def test_lstm_forget_bias_sets_block_one_only():
    H = 3
    b = np.random.default_rng(8).normal(size=4 * H).astype(np.float32)
    before = b.copy()
    out = lstm_forget_bias(b, H, value=2.5)
    assert out is b
    np.testing.assert_array_equal(b[H : 2 * H], 2.5)  # f block (gate order i, f, g, o)
    np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), np.delete(before, np.s_[H : 2 * H]))


BAD = [
    (lambda: glorot_uniform((5,), 0), ShapeError, r"need a weight with >= 2 dimensions \(fan_out, fan_in\), got shape \(5,\)"),
    (lambda: orthogonal((5,), 0), ShapeError, r"orthogonal needs a weight with >= 2 dimensions, got shape \(5,\)"),
    (lambda: uniform((2, 2), 0, low=1.0, high=1.0), ConfigError, r"uniform needs low < high, got low=1.0, high=1.0"),
    (lambda: normal((2, 2), 0, std=-1.0), ConfigError, r"std must be >= 0, got -1.0"),
    (lambda: zeros((2, -1)), ConfigError, r"shape must be a tuple of non-negative integers, got \(2, -1\)"),
    (lambda: glorot_normal((2, 2), 0, dtype=np.int32), ConfigError, r"dtype must be float32 or float64, got int32"),
    (lambda: orthogonal((2, 2), "seed"), ConfigError, r"seed must be a non-negative integer"),
    (lambda: lstm_forget_bias(np.zeros(6), 2), ShapeError, r"shape \(4 \* hidden_size,\) = \(8,\), got \(6,\)"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_input_raises_specific_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
