"""``rnnkit.convert.describe`` and ``convert_file`` on real files of every framework.

The files are written here by the frameworks themselves (``torch.save(state_dict)``, Keras
``model.save``, ``to_onnx``, safetensors' ``save_file``); predictions after a conversion are compared
with the framework that wrote the file (PyTorch, Keras, onnxruntime). Weights are the frameworks'
random initialisations (random weights and biases). Tolerance: float32, atol 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from safetensors.numpy import save_file  # noqa: E402

from rnnkit.convert import convert_file, describe, to_onnx  # noqa: E402
from rnnkit.errors import ConfigError, ConversionError, ModelFileError, ShapeError  # noqa: E402
from rnnkit.io.model import load_model, save_model  # noqa: E402
from rnnkit.layers.dense import Dense  # noqa: E402
from rnnkit.layers.embedding import Embedding  # noqa: E402
from rnnkit.layers.recurrent import GRU  # noqa: E402
from rnnkit.models import Sequential  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")  # before any keras import, as rnnkit.convert.keras does
ATOL = 1e-5
V, E, H, K = 12, 5, 6, 3


class Net(torch.nn.Module):
    """A typical text model: Embedding -> 2-layer bidirectional LSTM -> Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = torch.nn.Linear(2 * H, K)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(every step's logits, softmax of the head on both directions' final h)."""
        out, (h_n, _) = self.lstm(self.emb(ids))
        return self.fc(out), torch.softmax(self.fc(torch.cat([h_n[-2], h_n[-1]], 1)), -1)


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)
    return module


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    net = randomize(Net(), 0)
    torch.save(net.state_dict(), d / "net.pt")
    save_file({k: v.numpy() for k, v in net.state_dict().items()}, d / "net_torch.safetensors")
    model = Sequential([Embedding(V, E, seed=1), GRU(E, H, bidirectional=True, return_sequences=False, seed=2),
                        Dense(2 * H, K, "softmax", seed=3)])
    save_model(d / "model.safetensors", model, {"name": "classify", "labels": ["a", "b", "c"]})
    to_onnx(model, d / "model.onnx")
    return d, net, model


def ids(B: int = 4, T: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, (B, T))


# ---- describe ------------------------------------------------------------------------------


def test_describe_torch_state_dict_lists_tensors_and_guesses_the_modules(files):
    d, net, _ = files
    info = describe(d / "net.pt")
    json.dumps(info)
    assert info["format"] == "torch"
    assert info["tensors"] == {k: {"shape": list(v.shape), "dtype": "float32"} for k, v in net.state_dict().items()}
    assert info["architecture"] == ["'emb': nn.Embedding vocab=12 dim=5",
                                    "'lstm': nn.LSTM input=5 hidden=6 layers=2 bidirectional=True",
                                    "'fc': nn.Linear in=12 out=3"]
    assert "  lstm.weight_hh_l1_reverse  float32  [24, 6]" in info["summary"]
    assert any("activations after nn.Linear" in line for line in info["summary"])


def test_describe_foreign_safetensors_reads_the_header(files):
    d, net, _ = files
    info = describe(d / "net_torch.safetensors")
    assert info["format"] == "safetensors"
    assert info["tensors"]["fc.weight"] == {"shape": [K, 2 * H], "dtype": "F32"}
    assert info["architecture"][1].startswith("'lstm': nn.LSTM")


def test_describe_rnnkit_and_onnx_files(files):
    d, _, model = files
    info = describe(d / "model.safetensors")
    assert (info["format"], info["task"], info["parameters"]) == ("rnnkit", "classify", model.num_params())
    assert [layer["class"] for layer in info["layers"]] == ["Embedding", "GRU", "Dense"]
    info = describe(d / "model.onnx")
    json.dumps(info)
    assert info["format"] == "onnx" and info["opset"] == 17
    assert info["inputs"] == [{"name": "x", "dtype": "int64", "shape": ["batch", "time"]},
                              {"name": "lengths", "dtype": "int32", "shape": ["batch"]}]
    assert info["recurrent_nodes"] == [{"op": "GRU", "name": "GRU_2", "direction": "bidirectional", "hidden_size": H,
                                        "linear_before_reset": 1}]
    assert info["summary"][-1] == "converts to rnnkit layers: Embedding, GRU, Dense"


def test_describe_rejects_unknown_damaged_and_missing_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError, match=r"notes.txt: not a model file rnnkit recognises .* expected .safetensors"):
        describe(tmp_path / "notes.txt")
    (tmp_path / "cut.keras").write_bytes(b"PK\x03\x04" + b"\0" * 20)
    with pytest.raises(ModelFileError, match="cut.keras: a damaged zip archive"):
        describe(tmp_path / "cut.keras")
    with pytest.raises(FileNotFoundError):
        describe(tmp_path / "missing.pt")


# ---- torch state_dicts -> rnnkit -------------------------------------------------------------


def test_torch_state_dict_converts_with_the_inferred_architecture(files, tmp_path):
    d, net, _ = files
    result = convert_file(d / "net.pt", tmp_path / "net.safetensors")
    model, task = load_model(tmp_path / "net.safetensors")
    assert task == {"name": "converted", "source": "net.pt", "source_format": "torch"}
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "LSTM", "Dense"]
    assert any("whole output sequence" in note for note in result.notes)
    x = ids()
    with torch.no_grad():
        steps, _ = net(torch.from_numpy(x))
    np.testing.assert_allclose(model.forward(x), steps.numpy(), atol=ATOL)


def test_arch_specs_set_what_a_state_dict_cannot_say(files, tmp_path):
    d, net, _ = files
    convert_file(d / "net.pt", tmp_path / "head.safetensors",
                 arch=["embedding", "lstm:input=5,hidden=6,layers=2,bidirectional,last", "linear:activation=softmax"])
    model, _ = load_model(tmp_path / "head.safetensors")
    x = ids(seed=1)
    with torch.no_grad():
        _, probs = net(torch.from_numpy(x))
    np.testing.assert_allclose(model.forward(x), probs.numpy(), atol=ATOL)


def test_relu_rnn_without_bias_needs_its_activation_spec(tmp_path):
    rnn = randomize(torch.nn.RNN(4, 5, nonlinearity="relu", bias=False, batch_first=True), 1)
    torch.save(rnn.state_dict(), tmp_path / "rnn.pth")
    assumed = convert_file(tmp_path / "rnn.pth", tmp_path / "tanh.safetensors")
    assert any("tanh assumed" in note for note in assumed.notes)
    given = convert_file(tmp_path / "rnn.pth", tmp_path / "relu.safetensors", arch=["rnn:activation=relu"])
    assert given.notes == []
    x = np.random.default_rng(2).standard_normal((3, 6, 4)).astype(np.float32)
    with torch.no_grad():
        expected = rnn(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(load_model(tmp_path / "relu.safetensors")[0].forward(x), expected, atol=ATOL)
    assert not np.allclose(load_model(tmp_path / "tanh.safetensors")[0].forward(x), expected, atol=1e-2)


def test_foreign_safetensors_and_half_precision_state_dicts_convert(files, tmp_path):
    d, net, _ = files
    convert_file(d / "net_torch.safetensors", tmp_path / "a.safetensors")
    gru = randomize(torch.nn.GRU(3, 4, batch_first=True), 2)
    torch.save({"epoch": 3, "model": {k: v.half() for k, v in gru.state_dict().items()}}, tmp_path / "ckpt.pt")
    result = convert_file(tmp_path / "ckpt.pt", tmp_path / "gru.safetensors")
    assert result.notes[0] == "reading the state_dict stored under key 'model'"
    assert result.notes[1] == "float16 tensors converted to float32"
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        steps, _ = net(torch.from_numpy(ids()))
        expected = gru.half().float()(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(load_model(tmp_path / "a.safetensors")[0].forward(ids()), steps.numpy(), atol=ATOL)
    np.testing.assert_allclose(load_model(tmp_path / "gru.safetensors")[0].forward(x), expected, atol=ATOL)


# ---- rnnkit -> foreign -> rnnkit ------------------------------------------------------------


def test_rnnkit_to_onnx_to_rnnkit_keeps_predictions(files, tmp_path):
    d, _, model = files
    convert_file(d / "model.safetensors", tmp_path / "m.onnx", opset=18)
    convert_file(tmp_path / "m.onnx", tmp_path / "back.safetensors")
    x, lengths = ids(), np.array([7, 3, 5, 1], np.int32)
    expected = model.forward(x, lengths=lengths)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["y"], {"x": x, "lengths": lengths})[0], expected, atol=ATOL)
    np.testing.assert_allclose(load_model(tmp_path / "back.safetensors")[0].forward(x, lengths=lengths), expected, atol=ATOL)


def test_rnnkit_to_pt_loads_into_torch_modules(files, tmp_path):
    d, _, model = files
    gru = GRU(4, 3, num_layers=2, seed=5)
    for p in gru.params.values():
        p[...] = np.random.default_rng(6).uniform(-0.5, 0.5, p.shape)
    save_model(tmp_path / "gru.safetensors", Sequential([gru]))
    convert_file(tmp_path / "gru.safetensors", tmp_path / "gru.pt")
    module = torch.nn.GRU(4, 3, num_layers=2, batch_first=True)
    module.load_state_dict(torch.load(tmp_path / "gru.pt", weights_only=True))  # nn.GRU's own key names
    x = np.random.default_rng(7).standard_normal((2, 5, 4)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x))[0].numpy(), gru.forward(x), atol=ATOL)
    convert_file(d / "model.safetensors", tmp_path / "model.pt")  # several layers: keys "{index}.{name}"
    assert sorted(torch.load(tmp_path / "model.pt", weights_only=True))[:3] == ["0.weight", "1.bias_hh_l0", "1.bias_hh_l0_reverse"]


# ---- Keras -------------------------------------------------------------------------------


def test_keras_file_round_trip_and_describe(files, tmp_path):
    keras = pytest.importorskip("keras")
    d, _, model = files
    convert_file(d / "model.safetensors", tmp_path / "m.keras")
    info = describe(tmp_path / "m.keras")
    assert info["format"] == "keras" and info["model_class"] == "Sequential"
    assert [layer["class"] for layer in info["layers"]] == ["InputLayer", "Embedding", "Bidirectional", "Dense"]
    assert info["layers"][2]["layer"]["class"] == "GRU" and info["layers"][2]["layer"]["units"] == H
    x = ids()
    expected = keras.saving.load_model(tmp_path / "m.keras").predict(x, verbose=0)
    np.testing.assert_allclose(model.forward(x), expected, atol=ATOL)
    convert_file(tmp_path / "m.keras", tmp_path / "back.safetensors")
    np.testing.assert_allclose(load_model(tmp_path / "back.safetensors")[0].forward(x), expected, atol=ATOL)


def test_keras_h5_files_are_described_with_h5py(tmp_path):
    keras = pytest.importorskip("keras")
    kmodel = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True), keras.layers.Dense(2)])
    kmodel.save(tmp_path / "m.h5")
    kmodel.save_weights(tmp_path / "m.weights.h5")
    info = describe(tmp_path / "m.h5")
    assert info["format"] == "keras-h5" and "full model" in info["summary"][0]
    assert [(layer["class"], layer.get("units")) for layer in info["layers"]] == [("InputLayer", None), ("GRU", 4), ("Dense", 2)]
    assert sorted(info["weights"].values()) == [[2], [2, 12], [3, 12], [4, 2], [4, 12]]  # GRU bias (2, 3H)
    info = describe(tmp_path / "m.weights.h5")
    assert info["layers"] == [] and "weights only" in info["summary"][0]
    with pytest.raises(ModelFileError, match="a weights-only file holds no architecture"):
        convert_file(tmp_path / "m.weights.h5", tmp_path / "x.safetensors")
    x = np.random.default_rng(4).standard_normal((2, 5, 3)).astype(np.float32)
    convert_file(tmp_path / "m.h5", tmp_path / "h5.safetensors")
    np.testing.assert_allclose(load_model(tmp_path / "h5.safetensors")[0].forward(x), kmodel.predict(x, verbose=0),
                               atol=ATOL)


def test_keras_unsupported_layer_option_is_named(tmp_path):
    keras = pytest.importorskip("keras")
    kmodel = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4, go_backwards=True)])
    kmodel.save(tmp_path / "back.keras")
    with pytest.raises(ConversionError, match=r"keras layer 'lstm.*': option go_backwards=True cannot convert"):
        convert_file(tmp_path / "back.keras", tmp_path / "x.safetensors")


# ---- errors --------------------------------------------------------------------------------


def test_state_dict_errors_name_the_module_and_both_shapes(files, tmp_path):
    d, _, _ = files
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(3, 4, 2), torch.nn.LSTM(4, 2)).state_dict(), tmp_path / "conv.pt")
    with pytest.raises(ConversionError, match=r"module '0' with parameters .*\(4, 3, 2\).* is not an nn.RNN/GRU/LSTM"):
        convert_file(tmp_path / "conv.pt", tmp_path / "x.safetensors")
    cases = [
        (["embedding", "lstm:hidden=8", "linear"], ShapeError, r"hidden=8, but the tensors of module 'lstm' give hidden=6"),
        (["embedding", "gru", "linear"], ConversionError, r"module 'lstm' holds an nn.LSTM .* not an nn.GRU"),
        (["lstm"], ConfigError, r"--arch was given 1 time\(s\) but the file holds 3 module\(s\) \('emb', 'lstm', 'fc'\)"),
        (["embedding", "lstm:cells=2", "linear"], ConfigError, r"unknown key 'cells' for lstm; expected \['input'"),
        (["embedding", "conv", "linear"], ConfigError, r"unknown kind 'conv'"),
    ]
    for arch, error, match in cases:
        with pytest.raises(error, match=match):
            convert_file(d / "net.pt", tmp_path / "x.safetensors", arch=arch)


def test_pickled_modules_are_never_unpickled(tmp_path):
    torch.save(torch.nn.GRU(2, 2), tmp_path / "module.pt")  # a whole module, not a state_dict
    with pytest.raises(ModelFileError, match="module.pt: not a weights-only PyTorch state_dict file"):
        convert_file(tmp_path / "module.pt", tmp_path / "x.safetensors")


def test_bad_file_types_and_options(files, tmp_path):
    d, _, _ = files
    with pytest.raises(ConfigError, match=r"cannot write '.*x.txt': unknown extension '.txt'; expected .safetensors"):
        convert_file(d / "net.pt", tmp_path / "x.txt")
    with pytest.raises(ConfigError, match="is already an rnnkit model file"):
        convert_file(d / "model.safetensors", tmp_path / "copy.safetensors")
    with pytest.raises(ConfigError, match=r"--arch applies to state_dicts .*model.onnx' \(ONNX model\) stores its own architecture"):
        convert_file(d / "model.onnx", tmp_path / "x.safetensors", arch=["gru"])
    with pytest.raises(ConfigError, match="--opset applies to .onnx output only"):
        convert_file(d / "model.safetensors", tmp_path / "x.pt", opset=17)
    with pytest.raises(FileNotFoundError):
        convert_file(tmp_path / "missing.pt", tmp_path / "x.safetensors")


def test_tf1_checkpoint_is_described_and_converted(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from rnnkit.convert import to_tf1_lstm
    from rnnkit.layers.recurrent import LSTM

    lstm = LSTM(3, 4, forget_bias=1.0, seed=0)
    for p in lstm.params.values():
        p[...] = np.random.default_rng(8).uniform(-0.5, 0.5, p.shape)
    variables, _ = to_tf1_lstm(lstm)
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "model.ckpt"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    info = describe(tmp_path / "model.ckpt.index")
    assert info["variables"] == {"rnn/lstm_cell/bias": [16], "rnn/lstm_cell/kernel": [7, 16]}
    assert info["lstm_scopes"] == ["rnn/lstm_cell"]
    result = convert_file(tmp_path / "model.ckpt", tmp_path / "lstm.safetensors")
    assert "forget_bias; TF's default 1.0 assumed" in result.notes[0]
    x = np.random.default_rng(9).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(load_model(tmp_path / "lstm.safetensors")[0].forward(x), lstm.forward(x), atol=ATOL)
    convert_file(tmp_path / "model.ckpt", tmp_path / "fb0.safetensors", arch=["lstm:forget_bias=0"])
    assert load_model(tmp_path / "fb0.safetensors")[0].layers[0].get_config()["forget_bias"] == 0
    with pytest.raises(ConfigError, match=r"--arch 'lstm:hidden=4': a TF1 LSTMCell takes only 'lstm:forget_bias="):
        convert_file(tmp_path / "model.ckpt", tmp_path / "x.safetensors", arch=["lstm:hidden=4"])


def test_importing_rnnkit_convert_imports_no_framework():
    code = ("import sys, rnnkit.convert; print(sorted(m for m in ('torch', 'keras', 'onnx', 'onnxruntime', "
            "'tensorflow', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
