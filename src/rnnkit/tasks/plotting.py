"""Plots for the tasks, drawn with matplotlib's Agg renderer (no display, no global pyplot state).

matplotlib is an optional dependency (``pip install rnnkit[plot]``), imported only when a plot
is asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io.atomic import atomic_write


def _figure(width: float, height: float):
    """A matplotlib Figure not attached to pyplot (it renders with Agg), or a ConfigError."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib, which is not installed; pip install rnnkit[plot]") from None
    return Figure(figsize=(width, height), layout="constrained")


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
    fig = _figure(9, 4)
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
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ConfigError(f"cannot draw a plot as {str(path)!r}: unknown image type {fmt!r}; "
                          f"use one of {sorted(fig.canvas.get_supported_filetypes())}, e.g. forecast.png")
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=120)
