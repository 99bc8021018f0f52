"""Text classification (e.g. sentiment): tokens -> embedding -> stacked recurrent layers -> classes.

For a text tokenized into ids ``w_1 .. w_L`` (``L <= max_len``; longer texts keep their last
``max_len`` tokens) and ``K`` classes::

    e_t = E[w_t]                                          # Embedding, (E,); E may start from word2vec
    y_t = Recurrent_n( ... Recurrent_1(e_1..e_L))_t       # the top layer's outputs, (M,) each
    pooling "last": h = y_L                               # the final state
    pooling "max":  h_j = max_t y_{t,j}                   # each feature's strongest step
    pooling "mean": h = (y_1 + ... + y_L) / L
    a   = W h + b                                         # Dense logits
    K = 2:  P(class 1) = sigmoid(a),  a in R              # binary cross-entropy
    K > 2:  P(class k) = softmax(a)_k,  a in R^K          # cross-entropy

In training, ``embedding_dropout`` drops elements of ``e_t``, ``dropout`` elements of ``h`` (and
between recurrent layers).

The binary head is the seed tutorial's ``Dense(1, activation="sigmoid")`` trained with binary
cross-entropy: the Dense layer here stays linear and the loss is
``binary_cross_entropy_with_logits`` (the same function, computed without overflow); the sigmoid is
applied at prediction time. Texts in a batch are padded at the end and the recurrent layers get
their lengths, so padded steps never change a prediction: a text scores the same alone or next
to a longer one.

Class ids follow :class:`~rnnkit.data.LabelEncoder` (labels sorted); in the binary case class id 1,
the second label in sorted order (``1`` of ``0/1``, ``"pos"`` of ``"neg"/"pos"``), is the
positive class of precision, recall and F1. A text with no tokens at all (empty or whitespace
only) is an error; a text whose tokens are all unknown is encoded as ``<unk>`` ids and scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from .._validation import as_rng, check_choice, check_positive_int, check_probability
from ..data import (
    LabelEncoder,
    Tokenizer,
    Vocabulary,
    get_tokenizer,
    load_labelled,
    pad_sequences,
)
from ..data.text import TOKENIZERS
from ..errors import ConfigError, DataError, DTypeError
from ..io.model import save_model
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.pooling import MaxPool, MeanPool
from ..layers.recurrent import CELLS, Recurrent
from ..models import Sequential
from ..ops import sigmoid, softmax
from ._common import (
    check_training,
    fit_with_early_stopping,
    load_task_model,
    reading_task_document,
)
from .word_vectors import embedding_matrix, skipgram_vectors

TASK = "classify"
_TASK_KEYS = ("tokenizer", "vocabulary", "label_encoder", "max_len", "config")

PRESETS: dict[str, dict[str, Any]] = {
    # The seed tutorial's Keras model: Embedding(8) -> GRU(16) -> GRU(8) -> GRU(4) -> Dense(1, sigmoid).
    "tutorial": {"embedding_dim": 8, "cell": "gru", "hidden": [16, 8, 4], "bidirectional": False, "dropout": 0.0,
                 "embedding_dropout": 0.0, "pooling": "last", "word2vec_epochs": 0},
    # Wider, both reading directions, dropout before the output layer (see docs/classification.md).
    "bigru": {"embedding_dim": 32, "cell": "gru", "hidden": [32], "bidirectional": True, "dropout": 0.3,
              "embedding_dropout": 0.0, "pooling": "last", "word2vec_epochs": 0},
    # The Chinese reviews' best on the validation split (docs/classification.md): bigru with 64 units,
    # embeddings started from word2vec on the training texts and dropped out, max pooling over time.
    "bigru-max-w2v": {"embedding_dim": 32, "cell": "gru", "hidden": [64], "bidirectional": True, "dropout": 0.3,
                      "embedding_dropout": 0.3, "pooling": "max", "word2vec_epochs": 10},
}
"""Architectures by name; ``cell``, ``hidden``, ``layers``, ``embedding_dim``, ``bidirectional``,
``dropout``, ``embedding_dropout``, ``pooling`` and ``word2vec_epochs`` given to
:class:`TextClassifier` override the preset's values."""

POOLINGS = {"last": None, "max": MaxPool, "mean": MeanPool}
"""How the top recurrent layer's outputs become one vector: its final state (``"last"``) or a
pooling layer over the valid steps of its output sequence (see :mod:`rnnkit.layers.pooling`)."""

DEFAULT_TOKENIZER_OPTIONS: dict[str, dict[str, bool]] = {
    "whitespace": {"lowercase": True, "split_punctuation": True},
}
"""Options used when ``tokenizer_options`` is None ("Great!" -> ["great", "!"])."""


class TextClassifier:
    """Recurrent text classifier, binary (sigmoid) or multi-class (softmax), scikit-learn style.

    Args:
        tokenizer: ``"whitespace"`` (words; lower-cased, punctuation split off by default),
            ``"char"`` (one token per character, e.g. Chinese) or ``"jieba"`` (Chinese words).
        tokenizer_options: keyword options of the tokenizer (None: ``DEFAULT_TOKENIZER_OPTIONS``).
        max_vocab: vocabulary size including ``<pad>`` and ``<unk>``; the rarest tokens are dropped.
        min_freq: keep tokens seen at least this often in the training texts.
        max_len: keep at most the last ``max_len`` tokens of each text.
        preset: an architecture of ``PRESETS`` (``"tutorial"``: the seed's Keras model).
        cell, hidden, layers, embedding_dim, bidirectional, dropout, embedding_dropout, pooling:
            override the preset. ``hidden`` is one size (repeated ``layers`` times, default 1) or a
            list of per-layer sizes; ``layers`` alone repeats the preset's first size. ``dropout``
            acts between recurrent layers and before the output layer, ``embedding_dropout`` on
            the embedded tokens ``e_t`` (each element independently). ``pooling`` (one of
            ``POOLINGS``) turns the top layer's outputs into the output layer's input.
        word2vec_epochs: 0: the embedding table starts random, N(0, 1); n > 0: it starts from
            skip-gram word2vec vectors trained for n epochs on the training texts (needs gensim,
            see :func:`word2vec_table`). Overrides the preset's.
        lr: Adam learning rate (the tutorial's 1e-3).
        epochs: maximum passes over the training texts.
        batch_size: texts per update.
        patience: stop after this many epochs without a lower validation loss, back at the best epoch's weights.
        clip_norm: clip the global gradient norm (None: no clipping).
        seed: seeds the splits, initial weights, shuffling and dropout masks.

    After :meth:`fit`: ``model_`` (a :class:`~rnnkit.models.Sequential`), ``vocabulary_``,
    ``label_encoder_``, ``classes_`` and ``history_``.
    """

    def __init__(
        self,
        tokenizer: str = "whitespace",
        *,
        tokenizer_options: dict[str, bool] | None = None,
        max_vocab: int = 20000,
        min_freq: int = 1,
        max_len: int = 200,
        preset: str = "tutorial",
        cell: str | None = None,
        hidden: int | Sequence[int] | None = None,
        layers: int | None = None,
        embedding_dim: int | None = None,
        bidirectional: bool | None = None,
        dropout: float | None = None,
        embedding_dropout: float | None = None,
        pooling: str | None = None,
        word2vec_epochs: int | None = None,
        lr: float = 1e-3,
        epochs: int = 10,
        batch_size: int = 32,
        patience: int = 3,
        clip_norm: float | None = 5.0,
        seed: int = 0,
    ) -> None:
        self.tokenizer = check_choice(tokenizer, "tokenizer", sorted(TOKENIZERS))
        if tokenizer_options is None:
            tokenizer_options = DEFAULT_TOKENIZER_OPTIONS.get(tokenizer, {})
        get_tokenizer(tokenizer, **tokenizer_options)  # raises ConfigError for options it does not take
        self.tokenizer_options = dict(tokenizer_options)
        self.max_vocab = check_positive_int(max_vocab, "max_vocab", minimum=3)
        self.min_freq = check_positive_int(min_freq, "min_freq")
        self.max_len = check_positive_int(max_len, "max_len")
        self.preset = check_choice(preset, "preset", sorted(PRESETS))
        self.architecture = resolve_architecture(preset, cell=cell, hidden=hidden, layers=layers,
                                                 embedding_dim=embedding_dim, bidirectional=bidirectional,
                                                 dropout=dropout, embedding_dropout=embedding_dropout,
                                                 pooling=pooling, word2vec_epochs=word2vec_epochs)
        # The overrides as given (None: the preset's), as plain Python values for the model file.
        self.cell, self.layers = cell, None if layers is None else int(layers)
        self.hidden = None if hidden is None else int(hidden) if np.ndim(hidden) == 0 else [int(h) for h in hidden]
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)
        self.bidirectional = None if bidirectional is None else bool(bidirectional)
        self.dropout = None if dropout is None else float(dropout)
        self.embedding_dropout = None if embedding_dropout is None else float(embedding_dropout)
        self.pooling = pooling
        self.word2vec_epochs = None if word2vec_epochs is None else int(word2vec_epochs)
        self.lr, self.epochs, self.batch_size, self.patience, self.clip_norm, self.seed = check_training(
            lr, epochs, batch_size, patience, clip_norm, seed)
        self.model_: Sequential | None = None

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-ready): ``TextClassifier(**c.get_params())`` is an unfitted copy."""
        names = ("tokenizer", "tokenizer_options", "max_vocab", "min_freq", "max_len", "preset", "cell", "hidden",
                 "layers", "embedding_dim", "bidirectional", "dropout", "embedding_dropout", "pooling",
                 "word2vec_epochs", "lr", "epochs", "batch_size", "patience", "clip_norm", "seed")
        return {name: getattr(self, name) for name in names}

    # ---- training ---------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str | int],
        *,
        val_frac: float = 0.1,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        max_time: float | None = None,
        progress: bool | None = None,
    ) -> TextClassifier:
        """Train on ``texts`` and their ``labels`` (strings or integers, at least two classes); returns self.

        A stratified ``val_frac`` of the texts (per class, drawn with ``seed``) is held out for
        early stopping on the validation loss; the vocabulary is built from the rest only.
        ``checkpoint``, ``resume``, ``max_time`` and ``progress`` go to :func:`rnnkit.train.fit`.
        """
        texts = _check_texts(texts, "texts")
        labels = _check_label_count(labels, len(texts))
        encoder = LabelEncoder().fit(labels)
        if encoder.num_classes < 2:
            raise DataError(f"all {len(labels)} labels are {encoder.classes_[0]!r}; a classifier needs at least two "
                            "classes: add texts of another class")
        self.label_encoder_, self.classes_ = encoder, list(encoder.classes_)
        y = encoder.transform(labels)
        train_idx, val_idx = stratified_split(y, check_probability(val_frac, "val_frac"), self.seed)
        tokens = self._tokenize(texts)
        self.vocabulary_ = Vocabulary.build(chain.from_iterable(tokens[i] for i in train_idx),
                                            max_size=self.max_vocab, min_freq=self.min_freq)
        self.model_ = self._build_model(len(self.vocabulary_))
        if self.architecture["word2vec_epochs"]:
            self.model_.layers[0].params["W"][...] = word2vec_table(
                [tokens[i] for i in train_idx], self.vocabulary_, self.architecture["embedding_dim"],
                self.architecture["word2vec_epochs"], self.seed)
        x, lengths = self._pad(tokens)
        targets = self.targets(labels)
        validation = (x[val_idx], targets[val_idx], lengths[val_idx]) if len(val_idx) else None
        self.history_ = fit_with_early_stopping(
            self.model_, x[train_idx], targets[train_idx], validation, self, loss=self.loss, lengths=lengths[train_idx],
            checkpoint=checkpoint, resume=resume, max_time=max_time, progress=progress,
        )
        return self

    @property
    def _binary(self) -> bool:
        return len(self.classes_) == 2

    @property
    def loss(self) -> str:
        """The training loss: ``"binary_cross_entropy_with_logits"`` for two classes, else ``"cross_entropy"``."""
        return "binary_cross_entropy_with_logits" if self._binary else "cross_entropy"

    def targets(self, labels: Sequence[str | int]) -> np.ndarray:
        """Labels -> what :attr:`loss` takes: float (N, 1) of class 1 for binary, class ids (N,) for multi-class."""
        y = self.label_encoder_.transform(labels)  # (N,) class ids
        return y[:, None].astype(np.float32) if self._binary else y

    def _build_model(self, vocab_size: int) -> Sequential:
        """Embedding [-> Dropout] -> Recurrent per layer (the top one: final state only, or its outputs
        -> pooling) [-> Dropout] -> Dense, seeded."""
        a, rng = self.architecture, np.random.default_rng(self.seed)
        stack: list = [Embedding(vocab_size, a["embedding_dim"], padding_idx=Vocabulary.pad_id, seed=rng)]
        if a["embedding_dropout"] > 0:
            stack.append(Dropout(a["embedding_dropout"], seed=rng))
        width, sizes = a["embedding_dim"], a["hidden"]
        for k, h in enumerate(sizes):
            if k > 0 and a["dropout"] > 0:
                stack.append(Dropout(a["dropout"], seed=rng))
            stack.append(Recurrent(a["cell"], width, h, bidirectional=a["bidirectional"],
                                   return_sequences=k < len(sizes) - 1 or a["pooling"] != "last", seed=rng))
            width = stack[-1].output_size
        if POOLINGS[a["pooling"]] is not None:
            stack.append(POOLINGS[a["pooling"]]())
        if a["dropout"] > 0:
            stack.append(Dropout(a["dropout"], seed=rng))
        stack.append(Dense(width, 1 if self._binary else len(self.classes_), seed=rng))
        return Sequential(stack, name=f"text_classifier_{self.preset}")

    # ---- using the model ----------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The model's input for ``texts``: token ids ``(N, T)`` padded at the end and ``lengths (N,)``.

        T is the longest text's token count, at most ``max_len`` (longer texts keep their last tokens).
        """
        self._check_fitted()
        return self._pad(self._tokenize(_check_texts(texts, "texts")))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``(N, K)``, columns in the order of ``classes_`` (binary: ``[1 - p, p]``)."""
        logits = self._logits(texts)  # (N, 1) or (N, K)
        if self._binary:
            p = sigmoid(logits[:, 0])
            return np.stack([1.0 - p, p], axis=1)
        return softmax(logits)

    def predict(self, texts: Sequence[str]) -> list[str | int]:
        """The most probable label of each text (binary: P(positive) > 0.5)."""
        ids = self.predict_proba(texts).argmax(axis=1)
        return self.label_encoder_.inverse_transform(ids)

    def evaluate(self, texts: Sequence[str], labels: Sequence[str | int]) -> dict[str, Any]:
        """Scores on labelled texts::

            {"n", "accuracy", "precision", "recall", "f1",
             "average": "binary" (of the positive class, classes_[1]) or "macro" (mean over classes),
             "positive_label": classes_[1] or None,
             "confusion_matrix": M[i][j] = texts of class labels[i] predicted as labels[j],
             "labels": classes_}
        """
        self._check_fitted()
        texts = _check_texts(texts, "texts")
        y = self.label_encoder_.transform(_check_label_count(labels, len(texts)))
        proba = self.predict_proba(texts)
        y_pred = proba.argmax(axis=1)
        average = "binary" if self._binary else "macro"
        precision, recall, f1 = metrics.precision_recall_f1(y, y_pred, average=average)
        return {
            "n": len(texts), "accuracy": metrics.accuracy(y, proba), "precision": precision, "recall": recall,
            "f1": f1, "average": average, "positive_label": self.classes_[1] if self._binary else None,
            "confusion_matrix": metrics.confusion_matrix(y, y_pred, num_classes=len(self.classes_)).tolist(),
            "labels": list(self.classes_),
        }

    def _logits(self, texts: Sequence[str]) -> np.ndarray:
        """Model outputs for ``texts``, computed in batches of similar length (less padding, same values)."""
        ids, lengths = self.encode(texts)  # (N, T), (N,)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(ids), self.model_.layers[-1].out_features))  # (N, 1) or (N, K)
        for start in range(0, len(ids), self.batch_size):
            chunk = order[start : start + self.batch_size]
            T = lengths[chunk].max()  # the chunk padded to its own longest text
            out[chunk] = self.model_.forward(ids[chunk, :T], lengths=lengths[chunk], cache=False)
        return out

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        """Tokens of every text; DataError naming the texts that have none."""
        tokenize: Tokenizer = get_tokenizer(self.tokenizer, **self.tokenizer_options)
        tokens = [tokenize(t) for t in texts]
        empty = [i for i, t in enumerate(tokens) if not t]
        if empty:
            raise DataError(
                f"{len(empty)} text(s) have no tokens (empty or whitespace only), at index {empty[:10]}; "
                "a classifier needs at least one token per text: drop or fill them"
            )
        return tokens

    def _pad(self, tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Token lists -> ids ``(N, T)`` padded at the end and ``lengths (N,)`` (see :meth:`encode`)."""
        return pad_sequences([self.vocabulary_.encode(t) for t in tokens], self.max_len)

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise ConfigError("this TextClassifier is not fitted; call fit(texts, labels) or TextClassifier.load(path)")

    # ---- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model, tokenizer, vocabulary and labels to one ``.safetensors`` file (atomic)."""
        self._check_fitted()
        task = {
            "name": TASK, "tokenizer": {"name": self.tokenizer, "options": self.tokenizer_options},
            "vocabulary": self.vocabulary_.to_dict(), "label_encoder": self.label_encoder_.to_dict(),
            "max_len": self.max_len, "config": self.get_params(),
        }
        save_model(path, self.model_, task)

    @classmethod
    def load(cls, path: str | Path) -> TextClassifier:
        """Read a model file written by :meth:`save`; raises ModelFileError for any other file."""
        model, task = load_task_model(path, TASK, _TASK_KEYS)
        with reading_task_document(path, TASK):
            classifier = cls(**task["config"])
            classifier.vocabulary_ = Vocabulary.from_dict(task["vocabulary"])
            classifier.label_encoder_ = LabelEncoder.from_dict(task["label_encoder"])
        classifier.classes_ = list(classifier.label_encoder_.classes_)
        classifier.model_, classifier.history_ = model, None
        return classifier


# ---- helpers ----------------------------------------------------------------------------------


def resolve_architecture(preset: str, **overrides: Any) -> dict[str, Any]:
    """The preset's architecture with the non-None ``overrides`` applied, checked.

    Returns ``{"embedding_dim", "cell", "hidden": [per-layer sizes], "bidirectional", "dropout",
    "embedding_dropout", "pooling", "word2vec_epochs"}``.
    """
    arch = dict(PRESETS[check_choice(preset, "preset", sorted(PRESETS))])
    hidden, layers = overrides.pop("hidden", None), overrides.pop("layers", None)
    arch.update({key: value for key, value in overrides.items() if value is not None})
    arch["cell"] = check_choice(arch["cell"], "cell", list(CELLS))
    arch["embedding_dim"] = check_positive_int(arch["embedding_dim"], "embedding_dim")
    arch["dropout"] = check_probability(arch["dropout"], "dropout")
    arch["embedding_dropout"] = check_probability(arch["embedding_dropout"], "embedding_dropout")
    arch["pooling"] = check_choice(arch["pooling"], "pooling", list(POOLINGS))
    arch["word2vec_epochs"] = check_positive_int(arch["word2vec_epochs"], "word2vec_epochs", minimum=0)
    if not isinstance(arch["bidirectional"], (bool, np.bool_)):
        raise ConfigError(f"bidirectional must be True or False, got {arch['bidirectional']!r}")
    layers = None if layers is None else check_positive_int(layers, "layers")
    if hidden is None:
        sizes = arch["hidden"] if layers is None else [arch["hidden"][0]] * layers
    elif isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        sizes = [hidden] * (layers or 1)
    elif isinstance(hidden, (list, tuple)) and hidden and (layers is None or layers == len(hidden)):
        sizes = list(hidden)
    else:
        raise ConfigError(f"hidden must be a size or a non-empty list of per-layer sizes (of length layers={layers} "
                          f"when layers is given), got {hidden!r}")
    arch["hidden"] = [check_positive_int(h, "hidden") for h in sizes]
    return arch


def word2vec_table(tokens: list[list[str]], vocabulary: Vocabulary, dim: int, epochs: int,
                   seed: int) -> np.ndarray:
    """An Embedding table ``(V, dim)`` from skip-gram word2vec (gensim: window 5, every token) on ``tokens``.

    With ``s`` the standard deviation of the word2vec vectors, the table is
    :func:`~rnnkit.tasks.word_vectors.embedding_matrix` (a token's vector, or N(0, s^2) for a token
    without one; zeros for ``<pad>``) divided by ``s``: the scale of the Embedding's N(0, 1) init.
    """
    vectors = skipgram_vectors(tokens, dim, epochs=epochs, seed=seed, who="word2vec_epochs > 0",
                               instead="or set word2vec_epochs=0")
    return embedding_matrix(vectors, vocabulary, np.random.default_rng(seed)) / (vectors.vectors.std() or 1.0)


def stratified_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (kept, held out): ``floor(n_c * frac)`` random samples of each class c.

    Every class keeps at least one sample when ``frac < 1``; both index arrays are sorted.
    """
    rng = as_rng(seed)
    held = [rng.permutation(np.flatnonzero(y == c))[: int(np.sum(y == c) * frac)] for c in np.unique(y)]
    held_idx = np.sort(np.concatenate(held)).astype(np.int64)
    return np.setdiff1d(np.arange(len(y)), held_idx), held_idx


def evaluate_file(model_path: str | Path, data_path: str | Path, *, text_column: str = "text",
                  label_column: str = "label") -> dict[str, Any]:
    """:meth:`TextClassifier.evaluate` of the model file on a labelled .csv/.jsonl file."""
    classifier = TextClassifier.load(model_path)
    texts, labels = load_labelled(data_path, text_column, label_column)
    return classifier.evaluate(texts, labels)


def _check_texts(texts: Any, name: str) -> list[str]:
    """``texts`` as a non-empty list of str."""
    if isinstance(texts, str):
        raise DTypeError(f"{name} must be a list of strings, got one str; wrap it in a list: [{name}]")
    try:
        texts = list(texts)
    except TypeError:
        raise DTypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise DataError(f"{name} is empty; pass at least one text")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DTypeError(f"{name}[{bad}] must be a str, got {type(texts[bad]).__name__} {texts[bad]!r:.40}")
    return texts


def _check_label_count(labels: Any, n: int) -> list[Any]:
    """``labels`` as a list of length ``n`` (one label per text)."""
    labels = list(labels)
    if len(labels) != n:
        raise DataError(f"got {n} texts but {len(labels)} labels; give exactly one label per text")
    return labels
