"""rnnkit <-> ONNX, checked against onnxruntime, ONNX's own node tests and PyTorch.

onnxruntime is the oracle for exported graphs (it honours ``sequence_lens``, unlike the ONNX reference
evaluator, see docs/interop.md); ONNX's 18 recurrent node tests (expected outputs computed by ONNX's
NumPy reference implementations) check the importer, including ``layout=1`` which onnxruntime rejects.
Every parameter is random (weights and biases). Tolerance: float32, atol 1e-5.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnkit.convert.onnx import from_onnx, run_onnx_node, to_onnx  # noqa: E402
from rnnkit.errors import ConfigError, ConversionError, ModelFileError  # noqa: E402
from rnnkit.layers.dense import Dense  # noqa: E402
from rnnkit.layers.embedding import Embedding  # noqa: E402
from rnnkit.layers.pooling import LastStep  # noqa: E402
from rnnkit.layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from rnnkit.models import Sequential  # noqa: E402

ATOL = 1e-5
D = 3
# Shapes the models are run at: none is special to the export (batch and time are dynamic).
RUNS = [(4, 7, np.array([7, 4, 1, 6], np.int32)), (2, 3, np.array([3, 2], np.int32)), (5, 2, None)]


def randomize(model, seed: int):
    """Every parameter (weights, biases, peepholes) uniform in [-0.6, 0.6]."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.uniform(-0.6, 0.6, p.shape)
    return model


def run_ort(proto, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {"x": x}
    if "lengths" in [i.name for i in session.get_inputs()]:
        feeds["lengths"] = np.full(x.shape[0], x.shape[1], np.int32) if lengths is None else lengths
    return session.run(["y"], feeds)[0]


def features(B: int, T: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, T, D)).astype(np.float32)


LAYERS = {
    "rnn-tanh": lambda: RNN(D, 4),
    "rnn-relu-bi": lambda: RNN(D, 4, activation="relu", bidirectional=True),
    "rnn-sigmoid": lambda: RNN(D, 4, activation="sigmoid"),
    "rnn-linear-last": lambda: RNN(D, 4, activation="linear", return_sequences=False),
    "gru-reset-after": lambda: GRU(D, 5),
    "gru-reset-before-bi": lambda: GRU(D, 5, reset_after=False, bidirectional=True),
    "lstm": lambda: LSTM(D, 4),
    "lstm-peepholes-forget-bias": lambda: LSTM(D, 4, peepholes=True, forget_bias=1.0),
    "lstm-2layer-bi-last": lambda: LSTM(D, 4, num_layers=2, bidirectional=True, return_sequences=False),
    "gru-3layer-bi": lambda: GRU(D, 3, num_layers=3, bidirectional=True, reset_after=False),
}


@pytest.mark.parametrize("case", sorted(LAYERS))
def test_exported_layer_runs_in_onnxruntime_like_rnnkit(case, tmp_path):
    layer = randomize(LAYERS[case](), seed=len(case))
    proto = to_onnx(layer, tmp_path / "m.onnx")
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node  # the file was written
    for B, T, lengths in RUNS:
        x = features(B, T)
        expected = layer.forward(x, lengths=lengths)
        np.testing.assert_allclose(run_ort(proto, x, lengths), expected, atol=ATOL)


def text_model() -> Sequential:
    return randomize(Sequential([
        Embedding(11, 4),
        GRU(4, 5, num_layers=2, bidirectional=True, return_sequences=False),
        Dense(10, 3, activation="softmax"),
    ]), seed=7)


def test_embedding_gru_stack_dense_model_matches_onnxruntime_and_round_trips():
    model = text_model()
    proto = to_onnx(model, None)
    rng = np.random.default_rng(3)
    for B, T, lengths in RUNS:
        ids = rng.integers(0, 11, (B, T))
        expected = model.forward(ids, lengths=lengths)
        np.testing.assert_allclose(run_ort(proto, ids, lengths), expected, atol=ATOL)
        back = from_onnx(proto)
        np.testing.assert_allclose(back.forward(ids, lengths=lengths), expected, atol=ATOL)
    assert back.get_config()["layers"] == model.get_config()["layers"]  # the GRU stack is one layer again


@pytest.mark.parametrize("case", ["lstm-2layer-bi-last", "gru-3layer-bi", "rnn-linear-last",
                                  "lstm-peepholes-forget-bias"])
def test_round_trip_rnnkit_onnx_rnnkit(case, tmp_path):
    layer = randomize(LAYERS[case](), seed=11)
    to_onnx(layer, tmp_path / "m.onnx", lengths=False)
    back = from_onnx(tmp_path / "m.onnx")
    x = features(3, 6)
    # forget_bias was folded into the f bias: same function, rnnkit default forget_bias=0 after import
    np.testing.assert_allclose(back.forward(x), layer.forward(x), atol=ATOL)
    config = {k: v for k, v in layer.get_config().items() if k != "forget_bias"}
    assert {k: v for k, v in back.get_config().items() if k != "forget_bias"} == config


SUM_LAYERS = {  # bidirectional merge_mode="sum": exported as ReduceSum over the direction axis
    "rnn-bi-sum": lambda: RNN(D, 4, activation="relu", bidirectional=True, merge_mode="sum"),
    "rnn-2layer-bi-sum-last": lambda: RNN(D, 4, num_layers=2, bidirectional=True, merge_mode="sum",
                                          return_sequences=False),
    "gru-bi-sum-last": lambda: GRU(D, 5, reset_after=False, bidirectional=True, merge_mode="sum",
                                   return_sequences=False),
    "gru-2layer-bi-sum": lambda: GRU(D, 5, num_layers=2, bidirectional=True, merge_mode="sum"),
    "lstm-bi-sum": lambda: LSTM(D, 4, bidirectional=True, merge_mode="sum"),
    "lstm-2layer-bi-sum-last": lambda: LSTM(D, 4, num_layers=2, bidirectional=True, merge_mode="sum",
                                            peepholes=True, return_sequences=False),
}


def assert_round_trip(model, proto, inputs):
    """from_onnx(proto) has model's config, and model, the import and onnxruntime agree on every run."""
    back = from_onnx(proto)
    assert back.get_config() == model.get_config()
    for x, lengths in inputs:
        expected = model.forward(x, lengths=lengths)
        np.testing.assert_allclose(run_ort(proto, x, lengths), expected, atol=ATOL)
        np.testing.assert_allclose(back.forward(x, lengths=lengths), expected, atol=ATOL)


@pytest.mark.parametrize("case", sorted(SUM_LAYERS))
def test_sum_merge_round_trips_through_reduce_sum(case):
    layer = randomize(SUM_LAYERS[case](), seed=len(case) + 20)
    proto = to_onnx(layer, None)
    # one per layer: each layer's Y, but the last one's Y_h without return_sequences
    assert [n.op_type for n in proto.graph.node].count("ReduceSum") == layer.num_layers
    assert_round_trip(layer, proto, [(features(B, T), lengths) for B, T, lengths in RUNS])


@pytest.mark.parametrize("return_sequences", [False, True])
def test_embedding_gru_sum_dense_model_round_trips(return_sequences):
    model = randomize(Sequential([Embedding(11, 4), GRU(4, 5, num_layers=2, bidirectional=True, merge_mode="sum",
                                                        return_sequences=return_sequences), Dense(5, 3, "softmax")]), 13)
    proto = to_onnx(model, None)
    assert [n.op_type for n in proto.graph.node].count("ReduceSum") == 2  # layer 0's Y, layer 1's Y or Y_h
    assert proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value == 3
    rng = np.random.default_rng(14)
    assert_round_trip(model, proto, [(rng.integers(0, 11, (B, T)), lengths) for B, T, lengths in RUNS])


def sum_model_reduce_sum(opset: int = 17):
    """A bidirectional sum RNN, its export, and that graph's ReduceSum (of Y (T, d, B, H), axes=[1], keepdims=0)."""
    layer = randomize(RNN(D, 4, bidirectional=True, merge_mode="sum"), seed=15)
    proto = to_onnx(layer, None, opset=max(opset, 14))
    proto.opset_import[0].version = opset
    node, = [n for n in proto.graph.node if n.op_type == "ReduceSum"]
    return layer, proto, node


def set_reduce_sum_axes(proto, node, axes):
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array(axes, np.int64), "other_axes"))
    node.input[1] = "other_axes"


@pytest.mark.parametrize("form", ["negative-axis", "axes-attribute-opset-12"])
def test_equivalent_reduce_sum_forms_import(form):
    layer, proto, node = sum_model_reduce_sum(opset=12 if form.endswith("12") else 17)
    if form == "negative-axis":
        set_reduce_sum_axes(proto, node, [-3])
    else:  # before opset 13, axes is an attribute
        del node.input[1]
        node.attribute.append(onnx.helper.make_attribute("axes", [1]))
    onnx.checker.check_model(proto)
    assert_round_trip(layer, proto, [(features(4, 7), RUNS[0][2])])


@pytest.mark.parametrize("axes, keepdims, match", [
    ([3], 0, r"keepdims=0 and axes \[3\] of input axes \('T', 'd', 'B', 'H'\)"),  # over the units
    ([0, 1], 0, r"axes \[0, 1\]"),  # over time and directions
    ([1], 1, r"keepdims=1 and axes \[1\]"),  # the direction axis kept
], ids=["units-axis", "time-and-direction-axes", "keepdims-1"])
def test_other_reduce_sums_raise(axes, keepdims, match):
    _, proto, node = sum_model_reduce_sum()
    set_reduce_sum_axes(proto, node, axes)
    del node.attribute[:]
    node.attribute.append(onnx.helper.make_attribute("keepdims", keepdims))
    with pytest.raises(ConversionError, match=r"ReduceSum node 'ReduceSum_2': only a ReduceSum over the direction "
                                              r"axis with keepdims=0 .*" + match):
        from_onnx(proto)


def test_dense_time_distributed_and_sigmoid_tanh_relu(tmp_path):
    model = randomize(Sequential([LSTM(D, 4), Dense(4, 6, "tanh"), Dense(6, 5, "relu"), Dense(5, 2, "sigmoid")]), 5)
    proto = to_onnx(model, tmp_path / "m.onnx")
    x, lengths = features(4, 7), RUNS[0][2]
    np.testing.assert_allclose(run_ort(proto, x, lengths), model.forward(x, lengths=lengths), atol=ATOL)
    back = from_onnx(proto)
    np.testing.assert_allclose(back.forward(x, lengths=lengths), model.forward(x, lengths=lengths), atol=ATOL)


# ---- ONNX's own node tests -------------------------------------------------------------------------


def recurrent_node_tests():
    """The 18 recurrent cases of ``onnx.backend.test.case.node`` (model, inputs, expected outputs).

    ``collect_testcases()`` imports ~200 generator modules (~20 s here); importing the three that hold
    the recurrent operators registers exactly their cases (each module's ``expect()`` calls append them).
    """
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    for module in ("gru", "lstm", "rnn"):
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    recurrent = [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type in ("RNN", "GRU", "LSTM")]
    return {case.name: case for case in recurrent}


NODE_TESTS = [
    *(f"test_gru_{s}" for s in ("defaults", "with_initial_bias", "seq_length", "batchwise", "reverse", "bidirectional")),
    *(f"test_lstm_{s}" for s in ("defaults", "with_initial_bias", "with_peepholes", "batchwise", "reverse", "bidirectional")),
    *(f"test_simple_rnn_{s}" for s in ("defaults", "with_initial_bias", "batchwise", "reverse", "bidirectional")),
    "test_rnn_seq_length",
]


@pytest.fixture(scope="module")
def node_tests():
    return recurrent_node_tests()


def test_the_node_test_list_is_complete(node_tests):
    assert sorted(node_tests) == sorted(NODE_TESTS)


@pytest.mark.parametrize("name", NODE_TESTS)
def test_onnx_node_test_passes_through_rnnkit(node_tests, name):
    case = node_tests[name]
    node, graph = case.model.graph.node[0], case.model.graph
    (inputs, expected), = case.data_sets
    outputs = run_onnx_node(node, dict(zip([i.name for i in graph.input], inputs)))
    assert len(outputs) == len(expected)
    for out, value in zip(graph.output, expected):
        np.testing.assert_allclose(outputs[out.name], value, atol=ATOL, err_msg=out.name)


SLOT_NAMES = {"RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
              "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
              "LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")}


def random_node_inputs(op: str, direction: str, seed: int):
    """Random W, R, B (and P), initial states, X (T=5, B=3, D) and sequence_lens for one node, layout 0."""
    rng = np.random.default_rng(seed)
    dirs, G, Hn = 2 if direction == "bidirectional" else 1, {"RNN": 1, "GRU": 3, "LSTM": 4}[op], 4
    shapes = {"X": (5, 3, D), "W": (dirs, G * Hn, D), "R": (dirs, G * Hn, Hn), "B": (dirs, 2 * G * Hn),
              "initial_h": (dirs, 3, Hn)}
    if op == "LSTM":
        shapes.update(initial_c=(dirs, 3, Hn), P=(dirs, 3 * Hn))
    inputs = {k: rng.uniform(-1, 1, shape).astype(np.float32) for k, shape in shapes.items()}
    inputs["sequence_lens"] = np.array([5, 2, 4], np.int32)
    return inputs


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_run_onnx_node_matches_onnxruntime_with_lengths_and_states_in_both_layouts(op, direction):
    inputs = random_node_inputs(op, direction, seed=len(op + direction))
    names = list(SLOT_NAMES[op])
    attrs = {"direction": direction, "hidden_size": 4}
    if op == "GRU":
        attrs["linear_before_reset"] = 0
    if op == "RNN":
        attrs["activations"] = ["Relu"] * (2 if direction == "bidirectional" else 1)
    outputs = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    h = onnx.helper
    node = h.make_node(op, names, outputs, **attrs)
    graph_inputs = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(inputs[n].dtype), None) for n in names]
    graph = h.make_graph([node], "g", graph_inputs, [h.make_tensor_value_info(o, 1, None) for o in outputs])
    session = ort.InferenceSession(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    expected = dict(zip(outputs, session.run(outputs, inputs)))
    got = run_onnx_node(node, inputs)
    for name in outputs:
        np.testing.assert_allclose(got[name], expected[name], atol=ATOL, err_msg=name)
    # layout=1 (batch-first; onnxruntime rejects it): the same numbers, transposed
    batchwise = h.make_node(op, names, outputs, layout=1, **attrs)
    moved = {k: v.transpose(1, 0, 2) if k in ("X", "initial_h", "initial_c") else v for k, v in inputs.items()}
    got = run_onnx_node(batchwise, moved)
    np.testing.assert_allclose(got["Y"], expected["Y"].transpose(2, 0, 1, 3), atol=ATOL)
    for name in outputs[1:]:
        np.testing.assert_allclose(got[name], expected[name].transpose(1, 0, 2), atol=ATOL)


@pytest.mark.slow
def test_collect_testcases_holds_no_other_recurrent_test():
    from onnx.backend.test.case.node import collect_testcases

    names = {c.name for c in collect_testcases() if c.model.graph.node[0].op_type in ("RNN", "GRU", "LSTM")}
    assert names == set(NODE_TESTS)


# ---- torch.onnx.export(dynamo=False) -------------------------------------------------------------


def torch_export(module, example, path, dynamic_axes):
    torch = pytest.importorskip("torch")
    with pytest.warns(Warning):  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(module, example, str(path), dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes=dynamic_axes)
    return torch


def torch_randomize(module, seed):
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
    return module.eval()


@pytest.mark.parametrize("kind", ["lstm-2layer-bi-batch-first", "gru-time-major"])
def test_torch_onnx_export_of_lstm_and_gru_imports(kind, tmp_path):
    torch = pytest.importorskip("torch")
    if kind.startswith("lstm"):
        module = torch_randomize(torch.nn.LSTM(D, 4, num_layers=2, bidirectional=True, batch_first=True), 1)
        example, axes = torch.randn(2, 5, D), {"x": {0: "B", 1: "T"}, "y": {0: "B", 1: "T"}}
    else:
        module = torch_randomize(torch.nn.GRU(D, 5), 2)
        example, axes = torch.randn(5, 2, D), {"x": {0: "T", 1: "B"}, "y": {0: "T", 1: "B"}}
    torch_export(module, (example,), tmp_path / "m.onnx", axes)
    layer = from_onnx(tmp_path / "m.onnx")
    assert (layer.num_layers, layer.bidirectional) == (module.num_layers, module.bidirectional)
    x = features(3, 8)  # other batch and time than at export
    with torch.no_grad():
        if module.batch_first:
            expected = module(torch.from_numpy(x))[0].numpy()
        else:  # time-major torch module: rnnkit takes x (B, T, D) = its input transposed
            expected = module(torch.from_numpy(x.transpose(1, 0, 2)))[0].numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(layer.forward(x), expected, atol=ATOL)


def test_torch_onnx_export_of_embedding_gru_linear_head_imports(tmp_path):
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.fc = torch.nn.Embedding(10, 3), torch.nn.Linear(4, 2)
            self.gru = torch.nn.GRU(3, 4, batch_first=True)

        def forward(self, x):
            _, h = self.gru(self.emb(x))
            return torch.sigmoid(self.fc(h[-1]))

    net = torch_randomize(Net(), 3)
    torch_export(net, (torch.randint(0, 10, (2, 5)),), tmp_path / "m.onnx", {"x": {0: "B", 1: "T"}})
    model = from_onnx(tmp_path / "m.onnx")
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "GRU", "Dense"]
    ids = np.random.default_rng(0).integers(0, 10, (4, 9))
    with torch.no_grad():
        expected = net(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(model.forward(ids), expected, atol=ATOL)


# ---- errors ------------------------------------------------------------------------------------


def single_node_model(op: str, **attrs):
    """A one-node graph (forward, H=2, D=3) with random W/R/B, for importer error checks."""
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    rng = np.random.default_rng(0)
    h = onnx.helper
    weights = {"W": rng.standard_normal((1, G * 2, 3)), "R": rng.standard_normal((1, G * 2, 2)),
               "B": rng.standard_normal((1, 4 * G))}
    inits = [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    node = h.make_node(op, ["xt", "W", "R", "B"], ["Y", "Y_h"], hidden_size=2, **attrs)
    transpose = h.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])
    squeeze = h.make_node("Squeeze", ["Y", "axes"], ["ys"])
    back = h.make_node("Transpose", ["ys"], ["y"], perm=[1, 0, 2])
    inits.append(onnx.numpy_helper.from_array(np.array([1]), "axes"))
    graph = h.make_graph([transpose, node, squeeze, back], "g", [h.make_tensor_value_info("x", 1, ["B", "T", 3])],
                         [h.make_tensor_value_info("y", 1, None)], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_single_node_model_imports():
    model = single_node_model("GRU", linear_before_reset=0)
    layer = from_onnx(model)
    x = features(2, 4)
    np.testing.assert_allclose(layer.forward(x), run_ort(model, x, None), atol=ATOL)


@pytest.mark.parametrize("op, attrs, match", [
    ("LSTM", {"clip": 3.0}, r"LSTM node .*clip=3.0 clips gate pre-activations"),
    ("LSTM", {"input_forget": 1}, r"input_forget=1"),
    ("LSTM", {"activations": ["HardSigmoid", "Tanh", "Tanh"]}, r"activations=.*HardSigmoid.*differs from the default"),
    ("GRU", {"activations": ["Sigmoid", "Relu"]}, r"GRU node .*activations="),
    ("RNN", {"activations": ["LeakyRelu"]}, r"RNN node .*LeakyRelu.* Tanh, Relu, Sigmoid or Affine"),
    ("RNN", {"activations": ["Affine"], "activation_alpha": [2.0], "activation_beta": [0.0]}, r"Affine\(alpha=1"),
    ("GRU", {"direction": "reverse"}, r"direction='reverse' alone has no rnnkit layer"),
])
def test_unsupported_node_attributes_raise(op, attrs, match):
    with pytest.raises(ConversionError, match=match):
        from_onnx(single_node_model(op, **attrs))


def test_nonzero_initial_state_and_unknown_operator_raise():
    model = single_node_model("RNN")
    node = model.graph.node[1]
    node.input.extend(["", "h0"])
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 1, 2), np.float32), "h0"))
    with pytest.raises(ConversionError, match="initial_h must be zeros"):
        from_onnx(model)
    model = single_node_model("RNN")
    model.graph.node[3].op_type = "Neg"
    with pytest.raises(ConversionError, match="Neg node .* no rnnkit counterpart"):
        from_onnx(model)


@pytest.mark.parametrize("layer, match", [
    (LSTM(D, 4, cell_clip=1.0), r"cell_clip=1.0 clips the cell state, but the ONNX LSTM's clip"),
    (LSTM(D, 4, proj_size=2), r"proj_size=2: the ONNX LSTM has no output projection"),
    (Sequential([GRU(D, 4), LastStep()]), r"LastStep.* has no ONNX export"),
])
def test_unexportable_layers_raise(layer, match):
    with pytest.raises(ConversionError, match=match):
        to_onnx(layer, None)


def test_a_file_that_is_not_onnx_is_a_model_file_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ModelFileError, match="bad.onnx: not an ONNX model"):
        from_onnx(tmp_path / "bad.onnx")


def test_bad_opset_and_argument_raise():
    with pytest.raises(ConfigError, match="opset must be an integer >= 14"):
        to_onnx(GRU(D, 2), None, opset=12)
    with pytest.raises(ConversionError, match="takes an rnnkit Sequential or layer, got dict"):
        to_onnx({}, None)
