"""Convert between rnnkit layers/models and Keras 3 (``import keras`` happens on first use).

Keras stores ``kernel (D, G*H)`` and ``recurrent_kernel (R, G*H)`` (columns), GRU gates ``z, r, h``
(rnnkit ``r, z, n``) and LSTM gates ``i, f, c, o`` (rnnkit ``i, f, g, o``); see
``layouts.LAYOUTS["keras"]``. Per family::

    W_ih = to_canonical(kernel.T)          W_hh = to_canonical(recurrent_kernel.T)
    LSTM, SimpleRNN, GRU reset_after=False: bias (G*H,) -> b_ih = bias, b_hh = 0   (export: b_ih + b_hh)
    GRU reset_after=True:                   bias (2, 3H) -> b_ih = bias[0], b_hh = bias[1]

Keras' GRU ``h = z*h_prev + (1-z)*hh`` is rnnkit's ``h = (1-z)*n + z*h_prev``. Converted:
SimpleRNN (tanh/relu/sigmoid/linear), GRU (reset_after True/False), LSTM, Bidirectional
(``merge_mode="concat"`` or ``"sum"``, rnnkit's ``merge_mode``), Embedding, Dense
(linear/sigmoid/tanh/relu/softmax), Dropout, and Sequential or single-chain functional models;
InputLayer and Masking are skipped (rnnkit masks with ``lengths``). A Keras recurrent layer becomes
a one-layer rnnkit layer; an rnnkit layer with ``num_layers=L`` exports as L Keras layers (its
between-layer ``dropout`` as Keras Dropout layers), each a ``Bidirectional`` with the layer's merge mode
if bidirectional.

``Embedding(mask_zero=True)`` imports with ``padding_idx=0``: pass rnnkit the lengths Keras derives
from the mask, e.g. ``lengths = (ids != 0).sum(axis=1)`` (padding at the end). On export, an
Embedding with ``padding_idx=0`` gets ``mask_zero=True`` (override with ``to_keras(..., mask_zero=)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConversionError, ModelFileError, ShapeError
from ..layers.base import Layer
from ..layers.dense import DENSE_ACTIVATIONS, Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.recurrent import GRU, LSTM, RNN, Recurrent
from ..models import Sequential
from .layouts import LAYOUTS, assign_params, biases_from, biases_to, from_canonical, to_canonical, transpose

Converted = Union[Layer, Sequential]
KERAS_RECURRENT = {"SimpleRNN": ("rnn", RNN), "GRU": ("gru", GRU), "LSTM": ("lstm", LSTM)}
KERAS_CLASS = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
SKIPPED = ("InputLayer", "Masking")  # rnnkit masks with lengths
MERGE_MODES = ("concat", "sum")  # Keras Bidirectional merge modes rnnkit has ("mul", "ave", None have no counterpart)


def _keras() -> Any:
    """``import keras`` with the torch backend unless KERAS_BACKEND is already set."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    return keras


def _bias_layout(family: str, config: dict[str, Any]) -> str:
    """Keras bias layout from the table; a GRU with reset_after=False stores one sum (3H,) instead of (2, 3H)."""
    if family == "gru" and not config.get("reset_after", True):
        return "single"
    return LAYOUTS["keras"].biases[family]


# ---- Keras -> rnnkit ---------------------------------------------------------------------


def _check_recurrent_config(config: dict[str, Any], family: str, where: str) -> None:
    """ConversionError for every Keras recurrent option rnnkit cannot reproduce."""
    activations = ("tanh", "relu", "sigmoid", "linear") if family == "rnn" else ("tanh",)
    checks = [
        ("activation", config.get("activation", "tanh") in activations, f"one of {list(activations)}"),
        ("recurrent_activation", family == "rnn" or config.get("recurrent_activation", "sigmoid") == "sigmoid",
         "'sigmoid'"),
        ("go_backwards", not config.get("go_backwards", False), "False (wrap the layer in Bidirectional instead)"),
        ("stateful", not config.get("stateful", False), "False (pass states to rnnkit's forward instead)"),
        ("time_major", not config.get("time_major", False), "False"),
        ("dropout", not config.get("dropout", 0.0), "0 (rnnkit has no per-sequence input dropout; it only acts "
         "in training: set it to 0 or use a Dropout layer before)"),
    ]
    for option, ok, expected in checks:
        if not ok:
            raise ConversionError(f"{where}: option {option}={config.get(option)!r} cannot convert; expected {expected}")


def _direction_params(family: str, config: dict[str, Any], weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    """One direction's Keras weights [kernel, recurrent_kernel, (bias)] -> rnnkit W_ih, W_hh, b_ih, b_hh.

    Shapes are checked afterwards, against the layer built from ``units`` (:func:`assign_params`).
    """
    kernel, recurrent_kernel = weights[0], weights[1]
    W_ih = to_canonical(transpose(kernel), "keras", family)
    W_hh = to_canonical(transpose(recurrent_kernel), "keras", family)
    if len(weights) > 2:
        bias = to_canonical(np.asarray(weights[2]), "keras", family, axis=-1)
        b_ih, b_hh = biases_from(_bias_layout(family, config), bias, bias.shape[-1])
    else:  # use_bias=False
        b_ih = b_hh = np.zeros(W_ih.shape[0], W_ih.dtype)
    return {"W_ih": W_ih, "W_hh": W_hh, "b_ih": b_ih, "b_hh": b_hh}


def _recurrent_from_keras(class_name: str, config: dict[str, Any], weights: list[np.ndarray], where: str) -> Recurrent:
    bidirectional = class_name == "Bidirectional"
    merge_mode = config.get("merge_mode", "concat") if bidirectional else "concat"
    if merge_mode not in MERGE_MODES:
        raise ConversionError(
            f"{where}: option merge_mode={merge_mode!r} cannot convert; rnnkit merges the two directions with "
            f"merge_mode in {list(MERGE_MODES)} ([forward, reverse] or forward + reverse)"
        )
    if bidirectional:
        inner = config["layer"]
        class_name, config = inner["class_name"], inner["config"]
        where = f"{where} ({class_name})"
    if class_name not in KERAS_RECURRENT:
        raise ConversionError(f"{where}: layer {class_name} has no rnnkit counterpart")
    family, cls = KERAS_RECURRENT[class_name]
    _check_recurrent_config(config, family, where)
    options = {"rnn": {"activation": config.get("activation", "tanh")},
               "gru": {"reset_after": bool(config.get("reset_after", True))}, "lstm": {}}[family]
    per_direction = len(weights) // (2 if bidirectional else 1)
    kernel = np.asarray(weights[0])
    layer = cls(
        kernel.shape[0], int(config["units"]), bidirectional=bidirectional, merge_mode=merge_mode,
        return_sequences=bool(config.get("return_sequences", False)),
        recurrent_dropout=float(config.get("recurrent_dropout", 0.0)), dtype=kernel.dtype, seed=0, **options,
    )
    arrays = {}
    for d, prefix in enumerate(["l0", "l0_reverse"][: 2 if bidirectional else 1]):
        try:
            direction = _direction_params(family, config, weights[d * per_direction : (d + 1) * per_direction])
        except ShapeError as err:
            raise ShapeError(f"{where}: {err}") from err
        arrays.update({f"{prefix}.{name}": value for name, value in direction.items()})
    assign_params(layer.params, arrays, where)
    return layer


def _layer_from_keras(class_name: str, config: dict[str, Any], weights: list[np.ndarray], where: str) -> Layer | None:
    """One Keras layer, as (class name, config, weights), -> an rnnkit layer (None: skipped)."""
    weights = [np.asarray(w) for w in weights]
    if class_name in SKIPPED:
        return None
    if class_name in KERAS_RECURRENT or class_name == "Bidirectional":
        return _recurrent_from_keras(class_name, config, weights, where)
    if class_name == "Embedding":
        (table,) = weights
        layer = Embedding(table.shape[0], table.shape[1], 0 if config.get("mask_zero") else None, dtype=table.dtype, seed=0)
        assign_params(layer.params, {"W": table}, where)
        return layer
    if class_name == "Dense":
        activation = config.get("activation", "linear")
        if activation not in DENSE_ACTIVATIONS:
            raise ConversionError(f"{where}: option activation={activation!r} cannot convert; one of {list(DENSE_ACTIVATIONS)}")
        kernel = weights[0]
        layer = Dense(kernel.shape[0], kernel.shape[1], activation, len(weights) > 1, dtype=kernel.dtype, seed=0)
        assign_params(layer.params, {"W": transpose(kernel), **({"b": weights[1]} if len(weights) > 1 else {})}, where)
        return layer
    if class_name == "Dropout":
        if config.get("noise_shape") is not None:
            raise ConversionError(f"{where}: option noise_shape={config['noise_shape']!r} cannot convert; rnnkit drops elementwise")
        return Dropout(float(config["rate"]))
    raise ConversionError(
        f"{where}: layer {class_name} has no rnnkit counterpart; supported: SimpleRNN, GRU, LSTM, Bidirectional, "
        "Embedding, Dense, Dropout (InputLayer and Masking are skipped)"
    )


def _inbound_names(node: Any) -> set[str]:
    """Names of the layers a functional-config entry reads from (Keras 3 ``keras_history`` or Keras 2 node lists)."""
    if isinstance(node, dict):
        if "keras_history" in node:
            return {node["keras_history"][0]}
        return set().union(*(_inbound_names(v) for v in node.values()))
    if isinstance(node, (list, tuple)):  # JSON lists, or tuples in a live model's get_config()
        if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):  # Keras 2: [name, node, tensor, {}]
            return {node[0]}
        return set().union(*(_inbound_names(v) for v in node))
    return set()


def _chain(model_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The layer entries of a Sequential, or of a functional model that is a single chain, in order."""
    kind, entries = model_config.get("class_name"), model_config["config"]["layers"]
    if kind == "Sequential":
        return entries
    if kind not in ("Functional", "Model"):
        raise ConversionError(f"model class {kind} cannot convert; use a Sequential or a single-chain functional model")
    for previous, entry in zip(entries, entries[1:]):
        inbound = _inbound_names(entry.get("inbound_nodes", []))
        if inbound != {previous["config"]["name"]}:
            raise ConversionError(
                f"functional layer {entry['config']['name']!r} reads {sorted(inbound)}, not only the previous layer "
                f"{previous['config']['name']!r}; only single-chain models convert"
            )
    return entries


def _model_from_records(model_config: dict[str, Any], weights: dict[str, list[np.ndarray]]) -> Sequential:
    """A Keras model config plus ``{layer name: weights}`` -> Sequential (shared by live models and .h5 files)."""
    layers = []
    for entry in _chain(model_config):
        name = entry["config"]["name"]
        layer = _layer_from_keras(entry["class_name"], entry["config"], weights.get(name, []), f"keras layer {name!r}")
        if layer is not None:
            layers.append(layer)
    if not layers:
        raise ConversionError("the Keras model has no convertible layers")
    return Sequential(layers, name=model_config["config"].get("name"))


def from_keras(model_or_layer: Any) -> Converted:
    """A Keras 3 model (Sequential or single-chain functional) -> Sequential; a Keras layer -> rnnkit layer.

    Raises ConversionError naming the layer and option it cannot convert, ShapeError on a shape mismatch.
    """
    keras = _keras()
    if isinstance(model_or_layer, keras.Model):
        model = model_or_layer
        kind = "Sequential" if isinstance(model, keras.Sequential) else "Functional"
        weights = {layer.name: layer.get_weights() for layer in model.layers}
        return _model_from_records({"class_name": kind, "config": model.get_config()}, weights)
    if isinstance(model_or_layer, keras.layers.Layer):
        layer = model_or_layer
        where = f"keras layer {layer.name!r}"
        converted = _layer_from_keras(type(layer).__name__, layer.get_config(), layer.get_weights(), where)
        if converted is None:
            raise ConversionError(f"{where}: {type(layer).__name__} has no parameters or computation to convert")
        return converted
    raise ConversionError(f"from_keras takes a keras.Model or keras layer, got {type(model_or_layer).__name__}")


# ---- rnnkit -> Keras ---------------------------------------------------------------------


def _recurrent_to_keras(layer: Recurrent, where: str) -> list[tuple[Any, list[np.ndarray]]]:
    """An rnnkit recurrent layer -> [(Keras layer, its weights)] with one entry per stacked layer (plus Dropouts)."""
    keras, config, family = _keras(), layer.get_config(), layer.cell
    for option, default in [("proj_size", 0), ("peepholes", False), ("forget_bias", 0.0), ("cell_clip", None),
                            ("proj_clip", None)]:
        if config.get(option, default) != default:
            raise ConversionError(f"{where}: option {option}={config[option]!r} has no Keras counterpart")
    options = {"rnn": {"activation": config.get("activation")}, "gru": {"reset_after": config.get("reset_after")},
               "lstm": {}}[family]
    entries = []
    for k in range(layer.num_layers):
        if k > 0 and layer.dropout > 0:
            entries.append((keras.layers.Dropout(layer.dropout), []))
        last = k == layer.num_layers - 1
        cell_layer = getattr(keras.layers, KERAS_CLASS[family])(
            layer.hidden_size, return_sequences=layer.return_sequences if last else True,
            recurrent_dropout=layer.recurrent_dropout, dtype=layer.dtype.name, **options,
        )
        weights = []
        for prefix in [f"l{k}", f"l{k}_reverse"][: layer.num_directions]:
            p = {name: layer.params[f"{prefix}.{name}"] for name in ("W_ih", "W_hh", "b_ih", "b_hh")}
            b_ih, b_hh = (from_canonical(p[n], "keras", family) for n in ("b_ih", "b_hh"))
            weights += [transpose(from_canonical(p["W_ih"], "keras", family)),
                        transpose(from_canonical(p["W_hh"], "keras", family)),
                        biases_to(_bias_layout(family, config), b_ih, b_hh)]
        if layer.bidirectional:
            cell_layer = keras.layers.Bidirectional(cell_layer, merge_mode=layer.merge_mode)
        entries.append((cell_layer, weights))
    return entries


def _layer_to_keras(layer: Layer, mask_zero: bool, where: str) -> list[tuple[Any, list[np.ndarray]]]:
    keras = _keras()
    if isinstance(layer, Recurrent):
        return _recurrent_to_keras(layer, where)
    if isinstance(layer, Embedding):
        emb = keras.layers.Embedding(layer.num_embeddings, layer.embedding_dim, mask_zero=mask_zero, dtype=layer.dtype.name)
        return [(emb, [layer.params["W"]])]
    if isinstance(layer, Dense):
        dense = keras.layers.Dense(layer.out_features, activation=layer.activation, use_bias=layer.use_bias,
                                   dtype=layer.dtype.name)
        return [(dense, [transpose(layer.params["W"])] + ([layer.params["b"]] if layer.use_bias else []))]
    if isinstance(layer, Dropout):
        return [(keras.layers.Dropout(layer.rate), [])]
    raise ConversionError(f"{where}: {type(layer).__name__} has no Keras counterpart in rnnkit.convert")


def to_keras(model: Converted, *, mask_zero: bool | None = None) -> Any:
    """An rnnkit Sequential (or single layer) -> a built ``keras.Sequential`` computing the same function.

    The input is ids ``(batch, time)`` when the first layer is an Embedding, else ``(batch, time, D)``.
    ``mask_zero``: None -> True iff the first layer is an Embedding with ``padding_idx=0``.
    """
    keras = _keras()
    layers = model.layers if isinstance(model, Sequential) else [model]
    first = layers[0]
    if isinstance(first, Embedding):
        inputs = keras.Input(shape=(None,), dtype="int32")
        mask_zero = first.padding_idx == 0 if mask_zero is None else mask_zero
    else:
        size = first.input_size if isinstance(first, Recurrent) else getattr(first, "in_features", None)
        if size is None:
            raise ConversionError(f"the first layer ({type(first).__name__}) does not fix the input size; start with "
                                  "an Embedding, a recurrent layer or a Dense")
        inputs = keras.Input(shape=(None, size), dtype=first.dtype.name)
    entries = []
    for i, layer in enumerate(layers):
        entries += _layer_to_keras(layer, bool(mask_zero), f"layer {i} ({type(layer).__name__})")
    name = model.name if isinstance(model, Sequential) else None
    keras_model = keras.Sequential([inputs] + [keras_layer for keras_layer, _ in entries], name=name)
    for keras_layer, weights in entries:
        if weights:
            keras_layer.set_weights(weights)
    return keras_model


# ---- files -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_legacy_h5(path: Path) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """(model config, {layer name: weights}) of a full-model ``.h5`` (tf.keras 2 or Keras 3 legacy), via h5py.

    Layout: attribute ``model_config`` (JSON); group ``model_weights`` with attribute ``layer_names``;
    each layer group's attribute ``weight_names`` lists its datasets in ``get_weights()`` order
    (e.g. ``g1/gru_cell/kernel:0``).
    """
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise ModelFileError(
                f"{path}: no model_config attribute or model_weights group, so not a full-model .h5; for a "
                "weights-only file pass the architecture: load_keras_file(path, like=model)"
            )
        config = json.loads(_text(f.attrs["model_config"]))
        group = f["model_weights"]
        weights = {}
        for name in map(_text, group.attrs["layer_names"]):
            layer_group = group[name]
            weights[name] = [np.array(layer_group[_text(w)]) for w in layer_group.attrs.get("weight_names", [])]
    return config, weights


def load_keras_file(path: str | Path, like: Converted | Any = None) -> Converted:
    """Read a Keras file into rnnkit.

    - ``.keras``: loaded by Keras 3, then :func:`from_keras`.
    - ``.h5``/``.hdf5`` full-model files (tf.keras 2 or Keras 3 ``model.save("m.h5")``): read with
      h5py alone (config JSON + weights); Keras' own loader is not used (it rejects tf.keras 2 configs).
    - ``.weights.h5`` (or a weights-only ``.h5``): needs ``like``, the architecture as an rnnkit model
      (exported with :func:`to_keras`) or a Keras model; Keras loads the weights into it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".keras"):
        return from_keras(_keras().saving.load_model(path, compile=False))
    if not name.endswith((".h5", ".hdf5")):
        raise ModelFileError(f"{path}: unknown Keras file type; expected .keras, .weights.h5 or .h5")
    if like is None:
        if name.endswith(".weights.h5"):
            raise ModelFileError(f"{path}: a weights-only file holds no architecture; pass it: load_keras_file(path, like=model)")
        return _model_from_records(*_read_legacy_h5(path))
    keras_model = to_keras(like) if isinstance(like, (Layer, Sequential)) else like
    keras_model.load_weights(path)
    return from_keras(keras_model)
