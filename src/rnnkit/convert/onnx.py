"""Export rnnkit models to ONNX and import ONNX recurrent graphs (``import onnx`` happens on first use).

An ONNX recurrent node holds every direction of one layer: ``W (dirs, G*H, D)``, ``R (dirs, G*H, H)``,
``B (dirs, 2*G*H) = [Wb | Rb]`` and, for a peephole LSTM, ``P (dirs, 3H)``; gates LSTM ``i, o, f, c``,
GRU ``z, r, h`` (``layouts.LAYOUTS["onnx"]``). Per direction ``d`` of layer ``k``::

    W[d] = from_canonical(W_ih)   R[d] = from_canonical(W_hh)   B[d] = [from_canonical(b_ih) | from_canonical(b_hh)]
    P[d] = [w_ci | w_co | w_cf]   LSTM forget_bias is added to the f block of Wb (ONNX has no such option)
    GRU reset_after=True/False  <->  linear_before_reset=1/0 (both keep Rb_h apart, as rnnkit keeps b_hn)

:func:`to_onnx` writes one node per layer (``direction="bidirectional"`` for both directions), fed
time-major (``layout=0``, Transpose nodes at the batch-first edges), with ``sequence_lens`` from an
int32 graph input ``lengths (B,)``; batch and time are dynamic. ``Y (T, dirs, B, H)`` becomes the next
input through Transpose + Reshape (``[forward, reverse]`` concatenated, as rnnkit does);
``return_sequences=False`` returns ``Y_h`` the same way: both directions' final ``h``. Embedding is a
Gather, Dense a MatMul + Add (+ Sigmoid/Tanh/Relu/Softmax), Dropout nothing. Not exportable, with a
ConversionError: LSTM ``cell_clip`` (ONNX ``clip`` clips gate pre-activations, not the cell state) and
``proj_size`` (ONNX LSTM has no projection). onnxruntime runs the recurrent ops in float32 only.

:func:`from_onnx` follows the graph's data path, naming each tensor's axes (``B``, ``T``, ``F``
features, ``d`` directions, ``H`` units per direction) through Transpose/Squeeze/Reshape/Gather/Concat,
and turns RNN/GRU/LSTM nodes (``layout`` 0 or 1), Gather-on-ids, MatMul(+Add) and Gemm (+ activation)
into layers: what :func:`to_onnx` and ``torch.onnx.export(dynamo=False)`` emit. Consecutive recurrent
nodes of one kind merge into one ``num_layers`` layer. Initial states must be zeros (torch builds them
with Shape/ConstantOfShape); a time-major graph input imports too (feed rnnkit ``x.transpose(1, 0, 2)``).
:func:`run_onnx_node` runs one recurrent node on given inputs through an rnnkit layer (ONNX's node tests).
Attributes rnnkit cannot honour (``clip``, ``input_forget=1``, other activations) raise ConversionError.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConfigError, ConversionError, ModelFileError
from ..layers.base import Layer
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.recurrent import GRU, LSTM, RNN, Recurrent, reverse_index, reverse_sequences
from ..models import Sequential
from .layouts import CANONICAL_GATES, LAYOUTS, assign_params, biases_from, biases_to, from_canonical, to_canonical

Converted = Union[Layer, Sequential]
DEFAULT_OPSET = 17
ONNX_OP = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
FAMILY = {op: family for family, op in ONNX_OP.items()}
LAYER_CLASS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
SLOTS = {  # a recurrent node's inputs, in the operator's order
    "RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
}
RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "linear": "Affine"}  # Affine(1, 0) = identity
GATE_ACTIVATIONS = {"GRU": ("sigmoid", "tanh"), "LSTM": ("sigmoid", "tanh", "tanh")}  # the only ones rnnkit has
DENSE_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}
SHAPE_ONLY_OPS = ("Slice", "Expand", "Reshape", "Unsqueeze", "Squeeze", "Identity", "Cast", "Tile")  # zeros stay zeros


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX conversion needs the onnx package: pip install rnnkit[onnx]") from None
    return onnx


# ---- one recurrent node <-> one rnnkit layer ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _NodeSpec:
    """A recurrent node's attributes, checked and translated into rnnkit cell options."""

    op: str
    where: str
    direction: str
    layout: int
    hidden_size: int | None
    options: dict[str, Any]

    @property
    def dirs(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


def _where(node: Any) -> str:
    return f"ONNX {node.op_type} node {node.name or ','.join(o for o in node.output if o)!r}"


def _parse_node(node: Any) -> _NodeSpec:
    """Check a RNN/GRU/LSTM node's attributes; ConversionError names the node and attribute rnnkit cannot honour."""
    where, helper = _where(node), _onnx().helper
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: [a.decode() for a in v] if k == "activations" else v.decode() if isinstance(v, bytes) else v
             for k, v in attrs.items()}
    unknown = sorted(set(attrs) - {"hidden_size", "direction", "layout", "activations", "activation_alpha",
                                   "activation_beta", "clip", "input_forget", "linear_before_reset"})
    if unknown:
        raise ConversionError(f"{where}: unknown attribute(s) {unknown}")
    if "clip" in attrs:
        raise ConversionError(f"{where}: attribute clip={attrs['clip']} clips gate pre-activations; rnnkit has no "
                              "such option (LSTM cell_clip clips the cell state, a different function)")
    if attrs.get("input_forget", 0):
        raise ConversionError(f"{where}: attribute input_forget=1 (coupled input and forget gates) has no rnnkit "
                              "counterpart")
    direction, layout = attrs.get("direction", "forward"), attrs.get("layout", 0)
    if direction not in ("forward", "reverse", "bidirectional") or layout not in (0, 1):
        raise ConversionError(f"{where}: attribute direction={direction!r} / layout={layout} is not valid ONNX")
    dirs = 2 if direction == "bidirectional" else 1
    activations = [a.lower() for a in attrs.get("activations", [])]
    options: dict[str, Any] = {}
    if node.op_type == "RNN":
        activations = activations or ["tanh"] * dirs
        alpha, beta = attrs.get("activation_alpha", []), attrs.get("activation_beta", [])
        names = {onnx_name.lower(): ours for ours, onnx_name in RNN_ACTIVATIONS.items()}
        identity = activations[0] != "affine" or (alpha and beta and set(alpha) == {1.0} and set(beta) == {0.0})
        if len(set(activations)) != 1 or activations[0] not in names or not identity:
            raise ConversionError(f"{where}: attribute activations={attrs.get('activations')} (alpha {alpha}, beta "
                                  f"{beta}) is not one activation rnnkit has, the same for every direction: Tanh, "
                                  "Relu, Sigmoid or Affine(alpha=1, beta=0)")
        options["activation"] = names[activations[0]]
    else:
        if activations and activations != list(GATE_ACTIVATIONS[node.op_type]) * dirs:
            raise ConversionError(f"{where}: attribute activations={attrs['activations']} differs from the default "
                                  f"{[a.capitalize() for a in GATE_ACTIVATIONS[node.op_type]]}, the only one rnnkit has")
        if node.op_type == "GRU":
            options["reset_after"] = bool(attrs.get("linear_before_reset", 0))
    return _NodeSpec(node.op_type, where, direction, layout, attrs.get("hidden_size"), options)


def _recurrent_layer(spec: _NodeSpec, arrays: Mapping[str, np.ndarray], return_sequences: bool = True) -> Recurrent:
    """The rnnkit layer (1 layer, 1 or 2 directions) holding a node's W, R, B and P, gates reordered."""
    family = FAMILY[spec.op]
    W, R = np.asarray(arrays["W"]), np.asarray(arrays["R"])
    G = len(CANONICAL_GATES[family])
    H = W.shape[1] // G if W.ndim == 3 else 0
    if W.ndim != 3 or W.shape[0] != spec.dirs or W.shape[1] != G * H or R.shape != (spec.dirs, G * H, H):
        raise ConversionError(f"{spec.where}: W {W.shape} and R {R.shape} must be ({spec.dirs}, {G}*H, D) and "
                              f"({spec.dirs}, {G}*H, H) for direction={spec.direction!r}")
    if spec.hidden_size not in (None, H):
        raise ConversionError(f"{spec.where}: attribute hidden_size={spec.hidden_size} but W holds H={H}")
    if W.dtype not in (np.float32, np.float64):
        raise ConversionError(f"{spec.where}: weights are {W.dtype}; rnnkit computes in float32 or float64")
    options = dict(spec.options, peepholes=True) if "P" in arrays else spec.options
    layer = LAYER_CLASS[family](W.shape[2], H, bidirectional=spec.dirs == 2, return_sequences=return_sequences,
                                dtype=W.dtype, seed=0, **options)
    B = arrays.get("B", np.zeros((spec.dirs, 2 * G * H), W.dtype))
    params = {}
    for d, prefix in enumerate(layer.prefixes):
        b_ih, b_hh = biases_from("concat", B[d], G * H)
        for name, value in [("W_ih", W[d]), ("W_hh", R[d]), ("b_ih", b_ih), ("b_hh", b_hh)]:
            params[f"{prefix}.{name}"] = to_canonical(value, "onnx", family)
        if "P" in arrays:
            params.update(zip([f"{prefix}.{p}" for p in LAYOUTS["onnx"].peepholes], np.split(arrays["P"][d], 3)))
    assign_params(layer.params, params, spec.where)
    return layer


def _initial_state(spec: _NodeSpec, arrays: Mapping[str, np.ndarray], batch: int, H: int) -> Any:
    """initial_h (and initial_c) as rnnkit's stacked state ``(dirs, B, H)``: zeros if one is missing, None if both are."""
    names = ("initial_h", "initial_c") if spec.op == "LSTM" else ("initial_h",)
    if not any(name in arrays for name in names):
        return None
    zeros = np.zeros((spec.dirs, batch, H), arrays["X"].dtype)
    states = [(arrays[n].transpose(1, 0, 2) if spec.layout else arrays[n]) if n in arrays else zeros for n in names]
    return tuple(states) if spec.op == "LSTM" else states[0]


def run_onnx_node(node: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run one ONNX RNN/GRU/LSTM node through an rnnkit layer: ``{input name: array}`` -> ``{output name: array}``.

    Every ``layout`` and ``direction`` (a reverse-only node runs as a forward layer over sequences
    reversed within their ``sequence_lens``), with ``B``, ``P``, ``initial_h``/``initial_c``. Outputs
    follow ONNX: layout 0 ``Y (T, dirs, B, H)``, ``Y_h``/``Y_c (dirs, B, H)``; layout 1 ``Y (B, T, dirs, H)``,
    ``Y_h``/``Y_c (B, dirs, H)``. Lengths must lie in [1, T] (rnnkit has no empty sequences).
    """
    spec = _parse_node(node)
    arrays = {slot: np.asarray(inputs[name]) for slot, name in zip(SLOTS[node.op_type], node.input) if name}
    layer = _recurrent_layer(spec, arrays)
    seq = arrays["X"] if spec.layout == 0 else arrays["X"].transpose(1, 0, 2)  # time-major (T, B, D)
    (T, B, _), H, lengths = seq.shape, layer.hidden_size, arrays.get("sequence_lens")
    rev = reverse_index(lengths, T) if spec.direction == "reverse" else None
    if spec.direction == "reverse":
        seq = reverse_sequences(seq, rev)
    y = layer.forward(np.ascontiguousarray(seq.transpose(1, 0, 2)), state0=_initial_state(spec, arrays, B, H),
                      lengths=lengths).transpose(1, 0, 2)  # (T, B, dirs*H)
    if spec.direction == "reverse":
        y = reverse_sequences(y, rev)
    Y = y.reshape(T, B, spec.dirs, H).transpose(0, 2, 1, 3)  # (T, dirs, B, H)
    finals = list(layer.state) if spec.op == "LSTM" else [layer.state]  # each (dirs, B, H)
    if spec.layout:
        Y, finals = Y.transpose(2, 0, 1, 3), [f.transpose(1, 0, 2) for f in finals]
    return {name: value for name, value in zip(node.output, [Y, *finals]) if name}


# ---- export ----------------------------------------------------------------------------------


class _Graph:
    """The nodes and initializers of a graph being built, with fresh tensor names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}

    def const(self, name: str, array: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = _onnx().numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def add(self, op: str, inputs: list[str], outputs: int | list[str] = 1, **attrs: Any) -> Any:
        """Append a node; returns its output name, or the list of them (``outputs``: a count or the names)."""
        while inputs and not inputs[-1]:
            inputs = inputs[:-1]  # trailing optional inputs are left out
        names = outputs if isinstance(outputs, list) else [f"{op}_{len(self.nodes)}_{j}" for j in range(outputs)]
        self.nodes.append(_onnx().helper.make_node(op, inputs, names, name=f"{op}_{len(self.nodes)}", **attrs))
        return names[0] if len(names) == 1 else names


def _check_exportable(layer: Recurrent, where: str) -> None:
    config = layer.get_config()
    if config.get("proj_size"):
        raise ConversionError(f"{where}: proj_size={config['proj_size']}: the ONNX LSTM has no output projection; "
                              "rebuild the layer without proj_size to export")
    if config.get("cell_clip") is not None:
        raise ConversionError(f"{where}: cell_clip={config['cell_clip']} clips the cell state, but the ONNX LSTM's clip "
                              "attribute clips gate pre-activations (a different function); no faithful export exists")


def _node_weights(layer: Recurrent, k: int) -> dict[str, np.ndarray]:
    """W, R, B (and P) of layer k, every direction stacked on axis 0, in ONNX's gate order."""
    family, config, H = layer.cell, layer.get_config(), layer.hidden_size
    per_direction = []
    for prefix in layer.prefixes[k * layer.num_directions : (k + 1) * layer.num_directions]:
        p = {name.split(".")[1]: value for name, value in layer.params.items() if name.startswith(prefix + ".")}
        b_ih = p["b_ih"].copy()
        if family == "lstm":  # forget_bias folds into the f block of the input bias
            f = CANONICAL_GATES["lstm"].index("f")
            b_ih[f * H : (f + 1) * H] += config["forget_bias"]
        onnx_order = lambda a: from_canonical(a, "onnx", family)  # noqa: E731
        entry = {"W": onnx_order(p["W_ih"]), "R": onnx_order(p["W_hh"]),
                 "B": biases_to("concat", onnx_order(b_ih), onnx_order(p["b_hh"]))}
        if config.get("peepholes"):
            entry["P"] = np.concatenate([p[name] for name in LAYOUTS["onnx"].peepholes])
        per_direction.append(entry)
    return {slot: np.stack([e[slot] for e in per_direction]) for slot in per_direction[0]}


def _export_recurrent(g: _Graph, layer: Recurrent, x: str, lengths: str, name: str) -> str:
    """x time-major (T, B, D) -> time-major (T, B, dirs*H), or (B, dirs*H) without return_sequences."""
    dirs, op = layer.num_directions, ONNX_OP[layer.cell]
    attrs: dict[str, Any] = {"hidden_size": layer.hidden_size, "direction": "bidirectional" if dirs == 2 else "forward"}
    if layer.cell == "rnn":
        activation = RNN_ACTIVATIONS[layer.get_config()["activation"]]
        attrs["activations"] = [activation] * dirs
        if activation == "Affine":
            attrs.update(activation_alpha=[1.0] * dirs, activation_beta=[0.0] * dirs)
    if layer.cell == "gru":
        attrs["linear_before_reset"] = int(layer.get_config()["reset_after"])
    for k in range(layer.num_layers):
        weights = {slot: g.const(f"{name}.l{k}.{slot}", array) for slot, array in _node_weights(layer, k).items()}
        inputs = [x, weights["W"], weights["R"], weights["B"], lengths]
        if "P" in weights:
            inputs += ["", "", weights["P"]]  # no initial_h, initial_c
        Y, Y_h = g.add(op, inputs, outputs=2, **attrs)
        if k < layer.num_layers - 1 or layer.return_sequences:  # (T, dirs, B, H) -> (T, B, dirs*H)
            seq = g.add("Transpose", [Y], perm=[0, 2, 1, 3])  # (T, B, dirs, H)
            x = g.add("Reshape", [seq, g.const("shape_0_0_-1", np.array([0, 0, -1]))])
    if layer.return_sequences:
        return x
    h = g.add("Transpose", [Y_h], perm=[1, 0, 2])  # (dirs, B, H) -> (B, dirs, H)
    return g.add("Reshape", [h, g.const("shape_0_-1", np.array([0, -1]))])  # (B, dirs*H): [forward, reverse]


def _export_dense(g: _Graph, layer: Dense, x: str, name: str) -> str:
    a = g.add("MatMul", [x, g.const(f"{name}.W_T", layer.params["W"].T)])
    if layer.use_bias:
        a = g.add("Add", [a, g.const(f"{name}.b", layer.params["b"])])
    if layer.activation == "linear":
        return a
    return g.add(DENSE_OPS[layer.activation], [a], **({"axis": -1} if layer.activation == "softmax" else {}))


def to_onnx(obj: Converted, path: str | Path | None, *, opset: int = DEFAULT_OPSET, lengths: bool = True) -> Any:
    """Write an rnnkit Sequential (or one layer) as an ONNX model computing the same function; returns the ModelProto.

    Inputs: ``x`` (float ``(batch, time, D)``, or int64 ids ``(batch, time)`` before an Embedding) and,
    if ``lengths`` and the model is recurrent, ``lengths`` (int32 ``(batch,)``, each in [1, time]).
    Output ``y``, batch-first like rnnkit's. ``opset`` >= 14. ``path=None`` only builds the model.
    """
    onnx = _onnx()
    model = obj if isinstance(obj, Sequential) else Sequential([obj]) if isinstance(obj, Layer) else None
    if model is None:
        raise ConversionError(f"to_onnx takes an rnnkit Sequential or layer, got {type(obj).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 14:
        raise ConfigError(f"opset must be an integer >= 14 (recurrent ops with layout, Reshape/Squeeze-13), got {opset!r}")
    dtype = next((layer.dtype for layer in model.layers if hasattr(layer, "dtype")), np.dtype(np.float32))
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    recurrent = any(isinstance(layer, Recurrent) for layer in model.layers)
    g, x, time_major = _Graph(), "x", False
    for i, layer in enumerate(model.layers):
        where = f"layer {i} ({type(layer).__name__})"
        if isinstance(layer, Recurrent):
            _check_exportable(layer, where)
            x = x if time_major else g.add("Transpose", [x], perm=[1, 0, 2])
            x = _export_recurrent(g, layer, x, "lengths" if lengths else "", f"{i}")
            time_major = layer.return_sequences
        elif isinstance(layer, Dense):
            x = _export_dense(g, layer, x, f"{i}")
        elif isinstance(layer, Embedding):
            x = g.add("Gather", [g.const(f"{i}.W", layer.params["W"]), x])
        elif not isinstance(layer, Dropout):  # Dropout is the identity at inference
            raise ConversionError(f"{where} has no ONNX export; supported: RNN, GRU, LSTM, Embedding, Dense, Dropout "
                                  "(instead of LastStep use return_sequences=False)")
    if time_major:
        g.add("Transpose", [x], outputs=["y"], perm=[1, 0, 2])
    else:
        g.add("Identity", [x], outputs=["y"])
    first = model.layers[0]
    if isinstance(first, Embedding):
        inputs = [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.INT64, ["batch", "time"])]
    else:
        features = getattr(first, "input_size", getattr(first, "in_features", "features"))
        inputs = [onnx.helper.make_tensor_value_info("x", elem, ["batch", "time", features])]
    if lengths and recurrent:
        inputs.append(onnx.helper.make_tensor_value_info("lengths", onnx.TensorProto.INT32, ["batch"]))
    shape = model.output_shapes[-1]
    out_shape = ["batch", "time", shape[2]] if len(shape) == 3 else ["batch", shape[1]]
    output = onnx.helper.make_tensor_value_info("y", elem, out_shape)
    graph = onnx.helper.make_graph(g.nodes, model.name, inputs, [output], list(g.initializers.values()))
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="rnnkit")
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, str(path))
    return proto


# ---- import ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Sym:
    """A tensor on the model's data path: its axes by name and the layer (spec index) that last wrote it.

    Axes: ``B`` batch, ``T`` time, ``F`` features, ``d`` directions, ``H`` one direction's units (``C``:
    an LSTM cell state). ``dirs``: the directions a recurrent output holds; ``final``: derived from ``Y_h``.
    """

    axes: tuple[str, ...]
    layer: int = -1
    dirs: tuple[int, ...] = ()
    final: bool = False


@dataclasses.dataclass
class _DenseSpec:
    W: np.ndarray  # (K, F)
    output: str  # the tensor holding its output so far: an Add (bias) or an activation extends it
    b: np.ndarray | None = None
    activation: str = "linear"


@dataclasses.dataclass
class _EmbeddingSpec:
    W: np.ndarray  # (V, E)


@dataclasses.dataclass
class _RecurrentSpec:
    node: _NodeSpec
    arrays: dict[str, np.ndarray]
    uses_lengths: bool
    return_sequences: bool = True


def _attr(node: Any, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return _onnx().helper.get_attribute_value(a)
    return default


def _constant(node: Any) -> np.ndarray:
    """The value of a Constant node."""
    attr = node.attribute[0]
    if attr.name == "value":
        return _onnx().numpy_helper.to_array(attr.t)
    if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
        return np.asarray(_onnx().helper.get_attribute_value(attr))
    raise ConversionError(f"{_where(node)}: a Constant with attribute {attr.name!r} is not supported")


def _needed(nodes: Any, output: str) -> list[Any]:
    """The nodes ``output`` depends on, in graph order."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output}
    needed, todo = set(), [output]
    while todo:
        i = producer.get(todo.pop())
        if i is not None and i not in needed:
            needed.add(i)
            todo.extend(nodes[i].input)
    return [node for i, node in enumerate(nodes) if i in needed]


class _Importer:
    """One pass over a graph's nodes (stored in topological order) that turns its data path into layer specs."""

    HANDLERS = {"Identity": "_identity", "Dropout": "_identity", "Shape": "_side", "Transpose": "_transpose",
                "Squeeze": "_squeeze", "Reshape": "_reshape", "Gather": "_gather", "Concat": "_concat",
                "MatMul": "_matmul", "Gemm": "_gemm", "Add": "_add", "Sigmoid": "_activation", "Tanh": "_activation",
                "Relu": "_activation", "Softmax": "_activation", "RNN": "_recurrent", "GRU": "_recurrent",
                "LSTM": "_recurrent"}

    def __init__(self, graph: Any, opset: int, time_major: bool) -> None:
        onnx = _onnx()
        self.opset = opset
        self.consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.producers: dict[str, Any] = {}  # tensors off the data path (shapes, initial states) -> their node
        self.syms: dict[str, _Sym] = {}
        self.specs: list[Any] = []
        inputs = [i for i in graph.input if i.name not in self.consts]
        if not inputs:
            raise ConversionError("the ONNX graph has no input")
        self.lengths = None
        for extra in inputs[1:]:
            t = extra.type.tensor_type
            if onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).kind not in "iu" or len(t.shape.dim) != 1 or self.lengths:
                raise ConversionError(f"graph input {extra.name!r}: only a data input and an integer lengths (batch,) "
                                      "input import")
            self.lengths = extra.name
        ids = onnx.helper.tensor_dtype_to_np_dtype(inputs[0].type.tensor_type.elem_type).kind in "iu"
        order = ("T", "B") if time_major else ("B", "T")
        self.syms[inputs[0].name] = _Sym(order if ids else (*order, "F"))
        self.sequence_axes = (*order, "F")

    def run(self, graph: Any) -> list[Layer]:
        """Import what computes the first graph output (others, e.g. torch's final states, are skipped)."""
        for node in _needed(graph.node, graph.output[0].name):
            if node.op_type == "Constant":
                self.consts[node.output[0]] = _constant(node)
            elif any(name in self.syms for name in node.input):
                if node.op_type not in self.HANDLERS:
                    raise ConversionError(f"{_where(node)} is on the model's data path and has no rnnkit counterpart; "
                                          f"supported: {sorted(set(self.HANDLERS) - {'Shape'})}")
                getattr(self, self.HANDLERS[node.op_type])(node)
            else:
                self.producers.update((out, node) for out in node.output)
        return self._finish(graph.output[0].name)

    # -- helpers --

    def _sym(self, node: Any, i: int) -> _Sym:
        if node.input[i] not in self.syms:
            raise ConversionError(f"{_where(node)}: input {i} ({node.input[i]!r}) must come from the model input")
        return self.syms[node.input[i]]

    def _const(self, node: Any, i: int) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.consts:
            raise ConversionError(f"{_where(node)}: input {i} ({name!r}) must be a constant (an initializer or Constant)")
        return self.consts[name]

    def _set(self, name: str, sym: _Sym) -> None:
        """Record a data-path tensor; one direction's units ``H`` become features ``F`` once every direction is there."""
        if "H" in sym.axes and "d" not in sym.axes and sym.dirs == tuple(range(self.specs[sym.layer].node.dirs)):
            sym = dataclasses.replace(sym, axes=tuple("F" if a == "H" else a for a in sym.axes))
        self.syms[name] = sym

    def _chain(self, where: str, sym: _Sym, *, features: bool = True) -> None:
        """Check that a layer (or the output) reads the latest layer's complete output; Y_h read -> return_sequences=False."""
        if features and (sym.axes[-1] != "F" or "d" in sym.axes):
            raise ConversionError(f"{where}: its input has axes {sym.axes} (F features, d directions, H one direction's "
                                  "units); rnnkit layers read all directions' features on the last axis")
        if sym.layer != len(self.specs) - 1:
            raise ConversionError(f"{where} reads the output of layer {sym.layer}, not of the latest layer "
                                  f"{len(self.specs) - 1}; only a chain of layers imports")
        if sym.final:
            self.specs[sym.layer].return_sequences = False

    def _append(self, spec: Any, output: str, axes: tuple[str, ...]) -> None:
        self.specs.append(spec)
        self._set(output, _Sym(axes, len(self.specs) - 1))

    def _is_zero(self, name: str) -> bool:
        """Whether a tensor off the data path is all zeros (a constant, or ConstantOfShape(0) reshaped/sliced)."""
        if name in self.consts:
            return not np.any(self.consts[name])
        node = self.producers.get(name)
        if node is not None and node.op_type == "ConstantOfShape":
            value = _attr(node, "value")
            return value is None or not np.any(_onnx().numpy_helper.to_array(value))
        return node is not None and node.op_type in SHAPE_ONLY_OPS and self._is_zero(node.input[0])

    # -- handlers, one per operator --

    def _identity(self, node: Any) -> None:
        self._set(node.output[0], self._sym(node, 0))

    def _side(self, node: Any) -> None:  # Shape(x): feeds only the construction of zero initial states
        self.producers[node.output[0]] = node

    def _transpose(self, node: Any) -> None:
        sym = self._sym(node, 0)
        perm = _attr(node, "perm", list(reversed(range(len(sym.axes)))))
        self._set(node.output[0], dataclasses.replace(sym, axes=tuple(sym.axes[p] for p in perm)))

    def _squeeze(self, node: Any) -> None:
        sym = self._sym(node, 0)
        axes = _attr(node, "axes") if len(node.input) < 2 else self._const(node, 1).tolist()
        axes = [a % len(sym.axes) for a in np.atleast_1d(axes if axes is not None else [])]
        if not axes or any(sym.axes[a] != "d" for a in axes) or len(sym.dirs) != 1:
            raise ConversionError(f"{_where(node)}: only squeezing the direction axis of a one-direction recurrent "
                                  f"output imports (axes {sym.axes})")
        self._set(node.output[0], dataclasses.replace(sym, axes=tuple(a for j, a in enumerate(sym.axes) if j not in axes)))

    def _reshape(self, node: Any) -> None:
        sym, shape = self._sym(node, 0), self._const(node, 1).tolist()
        i = sym.axes.index("d") if "d" in sym.axes else -1
        if i >= 0 and sym.axes[i + 1 : i + 2] == ("H",) and len(shape) == len(sym.axes) - 1:
            width = len(sym.dirs) * self.specs[sym.layer].arrays["R"].shape[-1]
            others = shape[:i] + shape[i + 1 :]
            if shape[i] in (-1, width) and all(s in (0, -1) for s in others) and shape.count(-1) <= 1:
                self._set(node.output[0], dataclasses.replace(sym, axes=(*sym.axes[:i], "H", *sym.axes[i + 2 :])))
                return
        raise ConversionError(f"{_where(node)}: only a Reshape merging a recurrent output's (directions, units) axes "
                              f"imports; got shape {shape} for axes {sym.axes}")

    def _gather(self, node: Any) -> None:
        axis = _attr(node, "axis", 0)
        if node.input[0] in self.consts:  # an embedding lookup of the ids
            ids, W = self._sym(node, 1), self.consts[node.input[0]]
            if "F" in ids.axes or axis != 0 or W.ndim != 2:
                raise ConversionError(f"{_where(node)}: only Gather(table (V, E), ids, axis=0) imports (as an Embedding)")
            self._chain(_where(node), ids, features=False)
            self._append(_EmbeddingSpec(W), node.output[0], (*ids.axes, "F"))
            return
        sym, index = self._sym(node, 0), self._const(node, 1)
        axis %= len(sym.axes)
        if sym.axes[axis] != "d" or index.ndim != 0:
            raise ConversionError(f"{_where(node)}: only picking one direction (a scalar index on the direction axis) "
                                  f"of a recurrent output imports (axes {sym.axes})")
        d = sym.dirs[int(index) % len(sym.dirs)]
        self._set(node.output[0], dataclasses.replace(sym, axes=sym.axes[:axis] + sym.axes[axis + 1 :], dirs=(d,)))

    def _concat(self, node: Any) -> None:
        parts = [self._sym(node, j) for j in range(len(node.input))]
        first, axis = parts[0], _attr(node, "axis") % len(parts[0].axes)
        if axis != len(first.axes) - 1 or first.axes[-1] != "H" or any(
            (p.axes, p.layer, p.final) != (first.axes, first.layer, first.final) for p in parts
        ):
            raise ConversionError(f"{_where(node)}: only concatenating the directions of one recurrent layer's output "
                                  "on the last axis imports")
        self._set(node.output[0], dataclasses.replace(first, dirs=tuple(d for p in parts for d in p.dirs)))

    def _matmul(self, node: Any) -> None:
        x, W = self._sym(node, 0), self._const(node, 1)
        if W.ndim != 2:
            raise ConversionError(f"{_where(node)}: only x @ W with a constant 2-D W imports (as a Dense)")
        self._chain(_where(node), x)
        self._append(_DenseSpec(np.ascontiguousarray(W.T), node.output[0]), node.output[0], x.axes)

    def _gemm(self, node: Any) -> None:
        x, W = self._sym(node, 0), self._const(node, 1)
        if _attr(node, "transA", 0) or len(x.axes) != 2:
            raise ConversionError(f"{_where(node)}: only Gemm(x (B, F), W, b) with transA=0 imports (as a Dense)")
        W = (W if _attr(node, "transB", 0) else W.T) * np.asarray(_attr(node, "alpha", 1.0), W.dtype)
        b = None
        if len(node.input) > 2 and node.input[2]:
            b = np.broadcast_to(self._const(node, 2) * np.asarray(_attr(node, "beta", 1.0), W.dtype), W.shape[:1]).copy()
        self._chain(_where(node), x)
        self._append(_DenseSpec(np.ascontiguousarray(W), node.output[0], b), node.output[0], x.axes)

    def _dense_before(self, node: Any, sym: _Sym, name: str) -> _DenseSpec:
        spec = self.specs[sym.layer] if sym.layer >= 0 else None
        if not isinstance(spec, _DenseSpec) or spec.output != name or spec.activation != "linear":
            raise ConversionError(f"{_where(node)}: imports only right after a MatMul/Gemm (as that Dense's bias or "
                                  "activation)")
        return spec

    def _add(self, node: Any) -> None:
        j = 0 if node.input[0] in self.syms else 1
        x, b = self._sym(node, j), self._const(node, 1 - j)
        spec = self._dense_before(node, x, node.input[j])
        if spec.b is not None or b.size != spec.W.shape[0] or b.shape[-1] != b.size:
            raise ConversionError(f"{_where(node)}: the bias of a Dense must be one ({spec.W.shape[0]},) vector, got {b.shape}")
        spec.b, spec.output = b.reshape(-1), node.output[0]
        self._set(node.output[0], x)

    def _activation(self, node: Any) -> None:
        x = self._sym(node, 0)
        spec = self._dense_before(node, x, node.input[0])
        axis = _attr(node, "axis", -1 if self.opset >= 13 else 1) % len(x.axes)
        if node.op_type == "Softmax" and axis != len(x.axes) - 1:
            raise ConversionError(f"{_where(node)}: only a Softmax over the last axis imports")
        spec.activation = {op: name for name, op in DENSE_OPS.items()}[node.op_type]
        spec.output = node.output[0]
        self._set(node.output[0], x)

    def _recurrent(self, node: Any) -> None:
        spec = _parse_node(node)
        if spec.direction == "reverse":
            raise ConversionError(f"{spec.where}: direction='reverse' alone has no rnnkit layer (layers are forward or "
                                  "bidirectional); run it with run_onnx_node")
        x, expected = self._sym(node, 0), ("T", "B", "F") if spec.layout == 0 else ("B", "T", "F")
        if x.axes != expected:
            raise ConversionError(f"{spec.where} reads X as {expected} (layout={spec.layout}) but gets axes {x.axes}")
        self._chain(spec.where, x)
        slots = dict(zip(SLOTS[node.op_type], node.input))
        arrays = {s: self._const(node, j) for j, s in enumerate(SLOTS[node.op_type])
                  if s in ("W", "R", "B", "P") and slots.get(s)}
        if slots.get("sequence_lens") not in ("", None, self.lengths):
            raise ConversionError(f"{spec.where}: sequence_lens must be the graph's lengths input, got {slots['sequence_lens']!r}")
        for state in ("initial_h", "initial_c"):
            if slots.get(state) and not self._is_zero(slots[state]):
                raise ConversionError(f"{spec.where}: {state} must be zeros (rnnkit takes initial states at run time: "
                                      "layer.forward(x, state0=...))")
        self.specs.append(_RecurrentSpec(spec, arrays, bool(slots.get("sequence_lens"))))
        k, dirs = len(self.specs) - 1, tuple(range(spec.dirs))
        seq, final = (("T", "d", "B", "H"), ("d", "B", "H")) if spec.layout == 0 else (("B", "T", "d", "H"), ("B", "d", "H"))
        cell = tuple("C" if a == "H" else a for a in final)  # Y_c: nothing reads it
        for name, axes, is_final in zip(node.output, (seq, final, cell), (False, True, True)):
            if name:
                self._set(name, _Sym(axes, k, dirs, is_final))

    def _finish(self, output: str) -> list[Layer]:
        if output not in self.syms or not self.specs:
            raise ConversionError(f"the graph output {output!r} is not computed from the model input by any layer")
        sym = self.syms[output]
        self._chain(f"the graph output {output!r}", sym)
        if sym.axes not in (self.sequence_axes, ("B", "F")):
            raise ConversionError(f"the graph output has axes {sym.axes}; expected {self.sequence_axes} or ('B', 'F')")
        if self.lengths and not all(s.uses_lengths for s in self.specs if isinstance(s, _RecurrentSpec)):
            raise ConversionError(f"some recurrent nodes ignore the lengths input {self.lengths!r}; rnnkit applies "
                                  "lengths to every recurrent layer")
        return _merge_stacks([self._build(spec) for spec in self.specs])

    @staticmethod
    def _build(spec: Any) -> Layer:
        if isinstance(spec, _RecurrentSpec):
            return _recurrent_layer(spec.node, spec.arrays, spec.return_sequences)
        if isinstance(spec, _EmbeddingSpec):
            return Embedding.from_pretrained(spec.W)
        K, F = spec.W.shape
        dense = Dense(F, K, spec.activation, use_bias=spec.b is not None, dtype=spec.W.dtype, seed=0)
        assign_params(dense.params, {"W": spec.W, **({"b": spec.b} if spec.b is not None else {})}, "ONNX MatMul/Gemm")
        return dense


def _merge_stacks(layers: list[Layer]) -> list[Layer]:
    """Consecutive recurrent layers of one kind and configuration (an exported stack) -> one ``num_layers`` layer."""
    def options(layer: Recurrent) -> dict[str, Any]:
        return {k: v for k, v in layer.get_config().items() if k not in ("input_size", "num_layers", "return_sequences")}

    merged: list[Layer] = []
    for layer in layers:
        a = merged[-1] if merged else None
        if (isinstance(a, Recurrent) and type(a) is type(layer) and a.return_sequences
                and layer.input_size == a.output_size and options(a) == options(layer)):
            stack = type(a)(**dict(a.get_config(), num_layers=a.num_layers + layer.num_layers,
                                   return_sequences=layer.return_sequences), seed=0)
            shifted = {re.sub(r"^l(\d+)", lambda m: f"l{int(m[1]) + a.num_layers}", n): v for n, v in layer.params.items()}
            assign_params(stack.params, {**a.params, **shifted}, "stacked ONNX recurrent nodes")
            merged[-1] = stack
        else:
            merged.append(layer)
    return merged


def from_onnx(model: Any) -> Converted:
    """An ONNX model (a path or a ModelProto) -> an rnnkit layer (one layer) or Sequential; see the module docstring.

    Raises ConversionError naming the node and attribute or pattern it cannot import, ModelFileError
    for a file that is not ONNX.
    """
    onnx = _onnx()
    if isinstance(model, (str, Path)):
        try:
            model = onnx.load(str(model))
        except FileNotFoundError:
            raise
        except Exception as err:  # protobuf raises DecodeError and friends
            raise ModelFileError(f"{model}: not an ONNX model ({type(err).__name__}: {err})") from err
    if not isinstance(model, onnx.ModelProto):
        raise ConversionError(f"from_onnx takes a path or an onnx.ModelProto, got {type(model).__name__}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), DEFAULT_OPSET)
    try:
        layers = _Importer(model.graph, opset, time_major=False).run(model.graph)
    except ConversionError as batch_first_error:
        try:  # a time-major input, e.g. torch batch_first=False
            layers = _Importer(model.graph, opset, time_major=True).run(model.graph)
        except ConversionError:
            raise batch_first_error from None
    return layers[0] if len(layers) == 1 else Sequential(layers, name=model.graph.name or None)
