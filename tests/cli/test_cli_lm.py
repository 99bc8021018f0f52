"""``rnnkit train lm`` and ``rnnkit generate`` run as a user runs them: in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.io.model import save_model
from rnnkit.layers.dense import Dense
from rnnkit.layers.recurrent import Recurrent
from rnnkit.models import Sequential
from tests.cli.helpers import assert_one_line_error, rnnkit

TINY = ["--hidden", "32", "--embedding-dim", "16", "--bptt", "20", "--batch-size", "8", "--lr", "0.01"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A char model of "hello world " trained by the CLI."""
    folder = tmp_path_factory.mktemp("lm")
    (folder / "small.txt").write_text("hello world " * 200, encoding="utf-8")
    result = rnnkit("train", "lm", "small.txt", "--epochs", "8", "--out", "m.safetensors", *TINY, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "vocabulary: 10 char tokens; model saved to m.safetensors"
    bits = float(lines[1].split(" bits/char")[0].rsplit(" ", 1)[1])
    assert lines[1].startswith("held-out: cross-entropy") and bits < 0.3
    assert lines[2] == "sample (temperature 0.8):" and "world" in lines[3]
    assert (folder / "m.safetensors").is_file() and (folder / "m.safetensors.ckpt").is_file()
    return folder


def test_generate_streams_the_continuation(trained):
    result = rnnkit("generate", "m.safetensors", "--prime", "hel", "--length", "8", "--temperature", "0", cwd=trained)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "hello world\n"
    seeded = ["generate", "m.safetensors", "--length", "40", "--temperature", "1.5", "--top-p", "0.9", "--seed", "4"]
    assert rnnkit(*seeded, cwd=trained).stdout == rnnkit(*seeded, cwd=trained).stdout


def test_generate_warns_once_about_unknown_prime_characters(trained):
    result = rnnkit("generate", "m.safetensors", "--prime", "zz", "--length", "5", cwd=trained)
    assert result.returncode == 0
    warning = "rnnkit: warning: 1 prime token(s) are not in the vocabulary and are read as <unk>: ['z']"
    assert result.stderr.splitlines() == [warning]


def test_help_has_examples(tmp_path):
    for command in (["train", "lm"], ["generate"]):
        result = rnnkit(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Examples:" in result.stdout


def test_train_errors(tmp_path):
    (tmp_path / "empty.txt").write_text(" \n\n", encoding="utf-8")
    (tmp_path / "one.txt").write_text("hello\n", encoding="utf-8")
    assert_one_line_error(rnnkit("train", "lm", "missing.txt", cwd=tmp_path), "'missing.txt' does not exist")
    assert_one_line_error(rnnkit("train", "lm", "empty.txt", cwd=tmp_path), "is empty (or whitespace only)")
    assert_one_line_error(rnnkit("train", "lm", "one.txt", "--level", "word", "--val-frac", "0", cwd=tmp_path),
                    "the training text has 1 word tokens, fewer than batch_size + 1")
    assert_one_line_error(rnnkit("train", "lm", "one.txt", "--level", "word", "--min-freq", "2", "--val-frac", "0",
                           cwd=tmp_path),
                    "no token occurs at least min_freq=2 times")


def test_generate_errors(tmp_path, trained):
    forecast = tmp_path / "forecast.safetensors"
    save_model(forecast, Sequential([Recurrent("gru", 1, 4, seed=0), Dense(4, 1, seed=0)]), {"name": "forecast"})
    data = (trained / "m.safetensors").read_bytes()
    (tmp_path / "corrupt.safetensors").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    assert_one_line_error(rnnkit("generate", str(forecast), cwd=tmp_path), "it is a 'forecast' model, not a 'lm' one")
    assert_one_line_error(rnnkit("generate", "corrupt.safetensors", cwd=tmp_path), "cannot load model file")
    assert_one_line_error(rnnkit("generate", "flipped.safetensors", cwd=tmp_path), "checksum")
    assert_one_line_error(rnnkit("generate", "nothing.safetensors", cwd=tmp_path), "no such file")
    model = str(trained / "m.safetensors")
    assert_one_line_error(rnnkit("generate", model, "--temperature", "-1", cwd=tmp_path), "--temperature")
    assert_one_line_error(rnnkit("generate", model, "--temperature", "hot", cwd=tmp_path), "--temperature")
    assert_one_line_error(rnnkit("generate", model, "--top-p", "0", cwd=tmp_path), "--top-p")


def test_train_word_level_with_word2vec_vectors_trained_first(tmp_path):
    pytest.importorskip("gensim")
    (tmp_path / "t.txt").write_text("the cat sat on the mat .\nthe dog sat on the rug .\n" * 60, encoding="utf-8")
    result = rnnkit("train", "lm", "t.txt", "--level", "word", "--word2vec", "8", "--hidden", "8", "--epochs", "1",
                    "--bptt", "5", "--batch-size", "4", "--out", "w.safetensors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "w.safetensors").exists() and "held-out" in result.stdout
    assert_one_line_error(rnnkit("train", "lm", "t.txt", "--word2vec", "8", cwd=tmp_path), "--level word")


def test_anneal_lowers_the_learning_rate_to_the_step_budget(tmp_path):
    """--anneal with --max-steps 4: step k trains at lr (1 - k/4), so the checkpoint's last lr is lr / 4."""
    from rnnkit.io.checkpoint import load_checkpoint

    (tmp_path / "small.txt").write_text("hello world " * 200, encoding="utf-8")
    result = rnnkit("train", "lm", "small.txt", "--max-steps", "4", "--anneal", "--out", "m.safetensors", *TINY,
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ckpt = load_checkpoint(tmp_path / "m.safetensors.ckpt")
    assert ckpt.progress["global_step"] == 4 and ckpt.progress["base_lr"] == 0.01
    assert ckpt.optimizer_state["config"]["lr"] == pytest.approx(0.01 / 4, rel=1e-12)
