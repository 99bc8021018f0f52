"""Sequential: whole-model gradient checks, padding invariance, states, summary, config, names, errors."""

import json
import re

import numpy as np
import pytest

from rnnkit.errors import ConfigError, ShapeError
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.pooling import LastStep, MeanPool
from rnnkit.layers.recurrent import GRU, LSTM
from rnnkit.losses import cross_entropy
from rnnkit.models import LAYERS, Sequential
from tests.gradcheck import assert_grad_close, numerical_grad

F64 = np.float64
V, E, H, C = 7, 3, 3, 4  # vocabulary, embedding, hidden units, classes


def tagger(seed: int = 0) -> Sequential:
    """Embedding -> stacked bidirectional GRU (sequences) -> time-distributed Dense logits (B, T, C)."""
    return Sequential([
        Embedding(V, E, padding_idx=0, dtype=F64, seed=seed),
        GRU(E, H, num_layers=2, bidirectional=True, dtype=F64, seed=seed + 1),
        Dense(2 * H, C, dtype=F64, seed=seed + 2),
    ])


def classifier(seed: int = 0) -> Sequential:
    """Embedding -> Dropout -> stacked bidirectional GRU -> GRU (last step) -> Dense logits (B, C)."""
    return Sequential([
        Embedding(V, E, padding_idx=0, dtype=F64, seed=seed),
        Dropout(0.3, seed=seed),
        GRU(E, H, num_layers=2, bidirectional=True, dtype=F64, seed=seed + 1),
        GRU(2 * H, H, return_sequences=False, dtype=F64, seed=seed + 2),
        Dense(H, C, dtype=F64, seed=seed + 3),
    ])


def padded_ids(rng, lengths, T, fill=0):
    """(B, T) ids in [1, V) on valid steps and ``fill`` (or random garbage if None) after each length."""
    ids = rng.integers(1, V, size=(len(lengths), T))
    pad = np.arange(T) >= np.asarray(lengths)[:, None]
    ids[pad] = rng.integers(0, V, size=pad.sum()) if fill is None else fill
    return ids


def check_model_grads(model, x, targets, loss_mask, **forward_kwargs):
    """Gradcheck the cross-entropy loss of ``model`` for every parameter (dropout masks replayed)."""

    def run():
        for layer in model.layers:
            if isinstance(layer, Dropout):
                layer.rng = np.random.default_rng(5)
        logits = model.forward(x, training=True, **forward_kwargs)
        return cross_entropy(logits, targets, loss_mask)

    _, dlogits = run()
    assert model.backward(dlogits) is None  # the model starts with an Embedding
    grads = model.grads
    assert list(grads) == list(model.params)
    for name, p in model.params.items():
        assert_grad_close(grads[name], numerical_grad(lambda: run()[0], p), name)


def test_whole_model_gradcheck_tagger_with_masked_cross_entropy(rng):
    """The issue's check: embedding -> stacked bidirectional GRU with lengths -> dense head, masked CE."""
    lengths = np.array([5, 2, 4])
    x = padded_ids(rng, lengths, 5)
    targets = rng.integers(0, C, size=x.shape)
    mask = np.arange(5) < lengths[:, None]  # (B, T): the loss only sees valid steps
    check_model_grads(tagger(), x, targets, mask, lengths=lengths)


def test_whole_model_gradcheck_classifier(rng):
    """Embedding -> Dropout -> bidirectional GRU stack -> GRU(return_sequences=False) -> Dense, with lengths."""
    lengths = np.array([4, 1, 3])
    x = padded_ids(rng, lengths, 4)
    check_model_grads(classifier(), x, rng.integers(0, C, size=3), None, lengths=lengths)


def test_input_gradient_of_a_float_model(rng):
    model = Sequential([GRU(2, 3, dtype=F64, seed=0), MeanPool(), Dense(3, 1, "tanh", dtype=F64, seed=1)])
    x = rng.standard_normal((2, 4, 2))
    lengths = np.array([4, 2])

    def loss():
        return float(np.sum(model.forward(x, lengths=lengths) ** 2))

    y = model.forward(x, lengths=lengths)
    dx = model.backward(2 * y)
    assert_grad_close(dx, numerical_grad(loss, x), "x")
    assert not dx[1, 2:].any()  # padded steps get no gradient


@pytest.mark.parametrize("build", [tagger, classifier])
def test_padded_steps_never_change_the_result(build, rng):
    model = build()
    lengths = np.array([6, 2, 4])
    clean = padded_ids(np.random.default_rng(1), lengths, 6, fill=0)
    garbage = clean.copy()
    pad = np.arange(6) >= lengths[:, None]
    garbage[pad] = rng.integers(0, V, size=pad.sum())
    assert (garbage != clean).any()
    y_clean, y_garbage = model.forward(clean, lengths=lengths), model.forward(garbage, lengths=lengths)
    np.testing.assert_array_equal(y_garbage, y_clean)
    for b, n in enumerate(lengths):  # each sequence alone, unpadded: an independent reference
        alone = model.forward(clean[b : b + 1, :n])
        expected = y_clean[b : b + 1, :n] if y_clean.ndim == 3 else y_clean[b : b + 1]
        np.testing.assert_allclose(alone, expected, rtol=1e-12, atol=1e-14)


def test_padded_steps_never_change_the_gradients(rng):
    lengths = np.array([5, 3])
    clean = padded_ids(rng, lengths, 5, fill=0)
    garbage = clean.copy()
    garbage[1, 3:] = [6, 5]  # sequence 1 is valid for 3 steps only
    targets = rng.integers(0, C, size=clean.shape)
    mask = np.arange(5) < lengths[:, None]
    grads = []
    for x in (clean, garbage):
        model = tagger()
        model.backward(cross_entropy(model.forward(x, lengths=lengths), targets, mask)[1])
        grads.append(model.grads)
    for name in grads[0]:
        np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_mask_is_the_same_as_lengths(rng):
    model, lengths = tagger(), np.array([3, 1])
    x = padded_ids(rng, lengths, 3)
    mask = np.arange(3) < lengths[:, None]
    np.testing.assert_array_equal(model.forward(x, mask=mask), model.forward(x, lengths=lengths))


def test_states_carry_between_chunks(rng):
    """Stateful / truncated BPTT: two chunks with the state carried == one pass over the whole sequence."""
    model = Sequential([GRU(2, 4, num_layers=2, dtype=F64, seed=0), LSTM(4, 3, dtype=F64, seed=1), Dense(3, 1, dtype=F64)])
    x = rng.standard_normal((2, 8, 2))
    full = model.forward(x)
    first = model.forward(x[:, :5])
    states = model.final_states()
    assert sorted(states) == [0, 1] and isinstance(states[1], tuple)
    second = model.forward(x[:, 5:], states=states)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=1e-12, atol=1e-14)
    assert not np.allclose(model.forward(x[:, 5:]), second)  # the carried state matters


def test_predict_in_batches_equals_one_forward(rng):
    model, lengths = classifier(), np.array([3, 1, 2, 3, 2])
    x = padded_ids(rng, lengths, 3)
    np.testing.assert_allclose(model.predict(x, lengths, batch_size=2), model(x, lengths=lengths), rtol=1e-12)


def test_params_are_the_layers_arrays_with_pinned_names():
    model = tagger()
    shapes = {name: p.shape for name, p in model.params.items()}
    gru = {"W_ih": (3 * H, E), "W_hh": (3 * H, H), "b_ih": (3 * H,), "b_hh": (3 * H,)}
    deep = {**gru, "W_ih": (3 * H, 2 * H)}
    expected = {"0.W": (V, E)}
    for prefix, layer_shapes in [("l0", gru), ("l0_reverse", gru), ("l1", deep), ("l1_reverse", deep)]:
        expected.update({f"1.{prefix}.{name}": shape for name, shape in layer_shapes.items()})
    expected.update({"2.W": (C, 2 * H), "2.b": (C,)})
    assert list(shapes) == list(expected) and shapes == expected
    assert model.params["1.l1_reverse.W_hh"] is model.layers[1].params["l1_reverse.W_hh"]
    model.params["2.b"][...] = 0.0  # an optimizer's in-place update reaches the layer
    assert not model.layers[2].params["b"].any()


def gru_count(D: int, H: int, layers: int = 1, dirs: int = 1) -> int:
    """Parameters of a GRU stack, from the shapes in docs/conventions.md: 3H(D_k + H) + 6H per cell."""
    inputs = [D] + [dirs * H] * (layers - 1)
    return sum(dirs * (3 * H * (d + H) + 6 * H) for d in inputs)


def test_summary_shows_shapes_and_parameter_counts():
    model = Sequential(
        [Embedding(1000, 16), GRU(16, 32, num_layers=2, bidirectional=True), Dropout(0.2),
         LSTM(64, 8, return_sequences=False), Dense(8, 5, "softmax")],
        name="sentiment",
    )
    counts = [1000 * 16, gru_count(16, 32, 2, 2), 0, 4 * 8 * (64 + 8) + 8 * 8, 8 * 5 + 5]
    shapes = ["(None, None, 16)", "(None, None, 64)", "(None, None, 64)", "(None, 8)", "(None, 5)"]
    text = model.summary()
    assert text.startswith('Model: "sentiment"')
    for i, (layer, shape, count) in enumerate(zip(model.layers, shapes, counts)):
        row = rf"^{i} \({type(layer).__name__}\)\s+{re.escape(shape)}\s+{count:,}$"
        assert re.search(row, text, flags=re.M), f"no row {row!r} in\n{text}"
    assert f"Total params: {sum(counts):,}" in text
    assert model.num_params() == sum(counts)


def test_config_round_trip_rebuilds_the_same_model(rng):
    model = classifier(seed=3)
    config = json.loads(json.dumps(model.get_config()))
    assert [entry["class"] for entry in config["layers"]] == ["Embedding", "Dropout", "GRU", "GRU", "Dense"]
    clone = Sequential.from_config(config)
    assert clone.get_config() == model.get_config()
    for name, p in model.params.items():
        clone.params[name][...] = p
    x = padded_ids(rng, [4, 2], 4)
    np.testing.assert_array_equal(clone.predict(x, np.array([4, 2])), model.predict(x, np.array([4, 2])))
    assert {"Embedding", "Dense", "Dropout", "LastStep", "MeanPool", "RNN", "GRU", "LSTM", "Recurrent"} <= set(LAYERS)


def test_wrong_chaining_sizes_are_caught_at_construction():
    with pytest.raises(ShapeError, match=r"layer 1 \(GRU\).*layer 0 \(Embedding\).*\(None, None, 8\).*input_size=6"):
        Sequential([Embedding(10, 8), GRU(6, 4)])
    with pytest.raises(ShapeError, match=r"layer 2 \(Dense\).*\(None, None, 4\).*in_features=5"):
        Sequential([Embedding(10, 8), GRU(8, 4), Dense(5, 2)])
    with pytest.raises(ShapeError, match=r"layer 1 \(LastStep\).*\(None, 4\).*return_sequences=True"):
        Sequential([GRU(3, 4, return_sequences=False), LastStep()])


def test_bad_models_and_inputs_raise_clear_errors(rng):
    with pytest.raises(ConfigError, match="Embedding, which reads integer ids; it can only be the first layer"):
        Sequential([GRU(3, 4), Embedding(10, 4)])
    with pytest.raises(ConfigError, match=r"layers\[1\] must be an rnnkit Layer, got ufunc"):
        Sequential([GRU(3, 4), np.tanh])
    with pytest.raises(ConfigError, match="non-empty list"):
        Sequential([])
    model = Sequential([GRU(3, 4, dtype=F64), Dense(4, 2, dtype=F64)])
    x = rng.standard_normal((2, 5, 3))
    with pytest.raises(ConfigError, match=r"recurrent layers \[0\], got \[1\]"):
        model.forward(x, states={1: np.zeros((1, 2, 4))})
    with pytest.raises(ConfigError, match="pass lengths= or mask=, not both"):
        model.forward(x, lengths=[5, 5], mask=np.ones((2, 5)))
    with pytest.raises(ShapeError, match=r"mask must have shape \(2, 5\)"):
        model.forward(x, mask=np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"input_size=3.*got \(2, 5, 4\)"):
        model.forward(rng.standard_normal((2, 5, 4)))
    with pytest.raises(ConfigError, match=r"unknown class 'Conv1D'; known layer classes: \['Dense'"):
        Sequential.from_config({"layers": [{"class": "Conv1D", "config": {}}]})
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        model.predict(x, batch_size=0)
