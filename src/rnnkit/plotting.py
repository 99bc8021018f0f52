"""Figures drawn with matplotlib's Agg renderer: no display, no global pyplot state.

matplotlib is an optional dependency (``pip install rnnkit[plot]``), imported only when a plot is
asked for. The task plots (:mod:`rnnkit.tasks.plotting`) and the diagnostics report
(:mod:`rnnkit.diagnostics.plot`) are drawn on :func:`figure` and written by :func:`save`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io.atomic import atomic_write


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure not attached to pyplot (it renders with Agg), or a ConfigError naming the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib, which is not installed; pip install rnnkit[plot]") from None
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` atomically in the format of ``path``'s suffix (.png, .svg, .pdf, ...; none: .png)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ConfigError(f"cannot draw a plot as {str(path)!r}: unknown image type {fmt!r}; "
                          f"use one of {sorted(supported)}, e.g. {Path(path).stem or 'plot'}.png")
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
