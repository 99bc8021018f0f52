"""Time-series forecasting: a recurrent network predicts the next value from a window of past values.

For a series ``x_1 .. x_N`` of ``k`` columns, a window of ``W`` past values, the target columns
``J`` (one column, or all of them) and an optional difference lag ``d``::

    u_t       = x_t - x_{t-d}   (d > 0),   u_t = x_t   (d = 0)
    z_t       = (u_t - shift) / scale                    # scaler fitted on the TRAINING part only
    h         = Recurrent(z_{t-W+1}, ..., z_t)           # last hidden state, (B, R)
    ẑ_{t+1,J} = Dense(h)                                 # (B, |J|)
    û_{t+1,J} = ẑ_{t+1,J} * scale_J + shift_J            # back to the series' own units
    x̂_{t+1,J} = x_{t+1-d,J} + û_{t+1,J}   (d > 0),   x̂_{t+1,J} = û_{t+1,J}   (d = 0)

Differencing (``d = 1``, or ``d = m`` for a season of m steps) removes a trend, which a network with
saturating units cannot extrapolate: it then learns how the series changes rather than its level.

The series is split in time order into train | validation | test parts (no shuffling); a window
whose target lies in the validation or test part reads its inputs from the values just before,
which are past values and so leak nothing. Training minimises the MSE of ``ẑ`` with Adam and
stops early on the validation loss.

Baselines for one-step forecasts, on the same targets and in the same units:

    naive           x̂_{t+1} = x_t
    seasonal naive  x̂_{t+1} = x_{t+1-m}                  # m = the season (period) in steps
    MASE            = MAE / mean_t |x_t - x_{t-1}|       # the naive forecast's MAE on the training part

``forecast`` rolls the model out autoregressively, as the tutorials do: predict the next value,
append it to the window as the newest input, drop the oldest, repeat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from .._validation import check_choice, check_positive_int, check_probability
from ..data import SeriesData, chronological_split, detect_season, windows
from ..data.scaling import SCALERS, scaler_from_dict
from ..errors import ConfigError, DataError, DTypeError, ShapeError
from ..io.model import save_model
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.recurrent import Recurrent
from ..models import Sequential
from ._common import (
    check_training,
    fit_with_early_stopping,
    load_task_model,
    reading_task_document,
)

TASK = "forecast"
SPLITS = ("train", "val", "test", "all")
_TASK_KEYS = ("window", "scaler", "columns", "targets", "season", "split", "config")


class Forecaster:
    """One-step-ahead recurrent forecaster with autoregressive roll-out (scikit-learn style).

    Args:
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        hidden: hidden units per recurrent layer.
        layers: stacked recurrent layers.
        window: W, past values the model reads to predict the next one.
        scaler: ``"standard"`` (zero mean, unit variance) or ``"minmax"`` ([0, 1]), per column,
            fitted on the training part only.
        dropout: dropout rate before the output layer (and between stacked layers).
        lr: Adam learning rate.
        epochs: maximum passes over the training windows.
        batch_size: windows per update.
        patience: stop after this many epochs without a lower validation loss; the weights of the
            best epoch are kept.
        clip_norm: clip the global gradient norm to this value (None: no clipping).
        difference: d, model ``x_t - x_{t-d}`` instead of ``x_t`` (0: off; 1: remove a trend; the
            season m: remove a trend and a fixed seasonal pattern).
        season: the season m in steps for the seasonal-naive baseline; None detects it on the
            training part (:func:`rnnkit.data.detect_season`), which may find none.
        target: the column to predict (a name or an index); None predicts every column, which
            is what a multi-column roll-out needs.
        seed: seeds the initial weights, the shuffling and the dropout masks.

    After :meth:`fit`: ``model_`` (a :class:`~rnnkit.models.Sequential`), ``scaler_``,
    ``columns_``, ``targets_`` (indices of the predicted columns), ``season_``, ``history_``.
    """

    def __init__(
        self,
        cell: str = "lstm",
        hidden: int = 32,
        layers: int = 1,
        window: int = 50,
        scaler: str = "standard",
        dropout: float = 0.0,
        lr: float = 1e-3,
        epochs: int = 50,
        batch_size: int = 32,
        patience: int = 10,
        clip_norm: float | None = 1.0,
        difference: int = 0,
        season: int | None = None,
        target: str | int | None = None,
        seed: int = 0,
    ) -> None:
        self.cell = check_choice(cell, "cell", ["lstm", "gru", "rnn"])
        self.hidden = check_positive_int(hidden, "hidden")
        self.layers = check_positive_int(layers, "layers")
        self.window = check_positive_int(window, "window")
        self.scaler = check_choice(scaler, "scaler", sorted(SCALERS))
        self.dropout = check_probability(dropout, "dropout")
        self.lr, self.epochs, self.batch_size, self.patience, self.clip_norm, self.seed = check_training(
            lr, epochs, batch_size, patience, clip_norm, seed)
        self.difference = check_positive_int(difference, "difference", minimum=0)
        self.season = None if season is None else check_positive_int(season, "season")
        if target is not None and (isinstance(target, bool) or not isinstance(target, (str, int, np.integer))):
            raise ConfigError(f"target must be a column name, a column index or None (every column), got {target!r}")
        self.target = target
        self.model_: Sequential | None = None

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-ready): ``Forecaster(**f.get_params())`` is an unfitted copy."""
        names = ("cell", "hidden", "layers", "window", "scaler", "dropout", "lr", "epochs", "batch_size",
                 "patience", "clip_norm", "difference", "season", "target", "seed")
        return {name: getattr(self, name) for name in names}

    # ---- training ---------------------------------------------------------------------------

    def fit(
        self,
        series: np.ndarray | SeriesData,
        *,
        val_frac: float = 0.1,
        test_frac: float = 0.1,
        time_column: str | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        max_time: float | None = None,
        progress: bool | None = None,
    ) -> Forecaster:
        """Train on ``series`` ((N,), (N, k) or a :class:`~rnnkit.data.SeriesData`); returns self.

        The last ``test_frac`` of the time steps are held out for :meth:`evaluate` and the
        ``val_frac`` before them for early stopping. ``time_column`` is only recorded (in the model
        file) so that ``rnnkit forecast`` can read the same CSV column again. ``checkpoint``,
        ``resume``, ``max_time`` and ``progress`` are passed to :func:`rnnkit.train.fit`.
        """
        values, columns = _as_table(series, "series")
        self.columns_ = columns
        self.targets_ = _resolve_target(self.target, columns)
        self.split_ = {"val_frac": check_probability(val_frac, "val_frac"),
                       "test_frac": check_probability(test_frac, "test_frac")}
        self.time_column_ = time_column
        parts = self._parts(len(values))
        train_values = values[: parts["train"].stop]
        self.scaler_ = SCALERS[self.scaler]().fit(self._delta(train_values))
        self.season_ = self.season if self.season is not None else _detect(train_values[:, self.targets_[0]])
        z = self._scaled(values)  # (N, k)

        self.model_ = self._build_model(len(columns), len(self.targets_))
        x, y = self._windows(z, parts["train"])
        validation = self._windows(z, parts["val"]) if parts["val"].stop > parts["val"].start else None
        self.history_ = fit_with_early_stopping(self.model_, x, y, validation, self, loss="mse", checkpoint=checkpoint,
                                                resume=resume, max_time=max_time, progress=progress)
        return self

    def _build_model(self, n_inputs: int, n_targets: int) -> Sequential:
        """Recurrent (last step only) -> [Dropout] -> Dense(n_targets), seeded by ``self.seed``."""
        rng = np.random.default_rng(self.seed)
        stack: list = [Recurrent(self.cell, n_inputs, self.hidden, num_layers=self.layers, return_sequences=False,
                                 dropout=self.dropout if self.layers > 1 else 0.0, seed=rng)]
        if self.dropout > 0:
            stack.append(Dropout(self.dropout, seed=rng))
        stack.append(Dense(self.hidden, n_targets, seed=rng))
        return Sequential(stack, name="forecaster")

    @property
    def context(self) -> int:
        """Past values one forecast reads: the window, plus ``difference`` more to form its differences."""
        return self.window + self.difference

    def _parts(self, n: int) -> dict[str, slice]:
        """The target time steps of each split; the training part must hold a context and a target."""
        train_part, val_part, test_part = chronological_split(n, **self.split_)
        n_train = train_part.stop
        if n_train <= self.context:
            needs = f"window={self.window}" + (f" + difference={self.difference}" if self.difference else "")
            raise DataError(
                f"the series has {n} values; after {val_part.stop - val_part.start} validation and "
                f"{n - test_part.start} test values the training part has {n_train}, but {needs} needs at least "
                f"{self.context + 1} (one window plus the value it predicts); use a shorter window or a longer series"
            )
        return {"train": slice(self.context, n_train), "val": val_part, "test": test_part,
                "all": slice(self.context, n)}

    def _delta(self, values: np.ndarray) -> np.ndarray:
        """u_t = x_t - x_{t-d} for t = d .. N-1, (N - d, k); the values themselves when d = 0."""
        d = self.difference
        return values[d:] - values[:-d] if d else values

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        """z_t = (u_t - shift) / scale, (N, k); the first d rows, which have no u_t, are NaN."""
        z = np.full(values.shape, np.nan)
        z[self.difference :] = self.scaler_.transform(self._delta(values))
        return z

    def _windows(self, z: np.ndarray, targets: slice) -> tuple[np.ndarray, np.ndarray]:
        """Inputs ``z[t-W:t]`` (M, W, k) and targets ``z[t, J]`` (M, |J|) for every t in ``targets``."""
        x, y = windows(z[targets.start - self.window : targets.stop], self.window)  # (M, W, k), (M, 1, k)
        dtype = self.model_.layers[-1].dtype
        return x.astype(dtype), y[:, 0, self.targets_].astype(dtype)

    def _one_step(self, values: np.ndarray, targets: slice) -> np.ndarray:
        """x̂_t of the target columns for every t in ``targets`` (>= context), (M, |J|), float64."""
        x, _ = self._windows(self._scaled(values), targets)
        u_hat = self._unscale(self.model_.predict(x))  # (M, |J|)
        if not self.difference:
            return u_hat
        t = np.arange(targets.start, targets.stop)
        return values[t - self.difference][:, self.targets_] + u_hat  # x̂_t = x_{t-d} + û_t

    # ---- using the model ----------------------------------------------------------------------

    def windows_of(self, series: np.ndarray | SeriesData, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The model's inputs and targets for the last ``last`` target steps of ``series`` (None: all).

        Returns ``x`` (M, W, k), the scaled windows ``z_{t-W} .. z_{t-1}``, and ``y`` (M, |J|), the
        scaled values ``z_{t,J}`` they predict, in the model's dtype: exactly what :meth:`fit` trains on.
        """
        values = self._check_input(series, minimum=self.context + 1)
        first = self.context if last is None else max(self.context, len(values) - check_positive_int(last, "last"))
        return self._windows(self._scaled(values), slice(first, len(values)))

    def predict(self, series: np.ndarray | SeriesData) -> np.ndarray:
        """One-step forecasts ``x̂_t`` of every value after the first context, t = C .. N-1 (C = :attr:`context`).

        Returns (N - C,) in the series' units, or (N - C, |J|) when the model predicts several columns.
        """
        values = self._check_input(series, minimum=self.context + 1)
        return self._squeeze(self._one_step(values, slice(self.context, len(values))))

    def evaluate(self, series: np.ndarray | SeriesData, split: str = "test") -> dict[str, Any]:
        """One-step MAE, RMSE and MASE of the model and the baselines on one part of ``series``.

        ``series`` is the series given to :meth:`fit` (its parts are cut again with the same
        fractions); ``split="all"`` scores every window of any series. Returns::

            {"split", "n" (targets scored), "season",
             "model": {"mae", "rmse", "mase"}, "naive": {...},
             "seasonal_naive": {...} or None (no season, or not enough history before the split)}
        """
        split = check_choice(split, "split", list(SPLITS))
        values = self._check_input(series, minimum=self.context + 1)
        parts = self._parts(len(values))
        targets = parts[split]
        if targets.stop <= targets.start:
            raise DataError(f"the {split!r} part of this series is empty; fit with a positive {split}_frac, "
                            "or evaluate another split")
        t = np.arange(targets.start, targets.stop)
        J = self.targets_
        y = values[t][:, J]  # (M, |J|)
        y_train = values[: parts["train"].stop, J]  # MASE scale: the naive forecast's MAE in training
        forecasts = {"model": self._one_step(values, targets), "naive": values[t - 1][:, J]}
        m = self.season_
        if m is not None and targets.start >= m:
            forecasts["seasonal_naive"] = values[t - m][:, J]

        def scores(y_hat: np.ndarray) -> dict[str, float]:
            return {"mae": metrics.mae(y, y_hat), "rmse": metrics.rmse(y, y_hat),
                    "mase": metrics.mase(y, y_hat, y_train, season=1)}

        result = {"split": split, "n": len(t), "season": m, "seasonal_naive": None}
        result.update({name: scores(y_hat) for name, y_hat in forecasts.items()})
        return result

    def forecast(self, history: np.ndarray | SeriesData, steps: int) -> np.ndarray:
        """Roll the model out ``steps`` values past the end of ``history`` (autoregressive).

        The last W (differenced, scaled) values of ``history`` are the first window; each prediction
        is appended as the newest input and the oldest is dropped (the tutorials' loop), so errors
        compound with the horizon. Needs a model that predicts every input column. Returns (steps,)
        for a one-column model, else (steps, k), in the series' units.
        """
        steps = check_positive_int(steps, "steps")
        values = self._check_input(history, minimum=self.context)
        if len(self.targets_) != len(self.columns_):
            predicted = [self.columns_[j] for j in self.targets_]
            raise ConfigError(
                f"forecast() feeds each prediction back as the next input, so the model must predict every input "
                f"column; it reads {list(self.columns_)} but predicts only {predicted}. Train with target=None "
                "(predict every column) or on the target column alone; predict() gives one-step forecasts"
            )
        d, k = self.difference, len(self.columns_)
        window = self._scaled(values[-self.context :])[d:][None].astype(self.model_.layers[-1].dtype)  # (1, W, k)
        x = np.empty((d + steps, k))  # the last d known values, then the forecasts
        x[:d] = values[len(values) - d :]
        for s in range(steps):
            z_next = self.model_.predict(window)[0]  # ẑ_{t+1}: (k,)
            x[d + s] = self._unscale(z_next[None])[0] + (x[s] if d else 0.0)  # x̂_{t+1} = x_{t+1-d} + û_{t+1}
            window = np.concatenate([window[:, 1:], z_next[None, None]], axis=1)  # drop the oldest, append ẑ
        return self._squeeze(x[d:])

    def _unscale(self, z: np.ndarray) -> np.ndarray:
        """Scaled predictions of the target columns (M, |J|) -> the series' units, float64."""
        J = self.targets_
        return z.astype(np.float64) * self.scaler_.scale_[J] + self.scaler_.shift_[J]  # (M, |J|)

    def _squeeze(self, y: np.ndarray) -> np.ndarray:
        """(M, 1) -> (M,) when the model predicts one column."""
        return y[:, 0] if len(self.targets_) == 1 else y

    def _check_input(self, series: Any, minimum: int) -> np.ndarray:
        """``series`` as (N, k) float64 with this model's columns and at least ``minimum`` values."""
        if self.model_ is None:
            raise ConfigError("this Forecaster is not fitted; call fit(series) or Forecaster.load(path) first")
        values, columns = _as_table(series, "series", names=self.columns_)
        if columns != self.columns_:
            raise DataError(f"the model was trained on columns {list(self.columns_)}, got {list(columns)}; "
                            "pass the same columns in the same order")
        if len(values) < minimum:
            raise DataError(f"the series has {len(values)} values, but this model (window={self.window}, "
                            f"difference={self.difference}) needs at least {minimum}; pass a longer history")
        return values

    # ---- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model and everything needed to use it again to one ``.safetensors`` file (atomic)."""
        if self.model_ is None:
            raise ConfigError("this Forecaster is not fitted; call fit(series) before save()")
        task = {
            "name": TASK, "window": self.window, "scaler": self.scaler_.to_dict(), "columns": list(self.columns_),
            "targets": [self.columns_[j] for j in self.targets_], "season": self.season_,
            "time_column": self.time_column_, "split": self.split_, "config": self.get_params(),
        }
        save_model(path, self.model_, task)

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Read a model file written by :meth:`save`; raises ModelFileError for any other file."""
        model, task = load_task_model(path, TASK, _TASK_KEYS)
        with reading_task_document(path, TASK):
            forecaster = cls(**task["config"])
            forecaster.scaler_ = scaler_from_dict(task["scaler"])
            forecaster.columns_ = tuple(task["columns"])
            forecaster.targets_ = [forecaster.columns_.index(name) for name in task["targets"]]
        forecaster.model_, forecaster.season_, forecaster.split_ = model, task["season"], task["split"]
        forecaster.time_column_, forecaster.history_ = task.get("time_column"), None
        return forecaster


# ---- helpers ----------------------------------------------------------------------------------


def _as_table(series: Any, name: str, names: tuple[str, ...] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """A series as ``(values (N, k) float64, column names)``; arrays get ``names`` or y0, y1, ...

    Raises for the wrong rank, non-numbers, NaN/Inf (naming the first bad row) and empty input.
    """
    if isinstance(series, SeriesData):
        values, columns = series.values, tuple(series.columns)
    else:
        values, columns = np.asarray(series), None
    if values.dtype.kind not in "fiub":
        raise DTypeError(f"{name} must hold numbers, got dtype {values.dtype}")
    if values.ndim not in (1, 2) or len(values) == 0:
        raise ShapeError(f"{name} must have shape (N,) or (N, k) with N >= 1, got {values.shape}")
    values = values.astype(np.float64).reshape(len(values), -1)  # (N, k)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataError(
            f"{name} has {int(bad.sum())} row(s) with NaN or Inf, the first at row {int(np.argmax(bad))}; fill "
            "them first (load_series_csv interpolates missing CSV cells unless interpolate=False)"
        )
    if columns is None:
        k = values.shape[1]
        columns = names if names is not None and len(names) == k else tuple(f"y{j}" for j in range(k))
    return values, columns


def _resolve_target(target: str | int | None, columns: tuple[str, ...]) -> list[int]:
    """The indices of the predicted columns: all of them for None, else the one named or indexed."""
    if target is None:
        return list(range(len(columns)))
    if isinstance(target, str):
        if target not in columns:
            raise DataError(f"target column {target!r} is not in the series; its columns are {list(columns)}")
        return [columns.index(target)]
    if not 0 <= target < len(columns):
        raise DataError(f"target index {target} is out of range for a series of {len(columns)} column(s)")
    return [int(target)]


def _detect(x: np.ndarray) -> int | None:
    """The season of the training part's target column, or None (none found or too short to tell)."""
    try:
        return detect_season(x)
    except DataError:
        return None


def future_times(labels: list[str] | None, steps: int) -> list[str] | None:
    """Continue a regular time column ``steps`` steps past its end, or None if it cannot be done.

    Labels that all parse as numbers, or all as ISO dates/times (``1960-12``, ``2001-12-29``,
    ``2020-01-01T10:00``), and are evenly spaced are continued with the same spacing and format.
    """
    if not labels or len(labels) < 2:
        return None
    for parse in (np.float64, np.datetime64):
        try:
            t = np.array([parse(s.strip()) for s in labels])
        except ValueError:
            continue
        gaps = np.diff(t).astype(np.float64)  # in the labels' own unit (months, days, ...)
        if gaps[-1] <= 0 or not np.allclose(gaps, gaps[-1], rtol=1e-9, atol=0):
            return None
        future = t[-1] + (t[-1] - t[-2]) * np.arange(1, steps + 1)
        if parse is np.datetime64:
            return [str(v) for v in future]
        return [f"{v:.10g}" for v in future]
    return None
