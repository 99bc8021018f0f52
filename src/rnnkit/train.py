"""The training loop: mini-batches or a stateful stream, full or truncated BPTT, exact resume.

Two entry points share one :class:`Trainer`:

- :func:`fit` trains on independent sequences ``x (N, T, ...)`` with targets ``y``: shuffled
  mini-batches, optional truncated BPTT over the time axis (``bptt=k``: unroll k steps, carry the
  state forward, cut the gradient — the tutorials' ``hidden.detach()``).
- :func:`fit_stream` trains a language model char-rnn style on one contiguous token stream: batch
  row ``i`` of chunk ``j+1`` continues where row ``i`` of chunk ``j`` stopped, and the recurrent
  state is carried across batches (reset at every epoch).

Determinism: every random draw flows from ``seed``. The shuffle of epoch ``e`` uses
``default_rng([seed, e])`` and the dropout masks of global step ``s`` use ``default_rng([seed, s, i])``
for layer ``i``, so a run resumed from a checkpoint replays exactly the same numbers.

Checkpoints are atomic; they hold parameters, optimizer and schedule state, progress (epoch, batch,
step), history, best metric and best weights, and the carried state. Ctrl-C finishes the current
step, saves a checkpoint and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optim
from ._validation import check_optional_positive, check_positive_int, check_probability
from .data.batching import StreamBatcher, minibatches
from .errors import ConfigError, DataError, TrainingError
from .io.checkpoint import load_checkpoint, save_checkpoint
from .models import Sequential


class TrainingInterrupted(TrainingError):
    """Training stopped on Ctrl-C after saving a checkpoint; the message says how to resume."""


@dataclass
class History:
    """One row per epoch: ``{"epoch", "loss", "val_loss", <metrics>, "lr", "seconds"}``."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [row[key] for row in self.rows if key in row]

    def to_csv(self, path: str | Path) -> None:
        keys = sorted({k for row in self.rows for k in row}, key=lambda k: (k != "epoch", k))
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.rows, indent=1), encoding="utf-8")


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best`` the model ends with the weights of its best epoch.
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: str = "min"
    restore_best: bool = True

    def improved(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best - self.min_delta if self.mode == "min" else value > best + self.min_delta


Callback = Callable[[int, dict[str, float]], bool | None]  # (epoch, logs) -> True to stop


class Trainer:
    """One optimisation step: forward, loss, backward, finiteness check, clipping, update.

    ``loss`` is a name in :data:`rnnkit.losses.LOSSES` or a function
    ``(pred, target, mask) -> (loss, dpred)``.
    """

    def __init__(
        self,
        model: Sequential,
        loss: str | Callable = "mse",
        optimizer: optim.Optimizer | None = None,
        *,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.loss_fn = _resolve_loss(loss)
        self.optimizer = optimizer if optimizer is not None else optim.Adam(model.params, lr=1e-3)
        self.clip_norm, self.clip_value, self.seed = clip_norm, clip_value, seed
        self.global_step = 0

    def reseed_dropout(self) -> None:
        """Give every layer with an ``rng`` the generator of this step: resume replays the same masks."""
        for i, layer in enumerate(self.model.layers):
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng([self.seed, self.global_step, i])

    def step(self, x, y, *, lengths=None, mask=None, states=None) -> tuple[float, dict]:
        """One update on a batch; returns the loss and the final recurrent states (gradient cut)."""
        self.reseed_dropout()
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
            pred = self.model.forward(x, lengths=lengths, training=True, states=states)
            if not np.isfinite(pred).all():
                raise self._diverged("model output", "non-finite")
            loss, dpred = self.loss_fn(pred, y, mask)
            if not math.isfinite(loss):
                raise self._diverged("loss", loss)
            self.model.backward(dpred)
        grads = self.model.grads
        if not all(np.isfinite(g).all() for g in grads.values()):
            raise self._diverged("gradient", "non-finite")
        if self.clip_norm is not None:
            optim.clip_grad_norm(grads, self.clip_norm)
        if self.clip_value is not None:
            optim.clip_grad_value(grads, self.clip_value)
        self.optimizer.step(grads)
        self.global_step += 1
        return loss, self.model.final_states()

    def _diverged(self, what: str, value: object) -> TrainingError:
        hint = "lower the learning rate" + ("" if self.clip_norm else " or set clip_norm (e.g. 1.0)")
        return TrainingError(
            f"step {self.global_step + 1}: the {what} became {value} (lr={self.optimizer.lr:g}); "
            f"{hint}; the parameters were not updated and the last checkpoint is intact"
        )


def _resolve_loss(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    fn = losses_mod.LOSSES.get(loss)
    if fn is None:
        raise ConfigError(f"loss must be one of {sorted(losses_mod.LOSSES)} or a function, got {loss!r}")
    return fn


_FROM_LOGITS = ("cross_entropy", "binary_cross_entropy_with_logits")
METRICS = ("accuracy", "mae", "rmse", "perplexity", "bits_per_char")


def compute_metric(name: str, pred: np.ndarray, y: np.ndarray, *, mask=None, mean_loss: float,
                   from_logits: bool) -> float:
    """One named metric of predictions ``pred`` against targets ``y`` (perplexity and bits per char
    come from the mean cross-entropy ``mean_loss`` in nats)."""
    if name == "accuracy":
        y = np.asarray(y)
        labels = (y > 0.5).astype(np.int64) if y.dtype.kind == "f" else y  # binary targets given as 0./1.
        return metrics_mod.accuracy(labels, pred, mask=mask, from_logits=from_logits)
    if name in ("mae", "rmse"):
        return getattr(metrics_mod, name)(y, pred)
    if name == "perplexity":
        return metrics_mod.perplexity(mean_loss)
    if name == "bits_per_char":
        return metrics_mod.bits_per_char(mean_loss)
    raise ConfigError(f"metric must be one of {list(METRICS)}, got {name!r}")


class _Run:
    """Bookkeeping shared by :func:`fit` and :func:`fit_stream`: progress, history, checkpoints, stops."""

    def __init__(self, trainer: Trainer, *, epochs, schedule, early_stopping, callbacks, checkpoint,
                 checkpoint_every, max_time, progress, config, anneal=False, max_steps=None) -> None:
        self.trainer, self.schedule, self.early_stopping = trainer, schedule, early_stopping
        self.epochs = check_positive_int(epochs, "epochs")
        self.anneal = _check_anneal(anneal, schedule)
        self.base_lr = trainer.optimizer.lr  # the annealed runs' starting lr
        self.max_steps = None if max_steps is None else check_positive_int(max_steps, "max_steps")
        self.max_time = check_optional_positive(max_time, "max_time")
        self.started, self.seconds_before = time.monotonic(), 0.0  # seconds trained before a resume
        self.epoch_length = 1  # batches in the current epoch (set by the loop)
        self.callbacks = list(callbacks)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = None if checkpoint_every is None else check_positive_int(checkpoint_every,
                                                                                         "checkpoint_every")
        self.deadline = self.started + self.max_time if self.max_time is not None else None
        self.progress, self.config = progress, config
        self.epoch, self.batch = 0, 0              # where the next step starts
        self.loss_sum, self.loss_count = 0.0, 0    # running training loss of the current epoch
        self.history = History()
        self.best: float | None = None
        self.best_params: dict[str, np.ndarray] | None = None
        self.wait = 0
        self.stop_requested = False
        self.stopped_early = False
        self.carried: dict[int, Any] | None = None  # recurrent state carried across batches (streams)
        self.sigint = False

    # -- checkpoints --------------------------------------------------------------------------
    def save(self) -> None:
        if self.checkpoint is None:
            return
        extra = {f"best.{k}": v for k, v in (self.best_params or {}).items()}
        extra.update(_flatten_states(self.carried))
        progress = {
            "epoch": self.epoch, "batch": self.batch, "global_step": self.trainer.global_step,
            "loss_sum": self.loss_sum, "loss_count": self.loss_count, "history": self.history.rows,
            "best": self.best, "wait": self.wait, "stopped_early": self.stopped_early,
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
        }
        if self.anneal:
            progress.update(base_lr=self.base_lr, seconds=self.seconds())
        save_checkpoint(self.checkpoint, params=self.trainer.model.params,
                        optimizer_state=self.trainer.optimizer.state_dict(), rng_states={},
                        progress=progress, config=self.config, extra_arrays=extra)

    def restore(self) -> None:
        """Load the checkpoint into the model, optimizer, schedule and this run."""
        ckpt = load_checkpoint(self.checkpoint)
        if ckpt.config != self.config:
            changed = sorted(k for k in set(ckpt.config) | set(self.config) if ckpt.config.get(k) != self.config.get(k))
            raise ConfigError(
                f"checkpoint {self.checkpoint} was written by a different run (differs in: {', '.join(changed)}); "
                "resume with the same settings, or start afresh without resume"
            )
        params = self.trainer.model.params
        missing = set(params) ^ set(ckpt.params)
        if missing:
            raise ConfigError(f"checkpoint {self.checkpoint} does not match the model (parameters {sorted(missing)})")
        for name, value in ckpt.params.items():
            params[name][...] = value
        self.trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        p = ckpt.progress
        self.epoch, self.batch, self.trainer.global_step = p["epoch"], p["batch"], p["global_step"]
        self.loss_sum, self.loss_count = p["loss_sum"], p["loss_count"]
        self.history = History(list(p["history"]))
        self.best, self.wait, self.stopped_early = p["best"], p["wait"], p["stopped_early"]
        if self.schedule is not None and p["schedule"] is not None:
            self.schedule.load_state_dict(p["schedule"])
        if self.anneal:
            self.base_lr, self.seconds_before = p["base_lr"], p["seconds"]
        best = {k[len("best."):]: v for k, v in ckpt.extra_arrays.items() if k.startswith("best.")}
        self.best_params = best or None
        self.carried = _unflatten_states(ckpt.extra_arrays)

    # -- the budget and the annealed learning rate ------------------------------------------------
    def seconds(self) -> float:
        """Seconds of training, those before a resume included."""
        return self.seconds_before + time.monotonic() - self.started

    def budget_used(self) -> float:
        """The fraction in [0, 1] of the budget spent: the largest of the epoch, step and time fractions.

        ``max_time`` is this invocation's seconds, so after a resume the time budget is the seconds
        trained before it plus ``max_time``: pass the seconds left to continue the same schedule.
        """
        fractions = [(self.epoch + self.batch / self.epoch_length) / self.epochs]
        if self.max_steps is not None:
            fractions.append(self.trainer.global_step / self.max_steps)
        if self.max_time is not None:
            fractions.append(self.seconds() / (self.seconds_before + self.max_time))
        return min(1.0, max(fractions))

    def before_step(self) -> None:
        """With ``anneal``: ``lr = base_lr (1 - budget used)``, linear to 0 where the budget ends."""
        if self.anneal:
            self.trainer.optimizer.lr = self.base_lr * (1.0 - self.budget_used())

    # -- the loop's events ----------------------------------------------------------------------
    def after_step(self, loss: float) -> None:
        self.loss_sum += loss
        self.loss_count += 1
        self.batch += 1
        if self.checkpoint_every and self.trainer.global_step % self.checkpoint_every == 0:
            self.save()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop_requested = True
        if self.max_steps is not None and self.trainer.global_step >= self.max_steps:
            self.stop_requested = True

    def end_epoch(self, logs: dict[str, float], seconds: float) -> bool:
        """Record the epoch; step the schedule; early stopping; returns True to stop."""
        row = {"epoch": self.epoch + 1, "loss": self.loss_sum / max(self.loss_count, 1), **logs,
               "lr": self.trainer.optimizer.lr, "seconds": seconds}
        self.history.rows.append(row)
        stop = False
        es = self.early_stopping
        if es is not None:
            if es.monitor not in row:
                raise ConfigError(f"early stopping monitors {es.monitor!r} but the epoch logs have {sorted(row)}")
            if es.improved(row[es.monitor], self.best):
                self.best, self.wait = row[es.monitor], 0
                if es.restore_best:
                    self.best_params = {k: v.copy() for k, v in self.trainer.model.params.items()}
            else:
                self.wait += 1
                stop = self.wait >= es.patience
                self.stopped_early = stop
        if self.schedule is not None:
            self.schedule.step(row.get("val_loss", row["loss"]))
        for callback in self.callbacks:
            stop = bool(callback(self.epoch + 1, row)) or stop
        self.epoch, self.batch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
        self.carried = None
        self.save()
        return stop

    def finish(self) -> History:
        """End the run: with early stopping's ``restore_best``, the model keeps its best epoch's weights."""
        es = self.early_stopping
        if es is not None and es.restore_best and self.best_params is not None:
            for name, value in self.best_params.items():
                self.trainer.model.params[name][...] = value
        return self.history

    def interrupted(self) -> TrainingInterrupted:
        where = f"epoch {self.epoch + 1}, batch {self.batch}, step {self.trainer.global_step}"
        if self.checkpoint is None:
            return TrainingInterrupted(f"interrupted at {where}; no checkpoint path was given, progress is lost")
        self.save()
        return TrainingInterrupted(
            f"interrupted at {where}; checkpoint saved to {self.checkpoint}; run the same command with --resume "
            "(or resume=True) to continue exactly where it stopped"
        )

    def bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        show = self.progress if self.progress is not None else sys.stderr.isatty()
        return tqdm(total=total, initial=self.batch, desc=desc, disable=not show, unit="batch", leave=False)


def _check_anneal(anneal: Any, schedule: Any) -> bool:
    if not isinstance(anneal, (bool, np.bool_)):
        raise ConfigError(f"anneal must be True or False, got {anneal!r}")
    if anneal and schedule is not None:
        raise ConfigError("anneal=True and a schedule both set the learning rate; pass one of them")
    return bool(anneal)


class _StopOnSigint:
    """While active, Ctrl-C only asks the run to stop at the next step boundary."""

    def __init__(self, run: _Run) -> None:
        self.run, self.previous = run, None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not in the main thread: leave signals alone
            self.previous = None
        return self

    def _handler(self, signum, frame) -> None:
        self.run.stop_requested = True
        self.run.sigint = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _flatten_states(states: dict[int, Any] | None) -> dict[str, np.ndarray]:
    """{layer index: h or (h, c)} -> {"state.<i>.<k>": array} for the checkpoint."""
    out: dict[str, np.ndarray] = {}
    for i, s in (states or {}).items():
        for k, a in enumerate(s if isinstance(s, tuple) else (s,)):
            out[f"state.{i}.{k}"] = a
    return out


def _unflatten_states(arrays: dict[str, np.ndarray]) -> dict[int, Any] | None:
    parts: dict[int, dict[int, np.ndarray]] = {}
    for key, a in arrays.items():
        if key.startswith("state."):
            _, i, k = key.split(".")
            parts.setdefault(int(i), {})[int(k)] = a
    if not parts:
        return None
    return {i: (d[0] if len(d) == 1 else tuple(d[k] for k in sorted(d))) for i, d in parts.items()}


def _detach(states: dict[int, Any]) -> dict[int, Any]:
    """Copy carried states so the next chunk starts from values, not from buffers a layer reuses."""
    return {i: tuple(a.copy() for a in s) if isinstance(s, tuple) else s.copy() for i, s in states.items()}


def _check_xy(x: np.ndarray, y: np.ndarray, name: str) -> None:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{name}: x is empty; training needs at least one sample")
    if len(x) != len(y):
        raise DataError(f"{name}: x has {len(x)} samples but y has {len(y)}; give one target per sample")
    for arr, label in ((x, "x"), (y, "y")):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(f"{name}: {label} contains NaN or Inf; clean or impute the data first")
        if arr.dtype.kind not in "fiub":
            raise DataError(f"{name}: {label} must be numeric, got dtype {arr.dtype}")


def _take(a, idx):
    return None if a is None else a[idx]


def _per_step(x, y) -> bool:
    """Whether ``y`` holds one target per time step of ``x`` (``y (N, T, ...)``)."""
    return np.ndim(y) >= 2 and np.ndim(x) >= 2 and np.shape(y)[1] == np.shape(x)[1]


def _trim_padding(x, y, lengths, mask, per_step: bool):
    """Drop the steps past a batch's longest sequence: padding sits at the end and never changes the
    result, and a shorter batch is faster. Per-step targets are cut too, but only when a mask already
    excludes their padded steps (unmasked, the loss would score the padded steps)."""
    if lengths is None or int(lengths.max()) == np.shape(x)[1]:
        return x, y, mask
    if per_step and mask is None:
        return x, y, mask
    T = int(lengths.max())
    if per_step:
        return x[:, :T], y[:, :T], mask[:, :T]
    return x[:, :T], y, mask


def evaluate(model: Sequential, x, y, *, loss: str | Callable = "mse", lengths=None, mask=None,
             metrics=(), batch_size: int = 256) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``(x, y)`` in inference mode."""
    loss_fn = _resolve_loss(loss)
    from_logits = getattr(loss_fn, "__name__", "") in _FROM_LOGITS
    _check_xy(x, y, "evaluate")
    per_step = _per_step(x, y)
    preds, total, weight = [], 0.0, 0
    for start in range(0, len(x), batch_size):
        idx = slice(start, start + batch_size)
        xb, lb = x[idx], _take(lengths, idx)
        if not per_step:  # per-step outputs keep the full T so that batches concatenate
            xb, _, _ = _trim_padding(xb, None, lb, None, per_step=False)
        pred = model.forward(xb, lengths=lb, cache=False)
        value, _ = loss_fn(pred, y[idx], _take(mask, idx))
        n = len(pred)
        total, weight = total + value * n, weight + n
        preds.append(pred)
    logs = {"loss": total / weight}
    pred = np.concatenate(preds)
    for name in metrics:
        logs[name] = compute_metric(name, pred, y, mask=mask, mean_loss=logs["loss"], from_logits=from_logits)
    return logs


def fit(model: Sequential, x, y, *, loss: str | Callable = "mse", optimizer: optim.Optimizer | None = None,
        epochs: int = 1, batch_size: int = 32, lengths=None, mask=None, validation_data=None,
        validation_split: float = 0.0, metrics=(), shuffle: bool = True, bptt: int | None = None,
        clip_norm: float | None = None, clip_value: float | None = None, schedule=None,
        early_stopping: EarlyStopping | None = None, callbacks=(), seed: int = 0,
        checkpoint: str | Path | None = None, checkpoint_every: int | None = None, resume: bool = False,
        max_time: float | None = None, anneal: bool = False, progress: bool | None = None) -> History:
    """Train ``model`` on samples ``x`` with targets ``y``; returns the per-epoch :class:`History`.

    ``lengths`` (N,) mark padded sequences; ``mask`` weights the targets (e.g. per-step targets of
    padded sequences). ``validation_data`` is ``(x, y)`` or ``(x, y, lengths)``; otherwise the last
    ``validation_split`` of the samples (before shuffling) is held out, as in Keras. ``bptt=k`` cuts each
    batch's time axis into chunks of ``k`` steps trained one after another with the state carried.
    ``anneal=True`` lowers the learning rate linearly to 0 where the budget (``epochs`` or ``max_time``,
    whichever ends first) runs out (``docs/training.md``, "Annealing to a budget").
    """
    _check_xy(x, y, "fit")
    batch_size = check_positive_int(batch_size, "batch_size")
    validation_split = check_probability(validation_split, "validation_split")
    if bptt is not None and (lengths is not None or not _per_step(x, y)):
        raise ConfigError("bptt needs equal-length sequences with one target per time step (y of shape (N, T, ...)) "
                          "and no lengths; use fit_stream for a token stream")
    if validation_data is None and validation_split > 0:
        n_val = max(1, int(round(len(x) * validation_split)))
        if n_val >= len(x):
            raise DataError(f"validation_split={validation_split} leaves no training samples out of {len(x)}")
        cut = len(x) - n_val
        validation_data = (x[cut:], y[cut:], _take(lengths, slice(cut, None)), _take(mask, slice(cut, None)))
        x, y, lengths, mask = x[:cut], y[:cut], _take(lengths, slice(None, cut)), _take(mask, slice(None, cut))
    trainer = Trainer(model, loss, optimizer, clip_norm=clip_norm, clip_value=clip_value, seed=seed)
    config = {"entry": "fit", "epochs": epochs, "batch_size": batch_size, "seed": seed, "bptt": bptt,
              "n_train": int(len(x)), "shuffle": shuffle, **({"anneal": True} if anneal else {})}
    run = _Run(trainer, epochs=epochs, schedule=schedule, early_stopping=early_stopping, callbacks=callbacks,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, max_time=max_time, progress=progress,
               config=config, anneal=anneal)
    if resume and run.checkpoint is not None and run.checkpoint.exists():
        run.restore()

    def epoch_batches(epoch: int) -> list[np.ndarray]:
        return list(minibatches(len(x), batch_size, np.random.default_rng([seed, epoch]), shuffle=shuffle))

    per_step = _per_step(x, y)

    def train_batch(idx: np.ndarray) -> float:
        xb, yb, lb, mb = x[idx], y[idx], _take(lengths, idx), _take(mask, idx)
        xb, yb, mb = _trim_padding(xb, yb, lb, mb, per_step)
        if bptt is None:
            return trainer.step(xb, yb, lengths=lb, mask=mb)[0]
        states, total, steps = None, 0.0, 0
        for t0 in range(0, xb.shape[1], bptt):
            chunk = slice(t0, t0 + bptt)
            value, states = trainer.step(xb[:, chunk], yb[:, chunk], mask=_take(mb, (slice(None), chunk)), states=states)
            states, total, steps = _detach(states), total + value, steps + 1
        return total / steps

    def validate() -> dict[str, float]:
        if validation_data is None:
            return {}
        xv, yv, lv, mv = (tuple(validation_data) + (None, None))[:4]
        logs = evaluate(model, xv, yv, loss=trainer.loss_fn, lengths=lv, mask=mv, metrics=metrics)
        return {f"val_{k}": v for k, v in logs.items()}

    return _loop(run, epoch_batches, train_batch, validate)


def fit_stream(model: Sequential, tokens, *, batch_size: int = 32, bptt: int = 100, epochs: int = 1,
               loss: str | Callable = "cross_entropy", optimizer: optim.Optimizer | None = None,
               validation_tokens=None, clip_norm: float | None = 5.0, clip_value: float | None = None,
               schedule=None, early_stopping: EarlyStopping | None = None, callbacks=(), seed: int = 0,
               checkpoint: str | Path | None = None, checkpoint_every: int | None = None, resume: bool = False,
               max_time: float | None = None, max_steps: int | None = None, reset_every: int | None = None,
               anneal: bool = False, progress: bool | None = None) -> History:
    """Stateful truncated-BPTT training of a next-token model over one contiguous stream.

    The stream is cut into ``batch_size`` contiguous rows; each step trains on the next ``bptt`` tokens
    of every row, starting from the state the previous step ended in (gradient cut between steps).
    The state starts from zeros at every epoch and, with ``reset_every=n``, every ``n`` steps.
    Validation reports cross-entropy, perplexity and bits per token on ``validation_tokens``.
    ``anneal=True`` lowers the learning rate linearly to 0 where the first of ``epochs``,
    ``max_steps`` and ``max_time`` ends.
    """
    if reset_every is not None:
        reset_every = check_positive_int(reset_every, "reset_every")
    batcher = StreamBatcher(tokens, batch_size, bptt)
    trainer = Trainer(model, loss, optimizer, clip_norm=clip_norm, clip_value=clip_value, seed=seed)
    config = {"entry": "fit_stream", "epochs": epochs, "batch_size": batch_size, "bptt": bptt, "seed": seed,
              "n_tokens": int(len(tokens)), "reset_every": reset_every, **({"anneal": True} if anneal else {})}
    run = _Run(trainer, epochs=epochs, schedule=schedule, early_stopping=early_stopping, callbacks=callbacks,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, max_time=max_time, progress=progress,
               config=config, anneal=anneal, max_steps=max_steps)
    if resume and run.checkpoint is not None and run.checkpoint.exists():
        run.restore()

    def epoch_batches(epoch: int) -> list[int]:
        return list(range(len(batcher)))

    def train_batch(j: int) -> float:
        xb, yb = batcher[j]
        if reset_every is not None and j % reset_every == 0:
            run.carried = None
        value, states = trainer.step(xb, yb, states=run.carried)
        run.carried = _detach(states)
        return value

    def validate() -> dict[str, float]:
        if validation_tokens is None:
            return {}
        ce = stream_cross_entropy(model, validation_tokens, batch_size=batch_size, bptt=bptt)
        return {"val_loss": ce, "val_perplexity": float(np.exp(ce)), "val_bits_per_token": ce / np.log(2)}

    return _loop(run, epoch_batches, train_batch, validate)


def stream_cross_entropy(model: Sequential, tokens, *, batch_size: int = 32, bptt: int = 100) -> float:
    """Mean next-token cross-entropy (nats) over a stream, state carried across chunks."""
    batcher = StreamBatcher(tokens, batch_size, bptt)
    states, total, count = None, 0.0, 0
    for j in range(len(batcher)):
        xb, yb = batcher[j]
        logits = model.forward(xb, states=states, cache=False)
        states = _detach(model.final_states())
        value, _ = losses_mod.cross_entropy(logits, yb)
        total, count = total + value * yb.size, count + yb.size
    return total / count


def _loop(run: _Run, epoch_batches: Callable[[int], list], train_batch: Callable[[Any], float],
          validate: Callable[[], dict[str, float]]) -> History:
    """The epoch/batch loop both entry points share, with stops at step boundaries."""
    with _StopOnSigint(run):
        while run.epoch < run.epochs and not run.stopped_early:
            started = time.monotonic()
            batches = epoch_batches(run.epoch)
            run.epoch_length = max(len(batches), 1)
            with run.bar(len(batches), f"epoch {run.epoch + 1}/{run.epochs}") as bar:
                for item in batches[run.batch:]:
                    run.before_step()
                    value = train_batch(item)
                    run.after_step(value)
                    bar.set_postfix(loss=f"{run.loss_sum / run.loss_count:.4f}", refresh=False)
                    bar.update()
                    if run.stop_requested:
                        break
            if run.stop_requested and run.batch < len(batches):
                if run.sigint:
                    raise run.interrupted()
                run.save()
                break
            if run.end_epoch(validate(), time.monotonic() - started) or run.stop_requested:
                break
    return run.finish()
