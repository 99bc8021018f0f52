"""Pretrained word vectors: word2vec text and binary files, optional gensim training, embedding tables.

A word-level :class:`~rnnkit.tasks.language_model.LanguageModel` can start its Embedding from these
vectors (:func:`embedding_matrix`), and its ``head="vector"`` regresses onto them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_positive_int
from ..data.text import get_tokenizer
from ..data.vocab import Vocabulary
from ..errors import ConfigError, DataError

@dataclass
class WordVectors:
    """Pretrained word vectors: ``vectors[i] (dim,)`` is the vector of ``words[i]``."""

    words: list[str]
    vectors: np.ndarray  # (n, dim) float32

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def load_word_vectors(path: str | os.PathLike, binary: bool | None = None) -> WordVectors:
    """Read word2vec vectors in the TEXT or BINARY format (``binary=None``: ``.bin`` or non-UTF-8 = binary).

    Text: an optional header ``"<count> <dim>"``, then ``"<word> <v_1> ... <v_dim>"`` per line (GloVe
    files have no header). Binary: the header line, then per word ``<word> `` followed by ``dim``
    little-endian float32 (an optional newline before each word). Raises DataError for a missing or
    malformed file, naming the line (text) or entry (binary).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"word vector file {str(p)!r} does not exist or is not a file; check the path")
    data = p.read_bytes()
    if not data.strip():
        raise DataError(f"word vector file {str(p)!r} is empty; it needs a word2vec header and vectors")
    if binary is None:
        binary = p.suffix.lower() == ".bin" or not _is_utf8(data)
    words, rows = (_parse_binary if binary else _parse_text)(data, str(p))
    seen: dict[str, int] = {}
    for i, w in enumerate(words):
        if w in seen:
            raise DataError(f"word vector file {str(p)!r}: word {w!r} appears twice "
                            f"(entries {seen[w] + 1} and {i + 1})")
        seen[w] = i
    vectors = np.asarray(rows, dtype=np.float32).reshape(len(words), -1)
    if not np.isfinite(vectors).all():
        raise DataError(f"word vector file {str(p)!r} contains NaN or Inf values; regenerate it")
    return WordVectors(words, vectors)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_header(line: str) -> tuple[int, int] | None:
    """``(count, dim)`` from a ``"<count> <dim>"`` line, or None if the line is not a header."""
    parts = line.split()
    if len(parts) == 2 and all(s.isdigit() for s in parts) and int(parts[1]) > 0:
        return int(parts[0]), int(parts[1])
    return None


def _parse_text(data: bytes, where: str) -> tuple[list[str], list[list[float]]]:
    lines = data.decode("utf-8-sig").rstrip("\n").split("\n")
    header = _parse_header(lines[0])
    body = lines[1:] if header else lines
    dim = header[1] if header else len(body[0].split()) - 1
    if dim < 1:
        raise DataError(f"{where}, line 1: expected '<word> <numbers...>' or a '<count> <dim>' header, "
                        f"got {lines[0][:60]!r}")
    words, rows = [], []
    for n, line in enumerate(body, start=2 if header else 1):
        parts = line.rstrip().split(" ")
        if len(parts) != dim + 1:
            raise DataError(f"{where}, line {n}: expected a word and {dim} numbers, got {len(parts) - 1} numbers")
        try:
            rows.append([float(v) for v in parts[1:]])
        except ValueError:
            raise DataError(f"{where}, line {n}: the values of {parts[0]!r} are not all numbers") from None
        words.append(parts[0])
    if header and header[0] != len(words):
        raise DataError(f"{where}: the header announces {header[0]} words but the file has {len(words)}")
    return words, rows


def _parse_binary(data: bytes, where: str) -> tuple[list[str], list[np.ndarray]]:
    end = data.find(b"\n")
    header = _parse_header(data[:end].decode("ascii", "replace")) if end > 0 else None
    if header is None:
        raise DataError(f"{where}: a binary word2vec file starts with a '<count> <dim>' line, got {data[:40]!r}")
    count, dim = header
    pos, words, rows = end + 1, [], []
    for i in range(count):
        while data[pos : pos + 1] == b"\n":
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + 4 * dim > len(data):
            raise DataError(f"{where}: the file ends inside entry {i + 1} of {count}; it is truncated, regenerate it")
        try:
            words.append(data[pos:space].decode("utf-8"))
        except UnicodeDecodeError:
            raise DataError(f"{where}: the word of entry {i + 1} is not valid UTF-8; the file is corrupted") from None
        rows.append(np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1))
        pos = space + 1 + 4 * dim
    if data[pos:].strip():
        raise DataError(f"{where}: {len(data) - pos} bytes follow the {count} entries the header announces; "
                        "the header or the file is wrong")
    return words, rows


def train_word2vec(text: str, dim: int = 100, *, tokenizer: str = "whitespace", window: int = 5,
                   min_count: int = 1, epochs: int = 5, seed: int = 0) -> WordVectors:
    """Train skip-gram word2vec vectors on ``text`` with gensim (optional: ``pip install rnnkit[word2vec]``)."""
    sentences = [get_tokenizer(tokenizer)(line) for line in text.split("\n") if line.strip()]
    return skipgram_vectors(sentences, dim, window=window, min_count=min_count, epochs=epochs, seed=seed,
                            instead="or pass vectors you trained elsewhere with load_word_vectors(path)",
                            who="train_word2vec")


def skipgram_vectors(sentences: list[list[str]], dim: int, *, window: int = 5, min_count: int = 1, epochs: int = 5,
                     seed: int = 0, instead: str, who: str) -> WordVectors:
    """Skip-gram word2vec vectors (gensim, one worker: reproducible for a seed) of tokenized ``sentences``.

    Without gensim: a ConfigError naming ``who`` needs it, how to install it, and what to do ``instead``.
    """
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise ConfigError(f"{who} needs gensim; install it with `pip install rnnkit[word2vec]` "
                          f"(or `pip install gensim`), {instead}") from None
    dim = check_positive_int(dim, "dim")
    model = Word2Vec(sentences, vector_size=dim, window=window, min_count=min_count, sg=1, epochs=epochs,
                     seed=seed, workers=1)
    return WordVectors(list(model.wv.index_to_key), np.asarray(model.wv.vectors, dtype=np.float32))


def embedding_matrix(vectors: WordVectors, vocab: Vocabulary, rng: np.random.Generator) -> np.ndarray:
    """``(V, E)``: the pretrained vector of each vocabulary word; others N(0, std of the vectors); <pad> zero."""
    index = {w: i for i, w in enumerate(vectors.words)}
    std = float(vectors.vectors.std()) or 1.0
    W = rng.normal(0.0, std, (len(vocab), vectors.dim)).astype(np.float32)
    found = [(v, index[w]) for v, w in enumerate(vocab.tokens) if w in index]
    if found:
        rows, src = zip(*found)
        W[list(rows)] = vectors.vectors[list(src)]
    W[Vocabulary.pad_id] = 0.0
    return W
