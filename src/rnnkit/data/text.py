"""Text: tokenizers (char, whitespace, jieba for Chinese), plain-text and labelled-text loading."""

from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError, DataError
from ._files import read_utf8
from .vocab import Label, _check_labels

Tokenizer = Callable[[str], list[str]]

# A word (letters, digits, _ in any script, keeping inner apostrophes: "don't") or one punctuation mark.
_WORD_OR_PUNCT = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def char_tokenize(text: str) -> list[str]:
    """One token per Unicode character, whitespace and newlines included (char-level LM; Chinese as is)."""
    return list(text)


def whitespace_tokenize(text: str, *, lowercase: bool = False, split_punctuation: bool = False) -> list[str]:
    """Split on runs of whitespace; optionally lower-case first and make each punctuation mark a token.

    whitespace_tokenize("Don't stop, Bob!", lowercase=True, split_punctuation=True)
    -> ["don't", "stop", ",", "bob", "!"]
    """
    if lowercase:
        text = text.lower()
    return _WORD_OR_PUNCT.findall(text) if split_punctuation else text.split()


def jieba_tokenize(text: str) -> list[str]:
    """Chinese word segmentation with jieba (precise mode); whitespace-only tokens are dropped.

    jieba is an optional dependency (``pip install rnnkit[zh]``); it is imported on first use,
    which also loads its dictionary (about a second).
    """
    jieba = _import_jieba()
    return [w for w in jieba.lcut(text) if w.strip()]


def _import_jieba() -> ModuleType:
    try:
        import jieba
    except ImportError:
        raise ConfigError(
            "the 'jieba' tokenizer needs the jieba package; install it with `pip install rnnkit[zh]` "
            "(or `pip install jieba`), or use the 'char' tokenizer"
        ) from None
    jieba.setLogLevel(logging.WARNING)  # silence its "Building prefix dict..." lines on stderr
    return jieba


TOKENIZERS: dict[str, Tokenizer] = {
    "char": char_tokenize,
    "whitespace": whitespace_tokenize,
    "jieba": jieba_tokenize,
}


def get_tokenizer(name: str, **options: bool) -> Tokenizer:
    """The tokenizer registered as ``name`` ("char", "whitespace", "jieba"), with keyword ``options``.

    get_tokenizer("whitespace", lowercase=True) is ``whitespace_tokenize`` with lowercase=True. The
    name and options are plain values, so a model file can store them and rebuild the tokenizer.
    """
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}")
    tokenize = TOKENIZERS[name]
    try:
        inspect.signature(tokenize).bind("", **options)
    except TypeError:
        accepted = [p for p in inspect.signature(tokenize).parameters if p != "text"]
        raise ConfigError(f"tokenizer {name!r} takes options {accepted}, got {sorted(options)}") from None
    return partial(tokenize, **options) if options else tokenize


def load_text(path: str | os.PathLike) -> str:
    """The whole UTF-8 text file as one str, with line endings normalised to "\\n".

    Raises DataError for a missing, non-UTF-8, empty or whitespace-only file.
    """
    text = read_utf8(path, "text file").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"text file {str(path)!r} is empty (or whitespace only); a model needs some text")
    return text


def load_labelled(
    path: str | os.PathLike, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], list[Label]]:
    """Texts and labels from a .csv/.tsv file (header row) or a .jsonl/.ndjson file (one object per line).

    Labels are returned as written: JSON strings or integers, CSV strings (encode them with
    ``LabelEncoder``). Raises DataError for an unknown column (listing those that exist), a malformed
    JSON line, a missing or empty text, a label that is not a string or integer (each with its line
    number), no records, and fewer than two distinct labels.
    """
    readers = {".csv": _read_csv, ".tsv": _read_csv, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl}
    suffix = Path(path).suffix.lower()
    if suffix not in readers:
        raise DataError(
            f"cannot tell the format of {str(path)!r} from its extension {suffix!r}; "
            f"rnnkit reads {sorted(readers)}: rename the file"
        )
    rows = readers[suffix](path, text_column, label_column)  # [(line, text, label), ...]
    if not rows:
        raise DataError(f"{str(path)!r} has no records; a classifier needs labelled texts")
    for line, text, label in rows:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{str(path)!r}, line {line}: {text_column!r} must be a non-empty string, got {text!r}")
        if not isinstance(label, (str, int)) or label == "":
            raise DataError(f"{str(path)!r}, line {line}: {label_column!r} must be a string or integer, got {label!r}")
    texts = [text for _, text, _ in rows]
    labels = _check_labels([label for _, _, label in rows])
    if len(set(labels)) < 2:
        raise DataError(
            f"all {len(labels)} records of {str(path)!r} have the label {labels[0]!r}; "
            "a classifier needs at least two classes"
        )
    return texts, labels


def _read_csv(path: str | os.PathLike, text_column: str, label_column: str) -> list[tuple[int, object, object]]:
    """(line, text, label) rows of a CSV (or, for .tsv, tab-separated) file with a header row."""
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(read_utf8(path, "labelled file"), newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        return []
    for column in (text_column, label_column):
        if column not in header:
            raise DataError(f"column {column!r} is not in {str(path)!r}; the file has columns {header}")
    i_text, i_label = header.index(text_column), header.index(label_column)
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(
                f"{str(path)!r}, line {reader.line_num}: {len(row)} fields but the header has {len(header)}; "
                "quote fields that contain the separator"
            )
        rows.append((reader.line_num, row[i_text], row[i_label]))
    return rows


def _read_jsonl(path: str | os.PathLike, text_column: str, label_column: str) -> list[tuple[int, object, object]]:
    """(line, text, label) rows of a JSON Lines file; blank lines are skipped."""
    rows = []
    for line, record in enumerate(read_utf8(path, "labelled file").split("\n"), start=1):
        if not record.strip():
            continue
        try:
            obj = json.loads(record)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{str(path)!r}, line {line}: not valid JSON ({e.msg} at column {e.colno}); "
                "each line must hold one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{str(path)!r}, line {line}: expected a JSON object, got {type(obj).__name__}")
        for field in (text_column, label_column):
            if field not in obj:
                raise DataError(
                    f"{str(path)!r}, line {line}: no field {field!r}; the record has fields {sorted(obj)}"
                )
        rows.append((line, obj[text_column], obj[label_column]))
    return rows
