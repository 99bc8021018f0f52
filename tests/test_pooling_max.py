"""MaxPool: masked max over time, checked against a per-sequence loop, finite differences and PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.errors import ConfigError, DataError, ShapeError
from rnnkit.layers.pooling import MaxPool
from tests.gradcheck import assert_grad_close, numerical_grad


def test_values_are_the_max_over_each_sequences_valid_steps(rng):
    x = rng.standard_normal((4, 6, 3))
    lengths = np.array([6, 1, 3, 2])
    y = MaxPool().forward(x, lengths=lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(y[b], x[b, :n].max(axis=0))
    np.testing.assert_array_equal(MaxPool().forward(x), x.max(axis=1))  # no lengths: all T steps


def test_padding_never_wins_even_when_larger_than_every_valid_step(rng):
    # A recurrent layer outputs zeros on padded steps; with all-negative valid outputs an unmasked
    # max would pick those zeros.
    x = -np.abs(rng.standard_normal((2, 5, 3))) - 1.0
    lengths = np.array([2, 5])
    garbage = x.copy()
    garbage[0, 2:] = 0.0
    pool = MaxPool()
    y = pool.forward(garbage, lengths=lengths)
    np.testing.assert_array_equal(y, MaxPool().forward(x, lengths=lengths))
    assert (y < -1.0).all()
    assert not pool.backward(np.ones((2, 3)))[0, 2:].any()  # no gradient reaches a padded step


def test_gradient_matches_finite_differences(rng):
    x = rng.standard_normal((3, 4, 2))
    lengths = np.array([2, 4, 1])
    pool = MaxPool()
    R = rng.standard_normal((3, 2))

    def loss():
        return float(np.sum(pool.forward(x, lengths=lengths) * R))

    loss()
    assert_grad_close(pool.backward(R), numerical_grad(loss, x), "x")
    assert pool.params == {} and pool.grads == {}


def test_gradient_goes_to_the_first_maximum_on_ties():
    x = np.array([[[1.0], [3.0], [3.0], [2.0]]])  # (1, 4, 1): the maximum 3 at steps 1 and 2
    pool = MaxPool()
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward(np.array([[5.0]]))[0, :, 0], [0.0, 5.0, 0.0, 0.0])


def test_matches_torch_masked_max_forward_and_backward(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((5, 7, 4))
    lengths = np.array([7, 3, 1, 5, 2])
    dy = rng.standard_normal((5, 4))
    pool = MaxPool()
    y = pool.forward(x, lengths=lengths)
    dx = pool.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    pad = torch.arange(7)[None, :] >= torch.tensor(lengths)[:, None]  # (B, T)
    yt = xt.masked_fill(pad[:, :, None], float("-inf")).amax(dim=1)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=0)


def test_float32_stays_float32(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    pool = MaxPool()
    assert pool.forward(x, lengths=np.array([3, 2])).dtype == np.float32
    assert pool.backward(np.ones((2, 4), dtype=np.float32)).dtype == np.float32


def test_config_and_output_shape():
    pool = MaxPool()
    assert type(pool).from_config(json.loads(json.dumps(pool.get_config()))).get_config() == {}
    assert pool.output_shape((None, None, 8)) == (None, 8)


def test_bad_inputs_raise_named_errors():
    with pytest.raises(DataError, match=r"lengths must lie in \[1, 4\]"):
        MaxPool().forward(np.zeros((2, 4, 3)), lengths=np.array([0, 4]))
    with pytest.raises(ShapeError, match="must have 3 dimensions"):
        MaxPool().forward(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"MaxPool pools sequences of shape \(batch, time, features\)"):
        MaxPool().output_shape((None, 8))
    with pytest.raises(ConfigError, match=r"call forward\(\) first"):
        MaxPool().backward(np.zeros((2, 3)))
    pool = MaxPool()
    pool.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ShapeError, match="dy"):
        pool.backward(np.zeros((2, 4)))
