"""Sequential: a stack of layers run one after the other, forward and backward.

    y = layer_{n-1}( ... layer_1( layer_0(x) ) ... )
    dx = layer_0.backward( ... layer_{n-1}.backward(dy) ... )

``lengths`` go to every layer (layers that do not need them ignore them). Recurrent layers can
start from given states and leave their final states behind, for stateful / truncated-BPTT
training. The model's parameters and gradients are one flat dict with stable dotted names
``"{layer index}.{layer's own name}"``, e.g. ``"1.l0.W_ih"``; its values *are* the layers' arrays,
so an optimizer updating ``model.params`` in place updates the layers.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from ._validation import check_lengths, check_positive_int, lengths_from_mask
from .errors import ConfigError, ShapeError
from .layers.base import Layer
from .layers.dense import Dense
from .layers.dropout import Dropout
from .layers.embedding import Embedding
from .layers.pooling import LastStep, MaxPool, MeanPool
from .layers.recurrent import GRU, LSTM, RNN, Recurrent

State = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]
Shape = tuple[Union[int, None], ...]  # None: any size (batch, time, or not known yet)

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Embedding, Dense, Dropout, LastStep, MaxPool, MeanPool, Recurrent, RNN, GRU, LSTM)
}
"""Layer classes by name, for :meth:`Sequential.from_config` (add your own to load custom layers)."""


def _recurrent_output_shape(layer: Recurrent, shape: Shape) -> Shape:
    """``(B, T, D)`` -> ``(B, T, dirs*R)``, or ``(B, dirs*R)`` without ``return_sequences``.

    (Recurrent layers do not declare an ``output_shape`` of their own, so it is written here.)
    """
    if len(shape) != 3 or shape[2] not in (None, layer.input_size):
        raise ShapeError(
            f"{type(layer).__name__}(input_size={layer.input_size}) needs inputs of shape "
            f"(batch, time, {layer.input_size}), got {shape}; match input_size to the layer before it"
        )
    if layer.return_sequences:
        return (shape[0], shape[1], layer.output_size)
    return (shape[0], layer.output_size)


def _output_shape(layer: Layer, shape: Shape | None) -> Shape | None:
    """The symbolic output shape of ``layer`` for an input of ``shape``; None if it cannot be known."""
    if shape is None:
        return None
    if isinstance(layer, Recurrent):
        return _recurrent_output_shape(layer, shape)
    if hasattr(layer, "output_shape"):
        return layer.output_shape(shape)
    return None  # a custom layer that does not declare its shapes


def _infer_shapes(layers: list[Layer]) -> list[Shape | None]:
    """Every layer's output shape, checking that each layer accepts its predecessor's output.

    The model input is taken to be integer ids ``(batch, time)`` before an Embedding, otherwise a
    sequence ``(batch, time, features)``.
    """
    shape: Shape | None = (None, None) if isinstance(layers[0], Embedding) else (None, None, None)
    shapes = []
    for i, layer in enumerate(layers):
        try:
            out = _output_shape(layer, shape)
        except ShapeError as err:
            source = "the model input" if i == 0 else f"layer {i - 1} ({type(layers[i - 1]).__name__})"
            raise ShapeError(
                f"layer {i} ({type(layer).__name__}) cannot take the output of {source}, of shape {shape}: {err}"
            ) from err
        shapes.append(out)
        shape = out
    return shapes


class Sequential:
    """Layers applied in order: ``model.forward(x, lengths=...)`` then ``model.backward(dy)``.

    Args:
        layers: the layers, first to last. An :class:`Embedding` may only come first.
        name: shown by :meth:`summary` (default ``"sequential"``).

    Feature sizes of consecutive layers are checked here, at construction.
    """

    def __init__(self, layers: list[Layer], name: str | None = None) -> None:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ConfigError(f"layers must be a non-empty list of rnnkit layers, got {layers!r:.80}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"layers[{i}] must be an rnnkit Layer, got {type(layer).__name__}")
            if i > 0 and isinstance(layer, Embedding):
                raise ConfigError(
                    f"layers[{i}] is an Embedding, which reads integer ids; it can only be the first layer"
                )
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"name must be a string or None, got {name!r}")
        self.layers = list(layers)
        self.name = name or "sequential"
        self.output_shapes = _infer_shapes(self.layers)  # symbolic, None = any size

    # ---- parameters ---------------------------------------------------------------------

    @property
    def params(self) -> dict[str, np.ndarray]:
        """All parameters, ``{"{index}.{name}": array}``; the arrays are the layers' own."""
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers) for name, p in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradients of the last :meth:`backward`, with the keys of :attr:`params`."""
        return {f"{i}.{name}": g for i, layer in enumerate(self.layers) for name, g in layer.grads.items()}

    def num_params(self) -> int:
        """The number of scalar parameters."""
        return sum(_count(layer) for layer in self.layers)

    # ---- forward / backward -------------------------------------------------------------

    def forward(
        self,
        x: np.ndarray,
        *,
        lengths: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        training: bool = False,
        states: dict[int, State] | None = None,
        cache: bool = True,
    ) -> np.ndarray:
        """Run every layer on ``x`` (ids ``(B, T)`` or features ``(B, T, D)``) and return the last output.

        ``lengths (B,)`` or a ``(B, T)`` ``mask`` (padding at the end) mark each sequence's valid
        steps. ``states`` maps a recurrent layer's index to its initial state; afterwards
        :meth:`final_states` holds their final states. ``training`` turns dropout on.
        ``cache=False``: inference only, the recurrent layers keep nothing for :meth:`backward`
        (faster, less memory).
        """
        lengths = self._resolve_lengths(x, lengths, mask)
        states = self._check_states(states)
        y = x
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Recurrent):
                y = layer.forward(y, state0=states.get(i), lengths=lengths, training=training, cache=cache)
            else:
                y = layer.forward(y, lengths=lengths, training=training)
        return y

    __call__ = forward

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Backpropagate ``dy`` (like the output) through every layer; sets :attr:`grads`.

        Returns the gradient of the input, or None when the model starts with an Embedding.
        """
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def final_states(self) -> dict[int, State]:
        """``{index: state}`` of every recurrent layer after the last forward (feed back as ``states``)."""
        return {i: layer.state for i, layer in enumerate(self.layers) if isinstance(layer, Recurrent)}

    def predict(
        self, x: np.ndarray, lengths: np.ndarray | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Inference (no dropout, zero initial states, no cache) in batches of ``batch_size``, concatenated."""
        batch_size = check_positive_int(batch_size, "batch_size")
        x = np.asarray(x)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ShapeError(f"x must be a batch of sequences (batch, time, ...) with batch >= 1, got {x.shape}")
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[0], x.shape[1])
        outputs = []
        for start in range(0, x.shape[0], batch_size):
            chunk = slice(start, start + batch_size)
            outputs.append(self.forward(x[chunk], lengths=None if lengths is None else lengths[chunk], cache=False))
        return np.concatenate(outputs, axis=0)

    def _resolve_lengths(self, x: Any, lengths: Any, mask: Any) -> np.ndarray | None:
        """lengths (B,) from ``lengths`` or ``mask``, checked against ``x``'s (batch, time)."""
        if lengths is None and mask is None:
            return None
        if lengths is not None and mask is not None:
            raise ConfigError("pass lengths= or mask=, not both (a mask is turned into lengths); drop one")
        shape = np.shape(x)
        if len(shape) < 2:
            raise ShapeError(f"x must be (batch, time, ...) when lengths or a mask are given, got shape {shape}")
        if mask is not None:
            if np.shape(mask) != shape[:2]:
                raise ShapeError(f"mask must have shape {shape[:2]} = (batch, time) like x, got {np.shape(mask)}")
            lengths = lengths_from_mask(mask)
        return check_lengths(lengths, shape[0], shape[1])

    def _check_states(self, states: Any) -> dict[int, State]:
        """``states`` as a dict whose keys are indices of recurrent layers."""
        if states is None:
            return {}
        recurrent = [i for i, layer in enumerate(self.layers) if isinstance(layer, Recurrent)]
        if not isinstance(states, dict) or not set(states) <= set(recurrent):
            keys = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise ConfigError(
                f"states must be a dict {{layer index: state}} over the recurrent layers {recurrent}, got {keys}; "
                "pass model.final_states() from the previous batch"
            )
        return states

    # ---- description and configuration --------------------------------------------------

    def summary(self) -> str:
        """A Keras-like table: each layer, its output shape (None = any size) and parameter count."""
        rows = [
            (f"{i} ({type(layer).__name__})", "?" if shape is None else str(shape), f"{_count(layer):,}")
            for i, (layer, shape) in enumerate(zip(self.layers, self.output_shapes))
        ]
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(r[k]) for r in [header, *rows]) + 4 for k in range(3)]
        rule = sum(widths)

        def line(cells: tuple[str, str, str]) -> str:
            return "".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        return "\n".join(
            [f'Model: "{self.name}"', "_" * rule, line(header), "=" * rule]
            + [line(r) for r in rows]
            + ["=" * rule, f"Total params: {self.num_params():,}", "_" * rule]
        )

    def get_config(self) -> dict[str, Any]:
        """``{"name": ..., "layers": [{"class": name, "config": layer config}, ...]}`` (JSON-serialisable)."""
        return {
            "name": self.name,
            "layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """Rebuild a model (fresh parameters) from :meth:`get_config`; classes are looked up in ``LAYERS``."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ConfigError(f'config must be a dict with a "layers" list (from get_config()), got {config!r:.80}')
        layers = []
        for i, entry in enumerate(config["layers"]):
            name = entry.get("class") if isinstance(entry, dict) else None
            if name not in LAYERS:
                raise ConfigError(
                    f"layers[{i}] has unknown class {name!r}; known layer classes: {sorted(LAYERS)} "
                    "(register a custom layer with rnnkit.models.LAYERS[name] = cls)"
                )
            layers.append(LAYERS[name].from_config(entry.get("config", {})))
        return cls(layers, name=config.get("name"))


def _count(layer: Layer) -> int:
    """The number of scalar parameters of one layer."""
    return sum(p.size for p in layer.params.values())
