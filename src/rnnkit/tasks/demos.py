"""The seed tutorials reproduced: every demo is a function that prints through ``echo`` and returns its numbers.

========== =========================================== =====================================
demo       what                                        seed
========== =========================================== =====================================
tour       char LM on Macbeth + airline forecast + plot (all: the README's first command)
sine       sine next-value prediction, 50-step roll-out 000 (Keras), 004 (PyTorch nn.RNN)
addition   8-bit binary addition RNN, manual SGD       003 (iamtrask's NumPy adder)
primes     LSTM predicting the next prime from 50      003 (LstmNetwork on primes)
cells      minimal Keras cell and TF1 LSTMCell step    000
vanishing  tanh RNN vs GRU vs LSTM across growing T     001, 004 (vanishing gradients)
========== =========================================== =====================================

The functions live in ``demo_*.py`` beside this module; ``docs/demos.md`` shows their output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .demo_addition import AdditionResult, binary_addition
from .demo_cells import CellsResult, cells
from .demo_primes import PrimesResult, primes
from .demo_tour import NO_MATPLOTLIB, TourResult, matplotlib_available, tour
from .sine import SineDemoResult, sine_demo
from .vanishing import VanishingResult, vanishing_demo

Echo = Callable[[str], None]

__all__ = ["DEMOS", "AdditionResult", "CellsResult", "PrimesResult", "SineDemoResult", "TourResult",
           "VanishingResult", "binary_addition", "cells", "primes", "sine", "tour", "vanishing"]


def sine(*, out_dir: str | Path = ".", seed: int = 0, progress: bool | None = None,
         echo: Echo = print) -> SineDemoResult:
    """The sine demo of :mod:`rnnkit.tasks.sine`, reported line by line; the plot goes to ``out_dir/sine.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot = out / "sine.png" if matplotlib_available() else None
    echo("sine: a GRU(32) learns sin(x) on 1000 points of [-100, 100] from windows of 50 values, "
         "then predicts 50 values feeding each prediction back in")
    result = sine_demo(seed=seed, plot=plot, progress=progress)
    echo(f"one-step test MSE {result.test_mse:.2e} (naive y[t-1]: {result.naive_mse:.2e})")
    echo(f"50-step roll-out: max |error| {result.max_rollout_error:.3f}")
    echo(f"plot: {plot}" if plot else f"no plot: {NO_MATPLOTLIB}")
    return result


def vanishing(*, out_dir: str | Path = ".", seed: int = 0, progress: bool | None = None,
              echo: Echo = print) -> VanishingResult:
    """The vanishing-gradient demo of :mod:`rnnkit.tasks.vanishing`; the plot goes to ``out_dir/vanishing.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = vanishing_demo(seed=seed)
    echo(result.to_text())
    if matplotlib_available():
        result.plot(out / "vanishing.png")
        echo(f"plot: {out / 'vanishing.png'}")
    else:
        echo(f"no plot: {NO_MATPLOTLIB}")
    return result


DEMOS: dict[str, Callable[..., object]] = {
    "tour": tour,
    "sine": sine,
    "addition": binary_addition,
    "primes": primes,
    "cells": cells,
    "vanishing": vanishing,
}
"""Demo name (``rnnkit demo NAME``) -> function; each takes ``seed=`` and ``echo=``."""
