"""What the supervised tasks (forecasting, text classification) share: training settings, the
Adam + early-stopping run, and reading their model files back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from .. import optim, train
from .._validation import check_optional_positive, check_positive_int
from ..errors import ConfigError, DTypeError, ModelFileError
from ..io.model import load_model
from ..models import Sequential


class TrainingSettings(Protocol):
    """The estimator attributes :func:`fit_with_early_stopping` reads."""

    lr: float
    epochs: int
    batch_size: int
    patience: int
    clip_norm: float | None
    seed: int


def check_training(lr: Any, epochs: Any, batch_size: Any, patience: Any, clip_norm: Any, seed: Any
                   ) -> tuple[float, int, int, int, float | None, int]:
    """Validated ``(lr > 0, epochs >= 1, batch_size >= 1, patience >= 1, clip_norm > 0 or None, seed >= 0)``."""
    lr = check_optional_positive(lr, "lr")
    if lr is None:
        raise ConfigError("lr must be a positive number, got None")
    return (lr, check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size"),
            check_positive_int(patience, "patience"), check_optional_positive(clip_norm, "clip_norm"),
            check_positive_int(seed, "seed", minimum=0))


def fit_with_early_stopping(model: Sequential, x: Any, y: Any, validation: tuple | None,
                            settings: TrainingSettings, *, loss: Any, lengths: Any = None,
                            **run_options: Any) -> train.History:
    """:func:`rnnkit.train.fit` with ``Adam(settings.lr)``; given ``validation`` data, stop early on the
    validation loss and keep the best epoch's weights. ``run_options``: checkpoint, resume, max_time, progress."""
    early_stopping = None
    if validation is not None:
        early_stopping = train.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best=True)
    return train.fit(
        model, x, y, lengths=lengths, loss=loss, optimizer=optim.Adam(model.params, lr=settings.lr),
        epochs=settings.epochs, batch_size=settings.batch_size, validation_data=validation,
        early_stopping=early_stopping, clip_norm=settings.clip_norm, seed=settings.seed, **run_options,
    )


def load_task_model(path: str | Path, task: str, required: tuple[str, ...]) -> tuple[Sequential, dict[str, Any]]:
    """``load_model(path, task=task)``; ModelFileError if the task document lacks a ``required`` key."""
    model, document = load_model(path, task=task)
    missing = [key for key in required if key not in document]
    if missing:
        raise ModelFileError(f"cannot load {task} model '{path}': its task document lacks {missing}. "
                             "Hint: re-train and save it with this version of rnnkit")
    return model, document


@contextmanager
def reading_task_document(path: str | Path, task: str) -> Iterator[None]:
    """Turn a task document whose values do not rebuild the estimator into one ModelFileError."""
    try:
        yield
    except (ConfigError, DTypeError, TypeError, ValueError) as exc:
        raise ModelFileError(f"cannot load {task} model '{path}': its task document is invalid ({exc}). "
                             "Hint: re-train and save it") from None
