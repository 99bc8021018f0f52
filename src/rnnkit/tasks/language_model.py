"""Language models: next-token prediction over characters or words, and text generation.

The model is ``Embedding(V, E) -> Recurrent(cell, H, layers) -> [Dropout] -> Dense(V)``, trained by
stateful truncated BPTT (:func:`rnnkit.train.fit_stream`) to minimise the next-token cross-entropy

    L = -(1/N) sum_t log softmax(W_hq h_t + b_q)[x_{t+1}]          (nats per token)

reported as perplexity ``exp(L)`` and bits per character ``L / ln 2`` (char level); a word-level
model reports bits per character of the text as ``L (N - 1) / (ln 2 * characters)``.

Generation warms the recurrent state on the prime with one ``forward`` and then carries it one
token at a time with each layer's ``step()``. Each next token is drawn from
:func:`next_token_probs` (temperature, top-k, top-p); ``<pad>`` and ``<unk>`` are never drawn.
Prime tokens missing from the vocabulary are mapped to ``<unk>`` with a ``UserWarning`` naming
them, so the rest of the prime still conditions the model.

Word-level models can start from pretrained word2vec vectors (:func:`load_word_vectors` reads the
text and the binary format). ``head="vector"`` is the seed tutorial's word2vec + LSTM novel model:
the vectors stay fixed, the network regresses the next word's vector ``e_{t+1}`` with

    L = mean ||W_hq h_t + b_q - e_{t+1}||^2

and decodes an output ``y`` to the word of highest cosine similarity ``cos(y, e_w)``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import losses, optim
from .._validation import as_rng, check_choice, check_positive_int, check_probability
from ..data.batching import StreamBatcher
from ..data.text import get_tokenizer
from ..data.vocab import Vocabulary
from ..errors import ConfigError, DataError, DTypeError, ModelFileError
from ..io.model import load_model, save_model
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.recurrent import CELLS, Recurrent
from ..models import Sequential
from ..train import History, fit_stream, stream_cross_entropy
from .word_vectors import WordVectors, embedding_matrix, load_word_vectors

LEVELS = ("char", "word")
HEADS = ("softmax", "vector")
BANNED = (Vocabulary.pad_id, Vocabulary.unk_id)  # ids generation never samples
TASK = "lm"


# ---- sampling -------------------------------------------------------------------------------


def check_sampling(temperature: Any, top_k: Any, top_p: Any) -> tuple[float, int | None, float | None]:
    """Validated ``(temperature >= 0, top_k >= 1 or None, top_p in (0, 1] or None)``."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    if not (t >= 0 and math.isfinite(t)):
        raise ConfigError(
            f"temperature must be a finite number >= 0 (0 = greedy, 1 = the model's distribution), got {temperature!r}"
        )
    if top_k is not None:
        top_k = check_positive_int(top_k, "top_k")
    if top_p is not None:
        p = check_probability(top_p, "top_p", allow_one=True)
        if p == 0:
            raise ConfigError("top_p must be in (0, 1] (the probability mass to keep), got 0; use e.g. 0.9")
        top_p = p
    return t, top_k, top_p


def next_token_probs(
    scores: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    banned: tuple[int, ...] = BANNED,
) -> np.ndarray:
    """The distribution to draw the next token from, given unnormalised log-probabilities ``scores (V,)``.

    In order: banned ids get probability 0; ``temperature = 0`` puts all mass on the argmax;
    otherwise ``p = softmax(scores / temperature)``; ``top_k`` keeps the k most probable tokens;
    ``top_p`` keeps the smallest set of most probable tokens whose mass (after top-k) reaches
    ``top_p`` (nucleus sampling). The result is renormalised, float64, sums to 1.
    """
    z = np.asarray(scores, dtype=np.float64).copy()  # (V,)
    z[list(banned)] = -np.inf
    if temperature == 0:
        p = np.zeros_like(z)
        p[np.argmax(z)] = 1.0
        return p
    z = z / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")  # most probable first; ties keep id order
    if top_k is not None and top_k < len(p):
        p[order[top_k:]] = 0.0
        p /= p.sum()
    if top_p is not None and top_p < 1.0:
        mass_before = np.cumsum(p[order]) - p[order]  # mass of the more probable tokens
        p[order[mass_before >= top_p - 1e-9]] = 0.0  # tolerance: rounding must not add a token at a tie
        p /= p.sum()
    return p


# ---- the language model ----------------------------------------------------------------------


class LanguageModel:
    """A character- or word-level recurrent language model: ``fit``, ``evaluate``, ``generate``, ``save``/``load``.

    Args:
        level: ``"char"`` (every character is a token) or ``"word"``.
        tokenizer: word level only: ``"whitespace"`` (default) or ``"jieba"`` (Chinese).
        cell, hidden, layers: the recurrent stack (``"lstm"``, ``"gru"`` or ``"rnn"``).
        embedding_dim: E (default 64, or the dimension of ``vectors``).
        dropout: between stacked layers and before the output layer, training only.
        max_vocab, min_freq: vocabulary limits (rarer tokens become ``<unk>``).
        bptt, batch_size: truncated-BPTT length and number of parallel stream rows.
        lr, clip_norm: Adam learning rate and gradient-norm clipping.
        seed: initialisation, dropout masks and therefore the whole run.
        vectors: word level only: a word2vec file path or :class:`WordVectors` initialising the
            embedding (vocabulary words missing from it get random rows of the same scale).
        head: ``"softmax"`` (default: logits over the vocabulary, cross-entropy) or ``"vector"``
            (needs ``vectors``, which then stay fixed: regress the next word's vector, decode by cosine).
    """

    def __init__(self, level: str = "char", tokenizer: str | None = None, *, cell: str = "lstm", hidden: int = 128,
                 layers: int = 1, embedding_dim: int | None = None, dropout: float = 0.0,
                 max_vocab: int | None = None, min_freq: int = 1, bptt: int = 100, batch_size: int = 32,
                 lr: float = 2e-3, clip_norm: float = 5.0, seed: int = 0,
                 vectors: str | os.PathLike | WordVectors | None = None, head: str = "softmax") -> None:
        self.level = check_choice(level, "level", LEVELS)
        self.tokenizer = _check_tokenizer(level, tokenizer)
        self.cell = check_choice(cell, "cell", list(CELLS))
        self.hidden = check_positive_int(hidden, "hidden")
        self.layers = check_positive_int(layers, "layers")
        self.dropout = check_probability(dropout, "dropout")
        self.max_vocab = None if max_vocab is None else check_positive_int(max_vocab, "max_vocab", minimum=3)
        self.min_freq = check_positive_int(min_freq, "min_freq")
        self.bptt = check_positive_int(bptt, "bptt")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not (isinstance(lr, (int, float)) and 0 < lr < math.inf and 0 < clip_norm < math.inf):
            raise ConfigError(f"lr and clip_norm must be positive finite numbers, "
                              f"got lr={lr!r}, clip_norm={clip_norm!r}")
        self.lr, self.clip_norm = float(lr), float(clip_norm)
        self.seed = check_positive_int(seed, "seed", minimum=0)
        if vectors is not None and level != "word":
            raise ConfigError("vectors (pretrained word vectors) need level='word'; drop vectors or use level='word'")
        self.vectors = load_word_vectors(vectors) if isinstance(vectors, (str, os.PathLike)) else vectors
        if embedding_dim is None:
            embedding_dim = self.vectors.dim if self.vectors is not None else 64
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        if self.vectors is not None and self.vectors.dim != self.embedding_dim:
            raise ConfigError(f"embedding_dim={embedding_dim} but the word vectors have dimension {self.vectors.dim}; "
                              f"set embedding_dim={self.vectors.dim} or leave it unset")
        self.head = check_choice(head, "head", HEADS)
        if head == "vector" and self.vectors is None:
            raise ConfigError("head='vector' regresses onto pretrained word vectors; pass vectors= (level='word')")
        self._tokenize = get_tokenizer(self.tokenizer)
        self.vocab: Vocabulary | None = None
        self.model: Sequential | None = None
        self.unigram: np.ndarray | None = None  # (V,) training counts: the first token of an unprimed sample
        self.metrics: dict[str, float] | None = None  # held-out metrics of the last fit

    def config(self) -> dict[str, Any]:
        """The constructor arguments (except ``vectors``, whose values live in the embedding)."""
        keys = ("level", "tokenizer", "cell", "hidden", "layers", "embedding_dim", "dropout", "max_vocab",
                "min_freq", "bptt", "batch_size", "lr", "clip_norm", "seed", "head")
        return {k: getattr(self, k) for k in keys}

    # ---- training and evaluation -------------------------------------------------------------

    def fit(self, text: str, *, val_frac: float = 0.05, epochs: int = 1, max_steps: int | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None, resume: bool = False,
            max_time: float | None = None, anneal: bool = False, progress: bool | None = None) -> History:
        """Build the vocabulary and the model from ``text`` and train; the last ``val_frac`` of it is held out.

        Held-out metrics (see :meth:`evaluate`) are left in ``self.metrics`` (None if ``val_frac=0``).
        With ``checkpoint`` and ``resume=True`` an interrupted run (``max_steps``, ``max_time``, Ctrl-C)
        continues exactly; call it with the same text and settings. ``anneal=True`` lowers the learning
        rate linearly to 0 where the first of ``epochs``, ``max_steps`` and ``max_time`` ends.
        """
        text = _check_text(text, "text")
        val_frac = check_probability(val_frac, "val_frac")
        train_text, val_text = self._split(text, val_frac)
        train_tokens = self._tokenize(train_text)
        self.vocab = Vocabulary.build(train_tokens, max_size=self.max_vocab, min_freq=self.min_freq)
        train_ids = self.vocab.encode(train_tokens)
        if len(train_ids) < self.batch_size + 1:
            raise DataError(f"the training text has {len(train_ids)} {self.level} tokens, fewer than batch_size + 1 = "
                            f"{self.batch_size + 1}; give more text or lower batch_size")
        val_ids = self.encode(val_text) if val_text else None
        if val_ids is not None and len(val_ids) < self.batch_size + 1:
            raise DataError(f"the held-out tail (val_frac={val_frac}) has {len(val_ids)} tokens, fewer than "
                            f"batch_size + 1 = {self.batch_size + 1}; raise val_frac, lower batch_size, "
                            "or use val_frac=0")
        self.unigram = np.bincount(train_ids, minlength=len(self.vocab))
        self.model = self._build_model()
        softmax = self.head == "softmax"  # (validation during fit_stream reports cross-entropy)
        history = fit_stream(
            self.model, train_ids, batch_size=self.batch_size, bptt=self.bptt, epochs=epochs,
            loss=self.loss, optimizer=optim.Adam(self.model.params, lr=self.lr),
            validation_tokens=val_ids if softmax else None, clip_norm=self.clip_norm,
            seed=self.seed, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
            max_time=max_time, max_steps=max_steps, anneal=anneal, progress=progress)
        self.metrics = self._evaluate_ids(val_ids, len(val_text)) if val_ids is not None else None
        return history

    def evaluate(self, text: str) -> dict[str, float]:
        """Next-token metrics on ``text``: ``cross_entropy`` (nats/token), ``perplexity``, ``bits_per_char``.

        Unknown tokens count as ``<unk>``. Word level also reports ``bits_per_token``. A ``head="vector"``
        model has no probabilities: it reports ``mse`` and ``accuracy`` (nearest word = next word).
        """
        self._check_fitted()
        text = _check_text(text, "text")
        ids = self.encode(text)
        if len(ids) < 2:
            raise DataError(f"evaluate needs at least 2 tokens (one to read, one to predict), got {len(ids)}")
        return self._evaluate_ids(ids, len(text))

    def encode(self, text: str) -> np.ndarray:
        """The token ids ``(N,)`` of ``text`` in this model's vocabulary (unknown tokens: ``<unk>``)."""
        if self.vocab is None:
            raise ConfigError("this LanguageModel has no vocabulary yet; call fit(text) or LanguageModel.load(path)")
        return self.vocab.encode(self._tokenize(text))

    @property
    def loss(self) -> str | Callable[..., tuple[float, np.ndarray]]:
        """The training loss: ``"cross_entropy"`` of the logits, or (vector head) the MSE to the next word's vector."""
        return "cross_entropy" if self.head == "softmax" else self._vector_loss

    def _evaluate_ids(self, ids: np.ndarray, n_chars: int) -> dict[str, float]:
        batch = max(1, min(self.batch_size, (len(ids) - 1) // self.bptt))  # rows of >= bptt steps when possible
        if self.head == "vector":
            return self._evaluate_vector(StreamBatcher(ids, batch, self.bptt))
        ce = stream_cross_entropy(self.model, ids, batch_size=batch, bptt=self.bptt)
        metrics = {"cross_entropy": ce, "perplexity": math.exp(ce), "tokens": len(ids)}
        if self.level == "char":
            metrics["bits_per_char"] = ce / math.log(2)
        else:  # total nats over the characters of the text
            metrics["bits_per_token"] = ce / math.log(2)
            metrics["bits_per_char"] = ce * (len(ids) - 1) / (math.log(2) * n_chars)
        return metrics

    def _vector_loss(self, pred: np.ndarray, y: np.ndarray, mask: Any = None) -> tuple[float, np.ndarray]:
        """MSE between the outputs ``(B, T, E)`` and the fixed vectors of the next words ``y (B, T)``."""
        return losses.mse(pred, self.model.layers[0].params["W"][y], mask)

    def _evaluate_vector(self, batcher: StreamBatcher) -> dict[str, float]:
        """Mean squared error and nearest-word accuracy over a stream, state carried across chunks."""
        states, sse, hits, count = None, 0.0, 0, 0
        for x, y in batcher:
            out = self.model.forward(x, states=states, cache=False)
            states = self.model.final_states()
            sse += self._vector_loss(out, y)[0] * y.size
            hits += int((self._scores(out).argmax(axis=-1) == y).sum())
            count += y.size
        return {"mse": sse / count, "accuracy": hits / count, "tokens": count + 1}

    def _scores(self, out: np.ndarray) -> np.ndarray:
        """Scores ``(..., V)`` of the next token: the logits, or (vector head) ``cos(out, e_w)``; banned ids -inf."""
        if self.head == "softmax":
            scores = out.astype(np.float64)
        else:
            E = self.model.layers[0].params["W"].astype(np.float64)  # (V, E)
            E_unit = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
            scores = out @ E_unit.T / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        scores[..., list(BANNED)] = -np.inf
        return scores

    # ---- generation --------------------------------------------------------------------------

    def generate(self, prime: str = "", length: int = 200, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None) -> Iterator[str]:
        """Stream ``length`` sampled tokens continuing ``prime``, each as text (word level: with its separator).

        ``"".join(lm.generate(prime))`` is the continuation. ``temperature=0`` is greedy (argmax);
        ``top_k=1`` is greedy too. With an empty prime the first token is drawn from the training
        unigram distribution. Arguments are checked now, before the first token. For ``head="vector"``
        the scores are cosine similarities in [-1, 1]: use ``temperature=0`` (the nearest word) or a
        small one such as 0.05.
        """
        self._check_fitted()
        if not isinstance(prime, str):
            raise DTypeError(f"prime must be a str, got {type(prime).__name__}")
        length = check_positive_int(length, "length")
        temperature, top_k, top_p = check_sampling(temperature, top_k, top_p)
        tokens = self._tokenize(prime) if prime else []
        ids = self.vocab.encode(tokens)
        unknown = sorted({t for t, i in zip(tokens, ids) if i == Vocabulary.unk_id})
        if unknown:
            warnings.warn(f"{len(unknown)} prime token(s) are not in the vocabulary and are read as <unk>: "
                          f"{unknown[:10]}", UserWarning, stacklevel=2)
        return self._sample(ids, length, as_rng(seed), (temperature, top_k, top_p), bool(prime))

    def _sample(self, ids: np.ndarray, length: int, rng: np.random.Generator, options: tuple, primed: bool
                ) -> Iterator[str]:
        """The generator behind :meth:`generate`: draw, yield, step the state."""
        if len(ids):
            scores = self._scores(self.model.forward(ids[None], cache=False)[0, -1])  # (V,) after the prime
            states = self.model.final_states()
        else:
            with np.errstate(divide="ignore"):
                scores, states = np.log(self.unigram), {}
        joiner = "" if self.tokenizer in ("char", "jieba") else " "
        for n in range(length):
            p = next_token_probs(scores, *options)
            token = int(np.argmax(p)) if options[0] == 0 else int(rng.choice(len(p), p=p))
            yield (joiner if primed or n else "") + self.vocab.tokens[token]
            if n + 1 < length:
                scores, states = self._step(token, states)

    def _step(self, token: int, states: dict[int, Any]) -> tuple[np.ndarray, dict[int, Any]]:
        """Feed one token: ``scores (V,)`` for the next one and the new states (recurrent ``step()``)."""
        y: np.ndarray = np.array([token])
        states = dict(states)
        for i, layer in enumerate(self.model.layers):
            if isinstance(layer, Recurrent):
                y, states[i] = layer.step(y, states.get(i))
            else:
                y = layer.forward(y)  # Embedding (1,) -> (1, E); Dropout is the identity; Dense -> (1, V)
        return self._scores(y[0]), states

    # ---- files -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the model, vocabulary and settings to one ``.safetensors`` file (atomically)."""
        self._check_fitted()
        task = {"name": TASK, "level": self.level, "tokenizer": self.tokenizer, "vocabulary": self.vocab.to_dict(),
                "unigram": self.unigram.tolist(), "config": self.config()}
        save_model(path, self.model, task)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LanguageModel:
        """Read a model written by :meth:`save`; raises ModelFileError for another kind of file."""
        model, task = load_model(path, task=TASK)
        try:
            vocab = Vocabulary.from_dict(task["vocabulary"])
            unigram = np.asarray(task["unigram"], dtype=np.int64)
            config = dict(task["config"])
            if config.get("head") == "vector":  # its fixed vectors are the embedding table
                config["vectors"] = WordVectors(list(vocab.tokens), model.layers[0].params["W"])
            lm = cls(**config)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"cannot load language model '{path}': its task description is invalid ({e}); "
                                 "re-train and save it with this rnnkit") from None
        V = len(vocab)
        outputs = V if lm.head == "softmax" else lm.embedding_dim
        if unigram.shape != (V,) or model.layers[0].num_embeddings != V or model.layers[-1].out_features != outputs:
            raise ModelFileError(f"cannot load language model '{path}': its vocabulary ({V} tokens) does not match "
                                 "its weights; the file is damaged, re-save it")
        lm.model, lm.vocab, lm.unigram = model, vocab, unigram
        return lm

    # ---- helpers -----------------------------------------------------------------------------

    def _build_model(self) -> Sequential:
        """Embedding(V, E) -> Recurrent -> [Dropout] -> Dense(V, or E for the vector head), seeded."""
        V, rng = len(self.vocab), np.random.default_rng(self.seed)
        embedding = Embedding(V, self.embedding_dim, padding_idx=Vocabulary.pad_id, trainable=self.head == "softmax",
                              seed=rng)
        if self.vectors is not None:
            embedding.params["W"][...] = embedding_matrix(self.vectors, self.vocab, rng)
        recurrent = Recurrent(self.cell, self.embedding_dim, self.hidden, num_layers=self.layers,
                              dropout=self.dropout if self.layers > 1 else 0.0, seed=rng)
        dropout = [Dropout(self.dropout, seed=rng)] if self.dropout > 0 else []
        output = Dense(self.hidden, V if self.head == "softmax" else self.embedding_dim, seed=rng)
        return Sequential([embedding, recurrent, *dropout, output], name="language_model")

    def _split(self, text: str, val_frac: float) -> tuple[str, str]:
        """``(train, held-out tail)``; a word-level cut moves forward to whitespace so no word is split."""
        cut = len(text) - int(len(text) * val_frac)
        if self.level == "word" and cut < len(text):
            cut = next((i for i in range(cut, len(text)) if text[i].isspace()), cut)
        if val_frac > 0 and not text[cut:].strip():
            raise DataError(f"val_frac={val_frac} holds out no text (the text has {len(text)} characters); "
                            "give more text, raise val_frac, or use val_frac=0")
        return text[:cut], text[cut:]

    def _check_fitted(self) -> None:
        if self.model is None:
            raise ConfigError("this LanguageModel is not trained; call fit(text) or LanguageModel.load(path) first")


def _check_tokenizer(level: str, tokenizer: str | None) -> str:
    """The tokenizer name of ``level``: always "char" for characters, "whitespace" by default for words."""
    if level == "char" and tokenizer not in (None, "char"):
        raise ConfigError(f"level='char' reads every character; tokenizer={tokenizer!r} needs level='word'")
    if level == "word" and tokenizer == "char":
        raise ConfigError("tokenizer='char' means level='char'; for words use 'whitespace' or 'jieba'")
    name = tokenizer or ("char" if level == "char" else "whitespace")
    get_tokenizer(name)  # raises ConfigError for an unknown name
    return name


def _check_text(text: Any, name: str) -> str:
    if not isinstance(text, str):
        raise DTypeError(f"{name} must be a str, got {type(text).__name__}; read a file with rnnkit.data.load_text")
    if not text.strip():
        raise DataError(f"{name} is empty (or whitespace only); a language model needs some text")
    return text
