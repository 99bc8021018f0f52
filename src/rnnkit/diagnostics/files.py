"""``explain_files``: a model file and a data file -> one batch -> :func:`gradient_flow`.

Each task turns its own data file into the inputs and targets it was trained on, with its own
loading and preprocessing, so the batch is exactly what the model sees:

- ``forecast``: the series' value columns -> the last ``batch_size`` windows and their next values (MSE).
- ``lm``: the text -> ``batch_size`` consecutive rows of ``bptt`` tokens and the tokens that follow each.
- ``classify``: the labelled file (.csv/.tsv/.jsonl) -> its first ``batch_size`` texts, padded, and their labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..data import load_labelled, load_series_csv, load_text, pad_sequences
from ..data.vocab import Vocabulary
from ..errors import ConfigError, DataError
from ..io.model import load_model
from ..tasks.classification import TextClassifier
from ..tasks.forecasting import Forecaster
from ..tasks.language_model import LanguageModel
from .flow import Report, gradient_flow

Batch = tuple[Any, np.ndarray, np.ndarray, Any, np.ndarray | None]  # model, x, y, loss, lengths
MAX_UNKNOWN = 0.5  # an LM batch with more unknown tokens than this is the wrong text for the model


def forecast_batch(model_path: str | Path, data_path: str | Path, batch_size: int, **_: Any) -> Batch:
    forecaster = Forecaster.load(model_path)
    series = load_series_csv(data_path, list(forecaster.columns_), forecaster.time_column_)
    values = forecaster._check_input(series, minimum=forecaster.context + 1)
    targets = slice(max(forecaster.context, len(values) - batch_size), len(values))
    x, y = forecaster._windows(forecaster._scaled(values), targets)
    return forecaster.model_, x, y, "mse", None


def lm_batch(model_path: str | Path, data_path: str | Path, batch_size: int, **_: Any) -> Batch:
    lm = LanguageModel.load(model_path)
    ids = lm.vocab.encode(lm._tokenize(load_text(data_path)))
    if len(ids) < 2:
        raise DataError(f"{str(data_path)!r} has {len(ids)} token(s); explaining a language model needs at least 2")
    T = min(lm.bptt, len(ids) - 1)
    B = min(batch_size, (len(ids) - 1) // T)
    rows = np.arange(B)[:, None] * T + np.arange(T)  # (B, T): consecutive rows of T tokens
    x, y = ids[rows], ids[rows + 1]
    unknown = float(np.mean(x == Vocabulary.unk_id))
    if unknown > MAX_UNKNOWN:
        raise DataError(f"{unknown:.0%} of the tokens of {str(data_path)!r} are not in the model's vocabulary of "
                        f"{len(lm.vocab)} {lm.level} tokens; give the kind of text the model was trained on")
    loss = "cross_entropy" if lm.head == "softmax" else lm._vector_loss
    return lm.model, x, y, loss, None


def classify_batch(model_path: str | Path, data_path: str | Path, batch_size: int, *, text_column: str = "text",
                   label_column: str = "label", **_: Any) -> Batch:
    classifier = TextClassifier.load(model_path)
    texts, labels = load_labelled(data_path, text_column, label_column)
    texts, labels = texts[:batch_size], labels[:batch_size]
    ids, lengths = pad_sequences([classifier.vocabulary_.encode(t) for t in classifier._tokenize(texts)],
                                 classifier.max_len)
    y = classifier._targets(classifier.label_encoder_.transform(labels))
    return classifier.model_, ids, y, classifier._loss, lengths


TASKS = {"forecast": forecast_batch, "lm": lm_batch, "classify": classify_batch}


def explain_files(model_path: str | Path, data_path: str | Path, *, batch_size: int = 32,
                  jacobian_samples: int = 8, **task_options: Any) -> Report:
    """:func:`gradient_flow` of the model in ``model_path`` on a batch of ``data_path`` (see the module doc).

    ``task_options``: ``text_column`` and ``label_column`` for a classifier's file.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    _, task = load_model(model_path)
    name = task.get("name")
    if name not in TASKS:
        raise ConfigError(f"{str(model_path)!r} is {'a ' + repr(name) if name else 'not a task'} model; explain reads "
                          f"the models of {sorted(TASKS)} (rnnkit train forecast|lm|classify)")
    model, x, y, loss, lengths = TASKS[name](model_path, data_path, batch_size, **task_options)
    report = gradient_flow(model, x, y, loss, lengths=lengths, jacobian_samples=jacobian_samples)
    report.meta.update(task=name, model=str(model_path), data=str(data_path))
    return report
