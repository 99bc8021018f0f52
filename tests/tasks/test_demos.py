"""The demos' numbers: each checked against an independent computation or a stated bound."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from rnnkit import datasets
from rnnkit.errors import ConfigError
from rnnkit.tasks.demo_addition import from_bits, to_bits
from rnnkit.tasks.demo_cells import _show
from rnnkit.tasks.demo_primes import first_primes, nearest_prime
from rnnkit.tasks.demos import DEMOS, binary_addition, cells, primes, tour


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def test_binary_addition_reaches_100_percent_on_held_out_pairs():
    lines: list[str] = []
    with threadpool_limits(1):
        result = binary_addition(seed=0, echo=lines.append)
    assert result.held_out_accuracy == 1.0
    assert result.held_out_pairs == 3276  # a fifth of the 128 * 128 pairs
    assert result.errors[-1] < 0.1 * result.errors[0]
    progress = [line for line in lines if line.startswith("Error:")]
    assert len(progress) == 11 and all("Pred: [" in s and "True: [" in s and " + " in s for s in progress)
    a, b, total = (int(v) for v in progress[-1].replace("+", " ").replace("=", " ").split()[-3:])
    assert a + b == total  # the last printed sum is right

    # Independent check: the trained weights, run by a plain NumPy loop (the seed's equations), add
    # every pair a, b < 128 correctly, held out or not.
    p = {k: v.astype(np.float64) for k, v in result.model.params.items()}
    a, b = np.divmod(np.arange(128 * 128), 128)
    bits_a, bits_b = to_bits(a, 8), to_bits(b, 8)
    h = np.zeros((len(a), 16))
    out = np.empty((len(a), 8))
    for t in range(8):
        x_t = np.stack([bits_a[:, t], bits_b[:, t]], axis=1)
        h = _sigmoid(x_t @ p["0.l0.W_ih"].T + p["0.l0.b_ih"] + h @ p["0.l0.W_hh"].T + p["0.l0.b_hh"])
        out[:, t] = _sigmoid(h @ p["1.W"].T)[:, 0]
    assert np.array_equal(from_bits(out > 0.5), a + b)


def test_bits_round_trip():
    n = np.array([0, 1, 2, 69, 255])
    assert to_bits(n, 8)[3].tolist() == [1, 0, 1, 0, 0, 0, 1, 0]  # 69 = 0b01000101, least significant first
    assert from_bits(to_bits(n, 8)).tolist() == n.tolist()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_cells_walkthrough_equals_rnnkit_steps(seed):
    lines: list[str] = []
    result = cells(seed=seed, echo=lines.append)
    assert result.max_difference < 1e-12
    np.testing.assert_allclose(result.lstm_gates["h"], result.lstm_rnnkit[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.lstm_gates["c"], result.lstm_rnnkit[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.minimal_numpy, result.minimal_rnnkit, rtol=0, atol=1e-12)
    # The printed numbers are the returned ones, next to their equations.
    text = "\n".join(lines)
    for gate in ("i", "j", "f", "o", "c", "h"):
        assert _show(result.lstm_gates[gate]) in text
    assert "c_t = σ(f + fb) ⊙ c_(t-1) + σ(i) ⊙ tanh(j)" in text and "h_t = σ(o) ⊙ tanh(c_t)" in text


def test_first_primes_and_nearest_prime_against_trial_division():
    p = first_primes(300)
    naive = [n for n in range(2, int(p[-1]) + 1) if all(n % d for d in range(2, int(n**0.5) + 1))]
    assert p.tolist() == naive
    assert nearest_prime(np.array([8.0, 9.0, 10.0, 24.9]), p).tolist() == [7, 7, 11, 23]


def test_primes_demo_error_bounds():
    """Stated bounds: mean relative error below 1e-3 on the held-out primes, and the LSTM no worse than
    1.5x the mean-gap baseline's absolute error (prime gaps are irregular; neither is exact)."""
    with threadpool_limits(1):
        result = primes(epochs=8, max_time=20, seed=0, echo=lambda s: None)
    assert result.n_test == 120
    assert result.relative_error < 1e-3
    assert result.mae < 1.5 * result.baseline_mae
    assert 0.0 <= result.hit_rate <= 1.0 and 0.0 <= result.baseline_hit_rate <= 1.0


def test_tour_parts_within_bounds_and_writes_png(tmp_path):
    lines: list[str] = []
    with threadpool_limits(1):
        result = tour(out_dir=tmp_path, lm_time=30, lm_steps=40, forecast_time=15, sample_length=80,
                      progress=False, echo=lines.append)
    # 1: after 40 steps the LM beats character frequencies by a clear margin.
    assert result.lm_bits_per_char < result.unigram_bits_per_char - 0.5
    assert 4.0 < result.unigram_bits_per_char < 5.5
    assert len(result.sample) == 80
    # 2: the forecaster beats the seasonal-naive baseline on the test months (measured ~18 vs 52).
    assert result.forecast_rmse < 0.7 * result.seasonal_naive_rmse
    assert result.rollout_rmse < result.seasonal_naive_rmse
    # the seasonal-naive RMSE, recomputed independently from the CSV: last 14 months vs 12 months before
    y = datasets.load_airline().values
    assert result.seasonal_naive_rmse == pytest.approx(np.sqrt(np.mean((y[-14:] - y[-26:-12]) ** 2)))
    assert result.plot == tmp_path / "airline_forecast.png"
    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = "\n".join(lines)
    assert "[1/3]" in text and "[2/3]" in text and "[3/3]" in text and "rnnkit demo addition" in text


def test_tour_rejects_bad_budgets(tmp_path):
    with pytest.raises(ConfigError, match="lm_time must be a positive number of seconds, got 0"):
        tour(out_dir=tmp_path, lm_time=0, echo=lambda s: None)


def test_demo_registry_names():
    from rnnkit.cli.cmd_demo import DESCRIPTIONS

    assert list(DEMOS) == ["tour", "sine", "addition", "primes", "cells", "vanishing"]
    assert list(DESCRIPTIONS) == list(DEMOS)  # every demo is described in `rnnkit demo --help`


def test_builtin_datasets():
    series = datasets.load_airline()
    assert series.values.shape == (144,) and series.time[0] == "1949-01" and series.values[0] == 112
    text = datasets.load_text("shakespeare")
    assert text.startswith("MACBETH") and len(text) == 103_428 and text.isascii()
    assert "红楼梦" not in text and datasets.load_text("hongloumeng").startswith("第一回")
    for name in datasets.NAMES:
        assert datasets.path(name).is_file()
    assert (datasets.path("airline").parent / "DATA_LICENSES.md").is_file()
    with pytest.raises(ConfigError, match="unknown built-in data set 'nope'; the built-in data sets are"):
        datasets.path("nope")
    with pytest.raises(ConfigError, match="'airline' is not a built-in text"):
        datasets.load_text("airline")
