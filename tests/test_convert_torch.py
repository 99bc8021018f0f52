"""rnnkit <-> PyTorch converters, checked against PyTorch itself on random weights and biases.

Every comparison runs torch on packed variable-length batches (``pack_padded_sequence``), so the
padding, the final states and the reverse direction's per-sequence start are all exercised.
Tolerances are float32's: outputs/states atol 1e-5, gradients rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.convert.torch import from_torch, load_state_dict_file, to_torch, torch_names  # noqa: E402
from rnnkit.errors import ConversionError, ModelFileError, ShapeError  # noqa: E402
from rnnkit.layers.dense import Dense  # noqa: E402
from rnnkit.layers.embedding import Embedding  # noqa: E402
from rnnkit.layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from rnnkit.losses import mse  # noqa: E402
from rnnkit.models import Sequential  # noqa: E402
from rnnkit.optim import Adam  # noqa: E402

ATOL = 1e-5
LENGTHS = np.array([7, 4, 1, 6])  # B = 4, T = 7: full, middle, single step, almost full
B, T, D = 4, 7, 3


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter (weights and biases) uniform in [-0.5, 0.5] from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) - 0.5)
    return module


def run_torch_rnn(module: torch.nn.RNNBase, x: np.ndarray, lengths: np.ndarray):
    """Packed torch run -> (padded output (B, T, F) as a leaf-connected tensor, state tuple of tensors)."""
    xt = torch.from_numpy(x)
    if not module.batch_first:
        xt = xt.transpose(0, 1)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=module.batch_first,
                                                     enforce_sorted=False)
    out, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state if isinstance(state, tuple) else (state,)


CASES = {
    "rnn-tanh": lambda: torch.nn.RNN(D, 5, batch_first=True),
    "rnn-relu-2layer-bi": lambda: torch.nn.RNN(D, 5, num_layers=2, nonlinearity="relu", bidirectional=True, batch_first=True),
    "gru-2layer-bi": lambda: torch.nn.GRU(D, 5, num_layers=2, bidirectional=True, batch_first=True),
    "gru-time-major": lambda: torch.nn.GRU(D, 4),
    "lstm": lambda: torch.nn.LSTM(D, 5, batch_first=True),
    "lstm-proj-2layer-bi": lambda: torch.nn.LSTM(D, 5, num_layers=2, proj_size=3, bidirectional=True, batch_first=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_from_torch_outputs_states_and_gradients_match(case):
    module = randomize(CASES[case](), seed=1)
    layer = from_torch(module)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, D)).astype(np.float32)  # rnnkit is batch-first whatever batch_first says

    out_t, state_t = run_torch_rnn(module, x, LENGTHS)
    out = layer.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=ATOL)
    state = layer.state if isinstance(layer.state, tuple) else (layer.state,)
    for s, s_t in zip(state, state_t):
        np.testing.assert_allclose(s, s_t.detach().numpy(), atol=ATOL)

    # Gradients: L = sum(out * w_out) + sum(h_n * w_h) (+ c_n): torch autograd vs rnnkit BPTT.
    w_out = rng.standard_normal(out.shape).astype(np.float32)
    w_state = [rng.standard_normal(s.shape).astype(np.float32) for s in state]
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t, state_t = run_torch_rnn(module, xt.detach().numpy(), LENGTHS)  # fresh graph for the parameters
    loss = (out_t * torch.from_numpy(w_out)).sum() + sum((s * torch.from_numpy(w)).sum() for s, w in zip(state_t, w_state))
    module.zero_grad()
    loss.backward()
    layer.backward(w_out, w_state[0] if len(w_state) == 1 else tuple(w_state))
    torch_grads = dict(module.named_parameters())
    for name, torch_name in torch_names(layer).items():
        np.testing.assert_allclose(layer.grads[name], torch_grads[torch_name].grad.numpy(), rtol=1e-4, atol=ATOL,
                                   err_msg=name)


def test_input_gradient_matches_torch():
    module = randomize(torch.nn.GRU(D, 5, num_layers=2, bidirectional=True, batch_first=True), seed=3)
    layer = from_torch(module)
    x = np.random.default_rng(4).standard_normal((B, T, D)).astype(np.float32)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False)
    out_t, _ = module(packed)
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_t, batch_first=True, total_length=T)
    w = np.random.default_rng(5).standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.from_numpy(w)).sum().backward()
    layer.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(layer.backward(w), xt.grad.numpy(), atol=ATOL)


@pytest.mark.parametrize(
    "layer",
    [
        RNN(D, 4, num_layers=2, activation="relu", bidirectional=True, seed=6),
        GRU(D, 4, num_layers=3, dropout=0.25, seed=7),
        LSTM(D, 5, proj_size=2, bidirectional=True, seed=8),
    ],
    ids=["rnn", "gru", "lstm"],
)
def test_to_torch_matches_rnnkit_and_round_trips(layer):
    x = np.random.default_rng(9).standard_normal((B, T, D)).astype(np.float32)
    module = to_torch(layer).eval()
    assert module.batch_first and module.dropout == layer.dropout
    out_t, state_t = run_torch_rnn(module, x, LENGTHS)
    out = layer.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=ATOL)
    state = layer.state if isinstance(layer.state, tuple) else (layer.state,)
    for s, s_t in zip(state, state_t):
        np.testing.assert_allclose(s, s_t.detach().numpy(), atol=ATOL)
    back = from_torch(module)
    assert back.get_config() == layer.get_config()
    for name, value in layer.params.items():
        np.testing.assert_array_equal(back.params[name], value)


def test_to_torch_time_major():
    layer = LSTM(D, 4, seed=10)
    module = to_torch(layer, batch_first=False)
    x = np.random.default_rng(11).standard_normal((B, T, D)).astype(np.float32)
    out_t, _ = module(torch.from_numpy(x.transpose(1, 0, 2).copy()))
    np.testing.assert_allclose(layer.forward(x), out_t.detach().numpy().transpose(1, 0, 2), atol=ATOL)


def gru_classifier(vocab: int = 20) -> Sequential:
    """The seed sentiment model: Embedding(V, 8) -> GRU(16) -> GRU(8) -> GRU(4, last) -> Dense(1, sigmoid)."""
    return Sequential([
        Embedding(vocab, 8, padding_idx=0, seed=12),
        GRU(8, 16, seed=13),
        GRU(16, 8, seed=14),
        GRU(8, 4, return_sequences=False, seed=15),
        Dense(4, 1, "sigmoid", seed=16),
    ])


def padded_ids(rng: np.random.Generator, vocab: int = 20) -> np.ndarray:
    ids = rng.integers(1, vocab, (B, T))
    ids[np.arange(T) >= LENGTHS[:, None]] = 0
    return ids


def test_sequential_gru_classifier_round_trip():
    model = gru_classifier()
    ids = padded_ids(np.random.default_rng(17))
    module = to_torch(model).eval()
    with torch.no_grad():
        y_t = module(torch.from_numpy(ids), torch.from_numpy(LENGTHS)).numpy()
    y = model.forward(ids, lengths=LENGTHS)
    np.testing.assert_allclose(y, y_t, atol=ATOL)
    back = from_torch(module)
    assert back.get_config()["layers"] == model.get_config()["layers"]
    np.testing.assert_allclose(back.forward(ids, lengths=LENGTHS), y, atol=0)


def sine_batch(rng: np.random.Generator, n: int = 8, time: int = 10):
    """Windows of a noisy sine and the next value: x (n, time, 1), y (n, 1)."""
    start = rng.uniform(0, 2 * np.pi, (n, 1))
    t = start + 0.3 * np.arange(time + 1)
    wave = np.sin(t).astype(np.float32)
    return wave[:, :time, None], wave[:, time:]


def test_rnnkit_trained_sine_lstm_keeps_predictions_in_torch():
    model = Sequential([LSTM(1, 128, return_sequences=False, seed=18), Dense(128, 1, seed=19)])
    rng = np.random.default_rng(20)
    x, y = sine_batch(rng)
    before = {k: v.copy() for k, v in model.params.items()}
    opt = Adam(model.params, lr=1e-2)
    for _ in range(3):
        _, dpred = mse(model.forward(x, training=True), y)
        model.backward(dpred)
        opt.step(model.grads)
    assert any(not np.array_equal(before[k], v) for k, v in model.params.items())
    lengths = np.array([10, 7, 3, 10, 1, 5, 9, 2])
    with torch.no_grad():
        y_t = to_torch(model).eval()(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(model.forward(x, lengths=lengths), y_t, atol=ATOL)


class TorchNet(torch.nn.Module):
    """A typical hand-written torch classifier: packed LSTM, head on h_n[-1]."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(20, 6, padding_idx=0)
        self.lstm = torch.nn.LSTM(6, 8, batch_first=True)
        self.fc = torch.nn.Linear(8, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])


def trained_torch_net() -> TorchNet:
    torch.manual_seed(21)
    net = TorchNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    ids = torch.from_numpy(padded_ids(np.random.default_rng(22)))
    target = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(ids, torch.from_numpy(LENGTHS)), target).backward()
        opt.step()
    return net


def test_torch_trained_model_keeps_predictions_in_rnnkit(tmp_path):
    net = trained_torch_net()
    ids = padded_ids(np.random.default_rng(23))
    with torch.no_grad():
        y_t = net(torch.from_numpy(ids), torch.from_numpy(LENGTHS)).numpy()
    model = from_torch([net.emb, net.lstm, net.fc], return_sequences=False)
    assert model.layers[0].padding_idx == 0
    np.testing.assert_allclose(model.forward(ids, lengths=LENGTHS), y_t, atol=ATOL)

    # The same weights from a state_dict file, read with weights_only=True into a {prefix: layer} spec.
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    spec = {"emb": Embedding(20, 6, padding_idx=0), "lstm": LSTM(6, 8, return_sequences=False), "fc": Dense(8, 1)}
    loaded = load_state_dict_file(path, spec)
    np.testing.assert_allclose(loaded.forward(ids, lengths=LENGTHS), y_t, atol=ATOL)


def test_state_dict_file_of_to_torch_module_loads_into_sequential(tmp_path):
    source = gru_classifier()
    path = tmp_path / "model.pt"
    torch.save(to_torch(source).state_dict(), path)
    target = gru_classifier(vocab=20)
    for p in target.params.values():  # different weights, same architecture
        p *= 0.5
    load_state_dict_file(path, target)
    for name, value in source.params.items():
        np.testing.assert_array_equal(target.params[name], value)


def test_activation_module_folds_into_dense():
    linear = randomize(torch.nn.Linear(4, 3), seed=24)
    model = from_torch(torch.nn.Sequential(linear, torch.nn.Softmax(dim=-1)))
    x = np.random.default_rng(25).standard_normal((2, 5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(linear(torch.from_numpy(x)), dim=-1).numpy()
    assert model.layers[0].activation == "softmax"
    np.testing.assert_allclose(model.forward(x), expected, atol=ATOL)


# ---- errors ------------------------------------------------------------------------------


def test_unsupported_module_is_named():
    with pytest.raises(ConversionError, match=r"stack\[1\] Conv1d.*no rnnkit counterpart"):
        from_torch([torch.nn.Linear(3, 3), torch.nn.Conv1d(3, 3, 2)])


@pytest.mark.parametrize(
    "layer, option",
    [
        (LSTM(3, 4, peepholes=True), "peepholes"),
        (LSTM(3, 4, forget_bias=1.0), "forget_bias"),
        (LSTM(3, 4, cell_clip=3.0), "cell_clip"),
        (LSTM(3, 4, proj_size=2, proj_clip=1.0), "proj_clip"),
        (GRU(3, 4, reset_after=False), "reset_after"),
        (RNN(3, 4, activation="sigmoid"), "activation"),
        (GRU(3, 4, recurrent_dropout=0.2), "recurrent_dropout"),
        (GRU(3, 4, bidirectional=True, merge_mode="sum"), "merge_mode"),
    ],
)
def test_options_torch_lacks_raise(layer, option):
    with pytest.raises(ConversionError, match=rf"{type(layer).__name__}: option {option}=.* no PyTorch counterpart"):
        to_torch(layer)
    with pytest.raises(ConversionError, match=rf"layer 1 \({type(layer).__name__}\): option {option}="):
        to_torch(Sequential([Dense(3, 3), layer]))


def test_embedding_max_norm_raises():
    with pytest.raises(ConversionError, match="max_norm=1.0"):
        from_torch(torch.nn.Embedding(5, 3, max_norm=1.0))


def test_state_dict_shape_mismatch_names_both_shapes(tmp_path):
    path = tmp_path / "gru.pt"
    torch.save(torch.nn.GRU(3, 5, batch_first=True).state_dict(), path)
    with pytest.raises(ShapeError, match=r"'l0.W_ih' has shape \(15, 3\), rnnkit expects \(12, 3\)"):
        load_state_dict_file(path, GRU(3, 4))


def test_state_dict_file_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "obj": ConversionError("not a tensor")}, path)
    with pytest.raises(ModelFileError, match="not a weights-only PyTorch state_dict"):
        load_state_dict_file(path, Dense(2, 1))


def test_state_dict_unexpected_keys(tmp_path):
    path = tmp_path / "extra.pt"
    torch.save({"fc.weight": torch.zeros(1, 2), "fc.bias": torch.zeros(1), "head.weight": torch.zeros(1)}, path)
    with pytest.raises(ConversionError, match=r"\['head.weight'\] belong to no layer"):
        load_state_dict_file(path, {"fc": Dense(2, 1)})
