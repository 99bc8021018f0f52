"""Demo: an LSTM predicts the next prime from the 50 before it, and what that is worth.

The seed tutorial trains a NumPy LSTM on 10 windows of the primes below 100 (divided by 100,
wrapping around) and reports a squared error of 1e-6: with 10 samples and 100 cells that is
memorisation, and it says nothing about primes the network has not seen. Here the primes are
split in order: the network trains on the first 80 %, stops early on the next 10 % and is scored
on the last 10 %, which are larger than any prime it saw.

Scaling: a network with saturating units cannot output numbers beyond its training range, so it
reads and predicts the gaps ``g_n = p_n - p_{n-1}`` (standardised on the training part) and the
forecast is ``p̂_{n+1} = p_n + ĝ_{n+1}`` (a :class:`~rnnkit.tasks.forecasting.Forecaster` with
``difference=1``). Two honest scores on the held-out primes:

- MAE ``|p̂ - p|`` (the error of the predicted gap) and relative error ``|p̂ - p| / p``, which is
  small for any forecast near ``p_n``, since ``p`` is large;
- hit rate: ``p̂`` rounded to the nearest prime equals the true next prime.

Both are compared with the baseline ``p̂ = p_n + mean training gap``. Prime gaps are irregular
(their mean grows like ``ln p``), so neither the LSTM nor the baseline gets near 100 %; the exact
answer takes a primality test of the next few odd numbers, not a neural network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int
from ..data import chronological_split
from .forecasting import Forecaster

Echo = Callable[[str], None]


@dataclass(frozen=True)
class PrimesResult:
    """Scores on the held-out primes (the last ``test_frac`` of the sequence)."""

    n_test: int  # held-out primes predicted
    relative_error: float  # mean |p̂ - p| / p of the LSTM
    hit_rate: float  # fraction where the nearest prime to p̂ is the true next prime
    baseline_relative_error: float  # the same for p̂ = p_n + mean training gap
    baseline_hit_rate: float
    mae: float  # mean |p̂ - p| = mean |ĝ - g| of the LSTM
    baseline_mae: float


def first_primes(n: int) -> np.ndarray:
    """The first ``n`` primes, ``(n,)`` int64, by the sieve of Eratosthenes."""
    n = check_positive_int(n, "n")
    limit = max(16, int(n * (np.log(n) + np.log(np.log(n + 2)) + 2)))  # > p_n for every n
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for k in range(2, int(limit**0.5) + 1):
        if sieve[k]:
            sieve[k * k :: k] = False
    return np.flatnonzero(sieve)[:n].astype(np.int64)


def nearest_prime(x: np.ndarray, primes: np.ndarray) -> np.ndarray:
    """For each ``x``, the element of the sorted ``primes`` closest to it (ties go to the smaller)."""
    i = np.clip(np.searchsorted(primes, x), 1, len(primes) - 1)
    lower, upper = primes[i - 1], primes[i]
    return np.where(x - lower <= upper - x, lower, upper)


def primes(
    *,
    n: int = 1200,
    window: int = 50,
    hidden: int = 32,
    epochs: int = 30,
    lr: float = 3e-3,
    max_time: float | None = 30.0,
    seed: int = 0,
    echo: Echo = print,
) -> PrimesResult:
    """Train an LSTM forecaster on the gaps of the first ``n`` primes; score it on the last 10 %."""
    p = first_primes(check_positive_int(n, "n")).astype(np.float64)
    forecaster = Forecaster(cell="lstm", hidden=hidden, window=window, difference=1, epochs=epochs, lr=lr,
                            patience=5, season=1, seed=seed)
    echo(f"primes: an LSTM({hidden}) reads the gaps between {window} consecutive primes and predicts the next one; "
         f"{n} primes (2 .. {int(p[-1])}), split 80/10/10 in order")
    forecaster.fit(p, max_time=max_time, progress=False)
    train_part, _, test = chronological_split(len(p))  # the Forecaster's default 80/10/10 parts
    truth, previous = p[test], p[test.start - 1 : test.stop - 1]
    p_hat = forecaster.predict(p)[test.start - forecaster.context :]  # p̂_n for the held-out n
    mean_gap = float(np.mean(np.diff(p[train_part])))
    baseline = previous + mean_gap
    table = np.concatenate([p, first_primes(2 * n)[n:].astype(np.float64)])  # primes beyond p_n to round to

    def score(forecast: np.ndarray) -> tuple[float, float, float]:
        hits = nearest_prime(forecast, table) == truth
        error = np.abs(forecast - truth)  # = |ĝ - g|: both forecasts add their gap to the same p_n
        return float(np.mean(error / truth)), float(np.mean(hits)), float(np.mean(error))

    (rel, hit, mae), (b_rel, b_hit, b_mae) = score(p_hat), score(baseline)
    for k in range(3):
        guess = int(nearest_prime(p_hat[k : k + 1], table)[0])
        echo(f"after {int(previous[k])}: LSTM predicts {p_hat[k]:.1f} -> nearest prime {guess}, "
             f"true next prime {int(truth[k])} {'(hit)' if guess == truth[k] else '(miss)'}")
    echo(f"held-out primes ({len(truth)}, {int(truth[0])} .. {int(truth[-1])}):")
    echo(f"  {'':34}{'rel. error':>12}{'MAE':>10}{'hit rate':>10}")
    echo(f"  {'LSTM':34}{rel:>12.2e}{mae:>10.2f}{hit:>10.1%}")
    echo(f"  {f'p_n + mean training gap ({mean_gap:.2f})':34}{b_rel:>12.2e}{b_mae:>10.2f}{b_hit:>10.1%}")
    echo("The relative error is small because p_n is already close to p_n+1. Prime gaps are irregular, so a "
         "network guesses about the average gap; the exact next prime needs a primality test, not an LSTM.")
    return PrimesResult(n_test=len(truth), relative_error=rel, hit_rate=hit, baseline_relative_error=b_rel,
                        baseline_hit_rate=b_hit, mae=mae, baseline_mae=b_mae)
