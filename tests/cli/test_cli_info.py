"""End-to-end tests of ``rnnkit demo``, ``rnnkit info`` and ``rnnkit evaluate``, run as a user runs them.

Every command runs in a subprocess (``python -m rnnkit ...``). Errors must exit non-zero with
exactly one line on stderr and no traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rnnkit import datasets
from rnnkit.tasks.classification import TextClassifier
from rnnkit.tasks.forecasting import Forecaster
from rnnkit.tasks.language_model import LanguageModel
from tests.cli.helpers import assert_one_line_error, rnnkit, run_main


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Tiny trained models of each task, and data files to score them on."""
    d = tmp_path_factory.mktemp("info_cli")
    text = datasets.load_text("shakespeare")
    Forecaster(hidden=8, window=12, difference=12, epochs=3, seed=0).fit(
        datasets.load_airline(), time_column="month", progress=False).save(d / "forecast.safetensors")
    lm = LanguageModel("char", hidden=16, embedding_dim=8, bptt=20, batch_size=8)
    lm.fit(text[:5000], max_steps=3, progress=False)
    lm.save(d / "lm.safetensors")
    (d / "held_out.txt").write_text(text[5000:7000])
    rng = np.random.default_rng(0)
    words = {1: ["good", "great", "fine", "lovely"], 0: ["bad", "awful", "dull", "poor"]}
    rows = [(" ".join(rng.choice(words[label], 4)), label) for label in rng.integers(0, 2, 60)]
    (d / "reviews.jsonl").write_text("".join(json.dumps({"text": t, "label": int(y)}) + "\n" for t, y in rows))
    TextClassifier(max_len=10, epochs=1, hidden=4, embedding_dim=4, seed=0).fit(
        [t for t, _ in rows], [int(y) for _, y in rows], progress=False).save(d / "classify.safetensors")
    return d


def test_demo_addition_prints_sums_and_reaches_100_percent(tmp_path):
    result = rnnkit("demo", "addition", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.startswith("Error:") and "Pred: [" in line and "True: [" in line for line in lines) == 11
    assert lines[-1] == "held-out pairs: 3276/3276 sums exactly right (100.0%)"


def test_demo_help_lists_every_demo(tmp_path):
    result = rnnkit("demo", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in ("tour", "sine", "addition", "primes", "cells"):
        assert f"  {name} " in result.stdout
    assert_one_line_error(rnnkit("demo", "nope", cwd=tmp_path), "'nope' is not one of")


def test_info_text_and_json(work):
    text = rnnkit("info", "forecast.safetensors", cwd=work)
    assert text.returncode == 0, text.stderr
    assert "rnnkit model file, format version 1" in text.stdout and "task: forecast" in text.stdout
    assert "window: 12" in text.stdout and "Total params:" in text.stdout

    result = rnnkit("info", "lm.safetensors", "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    stored = load_file(work / "lm.safetensors")  # safetensors' own reader, independent of rnnkit
    assert info["task"] == "lm" and info["format"] == "rnnkit" and info["format_version"] == "1"
    assert info["model"]["parameters"] == sum(a.size for a in stored.values())
    assert {k: v["shape"] for k, v in info["tensors"].items()} == {k: list(a.shape) for k, a in stored.items()}
    assert info["task_details"]["vocabulary_size"] == stored["0.W"].shape[0]
    assert [layer["type"] for layer in info["model"]["layers"]] == ["Embedding", "Recurrent", "Dense"]

    labels = json.loads(rnnkit("info", "classify.safetensors", "--json", cwd=work).stdout)["task_details"]["labels"]
    assert labels == [0, 1]


def test_evaluate_forecast_matches_the_library(work):
    result = rnnkit("evaluate", "forecast.safetensors", datasets.path("airline"), "--split", "test", "--json",
                    cwd=work)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    expected = Forecaster.load(work / "forecast.safetensors").evaluate(datasets.load_airline(), split="test")
    assert scores["task"] == "forecast" and scores["n"] == expected["n"] == 14
    assert scores["model"]["rmse"] == pytest.approx(expected["model"]["rmse"], rel=1e-9)
    table = rnnkit("evaluate", "forecast.safetensors", datasets.path("airline"), cwd=work)
    assert "seasonal naive (m=12)" in table.stdout and "RMSE" in table.stdout


def test_evaluate_lm_matches_the_library(work):
    result = rnnkit("evaluate", "lm.safetensors", "held_out.txt", "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    expected = LanguageModel.load(work / "lm.safetensors").evaluate((work / "held_out.txt").read_text())
    assert json.loads(result.stdout)["cross_entropy"] == pytest.approx(expected["cross_entropy"], rel=1e-9)
    assert "bits/char" in rnnkit("evaluate", "lm.safetensors", "held_out.txt", cwd=work).stdout


def test_evaluate_classify_matches_the_library(work):
    result = rnnkit("evaluate", "classify.safetensors", "reviews.jsonl", "--json", cwd=work)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    rows = [json.loads(line) for line in (work / "reviews.jsonl").read_text().splitlines()]
    proba = TextClassifier.load(work / "classify.safetensors").predict_proba([r["text"] for r in rows])
    assert scores["accuracy"] == pytest.approx(np.mean(proba.argmax(1) == [r["label"] for r in rows]))
    table = rnnkit("evaluate", "classify.safetensors", "reviews.jsonl", cwd=work).stdout
    assert table.startswith(f"reviews.jsonl ({len(rows)} texts): accuracy {scores['accuracy']:.4f}")  # not "held-out"
    assert "confusion matrix" in table


def test_evaluate_rejects_options_of_another_task(work):
    assert_one_line_error(rnnkit("evaluate", "lm.safetensors", "held_out.txt", "--column", "x", cwd=work),
                          "--column: not an option for 'lm.safetensors', which is a 'lm' model")


@pytest.fixture(scope="module")
def bad_files(work):
    data = bytearray((work / "forecast.safetensors").read_bytes())
    data[-3] ^= 0xFF  # one flipped bit in the last tensor
    (work / "corrupted.safetensors").write_bytes(bytes(data))
    (work / "random.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    save_file({"weight": np.ones((2, 3), np.float32)}, str(work / "foreign.safetensors"), metadata={"format": "pt"})
    return work


@pytest.mark.parametrize(("command", "name", "fragments"), [
    ("info", "missing.safetensors", ("no such file",)),
    ("info", "corrupted.safetensors", ("sha256 checksum", "corrupted")),
    ("info", "random.bin", ("not a safetensors file",)),
    ("evaluate", "corrupted.safetensors", ("sha256 checksum",)),
    ("evaluate", "foreign.safetensors", ("not an rnnkit file", "rnnkit convert")),
])
def test_bad_model_files_give_one_line_errors(bad_files, command, name, fragments):
    args = (command, name) + (("held_out.txt",) if command == "evaluate" else ())
    assert_one_line_error(rnnkit(*args, cwd=bad_files), f"'{name}'", *fragments)


def test_evaluate_missing_data_file(work):
    assert_one_line_error(rnnkit("evaluate", "lm.safetensors", "nope.txt", cwd=work), "nope.txt")


def test_info_describes_a_foreign_safetensors_file(bad_files):
    result = rnnkit("info", "foreign.safetensors", cwd=bad_files)
    assert result.returncode == 0, result.stderr
    assert "not an rnnkit model file" in result.stdout and "weight" in result.stdout
    assert "rnnkit convert" in result.stdout


def test_info_uses_convert_describe_for_foreign_files(bad_files, monkeypatch, capsys):
    """When rnnkit.convert offers describe(path), `info` shows its description of a foreign file."""
    from rnnkit import convert

    seen = []

    def describe(path):
        seen.append(str(path))
        return {"format": "torch", "framework": "torch", "summary": ["weight (2, 3)"]}

    monkeypatch.setattr(convert, "describe", describe, raising=False)
    monkeypatch.chdir(bad_files)
    result = run_main("info", "foreign.safetensors", "--json", capsys=capsys)
    assert result.returncode == 0 and json.loads(result.stdout)["framework"] == "torch"
    # a damaged rnnkit file is not "foreign"
    assert_one_line_error(run_main("info", "corrupted.safetensors", capsys=capsys), "sha256 checksum")
    assert seen == ["foreign.safetensors"]
