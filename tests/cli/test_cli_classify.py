"""`rnnkit train classify` and `rnnkit predict` run as a user runs them (subprocesses), errors included."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.io.model import save_model
from rnnkit.layers.dense import Dense
from rnnkit.layers.recurrent import Recurrent
from rnnkit.models import Sequential
from rnnkit.tasks.classification import TextClassifier
from tests.cli.helpers import assert_one_line_error, rnnkit, run_main
from tests.tasks.test_classification import NEG, NOISE, POS, make_reviews


def write_jsonl(path, texts, labels):
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(texts, labels)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("classify")
    write_jsonl(d / "data.jsonl", *make_reviews(400, [NEG, POS], NOISE, np.random.default_rng(0)))
    return d


@pytest.fixture(scope="module")
def trained(workdir):
    """Run `rnnkit train classify` once; returns the completed process."""
    return rnnkit("train", "classify", "data.jsonl", "--text-column", "text", "--label-column", "label",
                  "--epochs", "2", "--lr", "0.01", "--out", "model.safetensors", cwd=workdir)


def test_train_then_predict(workdir, trained):
    assert trained.returncode == 0, trained.stderr
    out = trained.stdout
    n_test = int(out.split("held-out test set (")[1].split(" texts)")[0])
    assert 35 <= n_test <= 40 and "accuracy" in out and "positive class 'pos'" in out  # floor(10% per class)
    header, *matrix = out.split("columns: predicted):\n")[1].splitlines()[:3]  # "neg pos", "neg a b", "pos c d"
    assert header.split() == ["neg", "pos"] and [row.split()[0] for row in matrix] == ["neg", "pos"]
    assert sum(int(v) for row in matrix for v in row.split()[1:]) == n_test
    assert (workdir / "model.safetensors").is_file()

    (workdir / "more.txt").write_text("a great film\n\nawful and boring\n", encoding="utf-8")
    done = rnnkit("predict", "model.safetensors", "it was really good", "--input", "more.txt", "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["it was really good", "a great film", "awful and boring"]
    for r in rows:
        assert set(r["probabilities"]) == {"neg", "pos"} and r["label"] in ("neg", "pos")
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    plain = rnnkit("predict", "model.safetensors", "a great film", cwd=workdir)
    label, probabilities, text = plain.stdout.rstrip("\n").split("\t")
    assert label == rows[1]["label"] and probabilities.startswith("neg=") and text == "a great film"


def test_cli_options_override_the_preset(workdir, capsys):
    result = run_main("train", "classify", workdir / "data.jsonl", "--epochs", "1", "--cell", "lstm", "--hidden", "6",
                      "--test-frac", "0", "--out", workdir / "lstm.safetensors", "--no-progress", capsys=capsys)
    assert result.returncode == 0, result.stderr
    clf = TextClassifier.load(workdir / "lstm.safetensors")
    assert clf.architecture["cell"] == "lstm" and clf.architecture["hidden"] == [6]
    assert clf.architecture["embedding_dim"] == 8  # still the tutorial preset's


def test_cli_pooling_and_embedding_dropout_options(workdir, capsys):
    result = run_main("train", "classify", workdir / "data.jsonl", "--epochs", "1", "--pooling", "max",
                      "--embedding-dropout", "0.2", "--word2vec-epochs", "0", "--test-frac", "0",
                      "--out", workdir / "max.safetensors", "--no-progress", capsys=capsys)
    assert result.returncode == 0, result.stderr
    clf = TextClassifier.load(workdir / "max.safetensors")
    assert clf.architecture["pooling"] == "max" and clf.architecture["embedding_dropout"] == 0.2
    assert [type(layer).__name__ for layer in clf.model_.layers][-2:] == ["MaxPool", "Dense"]
    done = run_main("predict", workdir / "max.safetensors", "a great film", capsys=capsys)
    assert done.returncode == 0 and done.stdout.endswith("a great film\n"), done.stderr


def test_errors_are_one_line(workdir, trained):
    train = ("train", "classify")
    assert_one_line_error(rnnkit(*train, "missing.jsonl", cwd=workdir), "does not exist")
    assert_one_line_error(rnnkit(*train, "data.jsonl", "--text-column", "review", cwd=workdir),
                          "no field 'review'", "['label', 'text']")
    (workdir / "data.csv").write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    assert_one_line_error(rnnkit(*train, "data.csv", "--label-column", "stars", cwd=workdir),
                          "column 'stars' is not in", "['text', 'label']")
    write_jsonl(workdir / "one.jsonl", ["good", "great", "fine"], ["pos"] * 3)
    assert_one_line_error(rnnkit(*train, "one.jsonl", cwd=workdir), "at least two classes")
    (workdir / "empty.jsonl").write_text("\n", encoding="utf-8")
    assert_one_line_error(rnnkit(*train, "empty.jsonl", cwd=workdir), "has no records")

    save_model(workdir / "forecast.safetensors", Sequential([Recurrent("gru", 1, 2, return_sequences=False),
                                                             Dense(2, 1)]), {"name": "forecast"})
    assert_one_line_error(rnnkit("predict", "forecast.safetensors", "good", cwd=workdir),
                          "'forecast' model, not a 'classify' one")
    data = bytearray((workdir / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # flip one byte of the weights
    (workdir / "corrupt.safetensors").write_bytes(bytes(data))
    assert_one_line_error(rnnkit("predict", "corrupt.safetensors", "good", cwd=workdir), "corrupted")
    assert_one_line_error(rnnkit("predict", "model.safetensors", cwd=workdir), "at least one TEXT")
