"""rnnkit.data: synthetic cases with known answers, and the real files in shared/data beside the repository."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit import ConfigError, DataError, DTypeError, ModelFileError, ShapeError
from rnnkit.data import (
    LabelEncoder,
    MinMaxScaler,
    StandardScaler,
    StreamBatcher,
    Vocabulary,
    autocorrelation,
    char_tokenize,
    chronological_split,
    detect_season,
    get_tokenizer,
    jieba_tokenize,
    load_labelled,
    load_series_csv,
    load_text,
    minibatches,
    num_batches,
    pad_sequences,
    scaler_from_dict,
    whitespace_tokenize,
    windows,
)
from tests.paths import SHARED_DATA

DATA = SHARED_DATA
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not present")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- series: loading


def test_load_series_csv_values_time_and_several_columns(tmp_path):
    path = write(tmp_path, "s.csv", "t,a,b\n1,1.5,10\n2,2.5,20\n\n3,-3e1,30\n")
    one = load_series_csv(path, "a", time_column="t")
    np.testing.assert_array_equal(one.values, [1.5, 2.5, -30.0])
    assert one.values.dtype == np.float64 and one.time == ["1", "2", "3"] and one.notes == []
    two = load_series_csv(path, ["b", "a"])
    np.testing.assert_array_equal(two.values, [[10, 1.5], [20, 2.5], [30, -30]])
    assert two.columns == ("b", "a") and two.time is None and len(two) == 3


def test_load_series_csv_interpolates_linearly_and_reports(tmp_path):
    path = write(tmp_path, "s.csv", 'v\n""\n1\nNA\n\n""\n4\n7\n""\n')  # a blank line is skipped; "" is missing
    s = load_series_csv(path, "v")
    np.testing.assert_allclose(s.values, [1, 1, 2, 3, 4, 7, 7])  # ends take the nearest value
    assert s.notes == ["interpolated 4 missing values in 'v' (linear in row order; gaps at either end take the nearest value)"]


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("", {}, "is empty"),
        ("a,b\n1,2\n", {"column": "c"}, r"column 'c' is not in .*the file has columns \['a', 'b'\]"),
        ("a,b\n1,2\n", {"time_column": "date"}, r"column 'date' is not in .*\['a', 'b'\]"),
        ("a,b\n1,2\nx7,3\n", {}, r"line 3: column 'a' has the value 'x7', which is not a finite number"),
        ("a,b\n1,2\ninf,2\n", {}, r"line 3: column 'a' has the value 'inf'"),
        ("a,b\n1,2\n,2\n5,2\n", {"interpolate": False}, r"1 missing value\(s\), the first at line 3; pass interpolate=True"),
        ("a,b\n,2\n,3\n", {}, "has no values, only missing cells"),
        ("a,b\n1,2\n", {}, r"has 1 data row\(s\); need at least 2"),
        ("a,b\n1,2\n3,4\n", {"min_rows": 5}, "need at least 5"),
        ("a,b\n1,2\n3,4,5\n", {}, "line 3: 3 fields but the header has 2"),
    ],
)
def test_load_series_csv_errors(tmp_path, text, kwargs, match):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=match):
        load_series_csv(path, **{"column": "a", **kwargs})


def test_load_series_csv_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a file"):
        load_series_csv(tmp_path / "nope.csv", "a")
    path = tmp_path / "gbk.csv"
    path.write_bytes("a\n1\n".encode() + "温度\n".encode("gbk"))
    with pytest.raises(DataError, match=r"not valid UTF-8 \(byte 4, line 3\); re-save it as UTF-8"):
        load_series_csv(path, "a")
    with pytest.raises(ConfigError, match="column must be a column name"):
        load_series_csv(path, [])


@needs_data
def test_real_co2_has_59_missing_values_interpolated():
    path = DATA / "ts_co2_mauna_loa_weekly.csv"
    s = load_series_csv(path, "co2_ppm", time_column="date")
    with open(path, newline="") as f:  # independent reading with the csv module
        raw = [row["co2_ppm"] for row in csv.DictReader(f)]
    observed = np.array([r != "" for r in raw])
    assert len(s) == 2284 and observed.sum() == 2225 and s.time[0] == "1958-03-29"
    assert s.notes == ["interpolated 59 missing values in 'co2_ppm' (linear in row order; gaps at either end take the nearest value)"]
    np.testing.assert_array_equal(s.values[observed], [float(r) for r in raw if r])
    gap = int(np.flatnonzero(~observed)[0])  # line 8: the first gap, between two observations
    assert observed[gap - 1] and observed[gap + 1]
    assert s.values[gap] == pytest.approx((s.values[gap - 1] + s.values[gap + 1]) / 2)
    with pytest.raises(DataError, match="59 missing value"):
        load_series_csv(path, "co2_ppm", interpolate=False)


# ---------------------------------------------------------------- series: windows, split, season


def reference_windows(x, window, horizon):
    M = len(x) - window - horizon + 1
    return [x[m : m + window] for m in range(M)], [x[m + window : m + window + horizon] for m in range(M)]


@pytest.mark.parametrize("window, horizon", [(1, 1), (4, 1), (3, 2), (7, 3)])
def test_windows_univariate_matches_loop(window, horizon):
    x = np.arange(10, dtype=np.float32) ** 2
    X, Y = windows(x, window, horizon)
    X_ref, Y_ref = reference_windows(x, window, horizon)
    M = 10 - window - horizon + 1
    assert X.shape == (M, window, 1) and Y.shape == (M, horizon) and X.dtype == Y.dtype == np.float32
    np.testing.assert_array_equal(X[..., 0], X_ref)
    np.testing.assert_array_equal(Y, Y_ref)
    assert X.flags.c_contiguous and X.flags.writeable


def test_windows_multivariate_matches_loop(rng):
    x = rng.normal(size=(12, 3))
    X, Y = windows(x, 5, horizon=2)
    X_ref, Y_ref = reference_windows(x, 5, 2)
    assert X.shape == (6, 5, 3) and Y.shape == (6, 2, 3)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)


def test_windows_errors():
    with pytest.raises(DataError, match="series has 5 values, too few for window=4 and horizon=2: need at least 6"):
        windows(np.zeros(5), 4, 2)
    with pytest.raises(ShapeError, match=r"series must have shape \(N,\) or \(N, k\)"):
        windows(np.zeros((5, 2, 2)), 2)
    with pytest.raises(ConfigError, match="window must be >= 1"):
        windows(np.zeros(5), 0)
    with pytest.raises(DataError, match="NaN or Inf"):
        windows(np.array([1.0, np.nan, 2.0]), 1)


def test_chronological_split():
    train, val, test = chronological_split(100, 0.15, 0.2)
    assert (train, val, test) == (slice(0, 65), slice(65, 80), slice(80, 100))
    assert chronological_split(10, 0.0, 0.2) == (slice(0, 8), slice(8, 8), slice(8, 10))
    with pytest.raises(ConfigError, match="val_frac \\+ test_frac must be < 1"):
        chronological_split(10, 0.5, 0.5)
    with pytest.raises(DataError, match="val_frac=0.1 of n=4 steps rounds to 0 steps"):
        chronological_split(4, 0.1, 0.3)
    with pytest.raises(DataError, match="leave no training steps"):
        chronological_split(2, 0.4, 0.4)
    with pytest.raises(ConfigError, match=r"test_frac must be in \[0, 1\)"):
        chronological_split(10, 0.1, -0.1)


def test_autocorrelation_matches_direct_sum(rng):
    x = rng.normal(size=50)
    d = x - x.mean()
    direct = np.array([d[: 50 - l] @ d[l:] for l in range(50)]) / (d @ d)
    np.testing.assert_allclose(autocorrelation(x), direct, atol=1e-12)
    np.testing.assert_array_equal(autocorrelation(np.ones(5)), np.zeros(5))


def test_detect_season_synthetic(rng):
    t = np.arange(400)
    seasonal = np.sin(2 * np.pi * t / 17) + 0.02 * t + 0.1 * rng.normal(size=400)  # trend + period 17 + noise
    assert detect_season(seasonal, max_season=60) == 17
    assert detect_season(rng.normal(size=1000), max_season=100) is None
    assert detect_season(np.cumsum(rng.normal(size=1000)), max_season=100) is None  # random walk
    with pytest.raises(DataError, match="too few to find a season up to max_season=30: need at least 60"):
        detect_season(np.zeros(40), max_season=30)


@needs_data
@pytest.mark.parametrize(
    "name, column, max_season, low, high",
    [
        ("ts_airline_passengers.csv", "passengers", 48, 12, 12),
        ("ts_co2_mauna_loa_weekly.csv", "co2_ppm", 120, 52, 53),
        ("ts_sunspots_monthly.csv", "sunspots", 300, 110, 140),  # the ~11-year solar cycle
    ],
)
def test_detect_season_real(name, column, max_season, low, high):
    season = detect_season(load_series_csv(DATA / name, column).values, max_season=max_season)
    assert season is not None and low <= season <= high


# ---------------------------------------------------------------- scalers


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scaler_fits_on_train_only_and_inverts(cls, rng):
    series = rng.normal(3.0, 2.0, size=(60, 2)) + np.arange(60)[:, None]  # trending: train and test differ
    train, _, test = chronological_split(60, 0.0, 0.25)
    scaler = cls().fit(series[train])
    if cls is StandardScaler:
        expected = (series[test] - series[train].mean(axis=0)) / series[train].std(axis=0)
        np.testing.assert_allclose(scaler.transform(series[train]).mean(axis=0), 0, atol=1e-12)
    else:
        lo, hi = series[train].min(axis=0), series[train].max(axis=0)
        expected = (series[test] - lo) / (hi - lo)
        assert scaler.transform(series[test]).max() > 1.0  # test goes beyond the train range
    np.testing.assert_allclose(scaler.transform(series[test]), expected, rtol=1e-12)
    windows_x, _ = windows(series, 4)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(windows_x)), windows_x, rtol=1e-12)
    restored = scaler_from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert type(restored) is cls
    np.testing.assert_array_equal(restored.transform(series[test]), scaler.transform(series[test]))


def test_scaler_univariate_broadcasts_and_keeps_float32():
    x = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(x)
    np.testing.assert_allclose(scaler.transform(x), [-1, -1 / 3, 1 / 3, 1], rtol=1e-6)
    X, Y = windows(x, 2)
    assert scaler.transform(X).shape == (2, 2, 1) and scaler.transform(Y).dtype == np.float32
    const = StandardScaler().fit(np.full(5, 7.0))
    np.testing.assert_array_equal(const.transform(np.array([7.0, 8.0])), [0.0, 1.0])  # std 0 -> scale 1
    assert MinMaxScaler().fit(np.full(3, 2.0)).transform(np.array([2.0]))[0] == 0.0


def test_scaler_errors():
    with pytest.raises(ConfigError, match=r"StandardScaler is not fitted; call fit\(train_values\) first"):
        StandardScaler().transform(np.zeros(3))
    with pytest.raises(ShapeError, match="x must have 2 features in its last axis"):
        StandardScaler().fit(np.zeros((4, 2))).transform(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="feature_range must be finite with lo < hi"):
        MinMaxScaler(feature_range=(1, 0))
    with pytest.raises(DataError, match="empty array"):
        StandardScaler().fit(np.zeros(0))
    with pytest.raises(ModelFileError, match="unknown scaler type 'robust'"):
        scaler_from_dict({"type": "robust"})
    with pytest.raises(ModelFileError, match="malformed StandardScaler dict"):
        scaler_from_dict({"type": "standard", "shift": [0.0]})


# ---------------------------------------------------------------- tokenizers, vocabulary, labels


def test_tokenizers():
    assert char_tokenize("红楼 a\n") == ["红", "楼", " ", "a", "\n"]
    assert whitespace_tokenize("  The cat\tsat.\n") == ["The", "cat", "sat."]
    assert whitespace_tokenize("Don't STOP, Bob!", lowercase=True, split_punctuation=True) == [
        "don't", "stop", ",", "bob", "!"
    ]
    assert get_tokenizer("whitespace", lowercase=True)("A b") == ["a", "b"]
    assert get_tokenizer("char") is char_tokenize
    with pytest.raises(ConfigError, match=r"unknown tokenizer 'bpe'; choose one of \['char', 'jieba', 'whitespace'\]"):
        get_tokenizer("bpe")
    with pytest.raises(ConfigError, match=r"tokenizer 'whitespace' takes options \['lowercase', 'split_punctuation'\]"):
        get_tokenizer("whitespace", lower=True)


def test_jieba_segments_chinese_into_words():
    pytest.importorskip("jieba")
    words = jieba_tokenize("我正在写这本书的心得， 勘误和疑点")
    assert "".join(words) == "我正在写这本书的心得，勘误和疑点"  # segmentation only; the space is dropped
    assert {"正在", "心得"} <= set(words) and max(map(len, words)) >= 2


def test_jieba_missing_raises_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # makes `import jieba` fail
    with pytest.raises(ConfigError, match=r"pip install rnnkit\[zh\]"):
        jieba_tokenize("你好")


def test_vocabulary_build_encode_decode():
    vocab = Vocabulary.build(whitespace_tokenize("b a c a b a d"))
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b", "c", "d")  # by count, ties by first occurrence
    ids = vocab.encode(["a", "d", "zzz", "<pad>"])
    np.testing.assert_array_equal(ids, [2, 5, 1, 0])
    assert ids.dtype == np.int64
    assert vocab.decode(ids) == ["a", "d", "<unk>", "<pad>"]
    assert Vocabulary.build("b a c a b a d".split(), min_freq=2).tokens == ("<pad>", "<unk>", "a", "b")
    assert Vocabulary.build("b a c a b a d".split(), max_size=3).tokens == ("<pad>", "<unk>", "a")
    assert Vocabulary.build("aab").tokens == ("<pad>", "<unk>", "a", "b")  # a str is its characters
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    assert "c" in vocab and "z" not in vocab and len(vocab) == 6


def test_vocabulary_errors():
    vocab = Vocabulary.build("abc")
    with pytest.raises(DataError, match=r"2 token\(s\) are not in the vocabulary, e.g. \['x', 'y'\]"):
        vocab.encode("axbyx", strict=True)
    with pytest.raises(DataError, match=r"ids must lie in \[0, 5\)"):
        vocab.decode([0, 5])
    with pytest.raises(DTypeError, match="ids must be integers"):
        vocab.decode(np.array([1.0]))
    with pytest.raises(DataError, match="no token occurs at least min_freq=2 times"):
        Vocabulary.build("abc", min_freq=2)
    with pytest.raises(DataError, match="the text is empty"):
        Vocabulary.build("")
    with pytest.raises(ConfigError, match="max_size must be >= 3"):
        Vocabulary.build("abc", max_size=2)
    with pytest.raises(ModelFileError, match="malformed vocabulary"):
        Vocabulary.from_dict({"tokens": ["a", "b"]})
    with pytest.raises(ModelFileError, match="needs a 'tokens' list"):
        Vocabulary.from_dict({})


def test_label_encoder():
    enc = LabelEncoder().fit(["rotten", "fresh", "fresh"])
    assert enc.classes_ == ["fresh", "rotten"] and enc.num_classes == 2
    np.testing.assert_array_equal(enc.transform(["rotten", "fresh"]), [1, 0])
    assert enc.inverse_transform(np.array([1, 0, 1])) == ["rotten", "fresh", "rotten"]
    ints = LabelEncoder().fit(np.array([5, -2, 5]))
    np.testing.assert_array_equal(ints.fit_transform([5, -2]), [1, 0])
    assert LabelEncoder.from_dict(json.loads(json.dumps(ints.to_dict()))).classes_ == [-2, 5]
    with pytest.raises(DataError, match=r"unknown label\(s\) \['stale'\]; the encoder knows \['fresh', 'rotten'\]"):
        enc.transform(["stale"])
    with pytest.raises(DataError, match="labels mix strings and integers"):
        LabelEncoder().fit([1, "1"])
    with pytest.raises(DataError, match="labels must be strings or integers, got 0.5"):
        LabelEncoder().fit([0.5, 1])
    with pytest.raises(ConfigError, match="LabelEncoder is not fitted"):
        LabelEncoder().transform(["a"])
    with pytest.raises(DataError, match=r"class ids must be integers in \[0, 2\)"):
        enc.inverse_transform([2])


# ---------------------------------------------------------------- text files


def test_load_text(tmp_path):
    assert load_text(write(tmp_path, "a.txt", "line one\r\nline two\n")) == "line one\nline two\n"
    with pytest.raises(DataError, match="is empty"):
        load_text(write(tmp_path, "e.txt", " \n\n"))
    gbk = tmp_path / "g.txt"
    gbk.write_bytes("红楼梦".encode("gbk"))
    with pytest.raises(DataError, match=r"not valid UTF-8 \(byte 0, line 1\)"):
        load_text(gbk)
    with pytest.raises(DataError, match="does not exist"):
        load_text(tmp_path / "missing.txt")


def test_load_labelled_csv_and_jsonl(tmp_path):
    csv_path = write(tmp_path, "d.csv", 'review,stars\n"good, really",pos\nbad,neg\n')
    assert load_labelled(csv_path, "review", "stars") == (["good, really", "bad"], ["pos", "neg"])
    tsv_path = write(tmp_path, "d.tsv", "text\tlabel\ngood\t1\nbad\t0\n")
    assert load_labelled(tsv_path) == (["good", "bad"], ["1", "0"])
    jsonl = write(tmp_path, "d.jsonl", '{"text": "好", "label": 1}\n\n{"text": "差\\u2028", "label": 0}\n')
    assert load_labelled(jsonl) == (["好", "差\u2028"], [1, 0])


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("a.jsonl", '{"text": "x", "label": 1}\n{"text": "y", label: 0}\n', r"line 2: not valid JSON \(Expecting property"),
        ("a.jsonl", '{"txt": "x", "label": 1}\n', r"line 1: no field 'text'; the record has fields \['label', 'txt'\]"),
        ("a.jsonl", '[1, 2]\n', "line 1: expected a JSON object, got list"),
        ("a.jsonl", '{"text": "x", "label": 1}\n{"text": "y", "label": 1}\n', "all 2 records .* have the label 1"),
        ("a.jsonl", '{"text": "x", "label": 1}\n{"text": " ", "label": 0}\n', "line 2: 'text' must be a non-empty string"),
        ("a.jsonl", '{"text": "x", "label": 1}\n{"text": "y", "label": null}\n', "line 2: 'label' must be a string or integer"),
        ("a.jsonl", "\n\n", "has no records"),
        ("a.csv", "", "has no records"),
        ("a.csv", "body,label\nx,1\n", r"column 'text' is not in .*the file has columns \['body', 'label'\]"),
        ("a.csv", "text,label\nx,1\ny,\n", "line 3: 'label' must be a string or integer, got ''"),
        ("a.txt", "x\n", r"from its extension '.txt'; rnnkit reads \['.csv', '.jsonl', '.ndjson', '.tsv'\]"),
    ],
)
def test_load_labelled_errors(tmp_path, name, text, match):
    with pytest.raises(DataError, match=match):
        load_labelled(write(tmp_path, name, text))


@needs_data
def test_real_rotten_tomatoes_and_chinese_reviews():
    texts, labels = load_labelled(DATA / "sentiment_en_rotten_tomatoes.jsonl")
    assert len(texts) == 12808 and labels.count(1) == 7403 and labels.count(0) == 5405
    assert texts[0] == "A three-hour cinema master class."
    enc = LabelEncoder().fit(labels)
    assert enc.classes_ == [0, 1]
    texts, labels = load_labelled(DATA / "sentiment_zh_reviews.jsonl")
    assert len(texts) == 17363 and labels.count(1) == 8332 and labels.count(0) == 9031
    assert texts[0].startswith("我正在写这本书的心得")


@needs_data
def test_real_hongloumeng_char_vocabulary():
    text = load_text(DATA / "zh_hongloumeng_80.txt")
    vocab = Vocabulary.build(char_tokenize(text))
    assert len(text) == 720720 and len(vocab) == 4685 + 2
    assert vocab.tokens[:2] == ("<pad>", "<unk>") and "玉" in vocab
    ids = vocab.encode(text)
    assert "".join(vocab.decode(ids[:200])) == text[:200] and ids.min() >= 2


# ---------------------------------------------------------------- batching


def test_pad_sequences_pads_at_end_and_truncates():
    seqs = [np.array([5, 6, 7, 8]), [9], np.array([3, 4], dtype=np.int32)]
    ids, lengths = pad_sequences(seqs)
    np.testing.assert_array_equal(ids, [[5, 6, 7, 8], [9, 0, 0, 0], [3, 4, 0, 0]])
    np.testing.assert_array_equal(lengths, [4, 1, 2])
    assert ids.dtype == lengths.dtype == np.int64
    ids, lengths = pad_sequences(seqs, max_len=3, truncate="pre")
    np.testing.assert_array_equal(ids, [[6, 7, 8], [9, 0, 0], [3, 4, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])
    ids, _ = pad_sequences(seqs, max_len=3, truncate="post")
    np.testing.assert_array_equal(ids[0], [5, 6, 7])
    assert pad_sequences([[1], [2]], max_len=10)[0].shape == (2, 1)  # T = longest, not max_len


def test_pad_sequences_errors():
    with pytest.raises(DataError, match=r"sequence\(s\) \[1\] are empty; an RNN needs at least one step"):
        pad_sequences([[1], []])
    with pytest.raises(DataError, match="sequences is empty"):
        pad_sequences([])
    with pytest.raises(DTypeError, match="must hold integer ids, got dtype float64"):
        pad_sequences([np.array([1.0])])
    with pytest.raises(ShapeError, match="each sequence must be 1-D"):
        pad_sequences([np.zeros((2, 2), dtype=int)])
    with pytest.raises(DataError, match="must be a list of 1-D integer sequences"):
        pad_sequences([1, 2, 3])
    with pytest.raises(ConfigError, match=r"truncate must be one of \['pre', 'post'\]"):
        pad_sequences([[1]], truncate="middle")


def test_minibatches_cover_epoch_and_resume_exactly():
    full = list(minibatches(10, 4, np.random.default_rng(7)))
    assert [len(b) for b in full] == [4, 4, 2] and num_batches(10, 4) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate(full)), np.arange(10))
    assert not np.array_equal(np.concatenate(full), np.arange(10))  # shuffled
    # Resume: restore the rng state of the epoch start, continue at batch 1.
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    first = next(minibatches(10, 4, rng))
    after_epoch = rng.integers(1 << 30)
    rng.bit_generator.state = state
    rest = list(minibatches(10, 4, rng, start=1))
    assert rng.integers(1 << 30) == after_epoch  # the rng moved exactly as in the uninterrupted epoch
    np.testing.assert_array_equal(np.concatenate([first, *rest]), np.concatenate(full))
    ordered = list(minibatches(10, 4, shuffle=False, drop_last=True))
    np.testing.assert_array_equal(np.concatenate(ordered), np.arange(8))
    assert list(minibatches(10, 4, 0, start=3)) == []
    with pytest.raises(ConfigError, match=r"start must be a batch index in \[0, 3\]"):
        minibatches(10, 4, 0, start=4)


def test_stream_batcher_rows_continue_across_chunks():
    stream = np.arange(103) * 3  # distinct values: any misplacement shows
    batcher = StreamBatcher(stream, batch_size=4, seq_len=7)
    L = 102 // 4  # 25 steps per row; the last 2 tokens are unused
    assert batcher.steps_per_row == L and len(batcher) == 4  # chunks of 7, 7, 7, 4
    chunks = list(batcher)
    assert [x.shape for x, _ in chunks] == [(4, 7), (4, 7), (4, 7), (4, 4)]
    rows_x = np.concatenate([x for x, _ in chunks], axis=1)  # (4, L)
    rows_y = np.concatenate([y for _, y in chunks], axis=1)
    for i in range(4):
        np.testing.assert_array_equal(rows_x[i], stream[i * L : (i + 1) * L])
        np.testing.assert_array_equal(rows_y[i], stream[i * L + 1 : (i + 1) * L + 1])
    resumed = list(batcher.chunks(start=2))
    assert len(resumed) == 2 and all(np.array_equal(a, b) for a, b in zip(resumed[0], chunks[2]))


def test_stream_batcher_float_series_and_errors(rng):
    series = rng.normal(size=(21, 2))
    x, y = StreamBatcher(series, batch_size=2, seq_len=4)[0]
    assert x.shape == (2, 4, 2)
    np.testing.assert_array_equal(x[1], series[10:14])
    np.testing.assert_array_equal(y[1], series[11:15])
    with pytest.raises(DataError, match="a stream of 4 tokens is too short for batch_size=4: need at least 5"):
        StreamBatcher(np.arange(4), batch_size=4, seq_len=2)
    with pytest.raises(IndexError, match=r"chunk index must be in \[0, 3\)"):
        StreamBatcher(np.arange(21), batch_size=2, seq_len=4)[3]
    with pytest.raises(DTypeError, match="stream must be a numeric array"):
        StreamBatcher(np.array(["a", "b"]), batch_size=1, seq_len=1)
