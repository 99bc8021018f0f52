"""``explain_files``: a model file and a data file -> one batch -> :func:`rnnkit.diagnostics.gradient_flow`.

Each task turns its own data file into the inputs and targets it was trained on, through its own
public encoding, so the batch is exactly what the model sees:

- ``forecast``: the series' value columns -> the last ``batch_size`` windows and their next values (MSE).
- ``lm``: the text -> ``batch_size`` consecutive rows of ``bptt`` tokens and the tokens that follow each.
- ``classify``: the labelled file (.csv/.tsv/.jsonl) -> its first ``batch_size`` texts, padded, and their labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..data import load_labelled, load_series_csv, load_text
from ..data.vocab import Vocabulary
from ..diagnostics import Report, gradient_flow
from ..errors import ConfigError, DataError
from ..io.model import load_model
from .classification import TextClassifier
from .forecasting import Forecaster
from .language_model import LanguageModel

Batch = tuple[Any, np.ndarray, np.ndarray, Any, np.ndarray | None]  # model, x, y, loss, lengths
MAX_UNKNOWN = 0.5  # an LM batch with more unknown tokens than this is the wrong text for the model


def forecast_batch(model_path: str | Path, data_path: str | Path, batch_size: int, **_: Any) -> Batch:
    """The last ``batch_size`` windows of the CSV series and the scaled values they predict."""
    forecaster = Forecaster.load(model_path)
    series = load_series_csv(data_path, list(forecaster.columns_), forecaster.time_column_)
    x, y = forecaster.windows_of(series, last=batch_size)
    return forecaster.model_, x, y, "mse", None


def lm_batch(model_path: str | Path, data_path: str | Path, batch_size: int, **_: Any) -> Batch:
    """Up to ``batch_size`` consecutive rows of ``bptt`` tokens of the text, each followed by its next tokens."""
    lm = LanguageModel.load(model_path)
    ids = lm.encode(load_text(data_path))
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
    return lm.model, x, y, lm.loss, None


def classify_batch(model_path: str | Path, data_path: str | Path, batch_size: int, *, text_column: str = "text",
                   label_column: str = "label", **_: Any) -> Batch:
    """The first ``batch_size`` labelled texts of the file, padded, and their targets."""
    classifier = TextClassifier.load(model_path)
    texts, labels = load_labelled(data_path, text_column, label_column)
    ids, lengths = classifier.encode(texts[:batch_size])
    return classifier.model_, ids, classifier.targets(labels[:batch_size]), classifier.loss, lengths


TASKS = {"forecast": forecast_batch, "lm": lm_batch, "classify": classify_batch}


def explain_files(model_path: str | Path, data_path: str | Path, *, batch_size: int = 32,
                  jacobian_samples: int = 8, **task_options: Any) -> Report:
    """:func:`~rnnkit.diagnostics.gradient_flow` of the model in ``model_path`` on a batch of ``data_path``
    (see the module doc).

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
