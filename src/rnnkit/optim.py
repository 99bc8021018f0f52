"""Optimizers and gradient clipping (``torch.optim``'s update rules); schedules are in :mod:`rnnkit.schedules`.

An optimizer updates a flat ``dict[str, ndarray]`` of parameters **in place** from a dict of
gradients with the same keys, shapes and dtypes::

    opt = Adam(params, lr=1e-3)
    opt.step(grads)          # params[k] -= ... for every k
    opt.lr = 3e-4            # schedules set this

Arithmetic stays in the parameters' dtype (float32 parameters are never upcast). In the formulas
``t`` is the step number (from 1), ``g`` the gradient and ``p`` the parameter.

``state_dict()`` is checkpoint-friendly: ``"type"``, ``"config"`` and ``"step"`` are JSON scalars
and ``"arrays"`` is a flat ``{"<buffer>.<param name>": ndarray}`` dict (safetensors-ready), e.g.
``"exp_avg.l0.W_ih"``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import check_float_array, check_positive_int, check_probability
from .errors import ConfigError, DataError, DTypeError, ModelFileError, ShapeError, TrainingError

Arrays = dict[str, np.ndarray]


def _check_nonneg(value: Any, name: str) -> float:
    """Return ``value`` as a finite float >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _check_keys(received: Any, expected: Any, what: str, error: type[Exception] = ModelFileError) -> None:
    """Raise ``error`` naming the missing and unexpected keys of ``received``."""
    missing, unexpected = sorted(set(expected) - set(received)), sorted(set(received) - set(expected))
    if missing or unexpected:
        raise error(
            f"{what} keys do not match: missing {missing}, unexpected {unexpected}; "
            "use the same parameter names and options as when it was created"
        )


class Optimizer:
    """Base class: parameters, ``lr``, the step count and per-parameter state buffers.

    Subclasses name their hyperparameters in ``_config_keys`` (saved by ``state_dict``), their
    buffers in ``_buffer_kinds()``, and write the update of one parameter in ``_update``.
    """

    _config_keys: tuple[str, ...] = ("lr",)

    def __init__(self, params: Arrays, lr: float) -> None:
        if not isinstance(params, dict) or not params:
            raise ConfigError(f"params must be a non-empty dict of name -> ndarray, got {params!r:.80}")
        self.params = {name: check_float_array(p, f"params[{name!r}]") for name, p in params.items()}
        self.lr = lr
        self.step_count = 0
        self.state: Arrays = {
            f"{kind}.{name}": np.full_like(p, self._initial_value(kind))
            for kind in self._buffer_kinds()
            for name, p in self.params.items()
        }

    @property
    def lr(self) -> float:
        """The learning rate of the next ``step`` (settable)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_nonneg(value, "lr")

    def _buffer_kinds(self) -> tuple[str, ...]:
        return ()

    def _initial_value(self, kind: str) -> float:
        return 0.0

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def step(self, grads: Arrays) -> None:
        """Update every parameter in place from ``grads`` (same keys, shapes and dtypes)."""
        _check_keys(grads, self.params, "grads", DataError)
        for name, p in self.params.items():
            g = grads[name]
            if not isinstance(g, np.ndarray) or g.dtype != p.dtype:
                got = g.dtype if isinstance(g, np.ndarray) else type(g).__name__
                raise DTypeError(f"grads[{name!r}] must be an ndarray of the parameter's dtype {p.dtype}, got {got}")
            if g.shape != p.shape:
                raise ShapeError(f"grads[{name!r}] must have the parameter's shape {p.shape}, got {g.shape}")
        self.step_count += 1
        for name, p in self.params.items():
            self._update(name, p, grads[name])

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "config", "step"}`` (JSON scalars) and ``"arrays"`` (copies of the buffers)."""
        config = {k: getattr(self, k) for k in self._config_keys}
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
        arrays = {k: v.copy() for k, v in self.state.items()}
        return {"type": type(self).__name__, "config": config, "step": self.step_count, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore hyperparameters, step and buffers saved by ``state_dict`` (all checked first)."""
        if state.get("type") != type(self).__name__:
            raise ModelFileError(
                f"optimizer state is for {state.get('type')!r}, but this optimizer is {type(self).__name__}"
            )
        _check_keys(state.get("config", {}), self._config_keys, "optimizer config")
        arrays = state.get("arrays", {})
        _check_keys(arrays, self.state, "optimizer arrays")
        for key, buf in self.state.items():
            if not isinstance(arrays[key], np.ndarray) or arrays[key].shape != buf.shape:
                raise ShapeError(f"optimizer array {key!r} must have shape {buf.shape}, got {np.shape(arrays[key])}")
            if arrays[key].dtype != buf.dtype:
                raise DTypeError(f"optimizer array {key!r} must have dtype {buf.dtype}, got {arrays[key].dtype}")
        step = check_positive_int(state.get("step"), "step", minimum=0)
        for k, v in state["config"].items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.step_count = step
        for key, buf in self.state.items():
            buf[...] = arrays[key]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD)::

        g = g + weight_decay p
        b = g  (t = 1);   b = momentum b + (1 - dampening) g  (t > 1)
        g = g + momentum b  (nesterov);   g = b  (otherwise, if momentum > 0)
        p = p - lr g
    """

    _config_keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params: Arrays, lr: float = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0) -> None:
        self.momentum = _check_nonneg(momentum, "momentum")
        self.dampening = float(dampening)
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ConfigError(f"nesterov=True needs momentum > 0 and dampening = 0, got {momentum=}, {dampening=}")
        super().__init__(params, lr)

    def _buffer_kinds(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            b = self.state[f"momentum_buffer.{name}"]
            if self.step_count == 1:
                b[...] = g
            else:
                b *= self.momentum
                b += (1 - self.dampening) * g
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (torch.optim.Adam: weight decay is an L2 term added to the gradient)::

        g = g + weight_decay p
        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2
        v = v_max = max(v_max, v)                                   (amsgrad)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _config_keys = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled_weight_decay = False

    def __init__(self, params: Arrays, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        if len(betas) != 2:
            raise ConfigError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_probability(betas[0], "betas[0]"), check_probability(betas[1], "betas[1]"))
        self.eps = _check_nonneg(eps, "eps")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.amsgrad = bool(amsgrad)
        super().__init__(params, lr)

    def _buffer_kinds(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        (beta1, beta2), t = self.betas, self.step_count
        if self.weight_decay and self._decoupled_weight_decay:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m, v = self.state[f"exp_avg.{name}"], self.state[f"exp_avg_sq.{name}"]
        scratch = np.multiply(g, 1 - beta1)  # the one temporary (in place from here: no page faults per step)
        m *= beta1
        m += scratch
        np.multiply(g, 1 - beta2, out=scratch)
        scratch *= g
        v *= beta2
        v += scratch
        if self.amsgrad:
            v = np.maximum(self.state[f"max_exp_avg_sq.{name}"], v, out=self.state[f"max_exp_avg_sq.{name}"])
        denom = np.sqrt(v, out=scratch)
        denom /= math.sqrt(1 - beta2**t)
        denom += self.eps
        update = np.divide(m, denom, out=denom)  # as torch: p - lr / (1 - beta1^t) * (m / denom)
        update *= self.lr / (1 - beta1**t)
        p -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): first ``p = p (1 - lr weight_decay)``,
    then the Adam update without the L2 term."""

    _decoupled_weight_decay = True

    def __init__(self, params: Arrays, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad)::

        g = g + weight_decay p
        s = s + g^2                       (s starts at initial_accumulator_value)
        p = p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
    """

    _config_keys = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params: Arrays, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        self.lr_decay = _check_nonneg(lr_decay, "lr_decay")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.initial_accumulator_value = _check_nonneg(initial_accumulator_value, "initial_accumulator_value")
        self.eps = _check_nonneg(eps, "eps")
        super().__init__(params, lr)

    def _buffer_kinds(self) -> tuple[str, ...]:
        return ("sum",)

    def _initial_value(self, kind: str) -> float:
        return self.initial_accumulator_value

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = self.state[f"sum.{name}"]
        s += g * g
        p -= self.lr / (1 + (self.step_count - 1) * self.lr_decay) * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop)::

        g = g + weight_decay p
        v = alpha v + (1 - alpha) g^2
        a = alpha a + (1 - alpha) g;   v~ = v - a^2        (centered; otherwise v~ = v)
        b = momentum b + g / (sqrt(v~) + eps);   p = p - lr b        (momentum > 0)
        p = p - lr g / (sqrt(v~) + eps)                              (otherwise)
    """

    _config_keys = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params: Arrays, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        self.alpha = check_probability(alpha, "alpha", allow_one=True)
        self.eps = _check_nonneg(eps, "eps")
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.momentum = _check_nonneg(momentum, "momentum")
        self.centered = bool(centered)
        super().__init__(params, lr)

    def _buffer_kinds(self) -> tuple[str, ...]:
        kinds = ("square_avg",) + (("grad_avg",) if self.centered else ())
        return kinds + (("momentum_buffer",) if self.momentum else ())

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        v = self.state[f"square_avg.{name}"]
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            a = self.state[f"grad_avg.{name}"]
            a *= self.alpha
            a += (1 - self.alpha) * g
            denom = np.sqrt(v - a * a)
        else:
            denom = np.sqrt(v)
        denom += self.eps
        if self.momentum:
            b = self.state[f"momentum_buffer.{name}"]
            b *= self.momentum
            b += g / denom
            p -= self.lr * b
        else:
            p -= self.lr * g / denom


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
}


def clip_grad_norm(grads: Arrays, max_norm: float, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``; return the norm.

    As ``torch.nn.utils.clip_grad_norm_``: ``norm = sqrt(sum_k ||g_k||^2)``, and every ``g_k`` is
    multiplied by ``min(1, max_norm / (norm + 1e-6))``. A non-finite norm is returned as is (and
    spreads into the gradients), or raises TrainingError if ``error_if_nonfinite``.
    """
    max_norm = _check_nonneg(max_norm, "max_norm")
    # einsum, not vdot: OpenBLAS runs a long dot product on several threads, which then spin for about
    # 0.1 s and slow the fast engine's parallel time loops in the next step.
    norm = math.sqrt(sum(float(np.einsum("i,i->", g.ravel(), g.ravel())) for g in grads.values()))
    if error_if_nonfinite and not math.isfinite(norm):
        raise TrainingError(f"the total gradient norm is {norm}; lower the learning rate or check the data for NaN")
    scale = float(np.minimum(max_norm / (norm + 1e-6), 1.0))  # NaN-propagating min, like torch.clamp
    for g in grads.values():
        g *= scale
    return norm


def clip_grad_value(grads: Arrays, clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]`` in place."""
    c = _check_nonneg(clip_value, "clip_value")
    for g in grads.values():
        np.clip(g, -c, c, out=g)
