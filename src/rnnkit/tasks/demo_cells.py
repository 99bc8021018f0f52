"""Demo: one step of the seed tutorial's two cells, gate by gate, checked against rnnkit's cells.

1. The Keras ``MinimalRNNCell`` (a linear RNN without bias)::

       h_t = x_t · kernel + h_{t-1} · recurrent_kernel

   is rnnkit's RNN cell with ``activation="linear"``, ``W_ih = kernelᵀ``, ``W_hh = recurrent_kernelᵀ``
   and zero biases.

2. TensorFlow 1 ``LSTMCell.call``: one kernel over the concatenation ``[x_t, h_{t-1}]``, gate blocks
   in the order i, j, f, o, and ``forget_bias`` added at run time::

       i, j, f, o = split([x_t, h_{t-1}] · kernel + bias, 4)
       c_t = σ(f + forget_bias) ⊙ c_{t-1} + σ(i) ⊙ tanh(j)
       h_t = σ(o) ⊙ tanh(c_t)

   rnnkit's LSTM cell computes the same with its own layout (gates i, f, g, o; ``g`` is TF1's
   ``j``); :mod:`rnnkit.convert.layouts` maps the kernel.

Each step is computed here in plain NumPy, printed with its equation, and compared with
``rnnkit.cells.rnn.step`` / ``rnnkit.cells.lstm.step`` in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..cells import lstm, rnn
from ..convert.layouts import biases_from, split_xh_kernel, to_canonical
from ..ops import sigmoid

Echo = Callable[[str], None]


@dataclass(frozen=True)
class CellsResult:
    """The NumPy walk-through's numbers and rnnkit's, for both cells (batch of one, float64)."""

    minimal_numpy: np.ndarray  # h_t of the Keras minimal cell, (1, H)
    minimal_rnnkit: np.ndarray
    lstm_gates: dict[str, np.ndarray]  # i, j, f, o pre-activations and c, h, each (1, H)
    lstm_rnnkit: tuple[np.ndarray, np.ndarray]  # (h_t, c_t) from rnnkit.cells.lstm.step

    @property
    def max_difference(self) -> float:
        """The largest |NumPy - rnnkit| over every output of both cells."""
        return float(max(np.abs(self.minimal_numpy - self.minimal_rnnkit).max(),
                         np.abs(self.lstm_gates["h"] - self.lstm_rnnkit[0]).max(),
                         np.abs(self.lstm_gates["c"] - self.lstm_rnnkit[1]).max()))


def _show(v: np.ndarray) -> str:
    return np.array2string(np.asarray(v).ravel(), precision=4, floatmode="fixed", sign=" ")


def _row(label: str, value: np.ndarray, note: str = "") -> str:
    """One printed line: the equation, then its value."""
    return f"  {label:<44} = {_show(value)}{note}"


def minimal_rnn_step(x: np.ndarray, h_prev: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                     echo: Echo) -> np.ndarray:
    """The Keras ``MinimalRNNCell.call`` in NumPy, printing each product: ``x·kernel + h_prev·recurrent_kernel``."""
    xk, hr = x @ kernel, h_prev @ recurrent_kernel
    h = xk + hr
    echo(_row("x_t · kernel", xk))
    echo(_row("h_(t-1) · recurrent_kernel", hr))
    echo(_row("h_t = x_t · kernel + h_(t-1) · rec_kernel", h))
    return h


def tf1_lstm_step(x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, kernel: np.ndarray, bias: np.ndarray,
                  forget_bias: float, echo: Echo) -> dict[str, np.ndarray]:
    """TF1 ``LSTMCell.call`` (no peepholes, clipping or projection) in NumPy, printing every gate."""
    z = np.concatenate([x, h_prev], axis=1) @ kernel + bias  # (1, 4H)
    i, j, f, o = np.split(z, 4, axis=1)
    c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * np.tanh(j)
    h = sigmoid(o) * np.tanh(c)
    echo("  i, j, f, o = split([x_t, h_(t-1)] · kernel + bias, 4)   (pre-activations)")
    for name, value, meaning in (("i", i, "input gate"), ("j", j, "new input"), ("f", f, "forget gate"),
                                 ("o", o, "output gate")):
        echo(_row(f"{name}  ({meaning})", value))
    echo(_row(f"σ(f + forget_bias)   (forget_bias = {forget_bias:g})", sigmoid(f + forget_bias)))
    echo(_row("σ(i) ⊙ tanh(j)", sigmoid(i) * np.tanh(j)))
    echo(_row("c_t = σ(f + fb) ⊙ c_(t-1) + σ(i) ⊙ tanh(j)", c))
    echo(_row("h_t = σ(o) ⊙ tanh(c_t)", h))
    return {"i": i, "j": j, "f": f, "o": o, "c": c, "h": h}


def cells(*, input_size: int = 2, hidden: int = 3, forget_bias: float = 1.0, seed: int = 0,
          echo: Echo = print) -> CellsResult:
    """Walk through one step of each cell on random weights and state; check rnnkit's step against it."""
    rng = np.random.default_rng(seed)
    D, H = input_size, hidden
    x, h_prev, c_prev = rng.normal(size=(1, D)), rng.normal(size=(1, H)), rng.normal(size=(1, H))

    echo(f"1. Keras MinimalRNNCell(units={H}) on x_t = {_show(x)}, h_(t-1) = {_show(h_prev)}")
    kernel, recurrent_kernel = rng.uniform(-0.5, 0.5, (D, H)), rng.uniform(-0.5, 0.5, (H, H))
    h_numpy = minimal_rnn_step(x, h_prev, kernel, recurrent_kernel, echo)
    cfg = rnn.RNNConfig(D, H, activation="linear")
    p = {"W_ih": kernel.T.copy(), "W_hh": recurrent_kernel.T.copy(), "b_ih": np.zeros(H), "b_hh": np.zeros(H)}
    h_rnnkit, _ = rnn.step(p, cfg, x, h_prev)
    echo(_row("rnnkit.cells.rnn.step, activation='linear'", h_rnnkit,
              f"   max |diff| = {np.abs(h_numpy - h_rnnkit).max():.1e}"))

    echo(f"2. TF1 LSTMCell(num_units={H}) on the same x_t, h_(t-1), and c_(t-1) = {_show(c_prev)}")
    kernel, bias = rng.uniform(-0.5, 0.5, (D + H, 4 * H)), rng.uniform(-0.5, 0.5, 4 * H)
    gates = tf1_lstm_step(x, h_prev, c_prev, kernel, bias, forget_bias, echo)
    W_ih, W_hh = split_xh_kernel(kernel, D)  # (4H, D), (4H, H) in TF1's gate order i, j, f, o
    b_ih, b_hh = biases_from("single", bias, 4 * H)
    p = {"W_ih": to_canonical(W_ih, "tf1", "lstm"), "W_hh": to_canonical(W_hh, "tf1", "lstm"),
         "b_ih": to_canonical(b_ih, "tf1", "lstm"), "b_hh": b_hh}
    h_t, (_, c_t) = lstm.step(p, lstm.LSTMConfig(D, H, forget_bias=forget_bias), x, (h_prev, c_prev))
    for name, value in (("c", c_t), ("h", h_t)):
        echo(_row(f"rnnkit.cells.lstm.step: {name}_t", value,
                  f"   max |diff| = {np.abs(gates[name] - value).max():.1e}"))
    result = CellsResult(h_numpy, h_rnnkit, gates, (h_t, c_t))
    echo(f"rnnkit's steps match the gate-by-gate NumPy computation to {result.max_difference:.1e} (float64).")
    return result
