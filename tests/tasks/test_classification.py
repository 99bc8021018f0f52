"""TextClassifier: learning (binary, 3 classes, Chinese), padding invariance, files, metrics, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data import Vocabulary
from rnnkit.errors import ConfigError, DataError, DTypeError, ModelFileError
from rnnkit.io.model import save_model
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.pooling import MaxPool, MeanPool
from rnnkit.layers.recurrent import Recurrent
from rnnkit.models import Sequential
from rnnkit.tasks.classification import (
    PRESETS,
    TextClassifier,
    evaluate_file,
    stratified_split,
    word2vec_table,
)

POS = ["good", "great", "excellent", "wonderful", "superb", "lovely", "brilliant", "enjoyable"]
NEG = ["bad", "awful", "terrible", "boring", "dull", "poor", "horrible", "weak"]
NEU = ["table", "chair", "window", "river", "paper", "street", "garden", "engine"]
NOISE = ["the", "movie", "was", "a", "and", "plot", "it", "film", "acting", "really", "this", "of", "story"]
ZH_POS = ["喜欢", "满意", "精彩", "推荐", "很好"]
ZH_NEG = ["失望", "糟糕", "无聊", "退货", "很差"]
ZH_NOISE = ["这本书", "内容", "物流", "包装", "作者", "我", "的", "了", "非常", "真的"]


def make_reviews(n, word_lists, noise, rng, sep=" "):
    """n texts of 3-11 noise words with 1-2 words of a random class's list inserted; labels are class names."""
    names = ["neg", "pos", "neu"]
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(len(word_lists)))
        words = list(rng.choice(noise, size=int(rng.integers(3, 12))))
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(word_lists[c])))
        texts.append(sep.join(words))
        labels.append(names[c])
    return texts, labels


@pytest.fixture(scope="module")
def binary():
    """A tutorial-preset classifier trained on synthetic binary reviews, with held-out data."""
    rng = np.random.default_rng(0)
    train_data, test_data = make_reviews(600, [NEG, POS], NOISE, rng), make_reviews(200, [NEG, POS], NOISE, rng)
    clf = TextClassifier(lr=1e-2, epochs=8, seed=0).fit(*train_data)
    return clf, test_data


def test_tutorial_preset_is_the_seed_keras_model(binary):
    clf, _ = binary
    emb, g1, g2, g3, dense = clf.model_.layers
    assert isinstance(emb, Embedding) and (emb.num_embeddings, emb.embedding_dim) == (len(clf.vocabulary_), 8)
    sizes = [(g.cell, g.input_size, g.hidden_size, g.return_sequences, g.bidirectional) for g in (g1, g2, g3)]
    assert sizes == [("gru", 8, 16, True, False), ("gru", 16, 8, True, False), ("gru", 8, 4, False, False)]
    assert isinstance(dense, Dense) and (dense.in_features, dense.out_features, dense.activation) == (4, 1, "linear")


def test_overrides_replace_the_preset():
    clf = TextClassifier(preset="tutorial", cell="lstm", hidden=12, layers=2, embedding_dim=5, bidirectional=True,
                         dropout=0.2, embedding_dropout=0.1, pooling="mean", word2vec_epochs=3)
    assert clf.architecture == {"embedding_dim": 5, "cell": "lstm", "hidden": [12, 12], "bidirectional": True,
                                "dropout": 0.2, "embedding_dropout": 0.1, "pooling": "mean", "word2vec_epochs": 3}
    assert TextClassifier(layers=2).architecture["hidden"] == [16, 16]
    assert TextClassifier(hidden=[7, 3]).architecture["hidden"] == [7, 3]


@pytest.fixture(scope="module")
def max_pooled():
    """A bidirectional GRU classifier with embedding dropout and max pooling over time, trained on
    synthetic binary reviews."""
    rng = np.random.default_rng(2)
    train_data, test_data = make_reviews(400, [NEG, POS], NOISE, rng), make_reviews(200, [NEG, POS], NOISE, rng)
    clf = TextClassifier(preset="bigru", pooling="max", embedding_dropout=0.1, embedding_dim=8, hidden=8, lr=1e-2,
                         epochs=6, seed=0)
    return clf.fit(*train_data), test_data


def test_max_pooling_stack_learns_and_ignores_padding(max_pooled):
    clf, (texts, labels) = max_pooled
    emb, emb_drop, gru, pool, drop, dense = clf.model_.layers
    assert isinstance(emb, Embedding) and isinstance(pool, MaxPool)
    assert (type(emb_drop), emb_drop.rate, type(drop), drop.rate) == (Dropout, 0.1, Dropout, 0.3)
    assert gru.return_sequences and gru.bidirectional and (dense.in_features, dense.out_features) == (16, 1)
    # At inference the logit is the Dense layer on the feature-wise max of the GRU outputs over the valid steps.
    ids, lengths = clf.encode(texts[:3])
    y = gru.forward(emb.forward(ids), lengths=lengths)  # (3, T, 16)
    pooled = np.stack([y[b, :n].max(axis=0) for b, n in enumerate(lengths)])
    np.testing.assert_allclose(clf.model_.forward(ids, lengths=lengths), dense.forward(pooled), rtol=1e-5, atol=1e-6)
    assert clf.evaluate(texts, labels)["accuracy"] >= 0.95
    short, longer = "the film was good", " ".join(["the movie was really dull and the plot"] * 4)
    np.testing.assert_allclose(clf.predict_proba([short, longer])[0], clf.predict_proba([short])[0],
                               rtol=1e-6, atol=1e-7)


def test_max_pooling_save_load_round_trip(max_pooled, tmp_path):
    clf, (texts, _) = max_pooled
    clf.save(tmp_path / "clf.safetensors")
    back = TextClassifier.load(tmp_path / "clf.safetensors")
    np.testing.assert_array_equal(back.predict_proba(texts), clf.predict_proba(texts))
    assert back.get_params() == clf.get_params() and back.get_params()["pooling"] == "max"


def test_mean_pooling_builds_a_mean_pool_stack():
    clf = TextClassifier(pooling="mean", seed=0).fit(["good film", "bad film", "great", "awful"], [1, 0, 1, 0])
    assert [type(layer) for layer in clf.model_.layers[-2:]] == [MeanPool, Dense]
    assert [g.return_sequences for g in clf.model_.layers[1:-2]] == [True, True, True]


def test_word2vec_table_is_gensims_vectors_at_unit_scale():
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(3)
    tokens = [list(t) for t in make_reviews(60, [ZH_NEG, ZH_POS], ZH_NOISE, rng, sep="")[0]]
    vocab = Vocabulary.build([t for text in tokens for t in text] + ["<never seen>"] * 2, min_freq=1)
    table = word2vec_table(tokens, vocab, 6, 2, seed=0)
    reference = gensim_models.Word2Vec(tokens, vector_size=6, window=5, min_count=1, sg=1, epochs=2, seed=0,
                                       workers=1).wv
    s = reference.vectors.std()
    for i, token in enumerate(vocab.tokens):
        if token in reference:
            np.testing.assert_allclose(table[i], reference[token] / s, rtol=1e-5, atol=1e-6)
    assert not table[Vocabulary.pad_id].any()
    assert np.isfinite(table).all() and table.shape == (len(vocab), 6) and table.dtype == np.float32
    np.testing.assert_array_equal(word2vec_table(tokens, vocab, 6, 2, seed=0), table)  # seeded


def test_fit_starts_the_embedding_from_word2vec_of_the_training_texts():
    pytest.importorskip("gensim")
    rng = np.random.default_rng(4)
    texts, labels = make_reviews(80, [ZH_NEG, ZH_POS], ZH_NOISE, rng, sep="")
    clf = TextClassifier("char", word2vec_epochs=2, embedding_dim=6, lr=1e-12, epochs=1, seed=1).fit(texts, labels)
    train_idx, _ = stratified_split(clf.label_encoder_.transform(labels), 0.1, 1)  # fit's split
    expected = word2vec_table([list(texts[i]) for i in train_idx], clf.vocabulary_, 6, 2, seed=1)
    np.testing.assert_allclose(clf.model_.layers[0].params["W"], expected, atol=1e-8)  # lr 1e-12: untrained


def test_word2vec_without_gensim_is_a_config_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "gensim.models", None)  # import gensim.models fails
    with pytest.raises(ConfigError, match=r"word2vec_epochs > 0 needs gensim; install it .*set word2vec_epochs=0"):
        word2vec_table([["a"]], Vocabulary.build(["a"]), 4, 1, seed=0)


def test_bigru_max_w2v_preset():
    assert TextClassifier(preset="bigru-max-w2v").architecture == {**PRESETS["bigru-max-w2v"], "hidden": [64]}
    assert PRESETS["bigru-max-w2v"] == {"embedding_dim": 32, "cell": "gru", "hidden": [64], "bidirectional": True,
                                        "dropout": 0.3, "embedding_dropout": 0.3, "pooling": "max",
                                        "word2vec_epochs": 10}


def test_learns_binary_sentiment(binary):
    clf, (texts, labels) = binary
    scores = clf.evaluate(texts, labels)
    assert scores["accuracy"] >= 0.95
    assert scores["average"] == "binary" and scores["positive_label"] == "pos" and scores["labels"] == ["neg", "pos"]
    proba = clf.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


def test_learns_three_classes():
    rng = np.random.default_rng(1)
    lists = [NEG, POS, NEU]
    clf = TextClassifier(lr=1e-2, epochs=8, seed=0).fit(*make_reviews(600, lists, NOISE, rng))
    texts, labels = make_reviews(200, lists, NOISE, rng)
    scores = clf.evaluate(texts, labels)
    assert clf.model_.layers[-1].out_features == 3 and scores["average"] == "macro"
    assert scores["accuracy"] >= 0.9 and scores["f1"] >= 0.9
    assert clf.predict(texts[:20]) == list(np.array(clf.classes_)[clf.predict_proba(texts[:20]).argmax(axis=1)])


def test_padding_never_changes_a_prediction(binary):
    clf, _ = binary
    short, longer = "the film was good", " ".join(["the movie was really dull and the plot"] * 4)
    alone = clf.predict_proba([short])[0]
    padded = clf.predict_proba([short, longer, longer + " of this story"])[0]  # one batch, padded to the longest
    np.testing.assert_allclose(padded, alone, rtol=1e-6, atol=1e-7)
    # At the model level: the same ids padded with extra <pad> columns, same lengths.
    ids, _ = clf.encode([short])  # (1, 4)
    extra = np.concatenate([ids, np.zeros((1, 9), dtype=np.int64)], axis=1)
    lengths = np.array([ids.shape[1]])
    np.testing.assert_allclose(clf.model_.forward(extra, lengths=lengths), clf.model_.forward(ids, lengths=lengths),
                               rtol=1e-6, atol=1e-7)


def test_save_load_round_trip(binary, tmp_path):
    clf, (texts, _) = binary
    path = tmp_path / "clf.safetensors"
    clf.save(path)
    back = TextClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(texts), clf.predict_proba(texts))
    assert back.classes_ == clf.classes_ and back.vocabulary_ == clf.vocabulary_
    assert back.get_params() == clf.get_params()


@pytest.mark.parametrize("n_classes", [2, 3])
def test_metrics_match_an_independent_count(binary, n_classes):
    clf, (texts, labels) = binary
    rng = np.random.default_rng(5)
    classes = clf.classes_ if n_classes == 2 else ["neg", "pos", "neu"]
    noisy = [str(rng.choice(classes)) if rng.random() < 0.3 else y for y in labels]  # errors to count
    if n_classes == 3:  # a 3-class model: the binary model's weights don't matter for counting
        clf = TextClassifier(lr=1e-2, epochs=1, seed=0).fit(texts, noisy)
        classes = clf.classes_
    scores = clf.evaluate(texts, noisy)
    pred = clf.predict(texts)
    count = {(a, b): sum(1 for y, p in zip(noisy, pred) if (y, p) == (a, b)) for a in classes for b in classes}
    assert scores["confusion_matrix"] == [[count[a, b] for b in classes] for a in classes]
    assert scores["accuracy"] == pytest.approx(sum(count[c, c] for c in classes) / len(texts))

    def prf(c):
        tp = count[c, c]
        fp = sum(count[a, c] for a in classes) - tp
        fn = sum(count[c, b] for b in classes) - tp
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    expected = prf("pos") if n_classes == 2 else tuple(np.mean([prf(c) for c in classes], axis=0))
    assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx(expected)


@pytest.mark.parametrize("tokenizer", ["char", "jieba"])
def test_chinese_reviews(tokenizer):
    rng = np.random.default_rng(2)
    lists = [ZH_NEG, ZH_POS]
    clf = TextClassifier(tokenizer, lr=1e-2, epochs=6, seed=0).fit(*make_reviews(400, lists, ZH_NOISE, rng, sep=""))
    tokens = clf.vocabulary_.tokens[2:]
    if tokenizer == "char":
        assert all(len(t) == 1 for t in tokens) and "喜" in tokens
    else:
        assert {"喜欢", "物流", "退货"} <= set(tokens)  # jieba words, not characters
    texts, labels = make_reviews(100, lists, ZH_NOISE, rng, sep="")
    assert clf.evaluate(texts, labels)["accuracy"] >= 0.9


def test_unknown_tokens_are_scored_and_empty_texts_are_errors(binary):
    clf, _ = binary
    assert clf.predict_proba(["zzz qqq xxyy"]).shape == (1, 2)  # all <unk>: scored
    with pytest.raises(DataError, match=r"no tokens .* at index \[1\]"):
        clf.predict(["good", "   "])


def test_encode_targets_and_loss_are_what_fit_trains_on(binary):
    clf, _ = binary
    ids, lengths = clf.encode(["The film was GOOD!", "dull"])  # lower-cased, "!" split off and unknown
    token_id = {token: i for i, token in enumerate(clf.vocabulary_.tokens)}
    first = [token_id[w] for w in ("the", "film", "was", "good")] + [Vocabulary.unk_id]
    assert ids.tolist() == [first, [token_id["dull"]] + [Vocabulary.pad_id] * 4]
    assert lengths.tolist() == [5, 1]
    np.testing.assert_array_equal(clf.targets(["neg", "pos", "pos"]), np.array([[0.0], [1.0], [1.0]], np.float32))
    assert clf.loss == "binary_cross_entropy_with_logits"


def test_evaluate_file(binary, tmp_path):
    clf, (texts, labels) = binary
    clf.save(tmp_path / "m.safetensors")
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"review": t, "y": y}) + "\n" for t, y in zip(texts, labels)), encoding="utf-8")
    scores = evaluate_file(tmp_path / "m.safetensors", data, text_column="review", label_column="y")
    assert scores == clf.evaluate(texts, labels)


def test_stratified_split_keeps_every_class():
    y = np.array([0] * 10 + [1] * 3 + [2])
    kept, held = stratified_split(y, 0.5, seed=0)
    assert np.bincount(y[held], minlength=3).tolist() == [5, 1, 0]
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(y)))
    assert set(y[kept]) == {0, 1, 2}


def test_errors(binary, tmp_path):
    clf, _ = binary
    with pytest.raises(DataError, match="texts is empty"):
        TextClassifier().fit([], [])
    with pytest.raises(DataError, match="at least two classes"):
        TextClassifier().fit(["good", "bad"], ["pos", "pos"])
    with pytest.raises(DataError, match="one label per text"):
        TextClassifier().fit(["good", "bad"], ["pos"])
    with pytest.raises(DTypeError, match="wrap it in a list"):
        clf.predict("a good film")
    with pytest.raises(DTypeError, match=r"texts\[1\] must be a str"):
        clf.predict(["good", None])
    with pytest.raises(ConfigError, match="not fitted"):
        TextClassifier().predict(["good"])
    with pytest.raises(DataError, match="unknown label"):
        clf.evaluate(["good"], ["meh"])
    with pytest.raises(ConfigError, match="preset must be one of"):
        TextClassifier(preset="huge")
    with pytest.raises(ConfigError, match=r"pooling must be one of \['last', 'max', 'mean'\], got 'attention'"):
        TextClassifier(pooling="attention")
    with pytest.raises(ConfigError, match="word2vec_epochs must be >= 0, got -1"):
        TextClassifier(word2vec_epochs=-1)
    with pytest.raises(ConfigError, match=r"embedding_dropout must be in \[0, 1\), got 1.0"):
        TextClassifier(embedding_dropout=1.0)
    with pytest.raises(ConfigError, match="of length layers=3"):
        TextClassifier(hidden=[8, 4], layers=3)
    with pytest.raises(ConfigError, match="takes options"):
        TextClassifier("char", tokenizer_options={"lowercase": True})
    other = tmp_path / "forecast.safetensors"
    save_model(other, Sequential([Recurrent("gru", 1, 2, return_sequences=False), Dense(2, 1)]), {"name": "forecast"})
    with pytest.raises(ModelFileError, match="it is a 'forecast' model, not a 'classify' one"):
        TextClassifier.load(other)
