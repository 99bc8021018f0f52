"""End-to-end tests of ``rnnkit train forecast`` and ``rnnkit forecast``, run as a user runs them.

Every command runs in a subprocess (``python -m rnnkit ...``). Errors must exit non-zero with
exactly one line on stderr and no traceback.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from rnnkit.data import load_series_csv
from rnnkit.io.model import save_model
from rnnkit.tasks.forecasting import Forecaster
from tests.cli.helpers import assert_one_line_error, rnnkit

N_ROWS = 240


def write_csv(path, values, dates) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "value"])
        writer.writerows(zip(dates, values))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A daily series with a weekly season, and a model trained on it for 2 epochs."""
    work = tmp_path_factory.mktemp("forecast_cli")
    t = np.arange(N_ROWS)
    values = [f"{v:.4f}" for v in 5 + np.sin(2 * np.pi * t / 7) + 0.01 * t]
    dates = [str(d) for d in np.datetime64("2024-01-01") + t]
    write_csv(work / "daily.csv", values, dates)
    result = rnnkit("train", "forecast", "daily.csv", "--column", "value", "--time-column", "date",
                    "--window", "14", "--epochs", "2", "--hidden", "8", "--lr", "0.01", "--no-progress",
                    "-o", "model.safetensors", cwd=work)
    return work, result


def test_train_prints_the_evaluation_and_saves(trained):
    work, result = trained
    assert result.returncode == 0, result.stderr
    assert "trained 2 epoch(s)" in result.stdout
    for row in ("model", "naive", "seasonal naive (m=7)", "MAE", "RMSE", "MASE"):
        assert row in result.stdout
    assert (work / "model.safetensors").is_file() and (work / "model.safetensors.ckpt").is_file()


def test_forecast_writes_csv_and_plot(trained):
    work, _ = trained
    result = rnnkit("forecast", "model.safetensors", "daily.csv", "--steps", "10", "--plot", "f.png",
                    "--output", "f.csv", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "f.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with open(work / "f.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "time", "value"]
    assert [r[0] for r in rows[1:]] == [str(s) for s in range(1, 11)]
    last = np.datetime64("2024-01-01") + N_ROWS - 1
    assert [r[1] for r in rows[1:]] == [str(last + s) for s in range(1, 11)]
    expected = Forecaster.load(work / "model.safetensors").forecast(load_series_csv(work / "daily.csv", "value"), 10)
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], expected, rtol=1e-5)


def test_resume_after_max_time_gives_the_uninterrupted_model(trained):
    """--max-time stops after the first step; --resume then ends exactly where one run ends."""
    work, _ = trained
    common = ["train", "forecast", "daily.csv", "--column", "value", "--window", "14", "--hidden", "8",
              "--no-progress"]
    history = load_series_csv(work / "daily.csv", "value")

    def forecast(name: str) -> np.ndarray:
        return Forecaster.load(work / name).forecast(history, 5)

    assert rnnkit(*common, "--epochs", "2", "-o", "whole.safetensors", cwd=work).returncode == 0
    stopped = rnnkit(*common, "--epochs", "2", "-o", "parts.safetensors", "--max-time", "1e-6", cwd=work)
    assert stopped.returncode == 0, stopped.stderr
    assert "--resume" in stopped.stderr
    assert not np.array_equal(forecast("parts.safetensors"), forecast("whole.safetensors"))
    # the checkpoint is really read: a run with other settings refuses it
    assert_one_line_error(rnnkit(*common, "--epochs", "3", "-o", "parts.safetensors", "--resume", cwd=work),
                          "different run")
    resumed = rnnkit(*common, "--epochs", "2", "-o", "parts.safetensors", "--resume", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(forecast("parts.safetensors"), forecast("whole.safetensors"))


def test_help_has_examples(tmp_path):
    for command in (["train", "forecast"], ["forecast"]):
        result = rnnkit(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Example" in result.stdout


def test_errors_are_one_line(trained, tmp_path):
    work, _ = trained
    train = ["train", "forecast", str(work / "daily.csv"), "--epochs", "1", "--no-progress"]
    assert_one_line_error(rnnkit("train", "forecast", "nope.csv", "--column", "value", cwd=tmp_path),
                          "nope.csv", "does not exist")
    assert_one_line_error(rnnkit(*train, "--column", "sales", cwd=tmp_path),
                          "'sales'", "['date', 'value']")
    assert_one_line_error(rnnkit(*train, "--column", "value", "--window", "200", cwd=tmp_path),
                          "window=200 needs at least 201")

    (tmp_path / "gaps.csv").write_text("date,value\n1,1.0\n2,\n3,3.0\n")
    assert_one_line_error(rnnkit("train", "forecast", "gaps.csv", "--column", "value", "--no-interpolate",
                                 cwd=tmp_path), "missing value")

    lm = Forecaster.load(work / "model.safetensors").model_
    save_model(tmp_path / "lm.safetensors", lm, {"name": "lm"})
    assert_one_line_error(rnnkit("forecast", "lm.safetensors", work / "daily.csv", cwd=tmp_path),
                          "'lm' model, not a 'forecast' one")

    data = bytearray((work / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # flip bits in the last tensor
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(data))
    assert_one_line_error(rnnkit("forecast", "corrupt.safetensors", work / "daily.csv", cwd=tmp_path),
                          "corrupt")
    assert_one_line_error(rnnkit("forecast", "missing.safetensors", work / "daily.csv", cwd=tmp_path),
                          "no such file")
    assert_one_line_error(rnnkit("forecast", work / "model.safetensors", work / "daily.csv", "--plot", "x.csv",
                                 cwd=tmp_path), "unknown image type 'csv'")
