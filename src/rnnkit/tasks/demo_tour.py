"""The tour (``rnnkit demo``): a language model, a forecaster and a plot in about a minute, offline.

1. A character-level LSTM language model trains on the built-in *Macbeth* for a fixed number of
   steps, capped in time (stateful truncated BPTT, Adam), reports held-out bits per character next to the unigram
   baseline (a model that ignores context), and writes a sample.
2. An LSTM forecaster trains on the built-in airline passengers series, modelling the change over
   12 months from the last 12 values. It reports one-step RMSE on the last 10 % of the months next
   to the naive and seasonal-naive forecasts, then rolls out over those months and draws the
   roll-out against the truth (if matplotlib is installed).
3. Where to go next.

Every part is bounded in time (``lm_time``, ``forecast_time``), so the tour ends in about a minute
even on a slow or busy machine; there the time cap cuts training short (the tour says so) and the
numbers are worse. On a normal machine the step budget ends first and a seed gives the same numbers.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets, metrics
from .._validation import check_positive_int
from ..data import chronological_split
from ..errors import ConfigError
from .forecasting import Forecaster
from .language_model import LanguageModel
from .plotting import plot_forecast

Echo = Callable[[str], None]

PRIME = "MACBETH.\n"
NO_MATPLOTLIB = "plots need matplotlib; pip install rnnkit[plot] (or matplotlib) and run the demo again"
NEXT_STEPS = (
    ("rnnkit demo addition", "an RNN learns binary addition (the seed tutorial, 100 % on held-out sums)"),
    ("rnnkit demo cells", "one LSTM step gate by gate, checked against rnnkit"),
    ("rnnkit demo sine | primes", "sine roll-out; what an LSTM can (not) do with primes"),
    ("rnnkit demo vanishing", "why LSTM and GRU learn long dependencies a tanh RNN cannot"),
    ("rnnkit train lm FILE.txt --max-time 600", "a language model on your own text"),
    ("rnnkit train forecast FILE.csv --column COL", "a forecaster on your own series"),
    ("rnnkit train classify FILE.jsonl", "a text classifier on labelled texts"),
    ("rnnkit info MODEL / rnnkit evaluate MODEL DATA", "inspect and score a saved model"),
)


@dataclass(frozen=True)
class TourResult:
    """The tour's numbers (language model in bits per character, forecasts in thousands of passengers)."""

    lm_bits_per_char: float  # held-out cross-entropy of the char LM, bits per character
    unigram_bits_per_char: float  # the same for the training character frequencies (no context)
    sample: str  # generated text (after the prime)
    forecast_rmse: float  # one-step RMSE of the forecaster on the test months
    naive_rmse: float  # x̂_t = x_{t-1}
    seasonal_naive_rmse: float  # x̂_t = x_{t-12}
    rollout_rmse: float  # RMSE of the autoregressive roll-out over the test months
    plot: Path | None  # the forecast PNG, or None without matplotlib
    seconds: float  # wall time of the whole tour


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (plots are optional)."""
    return importlib.util.find_spec("matplotlib") is not None


def unigram_bits_per_char(lm: LanguageModel, text: str) -> float:
    """Bits per character of ``text`` under the training character frequencies (add-one smoothed)."""
    p = (lm.unigram + 1.0) / (lm.unigram + 1.0).sum()
    return float(-np.mean(np.log2(p[lm.vocab.encode(list(text))])))


def language_model_part(*, seconds: float, max_steps: int, sample_length: int, seed: int,
                        progress: bool | None, echo: Echo) -> tuple[float, float, str]:
    """Part 1: train a char LSTM on Macbeth for ``max_steps`` steps, at most ``seconds``.

    Returns (held-out bits/char, unigram bits/char, sample).
    """
    text, val_frac = datasets.load_text("shakespeare"), 0.05
    echo(f"[1/3] A character-level LSTM language model on Macbeth ({len(text):,} characters, built in)")
    lm = LanguageModel("char", hidden=128, embedding_dim=32, bptt=50, batch_size=32, lr=3e-3, seed=seed)
    echo(f"      LSTM(128), truncated BPTT over 50 characters, Adam; {max_steps} steps of 32 x 50 characters, "
         f"at most {seconds:g} s ...")
    started = time.monotonic()
    lm.fit(text, val_frac=val_frac, epochs=100, max_steps=max_steps, max_time=seconds, progress=progress)
    elapsed = time.monotonic() - started
    if elapsed >= seconds:  # (elapsed also counts the held-out evaluation, so this may be a near miss)
        echo(f"      (the {seconds:g} s limit was reached, probably before step {max_steps}: this machine is slow "
             "or busy, and the numbers below are worse than a full run's)")
    held_out = text[len(text) - int(len(text) * val_frac) :]  # the tail LanguageModel.fit held out
    bpc, baseline = lm.metrics["bits_per_char"], unigram_bits_per_char(lm, held_out)
    echo(f"      trained in {elapsed:.0f} s; held-out text: {bpc:.2f} bits/char "
         f"(character frequencies alone: {baseline:.2f})")
    sample = "".join(lm.generate(PRIME, sample_length, temperature=0.7, seed=seed))
    echo(f"      sample (temperature 0.7), primed with {PRIME!r}:")
    echo("")
    for line in (PRIME + sample).split("\n"):
        echo(f"        {line}")
    echo("")
    return bpc, baseline, sample


def forecast_part(*, seconds: float, out_dir: Path, seed: int, progress: bool | None, echo: Echo
                  ) -> tuple[dict, float, Path | None]:
    """Part 2: forecast the airline passengers; returns (evaluate() scores, roll-out RMSE, plot path or None)."""
    series = datasets.load_airline()
    echo(f"[2/3] Forecasting airline passengers ({len(series)} months, {series.time[0]} .. {series.time[-1]}, "
         "built in)")
    forecaster = Forecaster(cell="lstm", hidden=32, window=12, difference=12, lr=1e-2, epochs=100, patience=20,
                            seed=seed)
    echo("      LSTM(32) reads the last 12 months' changes over a year and predicts the next one; "
         f"up to {seconds:g} s ...")
    forecaster.fit(series, time_column="month", max_time=seconds, progress=progress)
    scores = forecaster.evaluate(series, split="test")
    _, _, test = chronological_split(len(series))
    values = series.values
    rollout = forecaster.forecast(values[: test.start], test.stop - test.start)
    rollout_rmse = metrics.rmse(values[test], rollout)
    echo(f"      one-step forecasts of the last {scores['n']} months ({series.time[test.start]} .. "
         f"{series.time[-1]}), RMSE in thousands of passengers:")
    echo(f"        {'LSTM forecaster':40}{scores['model']['rmse']:8.1f}")
    echo(f"        {'seasonal naive (same month last year)':40}{scores['seasonal_naive']['rmse']:8.1f}"
         if scores["seasonal_naive"] else "        (no seasonal-naive baseline: no season found)")
    echo(f"        {'naive (last month)':40}{scores['naive']['rmse']:8.1f}")
    echo(f"      {scores['n']}-month roll-out (each forecast fed back as input): RMSE {rollout_rmse:.1f}")
    plot = out_dir / "airline_forecast.png" if matplotlib_available() else None
    if plot is None:
        echo(f"      no plot: {NO_MATPLOTLIB}")
    else:
        plot_forecast(values[: test.start][-36:], values[test], rollout, plot, names=["passengers (thousands)"],
                      title=f"airline passengers: {len(rollout)}-month roll-out from {series.time[test.start]}")
        echo(f"      plot: {plot}")
    echo("")
    return scores, rollout_rmse, plot


def tour(*, out_dir: str | Path = ".", seed: int = 0, lm_time: float = 45.0, lm_steps: int = 450,
         forecast_time: float = 15.0, sample_length: int = 300, progress: bool | None = None,
         echo: Echo = print) -> TourResult:
    """Run the three parts; the plot goes to ``out_dir/airline_forecast.png``.

    The language model trains ``lm_steps`` steps (reproducible for a seed) unless ``lm_time``
    seconds pass first; the forecaster stops early on its validation loss or after ``forecast_time``.
    """
    for name, value in (("lm_time", lm_time), ("forecast_time", forecast_time)):
        if not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    lm_steps = check_positive_int(lm_steps, "lm_steps")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    echo("rnnkit tour: a language model, a forecaster and a plot in about a minute, on built-in data "
         "(nothing is downloaded).")
    echo("")
    bpc, unigram, sample = language_model_part(seconds=lm_time, max_steps=lm_steps, sample_length=sample_length,
                                               seed=seed, progress=progress, echo=echo)
    scores, rollout_rmse, plot = forecast_part(seconds=forecast_time, out_dir=out, seed=seed, progress=progress,
                                               echo=echo)
    echo("[3/3] Where next")
    for command, what in NEXT_STEPS:
        echo(f"      {command:48} {what}")
    echo(f"      built-in data for your own runs: {datasets.path('shakespeare').parent}")
    seconds = time.monotonic() - started
    echo(f"tour finished in {seconds:.0f} s.")
    seasonal = scores["seasonal_naive"]["rmse"] if scores["seasonal_naive"] else float("nan")
    return TourResult(lm_bits_per_char=bpc, unigram_bits_per_char=unigram, sample=sample,
                      forecast_rmse=scores["model"]["rmse"], naive_rmse=scores["naive"]["rmse"],
                      seasonal_naive_rmse=seasonal, rollout_rmse=rollout_rmse, plot=plot, seconds=seconds)
