"""Tests of rnnkit.tasks.forecasting (Forecaster), the sine demo and plot_forecast.

Reference values are computed here independently: scaler statistics with NumPy on the training
slice, baselines and metrics by hand, the roll-out with a hand-written loop over the raw model.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rnnkit.data import SeriesData
from rnnkit.errors import ConfigError, DataError, ModelFileError
from rnnkit.io.model import load_model, save_model
from rnnkit.tasks.forecasting import Forecaster, future_times
from rnnkit.tasks.plotting import plot_forecast
from rnnkit.tasks.sine import sine_demo, sine_wave

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def seasonal_series(n: int = 200, seed: int = 0) -> np.ndarray:
    """Trend + season of 12 + noise: the shape of a monthly business series."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.3, n)
    return 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12) + noise  # (n,)


def quick(**kwargs) -> Forecaster:
    """A tiny, fast forecaster (a couple of epochs: these tests check mechanics, not skill)."""
    params = dict(cell="gru", hidden=8, window=12, epochs=2, lr=1e-2, seed=0)
    params.update(kwargs)
    return Forecaster(**params)


# ---- learning --------------------------------------------------------------------------------


def test_sine_next_value_and_rollout(tmp_path):
    """The seeds' demo: windows of 50, test MSE < 1e-3, a 50-step roll-out within 0.1 of the sine."""
    result = sine_demo(cell="lstm", hidden=16, epochs=8, seed=0, plot=tmp_path / "sine.png", progress=False)
    assert result.test_mse < 1e-3
    assert result.test_mse < result.naive_mse / 10  # it learned more than "repeat the last value"
    np.testing.assert_allclose(result.truth, sine_wave(1000, extra=50)[1000:])
    assert result.rollout.shape == (50,)
    assert result.max_rollout_error < 0.1
    assert (tmp_path / "sine.png").read_bytes().startswith(PNG_MAGIC)


# ---- mechanics -------------------------------------------------------------------------------


@pytest.mark.parametrize("difference", [0, 1, 12])
def test_forecast_is_the_autoregressive_loop(difference):
    """forecast() equals a hand loop: scale, predict, unscale, undo the differencing, feed back."""
    y = seasonal_series()
    f = quick(difference=difference).fit(y, progress=False)
    steps, W, d = 15, f.window, difference
    shift, scale = float(f.scaler_.shift_[0]), float(f.scaler_.scale_[0])

    x = list(y)  # grows with each forecast
    u = [x[t] - x[t - d] if d else x[t] for t in range(len(x))]  # differenced series
    window = [(v - shift) / scale for v in u[-W:]]
    for _ in range(steps):
        z = f.model_.forward(np.array(window, np.float32).reshape(1, W, 1))[0, 0]
        x.append(float(z) * scale + shift + (x[-d] if d else 0.0))
        window = window[1:] + [float(z)]
    np.testing.assert_allclose(f.forecast(y, steps), x[len(y):], rtol=1e-6, atol=1e-6)


def test_scaler_is_fitted_on_the_training_part_only(tmp_path):
    y = seasonal_series(200)  # split 0.1/0.1 of 200 steps: train = the first 160
    f = quick().fit(y, val_frac=0.1, test_frac=0.1, progress=False)
    np.testing.assert_allclose(f.scaler_.shift_, [y[:160].mean()], rtol=1e-12)
    np.testing.assert_allclose(f.scaler_.scale_, [y[:160].std()], rtol=1e-12)
    assert abs(f.scaler_.shift_[0] - y.mean()) > 0.1  # the trend makes the whole-series mean differ

    g = quick(scaler="minmax", difference=1).fit(y, progress=False)
    dy = np.diff(y[:160])
    np.testing.assert_allclose(g.scaler_.shift_, [dy.min()], rtol=1e-12)
    np.testing.assert_allclose(g.scaler_.scale_, [dy.max() - dy.min()], rtol=1e-12)

    g.save(tmp_path / "m.safetensors")  # the file stores exactly these statistics
    _, task = load_model(tmp_path / "m.safetensors")
    assert task["scaler"] == {"type": "minmax", "shift": [dy.min()], "scale": [dy.max() - dy.min()],
                              "feature_range": [0.0, 1.0]}


def test_windows_of_are_the_scaled_differenced_windows():
    y = seasonal_series(200)
    f = quick(difference=1).fit(y, progress=False)
    x, targets = f.windows_of(y, last=3)
    z = (np.diff(y) - f.scaler_.shift_[0]) / f.scaler_.scale_[0]  # z_t = scaled u_t = y_t - y_{t-1}, at z[t - 1]
    expected_x = np.stack([z[t - 1 - f.window : t - 1] for t in (197, 198, 199)])[..., None]  # (3, W, 1)
    np.testing.assert_allclose(x, expected_x, rtol=1e-5)
    np.testing.assert_allclose(targets, z[[196, 197, 198], None], rtol=1e-5)
    assert x.dtype == targets.dtype == f.model_.layers[-1].dtype
    assert len(f.windows_of(y)[0]) == 200 - f.context  # every target after the first context


def test_evaluate_matches_hand_computed_baselines():
    y = seasonal_series(200)
    f = quick(season=12).fit(y, progress=False)
    scores = f.evaluate(y, split="test")
    t = np.arange(180, 200)  # the test targets
    mase_scale = np.mean(np.abs(np.diff(y[:160])))  # naive one-step MAE in training
    pred = f.predict(y)[t - f.window]  # predict() starts at t = window
    for name, y_hat in (("model", pred), ("naive", y[t - 1]), ("seasonal_naive", y[t - 12])):
        err = y[t] - y_hat
        assert scores[name]["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
        assert scores[name]["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
        assert scores[name]["mase"] == pytest.approx(np.mean(np.abs(err)) / mase_scale, rel=1e-9)
    assert scores["n"] == 20 and scores["season"] == 12 and scores["split"] == "test"
    assert f.evaluate(y, split="all")["n"] == 200 - f.window


def test_season_is_detected_on_the_training_part():
    assert quick().fit(seasonal_series(200), progress=False).season_ == 12
    no_season = np.cumsum(np.random.default_rng(1).normal(size=200))  # a random walk
    f = quick().fit(no_season, progress=False)
    assert f.season_ is None and f.evaluate(no_season)["seasonal_naive"] is None


def test_save_load_round_trip(tmp_path):
    y = seasonal_series()
    data = SeriesData(values=y, columns=("sales",), time=[str(i) for i in range(len(y))])
    f = quick(difference=12, cell="lstm", layers=2, dropout=0.1).fit(data, time_column="month", progress=False)
    path = tmp_path / "f.safetensors"
    f.save(path)
    g = Forecaster.load(path)
    np.testing.assert_array_equal(g.forecast(data, 24), f.forecast(data, 24))
    assert g.evaluate(data) == f.evaluate(data)
    assert g.get_params() == f.get_params()
    assert (g.columns_, g.targets_, g.season_, g.time_column_) == (("sales",), [0], 12, "month")
    _, task = load_model(path, task="forecast")
    assert task["name"] == "forecast" and task["window"] == 12 and task["targets"] == ["sales"]


def test_same_seed_same_model():
    y = seasonal_series()
    a, b, c = (quick(seed=s).fit(y, progress=False).forecast(y, 5) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_multivariate_inputs():
    y = seasonal_series()
    two = np.column_stack([y, np.roll(y, 3)])  # (N, 2)
    one_target = quick(target=0).fit(two, progress=False)
    assert one_target.predict(two).shape == (len(y) - 12,)
    with pytest.raises(ConfigError, match=r"must predict every input column.*predicts only \['y0'\]"):
        one_target.forecast(two, 5)
    both = quick(target=None).fit(two, progress=False)
    assert both.forecast(two, 5).shape == (5, 2)
    data = SeriesData(values=two, columns=("a", "b"))
    with pytest.raises(DataError, match=r"target column 'c' is not in the series; its columns are \['a', 'b'\]"):
        quick(target="c").fit(data, progress=False)


def test_future_times():
    assert future_times(["1960-11", "1960-12"], 2) == ["1961-01", "1961-02"]
    assert future_times(["2001-12-22", "2001-12-29"], 2) == ["2002-01-05", "2002-01-12"]
    assert future_times(["1", "2", "3"], 2) == ["4", "5"]
    assert future_times(["0.5", "1.0", "1.5"], 1) == ["2"]
    assert future_times(["1", "2", "4"], 1) is None  # uneven
    assert future_times(["mon", "tue"], 1) is None
    assert future_times(None, 1) is None


# ---- errors ------------------------------------------------------------------------------------


def test_series_shorter_than_the_window():
    with pytest.raises(DataError, match=r"training part has 32, but window=50 needs at least 51"):
        Forecaster(window=50).fit(np.arange(40.0))
    f = quick().fit(seasonal_series(), progress=False)
    with pytest.raises(DataError, match=r"has 5 values, but this model \(window=12, difference=0\) needs at least 12"):
        f.forecast(np.arange(5.0), 3)


def test_bad_values_and_columns():
    y = seasonal_series()
    y[7] = np.nan
    with pytest.raises(DataError, match=r"1 row\(s\) with NaN or Inf, the first at row 7"):
        quick().fit(y)
    f = quick().fit(SeriesData(values=seasonal_series(), columns=("sales",)), progress=False)
    with pytest.raises(DataError, match=r"trained on columns \['sales'\], got \['visits'\]"):
        f.forecast(SeriesData(values=seasonal_series(), columns=("visits",)), 3)
    with pytest.raises(ConfigError, match=r"cell must be one of \['lstm', 'gru', 'rnn'\], got 'transformer'"):
        Forecaster(cell="transformer")
    with pytest.raises(ConfigError, match="not fitted"):
        Forecaster().forecast(seasonal_series(), 3)


def test_loading_another_tasks_model(tmp_path):
    f = quick().fit(seasonal_series(), progress=False)
    save_model(tmp_path / "lm.safetensors", f.model_, {"name": "lm"})
    with pytest.raises(ModelFileError, match=r"it is a 'lm' model, not a 'forecast' one"):
        Forecaster.load(tmp_path / "lm.safetensors")
    save_model(tmp_path / "bad.safetensors", f.model_, {"name": "forecast", "window": 12})
    with pytest.raises(ModelFileError, match=r"task document lacks \['scaler'"):
        Forecaster.load(tmp_path / "bad.safetensors")


def test_plot_forecast(tmp_path, monkeypatch):
    plot_forecast(np.arange(10.0), np.ones(3), np.zeros(3), tmp_path / "p.png", title="t")
    assert (tmp_path / "p.png").read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ConfigError, match=r"unknown image type 'csv'"):
        plot_forecast(np.arange(10.0), None, np.zeros(3), tmp_path / "p.csv")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    with pytest.raises(ConfigError, match=r"pip install rnnkit\[plot\]"):
        plot_forecast(np.arange(10.0), None, np.zeros(3), tmp_path / "q.png")


@pytest.mark.slow
def test_quality_on_real_series():
    """bench/quality_forecast.py: airline beats seasonal naive, sunspots beat naive (a few minutes)."""
    from bench.quality_forecast import main

    assert main([]) == 0
