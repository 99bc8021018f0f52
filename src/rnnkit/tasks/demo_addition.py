"""Demo: an RNN learns 8-bit binary addition (the seed tutorial's NumPy adder, on rnnkit).

Two numbers a, b < 2^(bits-1) are read one bit pair per time step, least significant bit first;
at each step the network outputs one bit of c = a + b. The carry is what the hidden state must
remember. As in the seed (iamtrask's adder): 16 sigmoid hidden units, a sigmoid output unit,
the squared error summed over the bits, plain SGD on one random pair at a time, weights drawn
uniform in [-1, 1] (rnnkit's RNN also has biases, which the seed omits)::

    h_t = σ(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)      x_t = (a_t, b_t),  h_t (16,)
    ŷ_t = σ(h_t W^T)                                         the predicted bit t of c
    E   = Σ_t ½ (ŷ_t - c_t)²,   W ← W - lr ∂E/∂W            (BPTT by rnnkit)

A fifth of all pairs is held out and never trained on; accuracy counts a pair correct when every
bit of c is right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int, check_probability
from ..layers.dense import Dense
from ..layers.recurrent import Recurrent
from ..models import Sequential
from ..optim import SGD
from ..train import Trainer

Echo = Callable[[str], None]


@dataclass(frozen=True)
class AdditionResult:
    """What the adder demo measured."""

    held_out_accuracy: float  # fraction of held-out pairs with every bit of a + b right
    held_out_pairs: int  # number of held-out (a, b) pairs
    errors: list[float]  # E of the training sample at each progress line
    model: Sequential


def to_bits(n: np.ndarray, bits: int) -> np.ndarray:
    """Integers ``(N,)`` -> their bits ``(N, bits)``, least significant first."""
    return (np.asarray(n)[:, None] >> np.arange(bits)) & 1


def from_bits(b: np.ndarray) -> np.ndarray:
    """Bits ``(N, bits)``, least significant first -> integers ``(N,)``."""
    return (np.asarray(b, dtype=np.int64) << np.arange(b.shape[-1])).sum(axis=-1)


def addition_data(a: np.ndarray, b: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``x (N, bits, 2)`` (bit t of a and of b) and targets ``y (N, bits, 1)`` (bit t of a + b)."""
    x = np.stack([to_bits(a, bits), to_bits(b, bits)], axis=-1).astype(np.float64)
    return x, to_bits(a + b, bits)[..., None].astype(np.float64)


def half_sum_squares(pred: np.ndarray, target: np.ndarray, mask: object = None) -> tuple[float, np.ndarray]:
    """The seed's error E = Σ ½ (ŷ - y)² per sample (summed over bits, averaged over the batch); dE/dŷ."""
    d = pred - target
    n = len(pred)
    return float(0.5 * np.sum(d * d) / n), d / n


def binary_addition(
    *,
    bits: int = 8,
    hidden: int = 16,
    samples: int = 10000,
    lr: float = 0.1,
    held_out: float = 0.2,
    report_every: int = 1000,
    seed: int = 0,
    echo: Echo = print,
) -> AdditionResult:
    """Train the adder on ``samples`` random training pairs (SGD, one pair per step); score the held-out pairs."""
    bits, hidden = check_positive_int(bits, "bits", minimum=2), check_positive_int(hidden, "hidden")
    samples, report_every = check_positive_int(samples, "samples"), check_positive_int(report_every, "report_every")
    held_out = check_probability(held_out, "held_out")
    rng = np.random.default_rng(seed)
    half = 2 ** (bits - 1)  # a, b < half, so that a + b fits in `bits` bits
    pairs = rng.permutation(half * half)
    n_test = int(len(pairs) * held_out)
    test, train = pairs[:n_test], pairs[n_test:]

    model = Sequential([
        Recurrent("rnn", 2, hidden, activation="sigmoid", dtype=np.float64, seed=rng),
        Dense(hidden, 1, activation="sigmoid", use_bias=False, dtype=np.float64, seed=rng),
    ], name="binary_adder")
    for p in model.params.values():  # the seed's 2 * random - 1
        p[...] = rng.uniform(-1.0, 1.0, p.shape)
    trainer = Trainer(model, half_sum_squares, SGD(model.params, lr=lr), seed=seed)

    echo(f"binary addition: {bits}-bit sums, {hidden} sigmoid units, SGD lr={lr}, {samples} training pairs drawn "
         f"from {len(train)}; {len(test)} pairs held out")
    errors = []
    picks = rng.choice(train, size=samples)
    a_all, b_all = picks // half, picks % half
    x_all, y_all = addition_data(a_all, b_all, bits)
    for j in range(samples):
        report = j % report_every == 0 or j == samples - 1
        if report:  # the prediction the step below learns from, as the seed prints it
            pred = np.round(model.predict(x_all[j : j + 1])[0, :, 0]).astype(int)
        error, _ = trainer.step(x_all[j : j + 1], y_all[j : j + 1])
        if report:
            errors.append(error)
            echo(f"Error: {error:.4f}  Pred: {pred[::-1]}  True: {y_all[j, ::-1, 0].astype(int)}  "
                 f"{a_all[j]} + {b_all[j]} = {from_bits(pred[None])[0]}")

    a, b = test // half, test % half
    x, y = addition_data(a, b, bits)
    pred_bits = (model.predict(x)[..., 0] > 0.5).astype(int)  # (N, bits)
    correct = np.all(pred_bits == y[..., 0], axis=1)
    accuracy = float(correct.mean()) if len(test) else float("nan")
    echo(f"held-out pairs: {int(correct.sum())}/{len(test)} sums exactly right ({accuracy:.1%})")
    return AdditionResult(held_out_accuracy=accuracy, held_out_pairs=len(test), errors=errors, model=model)
