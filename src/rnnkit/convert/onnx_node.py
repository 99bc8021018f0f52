"""One ONNX recurrent node <-> one rnnkit layer, shared by :mod:`.onnx_export` and :mod:`.onnx_import`.

An ONNX RNN/GRU/LSTM node holds every direction of one layer: ``W (dirs, G*H, D)``, ``R (dirs, G*H, H)``,
``B (dirs, 2*G*H) = [Wb | Rb]`` and, for a peephole LSTM, ``P (dirs, 3H)``; gates LSTM ``i, o, f, c``,
GRU ``z, r, h`` (``layouts.LAYOUTS["onnx"]``). Per direction ``d``::

    W[d] = from_canonical(W_ih)   R[d] = from_canonical(W_hh)   B[d] = [from_canonical(b_ih) | from_canonical(b_hh)]
    P[d] = [w_ci | w_co | w_cf]   GRU reset_after=True/False  <->  linear_before_reset=1/0

:func:`parse_node` checks a node's attributes (ConversionError naming the node and the attribute rnnkit
cannot honour), :func:`node_layer` builds the layer, :func:`run_onnx_node` runs a node on given inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, ConversionError
from ..layers.recurrent import GRU, LSTM, RNN, Recurrent, reverse_index, reverse_sequences
from .layouts import CANONICAL_GATES, LAYOUTS, assign_params, biases_from, to_canonical

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


def import_onnx() -> Any:
    """``import onnx``, or ConfigError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX conversion needs the onnx package: pip install rnnkit[onnx]") from None
    return onnx


# ---- one recurrent node <-> one rnnkit layer ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeSpec:
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


def node_label(node: Any) -> str:
    """How messages name a node: ``ONNX LSTM node 'name'``."""
    return f"ONNX {node.op_type} node {node.name or ','.join(o for o in node.output if o)!r}"


def parse_node(node: Any) -> NodeSpec:
    """Check a RNN/GRU/LSTM node's attributes; ConversionError names the node and attribute rnnkit cannot honour."""
    where, helper = node_label(node), import_onnx().helper
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
    return NodeSpec(node.op_type, where, direction, layout, attrs.get("hidden_size"), options)


def node_layer(spec: NodeSpec, arrays: Mapping[str, np.ndarray], return_sequences: bool = True) -> Recurrent:
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


def _initial_state(spec: NodeSpec, arrays: Mapping[str, np.ndarray], batch: int, H: int) -> Any:
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
    spec = parse_node(node)
    arrays = {slot: np.asarray(inputs[name]) for slot, name in zip(SLOTS[node.op_type], node.input) if name}
    layer = node_layer(spec, arrays)
    seq = arrays["X"] if spec.layout == 0 else arrays["X"].transpose(1, 0, 2)  # time-major (T, B, D)
    (T, B, _), H, lengths = seq.shape, layer.hidden_size, arrays.get("sequence_lens")
    rev = reverse_index(lengths, T) if spec.direction == "reverse" else None
    if spec.direction == "reverse":
        seq = reverse_sequences(seq, rev)
    y = layer.forward(np.ascontiguousarray(seq.transpose(1, 0, 2)), state0=_initial_state(spec, arrays, B, H),
                      lengths=lengths, cache=False).transpose(1, 0, 2)  # (T, B, dirs*H)
    if spec.direction == "reverse":
        y = reverse_sequences(y, rev)
    Y = y.reshape(T, B, spec.dirs, H).transpose(0, 2, 1, 3)  # (T, dirs, B, H)
    finals = list(layer.state) if spec.op == "LSTM" else [layer.state]  # each (dirs, B, H)
    if spec.layout:
        Y, finals = Y.transpose(2, 0, 1, 3), [f.transpose(1, 0, 2) for f in finals]
    return {name: value for name, value in zip(node.output, [Y, *finals]) if name}
