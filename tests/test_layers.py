"""Embedding, Dense, Dropout and the pooling layers: gradient checks, PyTorch parity, errors, configs."""

import json

import numpy as np
import pytest

from rnnkit.errors import ConfigError, DataError, DTypeError, ShapeError
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.pooling import LastStep, MeanPool
from rnnkit.layers.recurrent import GRU
from tests.gradcheck import assert_grad_close, numerical_grad

ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "softmax"]


def check_layer_grads(layer, x, rng, *, wrt_input=True, **forward_kwargs):
    """Gradcheck L = sum(forward(x) * R) for every parameter (and the input) of ``layer``."""
    R = rng.standard_normal(layer.forward(x, **forward_kwargs).shape)

    def loss():
        return float(np.sum(layer.forward(x, **forward_kwargs) * R))

    loss()
    dx = layer.backward(R)
    analytic = dict(layer.grads)
    for name, p in layer.params.items():
        assert_grad_close(analytic[name], numerical_grad(loss, p), name)
    if wrt_input:
        assert_grad_close(dx, numerical_grad(loss, x), "x")
    return analytic


# ---- Embedding ------------------------------------------------------------------------------


def test_embedding_gradcheck_repeated_ids_and_padding(rng):
    emb = Embedding(6, 4, padding_idx=0, dtype=np.float64, seed=1)
    emb.params["W"][0] = rng.standard_normal(4)  # a non-zero padding row is still never trained
    ids = np.array([[1, 3, 3, 0], [5, 1, 0, 0], [3, 3, 3, 2]])  # id 3 five times, padding 0 three times
    R = rng.standard_normal((3, 4, 4))

    def loss():
        return float(np.sum(emb.forward(ids) * R))

    loss()
    assert emb.backward(R) is None  # ids have no gradient
    numeric = numerical_grad(loss, emb.params["W"])
    assert np.abs(numeric[0]).max() > 0.1  # the padding row is read ...
    numeric[0] = 0.0  # ... but PyTorch's padding_idx semantics give it no gradient
    assert_grad_close(emb.grads["W"], numeric, "W")
    assert np.abs(emb.grads["W"][4]).max() == 0.0  # an id that never occurs
    np.testing.assert_allclose(emb.grads["W"][3], R[ids == 3].sum(axis=0), rtol=1e-12)


def test_embedding_matches_torch(rng):
    torch = pytest.importorskip("torch")
    emb = Embedding(9, 5, padding_idx=2, dtype=np.float64, seed=3)
    emb.params["W"][...] = rng.standard_normal((9, 5))
    ref = torch.nn.Embedding(9, 5, padding_idx=2).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(emb.params["W"]))
    ids = rng.integers(0, 9, size=(4, 6))
    ids[0, :3] = 2
    R = rng.standard_normal((4, 6, 5))
    y = emb.forward(ids)
    emb.backward(R)
    y_ref = ref(torch.from_numpy(ids))
    (y_ref * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(y, y_ref.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(emb.grads["W"], ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_embedding_init_and_from_pretrained(rng):
    emb = Embedding(50, 8, padding_idx=3, seed=0)
    assert emb.params["W"].dtype == np.float32 and emb.params["W"].shape == (50, 8)
    assert not emb.params["W"][3].any() and emb.params["W"][4].any()
    matrix = rng.standard_normal((7, 3))
    pre = Embedding.from_pretrained(matrix, padding_idx=0)
    assert pre.params["W"].dtype == np.float64 and pre.params["W"] is not matrix
    np.testing.assert_array_equal(pre.forward(np.array([[6, 0, 2]])), matrix[[[6, 0, 2]]])
    assert pre.get_config() == {"num_embeddings": 7, "embedding_dim": 3, "padding_idx": 0, "trainable": True,
                                "dtype": "float64"}


def test_embedding_rejects_bad_ids():
    emb = Embedding(10, 4)
    with pytest.raises(DataError, match=r"\[0, 9\] \(vocabulary size num_embeddings=10\), got min id 1 and max id 12"):
        emb.forward(np.array([[1, 12, 3]]))
    with pytest.raises(DataError, match=r"\[0, 9\].*num_embeddings=10.*min id -1"):
        emb.forward(np.array([[-1, 2]]))
    with pytest.raises(DTypeError, match=r"integer ids, got dtype float64.*astype\(np.int64\)"):
        emb.forward(np.array([[1.0, 2.0]]))
    with pytest.raises(ConfigError, match=r"padding_idx must be an id in \[0, 9\].*got 10"):
        Embedding(10, 4, padding_idx=10)
    with pytest.raises(ConfigError, match="embedding_dim must be >= 1, got 0"):
        Embedding(10, 0)
    with pytest.raises(ConfigError, match="call forward"):
        Embedding(10, 4).backward(np.zeros((1, 1, 4), np.float32))


# ---- Dense ----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_gradcheck_time_distributed(activation, rng):
    dense = Dense(4, 3, activation=activation, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 3, 4))  # (B, T, H): the same W at every step
    grads = check_layer_grads(dense, x, rng)
    assert set(grads) == {"W", "b"}


def test_dense_without_bias_gradcheck(rng):
    dense = Dense(3, 2, activation="tanh", use_bias=False, dtype=np.float64, seed=0)
    assert set(dense.params) == {"W"}
    check_layer_grads(dense, rng.standard_normal((5, 3)), rng)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_matches_torch_linear(activation, rng):
    torch = pytest.importorskip("torch")
    dense = Dense(5, 4, activation=activation, dtype=np.float64, seed=1)
    dense.params["W"][...] = rng.standard_normal((4, 5))
    dense.params["b"][...] = rng.standard_normal(4)
    ref = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(dense.params["W"]))
        ref.bias.copy_(torch.from_numpy(dense.params["b"]))
    f = {"linear": lambda a: a, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
         "softmax": lambda a: torch.softmax(a, dim=-1)}[activation]
    x = rng.standard_normal((3, 6, 5))
    R = rng.standard_normal((3, 6, 4))
    y = dense.forward(x)
    dx = dense.backward(R)
    x_t = torch.from_numpy(x).requires_grad_()
    y_ref = f(ref(x_t))
    (y_ref * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(y, y_ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense.grads["W"], ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dense.grads["b"], ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dense_keeps_float32():
    dense = Dense(3, 2, activation="softmax", seed=0)
    y = dense.forward(np.ones((2, 4, 3), np.float32))
    dx = dense.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dense.grads["W"].dtype == dense.grads["b"].dtype == np.float32


def test_dense_rejects_bad_inputs():
    dense = Dense(4, 2, seed=0)
    with pytest.raises(ShapeError, match=r"in_features=4.*\(\.\.\., 4\).*got \(2, 3, 5\)"):
        dense.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(DTypeError, match="float64 but the parameters are float32"):
        dense.forward(np.zeros((2, 4)))
    with pytest.raises(ConfigError, match=r"activation must be one of .*'softmax'.*got 'gelu'"):
        Dense(4, 2, activation="gelu")
    with pytest.raises(ConfigError, match="use_bias must be True or False"):
        Dense(4, 2, use_bias="yes")


# ---- Dropout --------------------------------------------------------------------------------


def test_dropout_identity_when_not_training(rng):
    drop = Dropout(0.5, seed=0)
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(drop.backward(2 * x), 2 * x)


def test_dropout_inverted_mask_statistics_and_seed():
    x = np.ones((400, 500), np.float32)
    y = Dropout(0.3, seed=7).forward(x, training=True)
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {np.float32(0.0), np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.005  # 200 000 draws: 5 sigma is about 0.005
    assert abs(y.mean() - 1.0) < 0.01  # E[y] = x
    np.testing.assert_array_equal(Dropout(0.3, seed=7).forward(x, training=True), y)
    assert not np.array_equal(Dropout(0.3, seed=8).forward(x, training=True), y)


def test_dropout_gradcheck_under_fixed_mask(rng):
    drop = Dropout(0.4, seed=0)
    x = rng.standard_normal((3, 5, 2))
    R = rng.standard_normal(x.shape)

    def loss():
        drop.rng = np.random.default_rng(11)  # replay the same mask every call
        return float(np.sum(drop.forward(x, training=True) * R))

    loss()
    dx = drop.backward(R)
    assert (dx == 0).any()
    assert_grad_close(dx, numerical_grad(loss, x), "x")


def test_dropout_rejects_bad_rate():
    with pytest.raises(ConfigError, match=r"rate must be in \[0, 1\), got 1.0"):
        Dropout(1.0)
    drop = Dropout(0.5)
    drop.forward(np.zeros((2, 3)), training=True)
    with pytest.raises(ShapeError, match=r"dy must have shape \(2, 3\)"):
        drop.backward(np.zeros((3, 2)))


# ---- pooling --------------------------------------------------------------------------------


def test_last_step_and_mean_pool_values(rng):
    x = rng.standard_normal((3, 5, 2))
    lengths = np.array([5, 1, 3])
    last = LastStep().forward(x, lengths=lengths)
    mean = MeanPool().forward(x, lengths=lengths)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(last[b], x[b, n - 1])
        np.testing.assert_allclose(mean[b], x[b, :n].mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(LastStep().forward(x), x[:, -1])
    np.testing.assert_allclose(MeanPool().forward(x), x.mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("pool", [LastStep, MeanPool])
def test_pooling_gradcheck_and_padding(pool, rng):
    x = rng.standard_normal((3, 4, 2))
    lengths = np.array([2, 4, 1])
    check_layer_grads(pool(), x, rng, lengths=lengths)
    garbage = x.copy()
    garbage[0, 2:], garbage[2, 1:] = 99.0, -7.0
    np.testing.assert_array_equal(pool().forward(garbage, lengths=lengths), pool().forward(x, lengths=lengths))


def test_last_step_equals_recurrent_final_output(rng):
    gru = GRU(3, 4, dtype=np.float64, seed=0)
    last = GRU(3, 4, return_sequences=False, dtype=np.float64, seed=0)
    x = rng.standard_normal((3, 6, 3))
    lengths = np.array([6, 2, 4])
    np.testing.assert_allclose(
        LastStep().forward(gru.forward(x, lengths=lengths), lengths=lengths), last.forward(x, lengths=lengths), rtol=1e-12
    )


def test_pooling_rejects_bad_inputs():
    with pytest.raises(DataError, match=r"lengths must lie in \[1, 4\]"):
        LastStep().forward(np.zeros((2, 4, 3)), lengths=np.array([0, 4]))
    with pytest.raises(ShapeError, match="must have 3 dimensions"):
        MeanPool().forward(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"MeanPool pools sequences of shape \(batch, time, features\)"):
        MeanPool().output_shape((None, 8))


# ---- configs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [Embedding(11, 3, padding_idx=0, dtype=np.float64), Dense(4, 2, "softmax", use_bias=False), Dropout(0.25),
     LastStep(), MeanPool()],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    assert {k: v.shape for k, v in clone.params.items()} == {k: v.shape for k, v in layer.params.items()}
    assert all(clone.params[k].dtype == v.dtype for k, v in layer.params.items())


def test_frozen_embedding_has_zero_gradient_and_round_trips_its_config():
    matrix = np.random.default_rng(0).normal(size=(6, 4))
    frozen = Embedding.from_pretrained(matrix, trainable=False)
    ids = np.array([[1, 2, 2], [5, 0, 1]])
    frozen.forward(ids)
    frozen.backward(np.ones((2, 3, 4)))
    assert frozen.grads["W"].shape == (6, 4) and not frozen.grads["W"].any()
    assert Embedding.from_config(frozen.get_config()).trainable is False
    with pytest.raises(ConfigError, match="trainable must be True or False"):
        Embedding(6, 4, trainable="no")
