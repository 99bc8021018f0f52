"""Simple RNN cell: finite differences, PyTorch parity, seed tutorials' formulas, step loop, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import ConfigError
from rnnkit.cells import rnn
from rnnkit.cells.rnn import RNNConfig
from tests.cells import cell_checks as checks

ACTIVATIONS = ["tanh", "relu", "sigmoid", "linear"]


def test_param_shapes_names_and_init(rng):
    cfg = RNNConfig(input_size=3, hidden_size=4)
    assert rnn.param_shapes(cfg) == {"W_ih": (4, 3), "W_hh": (4, 4), "b_ih": (4,), "b_hh": (4,)}
    p = rnn.init_params(cfg, rng, np.float64)
    assert {k: v.shape for k, v in p.items()} == rnn.param_shapes(cfg)
    assert all(np.abs(v).max() <= 0.5 and np.unique(v).size == v.size for v in p.values())  # U(-1/√H, 1/√H)
    assert np.array_equal(rnn.zero_state(cfg, 2, np.float64), np.zeros((2, 4)))


# ---- 1. central finite differences (float64) ----

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients(activation, rng):
    checks.check_gradients(rnn, RNNConfig(2, 3, activation), rng)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gradients_with_lengths(activation, rng):
    checks.check_gradients(rnn, RNNConfig(2, 3, activation), rng, B=4, lengths=np.array([4, 1, 2, 3]))


def test_gradients_with_rec_mask_and_lengths(rng):
    checks.check_gradients(rnn, RNNConfig(2, 3, "sigmoid"), rng, lengths=np.array([2, 4, 1]), rec_mask=True)


@pytest.mark.parametrize("use_dy", [True, False], ids=["dy_only", "dstate_only"])
def test_gradients_one_upstream_gradient(use_dy, rng):
    checks.check_gradients(rnn, RNNConfig(2, 3), rng, lengths=np.array([3, 4, 1]), use_dy=use_dy, use_dstate=not use_dy)


# ---- 2. parity with torch.nn.RNN ----

@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1, 4]], ids=["full", "packed"])
def test_torch_parity(activation, dtype, tol, lengths, rng):
    torch.manual_seed(0)
    net = torch.nn.RNN(3, 6, nonlinearity=activation)
    checks.check_torch_parity(rnn, RNNConfig(3, 6, activation), net, rng, dtype, tol, lengths=lengths)


# ---- 4. seed 003: the binary-addition network's hidden layer ----

def test_sigmoid_rnn_matches_binary_addition_hidden_layer():
    """layer_1 = sigmoid(X·synapse_0 + prev·synapse_h), extended with the two biases, one sample at a time."""
    np.random.seed(0)
    input_dim, hidden_dim, binary_dim, batch = 2, 16, 8, 5
    synapse_0 = 2 * np.random.random((input_dim, hidden_dim)) - 1
    synapse_h = 2 * np.random.random((hidden_dim, hidden_dim)) - 1
    bias_0, bias_h = 2 * np.random.random(hidden_dim) - 1, 2 * np.random.random(hidden_dim) - 1
    a_int, b_int = np.random.randint(128, size=batch), np.random.randint(128, size=batch)
    bits = lambda n: np.unpackbits(np.uint8(n))  # noqa: E731

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    expected = np.empty((binary_dim, batch, hidden_dim))
    for s in range(batch):  # the seed's loop: least significant bit first
        a, b = bits(a_int[s]), bits(b_int[s])
        layer_1_values = [np.zeros(hidden_dim)]
        for position in range(binary_dim):
            X = np.array([[a[binary_dim - position - 1], b[binary_dim - position - 1]]])
            layer_1 = sigmoid(np.dot(X, synapse_0) + np.dot(layer_1_values[-1], synapse_h) + bias_0 + bias_h)
            layer_1_values.append(layer_1[0])
        expected[:, s] = layer_1_values[1:]

    x = np.stack([[bits(a_int[s])[::-1], bits(b_int[s])[::-1]] for s in range(batch)]).transpose(2, 0, 1)
    p = {"W_ih": synapse_0.T, "W_hh": synapse_h.T, "b_ih": bias_0, "b_hh": bias_h}
    y, hT, _ = rnn.forward(p, RNNConfig(input_dim, hidden_dim, "sigmoid"), x.astype(np.float64))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hT, expected[-1], rtol=1e-12, atol=1e-14)


# ---- 5. seed 001: Coursera's rnn_cell_forward, column-major (n, m) ----

def test_step_matches_coursera_rnn_cell_forward():
    """a_next = tanh(Wax·xt + Waa·a_prev + ba) on the seed's np.random.seed(1) data; ba split over our two biases."""
    np.random.seed(1)
    xt, a_prev = np.random.randn(3, 10), np.random.randn(5, 10)
    parameters = {"Waa": np.random.randn(5, 5), "Wax": np.random.randn(5, 3), "Wya": np.random.randn(2, 5),
                  "ba": np.random.randn(5, 1), "by": np.random.randn(2, 1)}
    a_next = np.tanh(parameters["Wax"].dot(xt) + parameters["Waa"].dot(a_prev) + parameters["ba"])

    b_hh = np.random.default_rng(0).standard_normal(5)
    p = {"W_ih": parameters["Wax"], "W_hh": parameters["Waa"], "b_ih": parameters["ba"][:, 0] - b_hh, "b_hh": b_hh}
    h, state = rnn.step(p, RNNConfig(3, 5), xt.T, a_prev.T)
    np.testing.assert_allclose(h.T, a_next, rtol=1e-12, atol=1e-14)
    assert np.array_equal(state, h)


# ---- 6. step loop == forward ----

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("lengths", [None, [6, 1, 3]], ids=["full", "lengths"])
def test_forward_equals_step_loop(activation, lengths, rng):
    checks.check_step_loop(rnn, RNNConfig(2, 4, activation), rng, lengths=lengths)


# ---- 8. dtypes and caches ----

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_stays_float32(activation, rng):
    checks.check_float32(rnn, RNNConfig(3, 4, activation), rng)


def test_cache_is_independent_of_later_calls(rng):
    checks.check_cache_independent(rnn, RNNConfig(3, 4, "relu"), rng)


def test_input_size_one(rng):
    """D == 1 takes the broadcast path of the input projection; still exact against the step loop."""
    checks.check_step_loop(rnn, RNNConfig(1, 4), rng)


# ---- 7. bad input ----

@pytest.mark.parametrize("change, error, match", [c[1:] for c in checks.BAD_FORWARD_INPUTS],
                         ids=[c[0] for c in checks.BAD_FORWARD_INPUTS])
def test_bad_forward_input(change, error, match):
    checks.check_bad_forward_input(rnn, RNNConfig(3, 4), change, error, match)


def test_bad_step_and_backward_input():
    checks.check_bad_step_and_backward(rnn, RNNConfig(3, 4))


def test_bad_config():
    checks.check_bad_config(RNNConfig, input_size=3, hidden_size=4)
    with pytest.raises(ConfigError, match=r"activation must be one of \['tanh', 'sigmoid', 'relu', 'linear'\], got 'gelu'"):
        RNNConfig(3, 4, activation="gelu")
