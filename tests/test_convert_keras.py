"""rnnkit <-> Keras 3 (torch backend) converters, checked against Keras itself on random weights and biases.

Variable lengths: Keras runs with a mask (passed to the layer, or made by ``Embedding(mask_zero=True)``)
and rnnkit with the equivalent ``lengths``; sequence outputs are compared on the valid steps only
(Keras repeats the last output on masked steps, rnnkit writes zeros), final outputs and states fully.
Tolerance: float32, atol 1e-5.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before the first keras import, as rnnkit.convert.keras does
pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from rnnkit.convert.keras import _keras, from_keras, load_keras_file, to_keras  # noqa: E402
from rnnkit.errors import ConversionError, ModelFileError, ShapeError  # noqa: E402
from rnnkit.layers.dense import Dense  # noqa: E402
from rnnkit.layers.embedding import Embedding  # noqa: E402
from rnnkit.layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from rnnkit.losses import binary_cross_entropy_with_logits  # noqa: E402
from rnnkit.models import Sequential  # noqa: E402
from rnnkit.optim import Adam  # noqa: E402

keras = _keras()  # sets KERAS_BACKEND=torch when unset
# Keras' own Variable.__array__ lacks numpy 2's copy= keyword; the warning is Keras-internal.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
ATOL = 1e-5
B, T, D = 4, 6, 3
LENGTHS = np.array([6, 3, 1, 5])
MASK = np.arange(T) < LENGTHS[:, None]  # (B, T)
VALID = MASK[..., None]


def numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


def randomize(model_or_layer, seed: int):
    """Every weight and bias uniform in [-0.5, 0.5] (never Keras' zero/one bias initialisers)."""
    rng = np.random.default_rng(seed)
    model_or_layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in model_or_layer.get_weights()])
    return model_or_layer


def inputs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, T, D)).astype(np.float32)


KERAS_LAYERS = {
    "simple-tanh": lambda **kw: keras.layers.SimpleRNN(5, **kw),
    "simple-relu": lambda **kw: keras.layers.SimpleRNN(5, activation="relu", **kw),
    "simple-sigmoid": lambda **kw: keras.layers.SimpleRNN(5, activation="sigmoid", **kw),
    "simple-linear": lambda **kw: keras.layers.SimpleRNN(5, activation="linear", **kw),
    "gru-reset-after": lambda **kw: keras.layers.GRU(5, **kw),
    "gru-reset-before": lambda **kw: keras.layers.GRU(5, reset_after=False, **kw),
    "lstm": lambda **kw: keras.layers.LSTM(5, **kw),
    "bi-gru": lambda **kw: keras.layers.Bidirectional(keras.layers.GRU(4, **kw)),
    "bi-lstm": lambda **kw: keras.layers.Bidirectional(keras.layers.LSTM(4, **kw)),
    "bi-simple-sum": lambda **kw: keras.layers.Bidirectional(keras.layers.SimpleRNN(4, **kw), merge_mode="sum"),
    "bi-gru-sum": lambda **kw: keras.layers.Bidirectional(keras.layers.GRU(4, reset_after=False, **kw), merge_mode="sum"),
    "bi-lstm-sum": lambda **kw: keras.layers.Bidirectional(keras.layers.LSTM(4, **kw), merge_mode="sum"),
}


@pytest.mark.parametrize("case", sorted(KERAS_LAYERS))
def test_from_keras_outputs_and_states_match(case):
    layer = KERAS_LAYERS[case](return_sequences=True, return_state=True)
    x = inputs(1)
    layer(x)  # build
    randomize(layer, seed=2)
    out_k, *states_k = [numpy(t) for t in layer(x, mask=MASK)]
    converted = from_keras(layer)
    assert converted.merge_mode == getattr(layer, "merge_mode", "concat")
    out = converted.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(out * VALID, out_k * VALID, atol=ATOL)
    # Keras lists [h, (c)] per direction; rnnkit stacks directions: h (dirs, B, H), c (dirs, B, H).
    per_direction = len(states_k) // converted.num_directions
    state = converted.state if isinstance(converted.state, tuple) else (converted.state,)
    for j, s in enumerate(state):
        for d in range(converted.num_directions):
            np.testing.assert_allclose(s[d], states_k[d * per_direction + j], atol=ATOL)


@pytest.mark.parametrize(
    "layer",
    [
        RNN(D, 5, activation="sigmoid", seed=3),
        GRU(D, 5, reset_after=False, seed=4),
        GRU(D, 4, num_layers=2, bidirectional=True, dropout=0.3, seed=5),
        LSTM(D, 5, num_layers=2, seed=6),
        LSTM(D, 4, bidirectional=True, return_sequences=False, seed=7),
        GRU(D, 4, num_layers=2, bidirectional=True, merge_mode="sum", dropout=0.3, seed=50),
        RNN(D, 4, bidirectional=True, merge_mode="sum", activation="relu", seed=51),
        LSTM(D, 4, num_layers=2, bidirectional=True, merge_mode="sum", return_sequences=False, seed=52),
    ],
    ids=["rnn-sigmoid", "gru-before", "gru-2layer-bi", "lstm-2layer", "bi-lstm-last", "gru-2layer-bi-sum",
         "rnn-bi-sum", "lstm-2layer-bi-sum-last"],
)
def test_to_keras_matches_rnnkit(layer):
    x = inputs(8)
    model = to_keras(layer)
    expected = layer.forward(x, lengths=LENGTHS)
    y = x
    for keras_layer in model.layers:  # Dropout layers are inactive outside training
        y = keras_layer(y, mask=MASK) if not isinstance(keras_layer, keras.layers.Dropout) else y
    y = numpy(y)
    bidirectional = [k for k in model.layers if isinstance(k, keras.layers.Bidirectional)]
    assert [k.merge_mode for k in bidirectional] == [layer.merge_mode] * layer.num_layers * layer.bidirectional
    if layer.return_sequences:
        np.testing.assert_allclose(expected * VALID, y * VALID, atol=ATOL)
    else:
        np.testing.assert_allclose(expected, y, atol=ATOL)
    assert sum(isinstance(k, keras.layers.Dropout) for k in model.layers) == (layer.num_layers - 1) * (layer.dropout > 0)


def padded_ids(seed: int, vocab: int = 20) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, vocab, (B, T))
    ids[~MASK] = 0
    return ids


def keras_gru_classifier(vocab: int = 20):
    """The seed model: Embedding(V, 8, mask_zero) -> GRU(16) -> GRU(8) -> GRU(4) -> Dense(1, sigmoid)."""
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(vocab, 8, mask_zero=True),
        keras.layers.GRU(16, return_sequences=True),
        keras.layers.GRU(8, return_sequences=True),
        keras.layers.GRU(4),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def test_seed_gru_classifier_imports_and_round_trips():
    kmodel = randomize(keras_gru_classifier(), seed=9)
    ids = padded_ids(10)
    model = from_keras(kmodel)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "GRU", "GRU", "GRU", "Dense"]
    assert model.layers[0].padding_idx == 0  # mask_zero -> padding id 0; rnnkit takes the lengths
    np.testing.assert_allclose(model.forward(ids, lengths=(ids != 0).sum(axis=1)), numpy(kmodel(ids)), atol=ATOL)
    back = to_keras(model)
    assert back.layers[0].mask_zero
    for a, b in zip(kmodel.get_weights(), back.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_stacked_keras_bidirectional_sum_imports_as_one_layer_each():
    """Keras stacks Bidirectional(sum) layers; each becomes a one-layer rnnkit layer reading R features."""
    kmodel = randomize(keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(20, 5, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), merge_mode="sum"),
        keras.layers.Bidirectional(keras.layers.GRU(4), merge_mode="sum"),
        keras.layers.Dense(2, activation="softmax"),
    ]), seed=53)
    ids = padded_ids(54)
    model = from_keras(kmodel)
    assert [(layer.merge_mode, layer.output_size) for layer in model.layers[1:3]] == [("sum", 6), ("sum", 4)]
    np.testing.assert_allclose(model.forward(ids, lengths=(ids != 0).sum(axis=1)), numpy(kmodel(ids)), atol=ATOL)
    back = to_keras(model)
    for a, b in zip(kmodel.get_weights(), back.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_seed_sine_lstm_functional_model():
    x_in = keras.Input((None, 1))
    kmodel = keras.Model(x_in, keras.layers.Dense(1)(keras.layers.LSTM(128)(x_in)))
    randomize(kmodel, seed=11)
    x = np.sin(np.linspace(0, 6, 4 * 12)).reshape(4, 12, 1).astype(np.float32)
    model = from_keras(kmodel)
    np.testing.assert_allclose(model.forward(x), numpy(kmodel(x)), atol=ATOL)


def test_rnnkit_trained_model_keeps_predictions_in_keras():
    model = Sequential([
        Embedding(20, 8, padding_idx=0, seed=12), GRU(8, 16, seed=13), GRU(16, 8, seed=14),
        GRU(8, 4, return_sequences=False, seed=15), Dense(4, 1, seed=16),
    ])
    ids, target = padded_ids(17), np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    before = {k: v.copy() for k, v in model.params.items()}
    opt = Adam(model.params, lr=1e-2)
    for _ in range(3):
        _, dlogits = binary_cross_entropy_with_logits(model.forward(ids, lengths=LENGTHS, training=True), target)
        model.backward(dlogits)
        opt.step(model.grads)
    assert any(not np.array_equal(before[k], v) for k, v in model.params.items())
    np.testing.assert_allclose(numpy(to_keras(model)(ids)), model.forward(ids, lengths=LENGTHS), atol=ATOL)


def small_model(seed: int) -> Sequential:
    return Sequential([Embedding(12, 4, padding_idx=0, seed=seed), LSTM(4, 6, bidirectional=True, seed=seed + 1),
                       GRU(12, 3, return_sequences=False, seed=seed + 2), Dense(3, 2, "softmax", seed=seed + 3)])


def assert_same_function(a: Sequential, b: Sequential) -> None:
    """Same predictions (an LSTM's two biases come back summed into b_ih, so compare outputs, not arrays)."""
    ids = padded_ids(41, vocab=12)
    np.testing.assert_allclose(b.forward(ids, lengths=LENGTHS), a.forward(ids, lengths=LENGTHS), atol=ATOL)
    for name in ("0.W", "1.l0_reverse.W_ih", "2.l0.W_hh", "3.W"):
        np.testing.assert_array_equal(b.params[name], a.params[name])


def test_keras_and_weights_h5_files_round_trip(tmp_path):
    source = small_model(20)
    kmodel = to_keras(source)
    kmodel.save(tmp_path / "m.keras")
    assert_same_function(source, load_keras_file(tmp_path / "m.keras"))
    kmodel.save_weights(tmp_path / "m.weights.h5")
    assert_same_function(source, load_keras_file(tmp_path / "m.weights.h5", like=small_model(30)))


def test_keras3_legacy_h5_read_with_h5py(tmp_path):
    kmodel = randomize(keras_gru_classifier(), seed=21)
    kmodel.save(tmp_path / "m.h5")
    ids = padded_ids(22)
    model = load_keras_file(tmp_path / "m.h5")
    np.testing.assert_allclose(model.forward(ids, lengths=LENGTHS), numpy(kmodel(ids)), atol=ATOL)


def write_tf_keras2_h5(path, layers: list[tuple[str, str, dict, list[tuple[str, np.ndarray]]]]) -> None:
    """A full-model .h5 laid out exactly as tf.keras 2.21 writes it (see shared/interop-notes.md §1).

    ``layers``: (class name, layer name, config, [(weight path under the layer, array)]); weight paths
    look like ``g1/gru_cell/kernel:0`` and live at ``model_weights/<layer>/<weight path>``.
    """
    entries = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, None], "dtype": "int32",
                                                       "sparse": False, "ragged": False, "name": "input_1"}}]
    entries += [{"class_name": cls, "config": {"name": name, **config}} for cls, name, config, _ in layers]
    model_config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": entries}}
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        f.attrs["model_config"] = json.dumps(model_config)
        f.attrs["training_config"] = json.dumps({"loss": "binary_crossentropy"})
        group = f.create_group("model_weights")
        group.attrs["backend"], group.attrs["keras_version"] = "tensorflow", "2.21.0"
        group.attrs["layer_names"] = np.array([name.encode() for _, name, _, _ in layers])
        for _, name, _, weights in layers:
            layer_group = group.create_group(name)
            layer_group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights])
            for weight_path, array in weights:
                layer_group.create_dataset(weight_path, data=array)


def tf_keras2_gru(units: int, return_sequences: bool) -> dict:
    return {"trainable": True, "dtype": "float32", "units": units, "activation": "tanh", "recurrent_activation": "sigmoid",
            "use_bias": True, "return_sequences": return_sequences, "return_state": False, "go_backwards": False,
            "stateful": False, "unroll": False, "time_major": False, "dropout": 0.0, "recurrent_dropout": 0.0,
            "implementation": 2, "reset_after": True}


def test_tf_keras2_h5_fixture_matches_keras3_with_the_same_weights(tmp_path):
    rng = np.random.default_rng(23)

    def r(*shape):
        return rng.uniform(-0.5, 0.5, shape).astype(np.float32)

    emb, g1, g2, dense = [r(20, 8)], [r(8, 48), r(16, 48), r(2, 48)], [r(16, 12), r(4, 12), r(2, 12)], [r(4, 1), r(1)]
    cell = ["kernel:0", "recurrent_kernel:0", "bias:0"]
    write_tf_keras2_h5(tmp_path / "tfk2.h5", [
        ("Embedding", "emb", {"input_dim": 20, "output_dim": 8, "mask_zero": True, "input_length": None}, [("emb/embeddings:0", emb[0])]),
        ("GRU", "g1", tf_keras2_gru(16, True), [(f"g1/gru_cell/{n}", w) for n, w in zip(cell, g1)]),
        ("GRU", "g2", tf_keras2_gru(4, False), [(f"g2/gru_cell/{n}", w) for n, w in zip(cell, g2)]),
        ("Dense", "out", {"units": 1, "activation": "sigmoid", "use_bias": True}, [("out/kernel:0", dense[0]), ("out/bias:0", dense[1])]),
    ])
    model = load_keras_file(tmp_path / "tfk2.h5")
    reference = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 8, mask_zero=True),
                                  keras.layers.GRU(16, return_sequences=True), keras.layers.GRU(4),
                                  keras.layers.Dense(1, activation="sigmoid")])
    reference.set_weights(emb + g1 + g2 + dense)
    ids = padded_ids(24)
    np.testing.assert_allclose(model.forward(ids, lengths=LENGTHS), numpy(reference(ids)), atol=ATOL)


# ---- errors ------------------------------------------------------------------------------


def test_unsupported_layer_is_named():
    kmodel = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(2, 2)])
    with pytest.raises(ConversionError, match=r"keras layer 'conv1d.*': layer Conv1D has no rnnkit counterpart"):
        from_keras(kmodel)


@pytest.mark.parametrize(
    "layer, message",
    [
        (keras.layers.Bidirectional(keras.layers.GRU(3), merge_mode="mul"),
         r"keras layer 'bidirectional.*': option merge_mode='mul' cannot convert; .* \['concat', 'sum'\]"),
        (keras.layers.Bidirectional(keras.layers.LSTM(3), merge_mode="ave"),
         r"keras layer 'bidirectional.*': option merge_mode='ave' cannot convert"),
        (keras.layers.LSTM(3, activation="relu"), "option activation='relu' cannot convert"),
        (keras.layers.GRU(3, go_backwards=True), "option go_backwards=True cannot convert"),
        (keras.layers.GRU(3, dropout=0.2), "option dropout=0.2 cannot convert"),
        (keras.layers.Dense(3, activation="gelu"), "option activation='gelu' cannot convert"),
    ],
)
def test_unsupported_keras_options_raise(layer, message):
    layer(inputs())
    with pytest.raises(ConversionError, match=message):
        from_keras(layer)


@pytest.mark.parametrize("layer, option", [(LSTM(3, 4, peepholes=True), "peepholes"),
                                           (LSTM(3, 4, proj_size=2), "proj_size"),
                                           (LSTM(3, 4, cell_clip=2.0), "cell_clip")])
def test_options_keras_lacks_raise(layer, option):
    with pytest.raises(ConversionError, match=rf"layer 0 \(LSTM\): option {option}="):
        to_keras(layer)


def test_shape_mismatch_names_both_shapes(tmp_path):
    bad = [np.zeros((3, 15), np.float32), np.zeros((4, 12), np.float32), np.zeros((2, 12), np.float32)]
    write_tf_keras2_h5(tmp_path / "bad.h5", [("GRU", "g", tf_keras2_gru(4, True), [(f"g/gru_cell/w{i}:0", w) for i, w in enumerate(bad)])])
    with pytest.raises(ShapeError, match=r"'l0.W_ih' has shape \(15, 3\), rnnkit expects \(12, 3\)"):
        load_keras_file(tmp_path / "bad.h5")


def test_weights_file_needs_an_architecture(tmp_path):
    path = tmp_path / "m.weights.h5"
    to_keras(small_model(40)).save_weights(path)
    with pytest.raises(ModelFileError, match="weights-only file holds no architecture; pass it"):
        load_keras_file(path)
