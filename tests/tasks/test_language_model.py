"""LanguageModel: learning, Chinese and word levels, sampling, files, word2vec parsers, exact resume."""

from __future__ import annotations

import itertools
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import ConfigError, DataError, DTypeError, ModelFileError
from rnnkit.io.model import save_model
from rnnkit.layers.dense import Dense
from rnnkit.layers.recurrent import Recurrent
from rnnkit.models import Sequential
from rnnkit.ops import log_softmax
from rnnkit.tasks.language_model import LanguageModel, next_token_probs
from rnnkit.tasks.word_vectors import WordVectors, load_word_vectors, train_word2vec
from tests.paths import SHARED_DATA

HLM = SHARED_DATA / "zh_hongloumeng_80.txt"
HELLO = "hello world " * 200
TINY = dict(hidden=32, embedding_dim=16, bptt=20, batch_size=8, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def hello_lm() -> LanguageModel:
    lm = LanguageModel("char", **TINY)
    lm.fit(HELLO, epochs=10)
    return lm


def hongloumeng_lines(n_chars: int) -> str:
    """The first paragraphs of the novel itself (chapter 1 after the prefaces), about n_chars long."""
    if not HLM.exists():
        pytest.skip(f"{HLM} is not available")
    text = HLM.read_text(encoding="utf-8")
    start = text.index("当日地陷东南")
    return text[start : start + n_chars]


# ---- learning ---------------------------------------------------------------------------------


def test_char_lm_learns_a_repetitive_text(hello_lm):
    assert hello_lm.metrics["cross_entropy"] < 0.1  # nats/token on the held-out tail (uniform: ln 10 = 2.3)
    assert hello_lm.metrics["bits_per_char"] == pytest.approx(hello_lm.metrics["cross_entropy"] / math.log(2))
    assert "".join(hello_lm.generate("hel", 8, temperature=0)) == "lo world"
    assert "".join(hello_lm.generate("hel", 8, temperature=0.1, seed=5)) == "lo world"


def test_evaluate_equals_the_cross_entropy_of_one_full_forward(hello_lm):
    """With one stream row (short text), evaluate is -mean log p(x_{t+1} | x_<=t) of a single forward."""
    text = "hello world hello wor"  # 21 tokens < 2 * bptt: one row
    ids = hello_lm.vocab.encode(list(text))
    logits = hello_lm.model.forward(ids[None, :-1]).astype(np.float64)[0]  # (T-1, V)
    expected = -np.mean(log_softmax(logits)[np.arange(len(ids) - 1), ids[1:]])
    got = hello_lm.evaluate(text)
    assert got["cross_entropy"] == pytest.approx(expected, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)


def test_encode_and_loss(hello_lm):
    token_id = {token: i for i, token in enumerate(hello_lm.vocab.tokens)}
    assert hello_lm.encode("held!").tolist() == [token_id[c] for c in "held"] + [Vocabulary.unk_id]
    assert hello_lm.loss == "cross_entropy"
    with pytest.raises(ConfigError, match="no vocabulary yet"):
        LanguageModel("char").encode("hello")


def test_generation_by_step_matches_full_forward(hello_lm):
    """Greedy tokens streamed with Recurrent.step() equal the argmax of a fresh full forward each time."""
    prime = "wor"
    generated = "".join(hello_lm.generate(prime, 15, temperature=0))
    for n in range(len(generated)):
        ids = hello_lm.vocab.encode(list(prime + generated[:n]))
        logits = hello_lm.model.forward(ids[None])[0, -1]
        logits[[0, 1]] = -np.inf  # <pad>, <unk> are never generated
        assert hello_lm.vocab.tokens[int(np.argmax(logits))] == generated[n]


def test_chinese_char_level():
    """A passage of the novel repeated: memorised, and greedy generation continues it character by character."""
    passage = hongloumeng_lines(60)
    lm = LanguageModel("char", hidden=48, embedding_dim=24, bptt=25, batch_size=8, lr=1e-2, seed=0)
    lm.fit(passage * 30, epochs=6)
    assert "阊" in lm.vocab and len(lm.vocab) == 2 + len(set(passage))
    assert lm.metrics["cross_entropy"] < 0.2
    assert "".join(lm.generate(passage[:6], 12, temperature=0)) == passage[6:18]


def test_word_level_whitespace():
    text = "the cat sat on the mat and the dog sat on the log .\n" * 60
    lm = LanguageModel("word", hidden=32, embedding_dim=16, bptt=10, batch_size=4, lr=1e-2, seed=0)
    lm.fit(text, epochs=8)
    assert len(lm.vocab) == 2 + 9
    assert lm.metrics["cross_entropy"] < 0.4
    tokens = list(lm.generate("and the dog", 6, temperature=0))
    assert "".join(tokens) == " sat on the log . the"  # word-level pieces carry their separator
    m = lm.evaluate(text[:200])
    n_tokens = len(text[:200].split())
    assert m["bits_per_char"] == pytest.approx(m["cross_entropy"] * (n_tokens - 1) / (math.log(2) * 200))
    assert m["bits_per_token"] == pytest.approx(m["cross_entropy"] / math.log(2))


def test_word_level_jieba():
    text = hongloumeng_lines(1500)
    lm = LanguageModel("word", "jieba", hidden=32, embedding_dim=16, bptt=10, batch_size=4, lr=1e-2, seed=0)
    lm.fit(text, epochs=2)
    assert "甲戌" in lm.vocab and "东南" in lm.vocab  # multi-character words
    sample = list(lm.generate("当日", 10, seed=0))
    assert len(sample) == 10 and " " not in "".join(sample)  # Chinese words are joined without spaces


# ---- sampling ---------------------------------------------------------------------------------


def test_generation_is_deterministic_under_a_seed(hello_lm):
    a = list(hello_lm.generate("h", 60, temperature=1.5, seed=7))
    assert a == list(hello_lm.generate("h", 60, temperature=1.5, seed=7))
    assert a != list(hello_lm.generate("h", 60, temperature=1.5, seed=8))


def test_top_k_1_is_greedy(hello_lm):
    greedy = list(hello_lm.generate("o w", 30, temperature=0))
    assert list(hello_lm.generate("o w", 30, temperature=2.0, top_k=1, seed=3)) == greedy


def test_unprimed_generation_and_no_pad_or_unk():
    """<unk> is the most frequent training token here, yet never generated."""
    text = "".join(chr(0x4E00 + (i * 7919) % 500) for i in range(3000))  # 500 rare characters
    lm = LanguageModel("char", max_vocab=6, hidden=16, embedding_dim=8, bptt=20, batch_size=8, lr=1e-2)
    lm.fit(text, epochs=1)
    assert lm.unigram[1] > lm.unigram[2:].max()
    sample = list(lm.generate("", 300, temperature=3.0, seed=0))
    assert len(sample) == 300 and not {"<unk>", "<pad>"} & set(sample)


def test_next_token_probs_temperature_and_banned():
    scores = np.array([5.0, 4.0, 1.0, 2.0, 0.5])
    p = next_token_probs(scores, temperature=0.5)
    e = np.exp(np.array([1.0, 2.0, 0.5]) / 0.5)
    np.testing.assert_allclose(p, [0, 0, *(e / e.sum())], rtol=1e-12)
    np.testing.assert_array_equal(next_token_probs(scores, temperature=0), [0, 0, 0, 1, 0])


def _nucleus_by_enumeration(q: np.ndarray, top_p: float) -> np.ndarray:
    """Independent top-p: among all subsets with mass >= top_p, the smallest, with the most mass."""
    best = None
    for r in range(1, len(q) + 1):
        for subset in itertools.combinations(range(len(q)), r):
            mass = q[list(subset)].sum()
            if mass >= top_p - 1e-12 and (best is None or mass > q[list(best)].sum()):
                best = subset
        if best is not None:
            break
    out = np.zeros_like(q)
    out[list(best)] = q[list(best)] / q[list(best)].sum()
    return out


@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.7, 0.84, 0.86, 0.99, 1.0])
def test_top_p_on_a_hand_made_distribution(top_p):
    q = np.array([0.05, 0.5, 0.1, 0.2, 0.15])  # ids 0, 1 are banned below, so pass banned=()
    p = next_token_probs(np.log(q), top_p=top_p, banned=())
    np.testing.assert_allclose(p, _nucleus_by_enumeration(q, top_p), atol=1e-12)
    if top_p == 0.7:  # 0.5 + 0.2 reaches 0.7: {1, 3}
        np.testing.assert_allclose(p, [0, 0.5 / 0.7, 0, 0.2 / 0.7, 0], atol=1e-12)


def test_top_k_then_top_p():
    q = np.array([0.4, 0.3, 0.2, 0.1])
    p = next_token_probs(np.log(q), top_k=3, top_p=0.75, banned=())  # top-3 renormalised: 4/9, 3/9, 2/9
    np.testing.assert_allclose(p, [4 / 7, 3 / 7, 0, 0], atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": -0.5}, "temperature must be a finite number >= 0"),
    ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
    ({"temperature": "hot"}, "temperature must be a finite number >= 0"),
    ({"top_k": 0}, "top_k must be >= 1"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \[0, 1\]"),
    ({"length": 0}, "length must be >= 1"),
])
def test_bad_sampling_options(hello_lm, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        hello_lm.generate("h", **kwargs)  # raised at the call, before the first token


def test_unknown_prime_tokens_warn(hello_lm):
    with pytest.warns(UserWarning, match=r"read as <unk>: \['z'\]"):
        out = "".join(hello_lm.generate("zhel", 3, temperature=0))
    assert len(out) == 3


# ---- files ------------------------------------------------------------------------------------


def test_save_load_round_trip(hello_lm, tmp_path):
    path = tmp_path / "lm.safetensors"
    hello_lm.save(path)
    loaded = LanguageModel.load(path)
    assert loaded.vocab == hello_lm.vocab and loaded.config() == hello_lm.config()
    for name, p in hello_lm.model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], p)
    kwargs = dict(length=50, temperature=1.2, top_p=0.95, seed=11)
    assert list(loaded.generate("wo", **kwargs)) == list(hello_lm.generate("wo", **kwargs))
    assert loaded.evaluate(HELLO[:300]) == hello_lm.evaluate(HELLO[:300])


def test_load_rejects_other_models(tmp_path):
    path = tmp_path / "forecast.safetensors"
    save_model(path, Sequential([Recurrent("gru", 1, 4, seed=0), Dense(4, 1, seed=0)]), {"name": "forecast"})
    with pytest.raises(ModelFileError, match="it is a 'forecast' model, not a 'lm' one"):
        LanguageModel.load(path)


# ---- word vectors -----------------------------------------------------------------------------

WORDS = ["the", "猫", "sat"]
VECS = np.array([[0.5, -1.25, 2.0], [1e-3, 3.5, -0.75], [0.0, 1.0, -2.5]], dtype=np.float32)


def write_text_vectors(path: Path, header: bool = True) -> Path:
    rows = [f"{w} " + " ".join(repr(float(x)) for x in v) for w, v in zip(WORDS, VECS)]
    lines = ([f"{len(WORDS)} 3"] if header else []) + rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_binary_vectors(path: Path, newline: bool = True, count: int = len(WORDS)) -> Path:
    end = b"\n" if newline else b""
    body = b"".join(w.encode() + b" " + struct.pack("<3f", *v) + end for w, v in zip(WORDS, VECS))
    path.write_bytes(f"{count} 3\n".encode() + body)
    return path


@pytest.mark.parametrize("writer", [
    lambda p: write_text_vectors(p / "v.txt"),
    lambda p: write_text_vectors(p / "glove.txt", header=False),
    lambda p: write_binary_vectors(p / "v.bin"),
    lambda p: write_binary_vectors(p / "gensim.bin", newline=False),
    lambda p: write_binary_vectors(p / "vectors.w2v"),  # binary detected from its non-UTF-8 bytes
])
def test_word2vec_parsers(tmp_path, writer):
    wv = load_word_vectors(writer(tmp_path))
    assert wv.words == WORDS and wv.dim == 3
    np.testing.assert_array_equal(wv.vectors, VECS)


@pytest.mark.parametrize("content, match", [
    (b"2 3\nthe 1 2 3\n", "header announces 2 words but the file has 1"),
    (b"1 3\nthe 1 2\n", "line 2: expected a word and 3 numbers, got 2"),
    (b"1 3\nthe 1 x 3\n", "line 2: the values of 'the' are not all numbers"),
    (b"2 3\nthe 1 2 3\nthe 4 5 6\n", "word 'the' appears twice"),
    (b"1 3\nthe 1 nan 3\n", "NaN or Inf"),
    (b"  \n", "is empty"),
])
def test_malformed_text_vectors(tmp_path, content, match):
    (tmp_path / "v.txt").write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_word_vectors(tmp_path / "v.txt")


def test_malformed_binary_vectors(tmp_path):
    full = write_binary_vectors(tmp_path / "v.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(full[:-8])
    with pytest.raises(DataError, match="ends inside entry 3 of 3; it is truncated"):
        load_word_vectors(tmp_path / "cut.bin")
    write_binary_vectors(tmp_path / "short.bin", count=2)
    with pytest.raises(DataError, match="follow the 2 entries the header announces"):
        load_word_vectors(tmp_path / "short.bin")
    (tmp_path / "nohead.bin").write_bytes(b"the " + VECS[0].tobytes())
    with pytest.raises(DataError, match="starts with a '<count> <dim>' line"):
        load_word_vectors(tmp_path / "nohead.bin")
    with pytest.raises(DataError, match="does not exist"):
        load_word_vectors(tmp_path / "missing.bin")


def test_vectors_initialise_the_embedding(tmp_path):
    path = write_text_vectors(tmp_path / "v.txt")
    lm = LanguageModel("word", vectors=path, hidden=8, bptt=5, batch_size=2)
    assert lm.embedding_dim == 3
    lm.fit("the 猫 sat on the mat " * 20, epochs=1, max_steps=1)  # one step moves the rows a little
    W = lm.model.layers[0].params["W"]
    for word, v in zip(WORDS, VECS):
        np.testing.assert_allclose(W[lm.vocab.tokens.index(word)], v, atol=0.05)
    assert np.all(W[0] == 0)  # <pad>
    with pytest.raises(ConfigError, match="embedding_dim=4 but the word vectors have dimension 3"):
        LanguageModel("word", vectors=path, embedding_dim=4)
    with pytest.raises(ConfigError, match="need level='word'"):
        LanguageModel("char", vectors=WordVectors(WORDS, VECS))


def test_vector_head_regresses_fixed_vectors_and_decodes_by_cosine(tmp_path):
    """The seed's word2vec + LSTM model: MSE onto the next word's vector, nearest word by cosine."""
    words = "the cat sat on mat and dog log .".split()
    wv = WordVectors(words, np.random.default_rng(0).standard_normal((len(words), 16)).astype(np.float32))
    text = "the cat sat on the mat and the dog sat on the log .\n" * 60
    lm = LanguageModel("word", vectors=wv, head="vector", hidden=32, bptt=10, batch_size=4, lr=1e-2, seed=0)
    lm.fit(text, epochs=8)
    rows = [lm.vocab.tokens.index(w) for w in words]
    np.testing.assert_array_equal(lm.model.layers[0].params["W"][rows], wv.vectors)  # fixed during training
    assert lm.metrics["accuracy"] > 0.9 and lm.metrics["mse"] < 0.2
    assert "".join(lm.generate("and the dog", 6, temperature=0)) == " sat on the log . the"
    out = lm.model.forward(lm.vocab.encode("and the dog".split())[None])[0, -1]
    cosines = [out @ v / (np.linalg.norm(out) * np.linalg.norm(v)) for v in wv.vectors]
    assert words[int(np.argmax(cosines))] == "sat"  # decoding, computed independently
    ids = lm.encode("the dog")  # the loss: mean over (B, T, E) of (prediction - next word's vector)^2
    loss, _ = lm.loss(out[None, None], ids[None, 1:])
    assert loss == pytest.approx(np.mean((out - wv.vectors[words.index("dog")]) ** 2), rel=1e-5)
    lm.save(tmp_path / "v.safetensors")
    loaded = LanguageModel.load(tmp_path / "v.safetensors")
    kwargs = dict(length=10, temperature=0.05, seed=2)
    assert list(loaded.generate("the", **kwargs)) == list(lm.generate("the", **kwargs))
    with pytest.raises(ConfigError, match="head='vector' regresses onto pretrained word vectors; pass vectors="):
        LanguageModel("word", head="vector")


def test_train_word2vec_without_gensim(monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)  # import gensim -> ImportError even if installed
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    with pytest.raises(ConfigError, match=r"pip install rnnkit\[word2vec\]"):
        train_word2vec("a b c", 10)


# ---- training: exact resume and input errors ----------------------------------------------------


def test_resume_is_bit_exact(tmp_path):
    """N steps in one go == k steps, stop (max_steps), resume to N: same parameters, bit for bit."""
    text = "abracadabra, said the cat to the bat. " * 20  # 760 chars: 5 steps per epoch below
    settings = dict(layers=2, dropout=0.2, hidden=16, embedding_dim=8, bptt=15, batch_size=10, seed=3)
    straight = LanguageModel("char", **settings)
    straight.fit(text, epochs=3, max_steps=12, checkpoint=tmp_path / "a.ckpt")
    first = LanguageModel("char", **settings)
    first.fit(text, epochs=3, max_steps=7, checkpoint=tmp_path / "b.ckpt")  # stops inside epoch 2
    resumed = LanguageModel("char", **settings)
    resumed.fit(text, epochs=3, max_steps=12, checkpoint=tmp_path / "b.ckpt", resume=True)
    assert any(not np.array_equal(first.model.params[k], p) for k, p in straight.model.params.items())
    for name, p in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], p, err_msg=name)


@pytest.mark.parametrize("kwargs, match", [
    ({"level": "byte"}, "level must be one of"),
    ({"level": "char", "tokenizer": "jieba"}, "needs level='word'"),
    ({"level": "word", "tokenizer": "spacy"}, "unknown tokenizer 'spacy'"),
    ({"cell": "transformer"}, "cell must be one of"),
    ({"hidden": 0}, "hidden must be >= 1"),
    ({"lr": -1.0}, "lr and clip_norm must be positive"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LanguageModel(**kwargs)


def test_bad_texts(hello_lm):
    with pytest.raises(DataError, match="text is empty"):
        LanguageModel().fit(" \n\t")
    with pytest.raises(DTypeError, match="text must be a str"):
        LanguageModel().fit(b"bytes")
    with pytest.raises(DataError, match="fewer than batch_size \\+ 1 = 33"):
        LanguageModel().fit("too short", val_frac=0)
    with pytest.raises(DataError, match="held-out tail .* has 25 tokens"):
        LanguageModel().fit("x" * 500)
    with pytest.raises(ConfigError, match="not trained; call fit"):
        LanguageModel().generate("a")
    with pytest.raises(DataError, match="at least 2 tokens"):
        hello_lm.evaluate("h")


def test_train_word2vec_with_gensim_learns_shared_contexts_and_feeds_the_vector_head():
    pytest.importorskip("gensim")
    rng = np.random.default_rng(0)
    lines = [f"the {animal} {verb} on the {thing} ." for animal, verb, thing in
             zip(rng.choice(["cat", "dog"], 400), rng.choice(["sat", "slept"], 400), rng.choice(["mat", "rug"], 400))]
    text = "\n".join(lines)
    wv = train_word2vec(text, 16, epochs=20, seed=0)
    vec = dict(zip(wv.words, wv.vectors))

    def cos(a, b):
        return float(vec[a] @ vec[b] / np.linalg.norm(vec[a]) / np.linalg.norm(vec[b]))

    assert cos("cat", "dog") > cos("cat", "on") and cos("mat", "rug") > cos("mat", "the")
    lm = LanguageModel("word", hidden=16, bptt=6, batch_size=4, lr=1e-2, vectors=wv, head="vector", seed=0)
    lm.fit(text, epochs=1)
    assert np.array_equal(lm.model.params["0.W"][lm.vocab.encode(["cat"])[0]], vec["cat"])  # vectors stay fixed
