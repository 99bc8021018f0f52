"""rnnkit -> ONNX: :func:`to_onnx` writes a Sequential (or one layer) as a graph computing the same function.

One node per recurrent layer (``direction="bidirectional"`` for both directions), fed time-major
(``layout=0``, one Transpose at each batch-first edge, because onnxruntime rejects ``layout=1``), with
``sequence_lens`` from an int32 graph input ``lengths (B,)``; batch and time are dynamic. ``Y (T, dirs, B,
H)`` becomes the next input through Transpose + Reshape (``[forward, reverse]`` concatenated), or a
ReduceSum over its direction axis for ``merge_mode="sum"`` (``forward + reverse``), as rnnkit merges;
``return_sequences=False`` returns ``Y_h`` the same way: both directions' final ``h``. LSTM
``forget_bias`` is folded into the f block of ``Wb``. Embedding is a Gather, Dense a MatMul + Add
(+ Sigmoid/Tanh/Relu/Softmax), Dropout nothing. Not exportable, with a ConversionError: LSTM
``cell_clip`` (ONNX ``clip`` clips gate pre-activations, not the cell state) and ``proj_size`` (ONNX
LSTM has no projection). onnxruntime runs the recurrent ops in float32 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConfigError, ConversionError
from ..layers.base import Layer
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.recurrent import Recurrent
from ..models import Sequential
from .layouts import CANONICAL_GATES, LAYOUTS, biases_to, from_canonical
from .onnx_node import DEFAULT_OPSET, DENSE_OPS, ONNX_OP, RNN_ACTIVATIONS, import_onnx

Converted = Union[Layer, Sequential]


class _Graph:
    """The nodes and initializers of a graph being built, with fresh tensor names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}

    def const(self, name: str, array: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = import_onnx().numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def add(self, op: str, inputs: list[str], outputs: int | list[str] = 1, **attrs: Any) -> Any:
        """Append a node; returns its output name, or the list of them (``outputs``: a count or the names)."""
        while inputs and not inputs[-1]:
            inputs = inputs[:-1]  # trailing optional inputs are left out
        names = outputs if isinstance(outputs, list) else [f"{op}_{len(self.nodes)}_{j}" for j in range(outputs)]
        self.nodes.append(import_onnx().helper.make_node(op, inputs, names, name=f"{op}_{len(self.nodes)}", **attrs))
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


def _merge_directions(g: _Graph, y: str, axis: int, merge_mode: str) -> str:
    """A node's ``Y (T, dirs, B, H)`` (``axis=1``) or ``Y_h (dirs, B, H)`` (``axis=0``), merged as rnnkit merges.

    "concat": the direction axis moved next to H and flattened into it, ``(..., B, dirs*H)`` =
    ``[forward, reverse]``; "sum": ReduceSum over it, ``(..., B, H)`` = ``forward + reverse``.
    """
    if merge_mode == "sum":
        return g.add("ReduceSum", [y, g.const(f"axes_{axis}", np.array([axis]))], keepdims=0)
    perm = [0, 2, 1, 3] if axis == 1 else [1, 0, 2]  # (T, B, dirs, H) or (B, dirs, H)
    shape = [0, 0, -1] if axis == 1 else [0, -1]
    moved = g.add("Transpose", [y], perm=perm)
    return g.add("Reshape", [moved, g.const("shape_" + "_".join(map(str, shape)), np.array(shape))])


def _export_recurrent(g: _Graph, layer: Recurrent, x: str, lengths: str, name: str) -> str:
    """x time-major (T, B, D) -> time-major (T, B, M), or (B, M) without return_sequences; M = layer.output_size."""
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
        if k < layer.num_layers - 1 or layer.return_sequences:
            x = _merge_directions(g, Y, 1, layer.merge_mode)  # (T, dirs, B, H) -> (T, B, M)
    if layer.return_sequences:
        return x
    return _merge_directions(g, Y_h, 0, layer.merge_mode)  # (dirs, B, H) -> (B, M)


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
    onnx = import_onnx()
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
