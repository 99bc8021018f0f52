"""Recurrent layers: stacked, bidirectional RNN / GRU / LSTM over the cell functions.

The layer owns the mechanics (the one batch-first <-> time-major conversion at its boundary,
stacking, the reverse direction, lengths, dropout masks, what to return) and no gate math:
each time loop runs inside ``rnnkit.cells.{rnn,gru,lstm}.forward/backward``, or inside their
compiled twins ``rnnkit.cells.fast.*`` (same functions and results; chosen when numba is installed).

Layer ``k`` direction ``d`` (``d = 1`` is the reverse direction) is "cell" ``i = k*dirs + d``:
its parameters are named ``l{k}.W_ih`` / ``l{k}_reverse.W_ih`` ... and its state is row ``i``
of the stacked state ``(L*dirs, B, R)`` (and ``c`` ``(L*dirs, B, H)`` for an LSTM), as in PyTorch.

Shapes: ``x (B, T, D)`` -> ``out (B, T, M)``, or with ``return_sequences=False`` ``(B, M)``:
the forward direction at each sequence's last valid step, the reverse one at ``t = 0`` (the final h's).
A bidirectional layer merges its two directions as Keras' ``Bidirectional(merge_mode=...)``:
``"concat"`` ``[forward, reverse]`` (``M = 2R``, PyTorch's only mode) or ``"sum"`` ``forward + reverse``
(``M = R``), at the output of every stacked layer.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, Union

import numpy as np

from .._validation import (
    as_rng,
    check_choice,
    check_dtype,
    check_float_array,
    check_lengths,
    check_positive_int,
    check_probability,
    lengths_from_mask,
)
from ..cells import fast, gru, lstm, rnn
from ..errors import ConfigError, ShapeError
from .base import Layer

State = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]

CELLS = {"rnn": (rnn, rnn.RNNConfig), "gru": (gru, gru.GRUConfig), "lstm": (lstm, lstm.LSTMConfig)}
ENGINES = ("auto", "numpy", "fast")
MERGE_MODES = ("concat", "sum")


def _cell_module(cell: str, engine: str) -> ModuleType:
    """The module that runs the cell math: the NumPy reference, or its compiled twin (numba).

    ``"auto"``: the compiled one when numba is installed, else the reference; ``"numpy"``: the
    reference; ``"fast"``: the compiled one, or a ConfigError without numba.
    """
    engine = check_choice(engine, "engine", list(ENGINES))
    compiled = None if engine == "numpy" else fast.module_for(cell)
    if engine == "fast" and compiled is None:
        raise ConfigError("engine='fast' needs numba, which is not installed; "
                          "pip install 'rnnkit[fast]', or use engine='auto' or 'numpy'")
    return compiled or CELLS[cell][0]


def reverse_index(lengths: np.ndarray | None, time: int) -> np.ndarray | None:
    """Row indices into ``seq.reshape(T*B, F)`` that reverse each sequence within its own length.

    Step t of sequence b reads step ``lengths[b] - 1 - t`` if ``t < lengths[b]``, else t (padding
    stays in place), so the map is its own inverse. ``None`` (all full length) means a plain flip.
    """
    if lengths is None:
        return None
    batch = len(lengths)
    t = np.arange(time)[:, None]  # (T, 1)
    source = np.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    return (source * batch + np.arange(batch)).ravel()  # (T*B,)


def reverse_sequences(seq: np.ndarray, rev: np.ndarray | None) -> np.ndarray:
    """seq (T, B, F) with every sequence reversed within its length (see ``reverse_index``)."""
    if rev is None:
        return seq[::-1]
    T, B, F = seq.shape
    return np.take(seq.reshape(T * B, F), rev, axis=0).reshape(T, B, F)  # one gather of rows


def merge_directions(ys: list[np.ndarray], merge_mode: str) -> np.ndarray:
    """The directions' outputs ``ys``, each ``(..., R)``, -> the layer's output ``(..., M)``.

    ``"concat"``: ``[forward, reverse]`` along the last axis, ``M = 2R``; ``"sum"``: ``forward + reverse``, ``M = R``.
    """
    if len(ys) == 1:
        return ys[0]
    return ys[0] + ys[1] if merge_mode == "sum" else np.concatenate(ys, axis=-1)


def split_directions(dout: np.ndarray, merge_mode: str, dirs: int) -> list[np.ndarray]:
    """The backward of :func:`merge_directions`: ``dout`` -> each direction's gradient ``(..., R)``.

    ``"concat"``: the direction's slice; ``"sum"``: all of ``dout`` (d(f + r)/df = d(f + r)/dr = 1).
    """
    if dirs == 1 or merge_mode == "sum":
        return [dout] * dirs
    return np.split(dout, dirs, axis=-1)


def _dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype: np.dtype) -> np.ndarray:
    """Inverted-dropout mask: 1/(1-p) with probability 1-p, else 0."""
    mask = (rng.random(shape, dtype=dtype) >= p).astype(dtype)
    mask *= 1.0 / (1.0 - p)
    return mask


def _stack(states: list[State]) -> State:
    """Per-cell states -> the stacked state (L*dirs, B, R), or (h, c) for an LSTM."""
    if len(states) == 1:  # one cell: the same copy as np.stack's, without its Python overhead (about 4 µs)
        return tuple(s[np.newaxis].copy() for s in states[0]) if isinstance(states[0], tuple) \
            else states[0][np.newaxis].copy()
    if isinstance(states[0], tuple):
        return np.stack([h for h, _ in states]), np.stack([c for _, c in states])
    return np.stack(states)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Recurrent(Layer):
    """A stack of recurrent layers, optionally bidirectional, over one cell family.

    Args:
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        input_size: D, features per time step.
        hidden_size: H, units per cell.
        num_layers: L, stacked layers; layer k > 0 reads the ``M`` (``output_size``) outputs of layer k - 1.
        bidirectional: add a reverse direction per layer, merged by ``merge_mode``.
        merge_mode: how a bidirectional layer merges its directions, at every stacked layer and in the
            last output: ``"concat"`` (default) ``[forward, reverse]``, ``M = 2R``; ``"sum"``
            ``forward + reverse``, ``M = R``. A one-direction layer takes only ``"concat"`` (``M = R``).
        return_sequences: return every step ``(B, T, M)`` or only the last ``(B, M)``.
        dropout: inverted dropout on the input of layers 1..L-1 (between stacked layers), training only.
        recurrent_dropout: inverted dropout on ``h_{t-1}`` where it enters the recurrent product;
            one ``(B, R)`` mask per sequence and layer-direction, the same at every step, training only.
        dtype: float32 (default) or float64, for parameters, inputs and outputs.
        engine: ``"auto"`` (default: the compiled cells of ``rnnkit.cells.fast`` when numba is
            installed, else the NumPy ones), ``"numpy"`` or ``"fast"``. Same results to rounding;
            a runtime choice, not part of the model (not in ``get_config``).
        seed: seeds the parameter initialisation and then ``self.rng``, the generator dropout masks
            are drawn from (once per training forward). To replay the same masks, reset it:
            ``layer.rng = np.random.default_rng(s)`` before each forward (as gradient checks do).
        **cell_options: the cell config's options: ``activation`` (rnn); ``reset_after`` (gru);
            ``proj_size``, ``peepholes``, ``forget_bias``, ``cell_clip``, ``proj_clip`` (lstm).

    After ``forward``: ``self.state`` holds the final state. After ``backward``: ``self.grads``
    (same keys as ``self.params``) and ``self.dstate0``, the gradient of the initial state.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        return_sequences: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        dtype: Any = np.float32,
        seed: int | np.random.Generator | None = None,
        engine: str = "auto",
        **cell_options: Any,
    ) -> None:
        super().__init__()
        self.cell = check_choice(cell, "cell", list(CELLS))
        config_class = CELLS[cell][1]
        self.module = _cell_module(cell, engine)  # rnnkit.cells.<cell> or rnnkit.cells.fast.<cell>
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.bidirectional = _check_bool(bidirectional, "bidirectional")
        self.merge_mode = check_choice(merge_mode, "merge_mode", list(MERGE_MODES))
        if self.merge_mode != "concat" and not self.bidirectional:
            raise ConfigError(f"merge_mode={merge_mode!r} merges the two directions of a bidirectional layer, but "
                              "bidirectional=False; pass bidirectional=True, or leave merge_mode='concat'")
        self.return_sequences = _check_bool(return_sequences, "return_sequences")
        self.dropout = check_probability(dropout, "dropout")
        self.recurrent_dropout = check_probability(recurrent_dropout, "recurrent_dropout")
        self.dtype = check_dtype(dtype)
        if self.dropout > 0 and self.num_layers == 1:
            raise ConfigError(
                f"dropout={dropout} acts between stacked layers, but num_layers=1; "
                "use num_layers > 1, or a Dropout layer before/after this one"
            )
        allowed = sorted({f.name for f in dataclasses.fields(config_class)} - {"input_size", "hidden_size"})
        unknown = sorted(set(cell_options) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for a {cell!r} layer; valid cell options: {allowed}")

        first = config_class(input_size=self.input_size, hidden_size=self.hidden_size, **cell_options)
        shapes = self.module.param_shapes(first)
        self.num_directions = 2 if self.bidirectional else 1
        self.state_size = shapes["W_hh"][1]  # R (= proj_size for a projected LSTM, else H)
        self.output_size = (1 if self.merge_mode == "sum" else self.num_directions) * self.state_size  # M
        deeper = dataclasses.replace(first, input_size=self.output_size)
        self.configs = [first] + [deeper] * (self.num_layers - 1)  # cell config of layer k
        self._param_names = list(shapes)
        self.prefixes = [
            f"l{k}_reverse" if d else f"l{k}" for k in range(self.num_layers) for d in range(self.num_directions)
        ]  # parameter-name prefix of cell i = k*dirs + d
        self.rng = as_rng(seed)
        for i, prefix in enumerate(self.prefixes):
            cell_params = self.module.init_params(self._config(i), self.rng, self.dtype)
            self.params.update({f"{prefix}.{name}": value for name, value in cell_params.items()})
        self.state: State | None = None
        self.dstate0: State | None = None
        self._cache: dict[str, Any] | None = None

    # ---- configuration ------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        options = dataclasses.asdict(self.configs[0])
        del options["input_size"], options["hidden_size"]
        return {
            "cell": self.cell,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "return_sequences": self.return_sequences,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "dtype": self.dtype.name,
            **options,
        }

    def _config(self, i: int) -> Any:
        """Cell config of cell i = k*dirs + d."""
        return self.configs[i // self.num_directions]

    def _cell_params(self, i: int) -> dict[str, np.ndarray]:
        """The plain-named parameter dict (``W_ih``, ...) of cell i, as the cell functions take it."""
        prefix = self.prefixes[i]
        return {name: self.params[f"{prefix}.{name}"] for name in self._param_names}

    # ---- boundary checks ----------------------------------------------------------------

    def _check_x(self, x: Any, name: str, ndim: int, finite: bool = True) -> np.ndarray:
        x = check_float_array(x, name, ndim=ndim, dtype=self.dtype, allow_nonfinite=not finite)
        layout = "(batch, time, input_size)" if ndim == 3 else "(batch, input_size)"
        if x.shape[-1] != self.input_size or 0 in x.shape:
            raise ShapeError(
                f"{name} must have shape {layout} with input_size={self.input_size} and no empty axis, got {x.shape}"
            )
        return x

    @staticmethod
    def _resolve_lengths(lengths: Any, mask: Any, batch: int, time: int) -> np.ndarray | None:
        """lengths (B,) in [1, T] from ``lengths`` or a (B, T) ``mask``; None when every sequence is full."""
        if mask is not None:
            if lengths is not None:
                raise ConfigError("pass lengths= or mask=, not both (a mask is turned into lengths); drop one")
            if np.shape(mask) != (batch, time):
                raise ShapeError(f"mask must have shape ({batch}, {time}) = (batch, time) like x, got {np.shape(mask)}")
            lengths = check_lengths(lengths_from_mask(mask), batch, time, name="mask row sums (lengths)")
        if lengths is None:
            return None
        lengths = check_lengths(lengths, batch, time)
        return None if (lengths == time).all() else lengths

    def _split_state(self, state: Any, batch: int, name: str) -> list[State | None]:
        """Check a stacked state and return it per cell (a list of ``L*dirs`` states, or Nones for None)."""
        n = self.num_layers * self.num_directions
        if state is None:
            return [None] * n
        r_unit = "proj_size" if self.state_size != self.hidden_size else "hidden_size"
        expected = [("h", (n, batch, self.state_size), r_unit), ("c", (n, batch, self.hidden_size), "hidden_size")]
        is_pair = isinstance(state, (tuple, list))
        if self.cell == "lstm" and not (is_pair and len(state) == 2):
            raise ShapeError(f"{name} of an LSTM layer must be a tuple (h, c) with h {expected[0][1]} and "
                             f"c {expected[1][1]}, got {type(state).__name__}")
        if self.cell != "lstm" and is_pair:
            raise ShapeError(f"{name} of a {self.cell.upper()} layer is one array h of shape {expected[0][1]}; "
                             "only an LSTM carries a tuple (h, c)")
        arrays = []
        for array, (part, shape, unit) in zip(state if is_pair else (state,), expected):
            array = check_float_array(array, f"{name} {part}", dtype=self.dtype)
            if array.shape != shape:
                raise ShapeError(f"{name} {part} must have shape {shape} = (num_layers*num_directions, batch, {unit}), "
                                 f"got {array.shape}")
            arrays.append(array)
        return list(zip(*arrays)) if self.cell == "lstm" else list(arrays[0])

    # ---- forward / backward -------------------------------------------------------------

    def forward(
        self,
        x: np.ndarray,
        *,
        state0: State | None = None,
        lengths: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        training: bool = False,
        cache: bool = True,
    ) -> np.ndarray:
        """Run every layer and direction over ``x (B, T, D)``; the final state goes to ``self.state``.

        ``state0``: None (zeros) or the stacked initial state; ``lengths (B,)`` or ``mask (B, T)``
        mark each sequence's valid prefix (padded steps output zero and carry the state).
        ``cache=False`` keeps nothing for :meth:`backward` (inference: faster, less memory; like
        ``torch.no_grad``); ``training=True`` needs the cache. With the cache the output sequence is
        read-only: it may be the cache's own states, which :meth:`backward` reads (copy it to change it).
        """
        if training and not cache:
            raise ConfigError("training=True needs cache=True: a training forward keeps what backward() uses")
        x = self._check_x(x, "x", 3, finite=not cache)  # with the cache, its time-major copy checks x
        batch, time, _ = x.shape
        lengths = self._resolve_lengths(lengths, mask, batch, time)
        states0 = self._split_state(state0, batch, "state0")
        rev = reverse_index(lengths, time)
        # (T, B, D), time-major: a view for inference (the cells read its rows in place), a copy of its own for the
        # cache of a training forward, scanned for NaN/Inf as it is made
        seq = fast.time_major(x, "x") if cache else x.transpose(1, 0, 2)
        caches, final, drop_masks = [], [], []
        for k in range(self.num_layers):
            drop = None
            if training and k > 0 and self.dropout > 0:
                drop = _dropout_mask(self.rng, seq.shape, self.dropout, self.dtype)
                seq = seq * drop
            drop_masks.append(drop)
            ys = []
            for d in range(self.num_directions):
                i = k * self.num_directions + d
                rec_mask = None
                if training and self.recurrent_dropout > 0:
                    rec_mask = _dropout_mask(self.rng, (batch, self.state_size), self.recurrent_dropout, self.dtype)
                xs = reverse_sequences(seq, rev) if d else seq
                if cache:
                    y, stateT, cell_cache = self.module.forward(  # x was scanned for NaN/Inf above
                        self._cell_params(i), self._config(i), xs, states0[i], lengths, rec_mask, check_finite=False
                    )
                    caches.append(cell_cache)
                else:
                    y, stateT = self.module.infer(self._cell_params(i), self._config(i), xs, states0[i], lengths,
                                                  check_finite=False)
                ys.append(reverse_sequences(y, rev) if d else y)
                final.append(stateT)
            seq = merge_directions(ys, self.merge_mode)  # (T, B, M)
        self.state = _stack(final)
        self._cache = {"caches": caches, "drop_masks": drop_masks, "rev": rev, "shape": (batch, time)} if cache else None
        if self.return_sequences:
            out = seq.transpose(1, 0, 2)  # (B, T, M)
            if cache:  # the fast cells return the cache's own states as y: read-only, whichever engine runs
                out.flags.writeable = False
            return out
        last = final[-self.num_directions :]
        return merge_directions([s[0] if isinstance(s, tuple) else s for s in last], self.merge_mode)  # (B, M)

    def backward(self, dout: np.ndarray, dstate: State | None = None) -> np.ndarray:
        """BPTT through every layer and direction: dout (like the output) -> dx (B, T, D).

        ``dstate``: None or the gradient of ``self.state``. Overwrites ``self.grads`` and sets
        ``self.dstate0`` (the gradient of ``state0``, zeros or not).
        """
        if self._cache is None:
            raise ConfigError("backward() needs the cache of a forward(); call forward() first, with cache=True")
        caches, drop_masks, rev = self._cache["caches"], self._cache["drop_masks"], self._cache["rev"]
        batch, time = self._cache["shape"]
        dirs = self.num_directions
        out_shape = (batch, time, self.output_size) if self.return_sequences else (batch, self.output_size)
        dout = check_float_array(dout, "dout", shape=out_shape, dtype=self.dtype, allow_nonfinite=self.return_sequences)
        dstates = self._split_state(dstate, batch, "dstate")
        if self.return_sequences:  # (T, B, M), scanned for NaN/Inf as it is copied: the cells read it in place
            dseq = fast.time_major(dout, "dout")
        else:  # the last output is the final h of the top layer's directions
            dseq = None
            for d, dh in enumerate(split_directions(dout, self.merge_mode, dirs)):
                i = (self.num_layers - 1) * dirs + d
                if dstates[i] is None:
                    dstates[i] = self.module.zero_state(self._config(i), batch, self.dtype)
                if self.cell == "lstm":
                    dstates[i] = (dstates[i][0] + dh, dstates[i][1])
                else:
                    dstates[i] = dstates[i] + dh
        grads: dict[str, np.ndarray] = {}
        dstate0: list[State] = [None] * len(caches)
        for k in reversed(range(self.num_layers)):
            dxs = None
            dys = [None] * dirs if dseq is None else split_directions(dseq, self.merge_mode, dirs)
            for d, dy in enumerate(dys):
                i = k * dirs + d
                if d and dy is not None:
                    dy = reverse_sequences(dy, rev)
                cell_grads, dx, dstate0[i] = self.module.backward(  # dout was scanned above
                    self._cell_params(i), self._config(i), caches[i], dy, dstates[i], check_finite=False
                )
                grads.update({f"{self.prefixes[i]}.{name}": g for name, g in cell_grads.items()})
                dx = reverse_sequences(dx, rev) if d else dx
                dxs = dx if dxs is None else np.add(dxs, dx, out=dxs)  # (T, B, input of layer k)
            if drop_masks[k] is not None:
                dxs *= drop_masks[k]  # through x_k = out_{k-1} * mask
            dseq = dxs
        self.grads = {name: grads[name] for name in self.params}
        self.dstate0 = _stack(dstate0)
        return dseq.transpose(1, 0, 2)  # (B, T, D)

    def __call__(
        self,
        x: np.ndarray,
        state0: State | None = None,
        lengths: np.ndarray | None = None,
        *,
        mask: np.ndarray | None = None,
        training: bool = False,
        cache: bool = True,
    ) -> tuple[np.ndarray, State]:
        """PyTorch-style call: ``out, state = layer(x, state0, lengths)``."""
        out = self.forward(x, state0=state0, lengths=lengths, mask=mask, training=training, cache=cache)
        return out, self.state

    def step(self, x_t: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """One time step for streaming: ``x_t (B, D)`` -> ``(y_t (B, R), state)``; no cache, no dropout.

        ``state`` is the stacked state (None: zeros); feed the returned one back in. Inputs are checked
        once here, then each cell runs its unchecked ``advance``. ``y_t`` and the returned state may
        share memory (as a cell's ``h_t`` and state do): copy ``y_t`` before changing it in place.
        """
        if self.bidirectional:
            raise ConfigError(
                "step() streams one time step, but a bidirectional layer needs the whole sequence for its "
                "reverse direction; use forward(), or build the layer with bidirectional=False"
            )
        if not (type(x_t) is np.ndarray and x_t.ndim == 2 and self._is_clean(x_t, (len(x_t), self.input_size))):
            x_t = self._check_x(x_t, "x_t", 2)  # the full check: converts a list, or raises the specific error
        batch = x_t.shape[0]
        states = self._step_states(state, batch)
        y, new_states = x_t, []
        for i, s in enumerate(states):
            y, s = self.module.advance(self._step_params(i), self._config(i), y, s)
            new_states.append(s)
        if len(new_states) > 1:
            return y, _stack(new_states)
        return y, tuple(part[None] for part in new_states[0]) if self.cell == "lstm" else new_states[0][None]

    def _is_clean(self, a: Any, shape: tuple[int, ...]) -> bool:
        """The common case of step()'s input checks, in one pass: ``a`` is an ndarray of the layer's dtype and
        of this nonempty shape, all finite. False sends ``a`` to the full check (which raises the specific error).

        (``count_nonzero`` of the finite mask: half the cost of ``.all()`` on arrays this small.)
        """
        return (type(a) is np.ndarray and a.dtype == self.dtype and a.shape == shape and a.size > 0
                and np.count_nonzero(np.isfinite(a)) == a.size)

    def _step_states(self, state: Any, batch: int) -> list[State]:
        """step()'s state per cell: zeros for None, views of a clean stacked state, else ``_split_state``'s checks."""
        n = self.num_layers * self.num_directions
        if state is None:
            return [self.module.zero_state(self._config(i), batch, self.dtype) for i in range(n)]
        if self.cell == "lstm":
            if (type(state) is tuple and len(state) == 2 and self._is_clean(state[0], (n, batch, self.state_size))
                    and self._is_clean(state[1], (n, batch, self.hidden_size))):
                return [(state[0][i], state[1][i]) for i in range(n)]
        elif self._is_clean(state, (n, batch, self.state_size)):
            return list(state)
        return self._split_state(state, batch, "state")

    def _step_params(self, i: int) -> dict[str, np.ndarray]:
        """Cell i's plain-named parameters (as ``_cell_params``) for ``advance``, after the shape and dtype checks
        a cell's ``step`` makes (the compiled cells read the arrays unchecked)."""
        p = {}
        for name, shape in self.module.param_shapes(self._config(i)).items():
            key = f"{self.prefixes[i]}.{name}"
            p[name] = a = self.params[key]
            if not (type(a) is np.ndarray and a.dtype == self.dtype and a.shape == shape):
                p[name] = check_float_array(a, key, shape=shape, dtype=self.dtype, allow_nonfinite=True)
        return p


class _OneCell(Recurrent):
    """A Recurrent layer with its cell family fixed by the subclass."""

    cell_name: str

    def __init__(self, input_size: int, hidden_size: int, **kwargs: Any) -> None:
        super().__init__(self.cell_name, input_size, hidden_size, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["cell"]
        return config


class RNN(_OneCell):
    """Elman RNN layer: ``h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``; see :class:`Recurrent`."""

    cell_name = "rnn"


class GRU(_OneCell):
    """GRU layer (gates r, z, n; ``reset_after=True`` as in PyTorch); see :class:`Recurrent`."""

    cell_name = "gru"


class LSTM(_OneCell):
    """LSTM layer (gates i, f, g, o; state ``(h, c)``; projection, peepholes, clipping); see :class:`Recurrent`."""

    cell_name = "lstm"
