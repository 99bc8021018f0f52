"""``explain_files``: each task's data file becomes the batch the model was trained on, then gradient flow.

The forecast batch is checked against windows scaled by hand from the series (independent of the
Forecaster's own windowing), through :func:`rnnkit.diagnostics.gradient_flow` on that batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit import ConfigError, DataError
from rnnkit.data import load_series_csv
from rnnkit.diagnostics import gradient_flow
from rnnkit.io.model import save_model
from rnnkit.layers import Dense, Recurrent
from rnnkit.models import Sequential
from rnnkit.tasks.classification import TextClassifier
from rnnkit.tasks.explain import explain_files
from rnnkit.tasks.forecasting import Forecaster
from rnnkit.tasks.language_model import LanguageModel

SERIES = np.sin(np.arange(80) / 3.0)  # (80,)
WINDOW = 8


def write_explain_files(work: Path) -> Path:
    """Tiny trained forecast, lm and classify models, their data files, and a model file of no task."""
    (work / "series.csv").write_text("value\n" + "\n".join(f"{v:.5f}" for v in SERIES) + "\n")
    forecaster = Forecaster(cell="lstm", hidden=4, window=WINDOW, epochs=1, seed=0)
    forecaster.fit(load_series_csv(work / "series.csv", "value"), val_frac=0.1, test_frac=0.1)
    forecaster.save(work / "forecast.safetensors")
    texts = ["good fine great", "bad awful poor", "great good", "poor bad awful worse"] * 3
    labels = ["pos", "neg", "pos", "neg"] * 3
    (work / "reviews.csv").write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in zip(texts, labels)) + "\n")
    (work / "other_labels.csv").write_text("text,label\ngood,spam\nbad,ham\n")
    TextClassifier(cell="gru", hidden=4, embedding_dim=3, epochs=1, seed=0).fit(texts, labels, val_frac=0).save(
        work / "classify.safetensors")
    untasked = Sequential([Recurrent("rnn", 3, 5, seed=0), Dense(5, 2, seed=1)])
    save_model(work / "untasked.safetensors", untasked, {"name": "sine-demo"})
    text = "the quick brown fox jumps over the lazy dog. " * 20
    (work / "story.txt").write_text(text)
    (work / "cyrillic.txt").write_text("Жук жужжит, жаба живёт. " * 5)
    lm = LanguageModel("char", hidden=8, embedding_dim=4, bptt=10, batch_size=4)
    lm.fit(text, val_frac=0, max_steps=2, progress=False)
    lm.save(work / "lm.safetensors")
    return work


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return write_explain_files(tmp_path_factory.mktemp("explain"))


def test_forecast_batch_is_the_last_windows_scaled_by_hand(files):
    report = explain_files(files / "forecast.safetensors", files / "series.csv", batch_size=5)
    forecaster = Forecaster.load(files / "forecast.safetensors")
    values = np.round(SERIES, 5)[:, None]  # as written to the CSV
    shift, scale = forecaster.scaler_.shift_, forecaster.scaler_.scale_
    x = np.stack([(values[t - WINDOW : t] - shift) / scale for t in range(75, 80)])  # (5, W, 1)
    y = (values[75:80] - shift) / scale  # (5, 1)
    direct = gradient_flow(forecaster.model_, x.astype(np.float32), y.astype(np.float32), "mse")
    assert report.meta["task"] == "forecast" and report.batch == 5 and report.steps == WINDOW
    np.testing.assert_allclose(report.cells["0.l0"].dh_norm, direct.cells["0.l0"].dh_norm, rtol=1e-4)


def test_language_model_batch_and_foreign_text(files):
    report = explain_files(files / "lm.safetensors", files / "story.txt", batch_size=5)
    assert (report.meta["task"], report.batch, report.steps) == ("lm", 5, 10)
    flow = report.cells["1.l0"]  # Embedding, then the LSTM
    assert set(flow.gates) == set("ifgo") and np.isfinite(flow.dh_norm).all() and flow.dh_norm.min() > 0
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        explain_files(files / "lm.safetensors", files / "cyrillic.txt")


def test_classifier_batch_holds_the_first_texts(files):
    report = explain_files(files / "classify.safetensors", files / "reviews.csv", batch_size=3)
    assert (report.meta["task"], report.batch, report.steps) == ("classify", 3, 3)  # "good fine great" is longest
    assert set(report.cells["1.l0"].gates) == {"r", "z", "n"}


def test_a_model_of_no_task_is_refused(files):
    with pytest.raises(ConfigError, match="is a 'sine-demo' model; explain reads"):
        explain_files(files / "untasked.safetensors", files / "series.csv")
