"""Gradient flow through time: where the error signal goes, measured on a model and a real batch.

For each recurrent layer and direction (a "cell" with state ``s_t``; ``h_t`` for RNN/GRU,
``(h_t, c_t)`` for LSTM), :func:`gradient_flow` runs the model forward and backward once and
records, per time step ``t`` (in the data's own time order, also for reverse directions):

- ``dh_norm[t]`` = mean over the batch rows ``b`` valid at ``t`` of ``‖∂L/∂h_t[b]‖₂``, the total
  derivative of the batch loss ``L`` (the loss function's own reduction, a batch mean) with
  respect to the state after step ``t``: through the outputs of every later step *and* the
  recurrence. ``dc_norm[t]`` the same for the LSTM cell state. Computed backwards with
  ``∂L/∂s_{t-1} = ∂L/∂y_{t-1} + (∂s_t/∂s_{t-1})^T ∂L/∂s_t`` from the step Jacobians.
- ``jacobian_norm[t]`` = mean of the spectral norms ``‖∂s_t/∂s_{t-1}‖₂`` (see ``jacobians.py``).
- ``product_norm[k]`` = mean of ``‖∂s_{T-1}/∂s_{T-1-k}‖₂``, the product of the last ``k`` step
  Jacobians in processing order, ``k = 0 .. T`` (``s_{-1}`` the initial state; padded steps are I).
- gate activity: per gate, the mean activation and the saturated fraction (σ gates < 0.05 or
  > 0.95; tanh outputs |·| > 0.95) over valid rows and units; ``cell_norm[t]``, the mean |c_t|.

Spectral norms cost O(S³) per row and step, so they use the first ``jacobian_samples`` rows;
everything else uses the whole batch. Steps where no row is valid hold NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import losses
from .._validation import check_positive_int
from ..errors import ConfigError
from ..layers.recurrent import CELLS, Recurrent
from ..models import Sequential
from .jacobians import step_jacobian

SATURATION = 0.95  # tanh: |g| > 0.95; sigmoid: g < 0.05 or g > 0.95
GATES = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
TANH_GATES = {"g", "n"}  # the candidate values; the RNN's "h" follows its activation


@dataclass
class CellFlow:
    """Per-step measurements of one recurrent layer and direction; arrays of length T unless noted."""

    name: str  # the parameter prefix, e.g. "1.l0" or "1.l0_reverse"
    cell: str  # "rnn", "gru" or "lstm"
    dh_norm: np.ndarray
    jacobian_norm: np.ndarray
    product_norm: np.ndarray  # (T + 1,), index k = span
    gates: dict[str, dict[str, np.ndarray]]  # gate -> {"mean": (T,), "saturated": (T,) or absent}
    dc_norm: np.ndarray | None = None  # LSTM only
    cell_norm: np.ndarray | None = None  # LSTM only

    def jacobian_product_norm(self, span: int) -> float:
        """Mean ‖∂s_{T-1}/∂s_{T-1-span}‖₂: how much of a perturbation survives ``span`` steps."""
        if not 0 <= span < len(self.product_norm):
            raise ConfigError(f"span must be in [0, {len(self.product_norm) - 1}] (the time steps), got {span}")
        return float(self.product_norm[span])

    def arrays(self) -> dict[str, Any]:
        """Every measurement as plain lists (NaN -> None), for JSON."""
        out = {"cell": self.cell}
        for key in ("dh_norm", "dc_norm", "jacobian_norm", "product_norm", "cell_norm"):
            if getattr(self, key) is not None:
                out[key] = _listed(getattr(self, key))
        out["gates"] = {g: {k: _listed(v) for k, v in stats.items()} for g, stats in self.gates.items()}
        return out


@dataclass
class Report:
    """The result of :func:`gradient_flow`: one :class:`CellFlow` per recurrent layer and direction."""

    loss: float
    batch: int
    steps: int
    cells: dict[str, CellFlow]
    grad_share: dict[str, float]  # parameter name -> ‖g‖² / Σ‖g‖² (sums to 1)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. the task, filled in by callers

    def jacobian_product_norm(self, span: int, cell: str | None = None) -> float:
        """:meth:`CellFlow.jacobian_product_norm` of ``cell`` (default: the first recurrent layer)."""
        return self._cell(cell).jacobian_product_norm(span)

    def _cell(self, name: str | None) -> CellFlow:
        if name is None:
            return next(iter(self.cells.values()))
        if name not in self.cells:
            raise ConfigError(f"cell must be one of {list(self.cells)}, got {name!r}")
        return self.cells[name]

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "batch": self.batch, "steps": self.steps, **self.meta,
                "cells": {name: c.arrays() for name, c in self.cells.items()}, "grad_share": self.grad_share}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_text(self, rows: int = 8) -> str:
        """A terminal summary: per cell, ``rows`` evenly spaced steps of every measurement, then the shares."""
        steps = np.unique(np.linspace(0, self.steps - 1, min(rows, self.steps)).round().astype(int))
        lines = [f"loss {self.loss:.6g} on a batch of {self.batch} sequences x {self.steps} steps"]
        for name, c in self.cells.items():
            columns = {"|dL/dh_t|": c.dh_norm, "|dL/dc_t|": c.dc_norm, "|ds_t/ds_t-1|": c.jacobian_norm,
                       "mean |c_t|": c.cell_norm}
            for gate, stats in c.gates.items():
                columns[f"{gate} mean"] = stats["mean"]
                if "saturated" in stats:
                    columns[f"{gate} sat"] = stats["saturated"]
            columns = {k: v for k, v in columns.items() if v is not None}
            width = max(11, *(len(k) + 2 for k in columns))
            lines += ["", f"{name} ({c.cell.upper()})", f"{'t':>5}" + "".join(f"{k:>{width}}" for k in columns)]
            lines += [f"{t:>5}" + "".join(f"{v[t]:>{width}.3g}" for v in columns.values()) for t in steps]
            spans = np.unique(np.geomspace(1, self.steps, min(6, self.steps)).round().astype(int))
            lines.append("  |ds_T-1/ds_T-1-k|: " + ", ".join(f"k={k}: {c.product_norm[k]:.3g}" for k in spans))
        lines += ["", "gradient share (|g|^2 / sum |g|^2):"]
        lines += [f"  {name:<24}{share:8.1%}" for name, share in sorted(self.grad_share.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)

    def plot(self, path: str) -> None:
        """Draw the report (gradient flow, Jacobians, gates, shares) to ``path`` (.png/.svg/.pdf)."""
        from .plot import plot_report

        plot_report(self, path)


def gradient_flow(model: Sequential, x: np.ndarray, y: np.ndarray, loss: str | Callable,
                  lengths: np.ndarray | None = None, mask: np.ndarray | None = None,
                  jacobian_samples: int = 8) -> Report:
    """Measure gradient flow and gate activity of every recurrent layer of ``model`` on one batch.

    ``loss`` is a name in :data:`rnnkit.losses.LOSSES` or a function ``(pred, target, mask) ->
    (loss, dpred)``; ``mask`` goes to it. The model runs in inference mode (no dropout); its
    parameters are not changed, but its gradients are overwritten (``model.grads``).
    """
    loss_fn = _resolve_loss(loss)
    jacobian_samples = check_positive_int(jacobian_samples, "jacobian_samples")
    recurrent = {i: layer for i, layer in enumerate(model.layers) if isinstance(layer, Recurrent)}
    if not recurrent:
        raise ConfigError("gradient_flow needs a model with a recurrent layer (RNN, GRU or LSTM); this one has none")
    recorders = {i: _BackwardRecorder(layer) for i, layer in recurrent.items()}
    try:
        pred = model.forward(x, lengths=lengths, training=False)
        value, dpred = loss_fn(pred, y, mask)
        model.backward(dpred)
    finally:
        for rec in recorders.values():
            rec.detach()
    batch, steps = recurrent[min(recurrent)]._cache["shape"]
    valid = np.ones((steps, batch), bool) if lengths is None else np.arange(steps)[:, None] < np.asarray(lengths)
    cells = {}
    for i, layer in recurrent.items():
        for c, prefix in enumerate(layer.prefixes):
            dy, dstate = recorders[i].calls[c]
            flow = _cell_flow(layer, c, dy, dstate, valid, jacobian_samples)
            cells[f"{i}.{prefix}"] = CellFlow(name=f"{i}.{prefix}", cell=layer.cell, **flow)
    grads = model.grads
    total = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()) or 1.0
    share = {name: float(np.sum(np.square(g, dtype=np.float64))) / total for name, g in grads.items()}
    return Report(loss=float(value), batch=batch, steps=steps, cells=cells, grad_share=share)


class _BackwardRecorder:
    """Stands in for a Recurrent layer's cell module during one forward and backward: it runs the
    NumPy reference cells (whose caches ``_cell_flow`` reads, whatever engine the layer uses) and
    keeps, per cell ``i = k*dirs + d``, the ``(dy, dstate)`` that reached it: the gradient of its
    outputs (time-major, in its processing order) and of its final state. ``detach`` puts the
    layer's own module back."""

    def __init__(self, layer: Recurrent) -> None:
        self.layer, self.engine_module, self.module = layer, layer.module, CELLS[layer.cell][0]
        self.calls: dict[int, tuple[np.ndarray | None, Any]] = {}
        layer.module = self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def backward(self, p, cfg, cache, dy=None, dstate=None, *, check_finite=True):
        i = next(k for k, c in enumerate(self.layer._cache["caches"]) if c is cache)
        self.calls[i] = (None if dy is None else np.array(dy), dstate)
        return self.module.backward(p, cfg, cache, dy, dstate, check_finite=check_finite)

    def detach(self) -> None:
        self.layer.module = self.engine_module


def _cell_flow(layer: Recurrent, c: int, dy: np.ndarray | None, dstate: Any, valid: np.ndarray,
               jacobian_samples: int) -> dict[str, Any]:
    """The measurements of cell ``c`` of ``layer``, from its forward cache and the recorded gradients."""
    cache, p, cfg = layer._cache["caches"][c], layer._cell_params(c), layer._config(c)
    T, B = valid.shape
    R, lstm = layer.state_size, layer.cell == "lstm"
    S = R + layer.hidden_size if lstm else R
    n = min(jacobian_samples, B)
    G = np.zeros((B, S), np.float64)  # ∂L/∂s_t, in float64
    if dstate is not None:
        G[:, :R] = dstate[0] if lstm else dstate
        if lstm:
            G[:, R:] = dstate[1]
    dh, dc, jac = np.empty((T, B)), np.empty((T, B)), np.full((T, B), np.nan)
    P = np.broadcast_to(np.eye(S), (n, S, S)).copy()  # ∂s_{T-1}/∂s_t
    prod = np.empty((T + 1, n))
    prod[0] = 1.0
    for t in reversed(range(T)):
        if dy is not None:
            G[:, :R] += valid[t][:, None] * dy[t]  # y_t = v_t h_t (a reverse cell's valid steps are a prefix too)
        dh[t] = np.linalg.norm(G[:, :R], axis=1)
        dc[t] = np.linalg.norm(G[:, R:], axis=1)
        J = step_jacobian(layer.cell, p, cfg, cache, t).astype(np.float64)
        jac[t, :n] = np.linalg.norm(J[:n], ord=2, axis=(1, 2))
        P = P @ J[:n]
        prod[T - t] = np.linalg.norm(P, ord=2, axis=(1, 2))
        G = np.einsum("bi,bij->bj", G, J)  # ∂L/∂s_{t-1} (before adding ∂L/∂y_{t-1})

    reverse = c % layer.num_directions == 1

    def over_batch(a: np.ndarray) -> np.ndarray:  # (T, B) in processing order -> (T,) in data order
        return _valid_mean(_reverse_in_time(a, valid) if reverse else a, valid)

    gates, cell_abs = _gate_values(layer.cell, cfg, cache)
    return {"dh_norm": over_batch(dh), "dc_norm": over_batch(dc) if lstm else None,
            "jacobian_norm": over_batch(jac), "product_norm": prod.mean(axis=1),
            "gates": {g: {k: over_batch(v) for k, v in stats.items()} for g, stats in gates.items()},
            "cell_norm": None if cell_abs is None else over_batch(cell_abs)}


def _gate_values(cell: str, cfg: Any, cache: dict) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray | None]:
    """Per step and row (T, B): each gate's mean over units and saturated fraction; the LSTM's mean |c_t|."""
    if cell == "lstm":
        T, H = len(cache["gates"]), cfg.hidden_size
        blocks = cache["gates"].reshape(T, 4, H, -1).transpose(1, 0, 3, 2)  # (4, T, B, H)
    elif cell == "gru":
        blocks = cache["gates"].transpose(1, 0, 2, 3)  # (3, T, B, H)
    else:
        blocks = cache["hs"][None, 1:]  # (1, T, B, H)
    stats = {}
    for gate, g in zip(GATES[cell], blocks):
        stats[gate] = {"mean": g.mean(axis=-1)}
        kind = cfg.activation if cell == "rnn" else ("tanh" if gate in TANH_GATES else "sigmoid")
        if kind == "tanh":
            stats[gate]["saturated"] = (np.abs(g) > SATURATION).mean(axis=-1)
        elif kind == "sigmoid":
            stats[gate]["saturated"] = ((g < 1 - SATURATION) | (g > SATURATION)).mean(axis=-1)
    cell_abs = np.abs(cache["cs"][1:]).mean(axis=1) if cell == "lstm" else None  # (T, H, B) -> (T, B)
    return stats, cell_abs


def _reverse_in_time(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Reverse each row's valid prefix in time, a (T, B) -> (T, B); padding stays. Its own inverse."""
    T = len(valid)
    lengths = valid.sum(axis=0)  # (B,)
    t = np.arange(T)[:, None]
    return np.take_along_axis(a, np.where(t < lengths, lengths - 1 - t, t), axis=0)


def _valid_mean(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over the rows valid at each step (and not NaN), (T, B) -> (T,); NaN where there are none."""
    w = valid & ~np.isnan(a)
    with np.errstate(invalid="ignore"):
        return np.where(w, a, 0.0).sum(axis=1) / w.sum(axis=1)


def _resolve_loss(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    if loss not in losses.LOSSES:
        raise ConfigError(f"loss must be one of {sorted(losses.LOSSES)} or a function, got {loss!r}")
    return losses.LOSSES[loss]


def _listed(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in np.asarray(a, dtype=float)]
