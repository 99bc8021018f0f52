"""Token vocabularies and class-label encoders, both stored in model files as plain dicts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..errors import ConfigError, DataError, DTypeError, ModelFileError

Label = str | int


class Vocabulary:
    """A bijection token <-> id with two reserved tokens: ``<pad>`` = 0 and ``<unk>`` = 1.

    Padding (rnnkit pads at the end, see ``pad_sequences``) uses id 0; a token not in the
    vocabulary encodes to id 1 unless ``strict=True``. Ids 2.. are the regular tokens.
    """

    PAD = "<pad>"
    UNK = "<unk>"
    pad_id = 0
    unk_id = 1

    def __init__(self, tokens: Sequence[str]) -> None:
        """``tokens`` lists every token by id, starting with ``<pad>``, ``<unk>`` (see ``build``)."""
        tokens = list(tokens)
        if tokens[:2] != [self.PAD, self.UNK]:
            raise ConfigError(f"tokens must start with {[self.PAD, self.UNK]}, got {tokens[:2]}; use Vocabulary.build")
        if not all(isinstance(t, str) for t in tokens):
            raise DTypeError("every token must be a str")
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}
        if len(self._index) != len(tokens):
            dupes = [t for t, n in Counter(tokens).items() if n > 1]
            raise ConfigError(f"tokens must be unique, got duplicates {dupes[:10]}")

    @classmethod
    def build(cls, tokens: Iterable[str], *, max_size: int | None = None, min_freq: int = 1) -> Vocabulary:
        """Vocabulary of the tokens seen at least ``min_freq`` times, most frequent first.

        Ties keep the order of first occurrence, so the same text always gives the same ids.
        ``max_size`` bounds ``len(vocab)`` including the 2 reserved tokens (the embedding size);
        the rarest tokens are dropped. A str counts as its sequence of characters.
        """
        min_freq = check_positive_int(min_freq, "min_freq")
        if max_size is not None:
            max_size = check_positive_int(max_size, "max_size", minimum=3)
        counts = Counter(tokens)
        if not counts:
            raise DataError("cannot build a vocabulary from no tokens; the text is empty")
        for reserved in (cls.PAD, cls.UNK):
            counts.pop(reserved, None)
        ranked = [t for t, n in counts.most_common() if n >= min_freq]
        if not ranked:
            raise DataError(
                f"no token occurs at least min_freq={min_freq} times (the most frequent occurs "
                f"{max(counts.values(), default=0)} times); lower min_freq"
            )
        return cls([cls.PAD, cls.UNK, *ranked[: None if max_size is None else max_size - 2]])

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {self._tokens[2:7]}...)"

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token, indexed by id."""
        return tuple(self._tokens)

    def encode(self, tokens: Iterable[str], *, strict: bool = False) -> np.ndarray:
        """Ids of ``tokens`` as an int64 array of shape (len(tokens),); unknown tokens -> ``unk_id``.

        With ``strict=True`` unknown tokens raise DataError naming them. A str encodes its characters.
        """
        if not isinstance(tokens, (str, list, tuple)):
            tokens = list(tokens)
        ids = np.fromiter(map(self._index.get, tokens, repeat(self.unk_id)), dtype=np.int64, count=len(tokens))
        if strict and (ids == self.unk_id).any():
            unknown = [t for t in dict.fromkeys(tokens) if t not in self._index]
            if unknown:
                raise DataError(
                    f"{len(unknown)} token(s) are not in the vocabulary, e.g. {unknown[:10]}; "
                    "rebuild the vocabulary with them or encode with strict=False to map them to <unk>"
                )
        return ids

    def decode(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """Tokens of ``ids`` (a 1-D sequence of ints in [0, len(vocab)))."""
        ids = np.asarray(ids)
        if ids.size and ids.dtype.kind not in "iu":
            raise DTypeError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise DataError(f"ids must be 1-D, got shape {ids.shape}; decode one sequence at a time")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise DataError(
                f"ids must lie in [0, {len(self)}) for this vocabulary, got min {ids.min()} and max {ids.max()}"
            )
        return [self._tokens[i] for i in ids.tolist()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: {"tokens": [...]} (ids are positions)."""
        return {"tokens": list(self._tokens)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        """Rebuild a vocabulary from ``to_dict`` output."""
        tokens = d.get("tokens") if isinstance(d, dict) else None
        if not isinstance(tokens, list):
            raise ModelFileError(f"a vocabulary dict needs a 'tokens' list, got {type(d).__name__}; re-save the model")
        try:
            return cls(tokens)
        except (ConfigError, DTypeError) as e:
            raise ModelFileError(f"malformed vocabulary in model file: {e}") from None


class LabelEncoder:
    """Map class labels (all strings or all integers) to ids 0..K-1 in sorted label order."""

    def __init__(self, classes: Sequence[Label] | None = None) -> None:
        self.classes_: list[Label] | None = None
        if classes is not None:
            self.fit(classes)

    def fit(self, labels: Iterable[Label]) -> LabelEncoder:
        """Learn the classes: the distinct labels, sorted."""
        distinct = set(_check_labels(labels))
        if not distinct:
            raise DataError("cannot fit a LabelEncoder on no labels")
        self.classes_ = sorted(distinct)
        self._index = {c: i for i, c in enumerate(self.classes_)}
        return self

    @property
    def num_classes(self) -> int:
        return len(self._fitted())

    def __len__(self) -> int:
        return self.num_classes

    def transform(self, labels: Iterable[Label]) -> np.ndarray:
        """Class ids of ``labels``, int64 of shape (len(labels),); unknown labels raise DataError."""
        classes = self._fitted()
        labels = _check_labels(labels)
        unknown = [lab for lab in dict.fromkeys(labels) if lab not in self._index]
        if unknown:
            raise DataError(f"unknown label(s) {unknown[:10]}; the encoder knows {classes}")
        return np.fromiter(map(self._index.__getitem__, labels), dtype=np.int64, count=len(labels))

    def fit_transform(self, labels: Iterable[Label]) -> np.ndarray:
        labels = _check_labels(labels)
        return self.fit(labels).transform(labels)

    def inverse_transform(self, ids: Iterable[int] | np.ndarray) -> list[Label]:
        """Labels of class ids in [0, K)."""
        classes = self._fitted()
        ids = np.asarray(ids)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(classes)):
            raise DataError(f"class ids must be integers in [0, {len(classes)}), got {ids!r}")
        return [classes[i] for i in ids.reshape(-1).tolist()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: {"classes": [...]} (ids are positions)."""
        return {"classes": list(self._fitted())}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelEncoder:
        classes = d.get("classes") if isinstance(d, dict) else None
        if not isinstance(classes, list) or not classes:
            raise ModelFileError("a label encoder dict needs a non-empty 'classes' list; re-save the model")
        try:
            return cls(classes)
        except DataError as e:
            raise ModelFileError(f"malformed label encoder in model file: {e}") from None

    def _fitted(self) -> list[Label]:
        if self.classes_ is None:
            raise ConfigError("LabelEncoder is not fitted; call fit(train_labels) first")
        return self.classes_


def _check_labels(labels: Iterable[Label]) -> list[Label]:
    """Labels as a list of Python str or int (NumPy scalars unwrapped); DataError for other types or a mix."""
    out = [lab.item() if isinstance(lab, np.generic) else lab for lab in labels]
    kinds = {str if isinstance(lab, str) else int if isinstance(lab, int) else type(lab) for lab in out}
    if not kinds <= {str, int}:
        bad = next(lab for lab in out if not isinstance(lab, (str, int)))
        raise DataError(f"labels must be strings or integers, got {bad!r} ({type(bad).__name__})")
    if len(kinds) > 1:
        raise DataError(
            "labels mix strings and integers (e.g. 1 and '1'); make them one type, e.g. [str(y) for y in labels]"
        )
    return out
