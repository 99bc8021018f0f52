"""``rnnkit explain`` run as a user runs it (subprocesses), and its errors in process: one line, no traceback."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import assert_one_line_error, rnnkit, run_main
from tests.tasks.test_explain import write_explain_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_explain_files(tmp_path_factory.mktemp("explain_cli"))


def test_cli_explain_happy_paths(files, tmp_path):
    result = rnnkit("explain", files / "forecast.safetensors", files / "series.csv", "--plot", tmp_path / "f.png",
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0.l0 (LSTM)" in result.stdout and "|dL/dh_t|" in result.stdout and (tmp_path / "f.png").exists()
    result = rnnkit("explain", files / "classify.safetensors", files / "reviews.csv", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["task"] == "classify" and doc["batch"] == 12
    flow = doc["cells"]["1.l0"]  # Embedding, then the GRU
    assert len(flow["dh_norm"]) == doc["steps"] and set(flow["gates"]) == {"r", "z", "n"}


@pytest.mark.parametrize("model, data, fragments", [
    ("untasked.safetensors", "series.csv", ["is a 'sine-demo' model", "explain reads"]),  # a model of no task
    ("forecast.safetensors", "reviews.csv", ["column", "reviews.csv"]),  # a classifier's data for a forecaster
])
def test_cli_explain_errors_are_one_line(files, tmp_path, model, data, fragments):
    assert_one_line_error(rnnkit("explain", files / model, files / data, cwd=tmp_path), *fragments)


@pytest.mark.parametrize("model, data, fragments", [
    ("reviews.csv", "series.csv", ["reviews.csv"]),  # not a model file at all
    ("classify.safetensors", "other_labels.csv", ["unknown label"]),
    ("classify.safetensors", "series.csv", ["text"]),
    ("forecast.safetensors", "missing.csv", ["missing.csv"]),
])
def test_explain_errors_in_process(files, capsys, model, data, fragments):
    assert_one_line_error(run_main("explain", files / model, files / data, capsys=capsys), *fragments)
