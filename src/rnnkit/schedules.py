"""Learning-rate schedules (``torch.optim.lr_scheduler``'s rules) over an rnnkit optimizer.

A schedule sets ``optimizer.lr`` each time ``step()`` is called (once per epoch in
:func:`rnnkit.train.fit`); its ``state_dict()`` holds JSON scalars only, for checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

from ._validation import check_choice, check_positive_int, check_probability
from .errors import ConfigError, ModelFileError
from .optim import Optimizer, _check_keys, _check_nonneg


class LRSchedule:
    """Base of the schedules: ``step()`` sets ``optimizer.lr``; ``state_dict`` saves ``_state_keys``.

    ``t`` (``last_step``) counts ``step()`` calls, like torch's ``last_epoch``. Closed-form
    schedules define ``lr_at(t)`` from ``base_lr`` (the optimizer's lr at construction) and set
    ``lr_at(0)`` on construction.
    """

    _state_keys: tuple[str, ...] = ("base_lr", "last_step")

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    def step(self, metric: float | None = None) -> None:
        """Advance one step and set the optimizer's lr (``metric`` is used by ReduceLROnPlateau only)."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)

    def state_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **{k: getattr(self, k) for k in self._state_keys}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the saved state (checked first) and the optimizer's lr for it."""
        if state.get("type") != type(self).__name__:
            raise ModelFileError(
                f"schedule state is for {state.get('type')!r}, but this schedule is {type(self).__name__}"
            )
        _check_keys(set(state) - {"type"}, self._state_keys, "schedule state")
        for k in self._state_keys:
            setattr(self, k, state[k])
        self.optimizer.lr = self.lr_at(self.last_step)


class StepLR(LRSchedule):
    """``lr = base_lr * gamma ** (t // step_size)`` (torch.optim.lr_scheduler.StepLR)."""

    _state_keys = ("base_lr", "last_step", "step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = _check_nonneg(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRSchedule):
    """``lr = base_lr * gamma ** t`` (torch.optim.lr_scheduler.ExponentialLR)."""

    _state_keys = ("base_lr", "last_step", "gamma")

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = _check_nonneg(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma**t


class CosineWithWarmup(LRSchedule):
    """Linear warm-up over ``W = warmup_steps``, then cosine from ``base_lr`` to ``min_lr`` at ``T = total_steps``::

        lr = base_lr (t + 1) / (W + 1)                                            t < W
        lr = min_lr + (base_lr - min_lr) (1 + cos(pi (t - W) / (T - W))) / 2       W <= t <= T
        lr = min_lr                                                               t > T

    With ``W = 0`` this is torch's ``CosineAnnealingLR(T_max=T, eta_min=min_lr)`` up to ``t = T``.
    """

    _state_keys = ("base_lr", "last_step", "total_steps", "warmup_steps", "min_lr")

    def __init__(self, optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> None:
        self.total_steps = check_positive_int(total_steps, "total_steps")
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ConfigError(f"warmup_steps must be < total_steps={total_steps}, got {warmup_steps}")
        self.min_lr = _check_nonneg(min_lr, "min_lr")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        W, T = self.warmup_steps, self.total_steps
        if t < W:
            return self.base_lr * (t + 1) / (W + 1)
        if t > T:
            return self.min_lr
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * (t - W) / (T - W))) / 2


class ReduceLROnPlateau(LRSchedule):
    """Multiply ``lr`` by ``factor`` once the metric has not improved for more than ``patience`` steps.

    torch.optim.lr_scheduler.ReduceLROnPlateau semantics. A metric ``a`` improves on ``best`` if
    ``a < best (1 - threshold)`` ('min', 'rel'), ``a < best - threshold`` ('min', 'abs'),
    ``a > best (1 + threshold)`` ('max', 'rel') or ``a > best + threshold`` ('max', 'abs').
    A reduction sets ``lr = max(lr factor, min_lr)`` (skipped if that changes lr by <= ``eps``)
    and ignores the next ``cooldown`` steps.
    """

    _state_keys = (
        "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps",
        "best", "num_bad_steps", "cooldown_counter", "last_step",
    )

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        self.optimizer = optimizer
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.factor = check_probability(factor, "factor")
        self.patience = check_positive_int(patience, "patience", minimum=0)
        self.threshold = _check_nonneg(threshold, "threshold")
        self.threshold_mode = check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = check_positive_int(cooldown, "cooldown", minimum=0)
        self.min_lr = _check_nonneg(min_lr, "min_lr")
        self.eps = _check_nonneg(eps, "eps")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_steps = self.cooldown_counter = self.last_step = 0

    def _is_better(self, a: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return a < best * (1 - threshold) if self.threshold_mode == "rel" else a < best - threshold
        return a > best * (1 + threshold) if self.threshold_mode == "rel" else a > best + threshold

    def step(self, metric: float | None = None) -> None:
        """Record this step's ``metric`` (e.g. the validation loss); reduce lr on a plateau."""
        if metric is None:
            raise ConfigError("ReduceLROnPlateau.step needs the monitored metric, e.g. schedule.step(val_loss)")
        a = float(metric)
        self.last_step += 1
        if self._is_better(a):
            self.best, self.num_bad_steps = a, 0
        else:
            self.num_bad_steps += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_steps = 0  # bad steps in cooldown do not count
        if self.num_bad_steps > self.patience:
            new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
            if self.optimizer.lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter, self.num_bad_steps = self.cooldown, 0

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["best"] = self.best if math.isfinite(self.best) else None  # JSON has no Infinity
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.best is None:
            self.best = math.inf if self.mode == "min" else -math.inf

    def lr_at(self, t: int) -> float:
        """The optimizer's current lr: this schedule has no closed form (the optimizer's state holds lr)."""
        return self.optimizer.lr
