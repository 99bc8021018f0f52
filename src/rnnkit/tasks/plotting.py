"""Plots for the tasks, drawn on :func:`rnnkit.plotting.figure` (matplotlib Agg, imported only when asked for)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import figure, save


def plot_forecast(
    history: np.ndarray,
    truth: np.ndarray | None,
    forecast: np.ndarray,
    path: str | Path,
    title: str = "forecast",
    names: list[str] | None = None,
) -> None:
    """Draw the last observed values, the forecast and (if known) the true continuation; save to ``path``.

    ``history`` is (H,) or (H, k), at steps -H .. -1; ``forecast`` and ``truth`` are (S,) or (S, k), at
    steps 0 .. S-1. ``names`` label the k columns. The file format follows the suffix of ``path``
    (``.png``, ``.svg``, ``.pdf``); the file is written atomically.
    """
    fig = figure(9, 4)
    history, forecast = np.asarray(history, float), np.asarray(forecast, float)
    history = history.reshape(len(history), -1)  # (H, k)
    forecast = forecast.reshape(len(forecast), -1)  # (S, k)
    names = names or [f"y{j}" for j in range(history.shape[1])]
    past, ahead = np.arange(-len(history), 0), np.arange(len(forecast))
    ax = fig.subplots()
    for j, name in enumerate(names):
        suffix = f" ({name})" if len(names) > 1 else ""
        ax.plot(past, history[:, j], color=f"C{j}", label=f"history{suffix}")
        ax.plot(ahead, forecast[:, j], color=f"C{j}", linestyle="--", marker=".", label=f"forecast{suffix}")
        if truth is not None:
            truth_j = np.asarray(truth, float).reshape(len(forecast), -1)[:, j]
            ax.plot(ahead, truth_j, color="black", alpha=0.4, label=f"truth{suffix}")
    ax.axvline(-0.5, color="grey", linewidth=0.8)
    ax.set(title=title, xlabel="step (0 = first forecast)", ylabel=names[0] if len(names) == 1 else "value")
    ax.legend(loc="best")
    save(fig, path, dpi=120)
