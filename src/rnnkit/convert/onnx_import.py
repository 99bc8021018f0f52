"""ONNX -> rnnkit: :func:`from_onnx` turns the data path of an ONNX graph into rnnkit layers.

It follows the graph from its input to its first output, naming each tensor's axes (``B``, ``T``,
``F`` features, ``d`` directions, ``H`` units per direction) through Transpose/Squeeze/Reshape/Gather/
Concat, and turns RNN/GRU/LSTM nodes (``layout`` 0 or 1), Gather-on-ids, MatMul(+Add) and Gemm
(+ activation) into layers; a ReduceSum over a bidirectional output's direction axis (``keepdims=0``)
is ``merge_mode="sum"``: what :func:`~.onnx_export.to_onnx` and ``torch.onnx.export(dynamo=False)``
emit. Consecutive recurrent nodes of one kind merge into one ``num_layers`` layer. Initial states must
be zeros (torch builds them with Shape/ConstantOfShape); a time-major graph input imports too (feed
rnnkit ``x.transpose(1, 0, 2)``). Anything else on the data path raises ConversionError naming the node.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConversionError, ModelFileError
from ..layers.base import Layer
from ..layers.dense import Dense
from ..layers.embedding import Embedding
from ..layers.recurrent import Recurrent
from ..models import Sequential
from .layouts import assign_params
from .onnx_node import DEFAULT_OPSET, DENSE_OPS, SHAPE_ONLY_OPS, SLOTS, NodeSpec, import_onnx, node_label, node_layer, parse_node

Converted = Union[Layer, Sequential]


@dataclasses.dataclass(frozen=True)
class _Sym:
    """A tensor on the model's data path: its axes by name and the layer (spec index) that last wrote it.

    Axes: ``B`` batch, ``T`` time, ``F`` features, ``d`` directions, ``H`` one direction's units (``C``:
    an LSTM cell state). ``dirs``: the directions a recurrent output holds; ``final``: derived from ``Y_h``;
    ``summed``: its directions were added (ReduceSum), not concatenated.
    """

    axes: tuple[str, ...]
    layer: int = -1
    dirs: tuple[int, ...] = ()
    final: bool = False
    summed: bool = False


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
    node: NodeSpec
    arrays: dict[str, np.ndarray]
    uses_lengths: bool
    return_sequences: bool = True
    merge_mode: str = "concat"


def _attr(node: Any, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return import_onnx().helper.get_attribute_value(a)
    return default


def _constant(node: Any) -> np.ndarray:
    """The value of a Constant node."""
    attr = node.attribute[0]
    if attr.name == "value":
        return import_onnx().numpy_helper.to_array(attr.t)
    if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
        return np.asarray(import_onnx().helper.get_attribute_value(attr))
    raise ConversionError(f"{node_label(node)}: a Constant with attribute {attr.name!r} is not supported")


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
                "Squeeze": "_squeeze", "ReduceSum": "_reduce_sum", "Reshape": "_reshape", "Gather": "_gather",
                "Concat": "_concat", "MatMul": "_matmul", "Gemm": "_gemm", "Add": "_add", "Sigmoid": "_activation",
                "Tanh": "_activation", "Relu": "_activation", "Softmax": "_activation", "RNN": "_recurrent",
                "GRU": "_recurrent", "LSTM": "_recurrent"}

    def __init__(self, graph: Any, opset: int, time_major: bool) -> None:
        onnx = import_onnx()
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
                    raise ConversionError(f"{node_label(node)} is on the model's data path and has no rnnkit counterpart; "
                                          f"supported: {sorted(set(self.HANDLERS) - {'Shape'})}")
                getattr(self, self.HANDLERS[node.op_type])(node)
            else:
                self.producers.update((out, node) for out in node.output)
        return self._finish(graph.output[0].name)

    # -- helpers --

    def _sym(self, node: Any, i: int) -> _Sym:
        if node.input[i] not in self.syms:
            raise ConversionError(f"{node_label(node)}: input {i} ({node.input[i]!r}) must come from the model input")
        return self.syms[node.input[i]]

    def _const(self, node: Any, i: int) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name not in self.consts:
            raise ConversionError(f"{node_label(node)}: input {i} ({name!r}) must be a constant (an initializer or Constant)")
        return self.consts[name]

    def _set(self, name: str, sym: _Sym) -> None:
        """Record a data-path tensor; one direction's units ``H`` become features ``F`` once every direction is there."""
        if "H" in sym.axes and "d" not in sym.axes and sym.dirs == tuple(range(self.specs[sym.layer].node.dirs)):
            sym = dataclasses.replace(sym, axes=tuple("F" if a == "H" else a for a in sym.axes))
        self.syms[name] = sym

    def _chain(self, where: str, sym: _Sym, *, features: bool = True) -> None:
        """Check that a layer (or the output) reads the latest layer's complete output; records how that layer ends:
        Y_h read -> return_sequences=False, directions summed -> merge_mode="sum"."""
        if features and (sym.axes[-1] != "F" or "d" in sym.axes):
            raise ConversionError(f"{where}: its input has axes {sym.axes} (F features, d directions, H one direction's "
                                  "units); rnnkit layers read all directions' features on the last axis")
        if sym.layer != len(self.specs) - 1:
            raise ConversionError(f"{where} reads the output of layer {sym.layer}, not of the latest layer "
                                  f"{len(self.specs) - 1}; only a chain of layers imports")
        if sym.final:
            self.specs[sym.layer].return_sequences = False
        if sym.summed:
            self.specs[sym.layer].merge_mode = "sum"

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
            return value is None or not np.any(import_onnx().numpy_helper.to_array(value))
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
            raise ConversionError(f"{node_label(node)}: only squeezing the direction axis of a one-direction recurrent "
                                  f"output imports (axes {sym.axes})")
        self._set(node.output[0], dataclasses.replace(sym, axes=tuple(a for j, a in enumerate(sym.axes) if j not in axes)))

    def _reduce_sum(self, node: Any) -> None:
        """``forward + reverse``: ReduceSum(Y or Y_h, axes=[direction axis], keepdims=0), axes an input or (opset < 13)
        an attribute."""
        sym, keepdims = self._sym(node, 0), _attr(node, "keepdims", 1)
        axes = _attr(node, "axes") if len(node.input) < 2 or not node.input[1] else self._const(node, 1).tolist()
        axes = [int(a) % len(sym.axes) for a in np.atleast_1d(axes if axes is not None else [])]
        if [sym.axes[a] for a in axes] != ["d"] or keepdims != 0:
            raise ConversionError(f"{node_label(node)}: only a ReduceSum over the direction axis with keepdims=0 (a "
                                  f"bidirectional layer's merge_mode='sum') imports; got attribute keepdims={keepdims} "
                                  f"and axes {axes} of input axes {sym.axes} (d: directions)")
        self._set(node.output[0], dataclasses.replace(sym, axes=tuple(a for a in sym.axes if a != "d"),
                                                      summed=len(sym.dirs) == 2))

    def _reshape(self, node: Any) -> None:
        sym, shape = self._sym(node, 0), self._const(node, 1).tolist()
        i = sym.axes.index("d") if "d" in sym.axes else -1
        if i >= 0 and sym.axes[i + 1 : i + 2] == ("H",) and len(shape) == len(sym.axes) - 1:
            width = len(sym.dirs) * self.specs[sym.layer].arrays["R"].shape[-1]
            others = shape[:i] + shape[i + 1 :]
            if shape[i] in (-1, width) and all(s in (0, -1) for s in others) and shape.count(-1) <= 1:
                self._set(node.output[0], dataclasses.replace(sym, axes=(*sym.axes[:i], "H", *sym.axes[i + 2 :])))
                return
        raise ConversionError(f"{node_label(node)}: only a Reshape merging a recurrent output's (directions, units) axes "
                              f"imports; got shape {shape} for axes {sym.axes}")

    def _gather(self, node: Any) -> None:
        axis = _attr(node, "axis", 0)
        if node.input[0] in self.consts:  # an embedding lookup of the ids
            ids, W = self._sym(node, 1), self.consts[node.input[0]]
            if "F" in ids.axes or axis != 0 or W.ndim != 2:
                raise ConversionError(f"{node_label(node)}: only Gather(table (V, E), ids, axis=0) imports (as an Embedding)")
            self._chain(node_label(node), ids, features=False)
            self._append(_EmbeddingSpec(W), node.output[0], (*ids.axes, "F"))
            return
        sym, index = self._sym(node, 0), self._const(node, 1)
        axis %= len(sym.axes)
        if sym.axes[axis] != "d" or index.ndim != 0:
            raise ConversionError(f"{node_label(node)}: only picking one direction (a scalar index on the direction axis) "
                                  f"of a recurrent output imports (axes {sym.axes})")
        d = sym.dirs[int(index) % len(sym.dirs)]
        self._set(node.output[0], dataclasses.replace(sym, axes=sym.axes[:axis] + sym.axes[axis + 1 :], dirs=(d,)))

    def _concat(self, node: Any) -> None:
        parts = [self._sym(node, j) for j in range(len(node.input))]
        first, axis = parts[0], _attr(node, "axis") % len(parts[0].axes)
        if axis != len(first.axes) - 1 or first.axes[-1] != "H" or any(
            (p.axes, p.layer, p.final) != (first.axes, first.layer, first.final) for p in parts
        ):
            raise ConversionError(f"{node_label(node)}: only concatenating the directions of one recurrent layer's output "
                                  "on the last axis imports")
        self._set(node.output[0], dataclasses.replace(first, dirs=tuple(d for p in parts for d in p.dirs)))

    def _matmul(self, node: Any) -> None:
        x, W = self._sym(node, 0), self._const(node, 1)
        if W.ndim != 2:
            raise ConversionError(f"{node_label(node)}: only x @ W with a constant 2-D W imports (as a Dense)")
        self._chain(node_label(node), x)
        self._append(_DenseSpec(np.ascontiguousarray(W.T), node.output[0]), node.output[0], x.axes)

    def _gemm(self, node: Any) -> None:
        x, W = self._sym(node, 0), self._const(node, 1)
        if _attr(node, "transA", 0) or len(x.axes) != 2:
            raise ConversionError(f"{node_label(node)}: only Gemm(x (B, F), W, b) with transA=0 imports (as a Dense)")
        W = (W if _attr(node, "transB", 0) else W.T) * np.asarray(_attr(node, "alpha", 1.0), W.dtype)
        b = None
        if len(node.input) > 2 and node.input[2]:
            b = np.broadcast_to(self._const(node, 2) * np.asarray(_attr(node, "beta", 1.0), W.dtype), W.shape[:1]).copy()
        self._chain(node_label(node), x)
        self._append(_DenseSpec(np.ascontiguousarray(W), node.output[0], b), node.output[0], x.axes)

    def _dense_before(self, node: Any, sym: _Sym, name: str) -> _DenseSpec:
        spec = self.specs[sym.layer] if sym.layer >= 0 else None
        if not isinstance(spec, _DenseSpec) or spec.output != name or spec.activation != "linear":
            raise ConversionError(f"{node_label(node)}: imports only right after a MatMul/Gemm (as that Dense's bias or "
                                  "activation)")
        return spec

    def _add(self, node: Any) -> None:
        j = 0 if node.input[0] in self.syms else 1
        x, b = self._sym(node, j), self._const(node, 1 - j)
        spec = self._dense_before(node, x, node.input[j])
        if spec.b is not None or b.size != spec.W.shape[0] or b.shape[-1] != b.size:
            raise ConversionError(f"{node_label(node)}: the bias of a Dense must be one ({spec.W.shape[0]},) vector, got {b.shape}")
        spec.b, spec.output = b.reshape(-1), node.output[0]
        self._set(node.output[0], x)

    def _activation(self, node: Any) -> None:
        x = self._sym(node, 0)
        spec = self._dense_before(node, x, node.input[0])
        axis = _attr(node, "axis", -1 if self.opset >= 13 else 1) % len(x.axes)
        if node.op_type == "Softmax" and axis != len(x.axes) - 1:
            raise ConversionError(f"{node_label(node)}: only a Softmax over the last axis imports")
        spec.activation = {op: name for name, op in DENSE_OPS.items()}[node.op_type]
        spec.output = node.output[0]
        self._set(node.output[0], x)

    def _recurrent(self, node: Any) -> None:
        spec = parse_node(node)
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
            node = dataclasses.replace(spec.node, options=dict(spec.node.options, merge_mode=spec.merge_mode))
            return node_layer(node, spec.arrays, spec.return_sequences)
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


def load_onnx(path: str | Path) -> Any:
    """The ``onnx.ModelProto`` in a file; ModelFileError if it is not ONNX."""
    try:
        return import_onnx().load(str(path))
    except FileNotFoundError:
        raise
    except Exception as err:  # protobuf raises DecodeError and friends
        raise ModelFileError(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from None


def from_onnx(model: Any) -> Converted:
    """An ONNX model (a path or a ModelProto) -> an rnnkit layer (one layer) or Sequential; see the module docstring.

    Raises ConversionError naming the node and attribute or pattern it cannot import, ModelFileError
    for a file that is not ONNX.
    """
    onnx = import_onnx()
    if isinstance(model, (str, Path)):
        model = load_onnx(model)
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
