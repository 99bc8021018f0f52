"""The diagnostics report as a figure (matplotlib Agg, imported only when a plot is asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..plotting import figure, save

if TYPE_CHECKING:
    from .flow import Report


def plot_report(report: Report, path: str | Path) -> None:
    """Six panels: ‖dL/dh_t‖, step-Jacobian norms, their products over spans, gate means,
    gate saturation (and |c_t|), and the parameter groups' gradient shares."""
    fig = figure(15, 8)
    ax = fig.subplots(2, 3)
    t = np.arange(report.steps)
    for j, (name, c) in enumerate(report.cells.items()):
        color = f"C{j % 10}"
        ax[0, 0].semilogy(t, c.dh_norm, color=color, label=f"{name} ‖dL/dh_t‖")
        if c.dc_norm is not None:
            ax[0, 0].semilogy(t, c.dc_norm, color=color, linestyle="--", label=f"{name} ‖dL/dc_t‖")
        ax[0, 1].plot(t, c.jacobian_norm, color=color, label=name)
        ax[0, 2].semilogy(np.arange(len(c.product_norm)), c.product_norm, color=color, label=name)
        for k, (gate, stats) in enumerate(c.gates.items()):
            style = {"color": color, "linestyle": ("-", "--", ":", "-.")[k % 4], "label": f"{name} {gate}"}
            ax[1, 0].plot(t, stats["mean"], **style)
            if "saturated" in stats:
                ax[1, 1].plot(t, stats["saturated"], **style)
        if c.cell_norm is not None:
            ax[1, 1].plot(t, c.cell_norm, color=color, linewidth=2.5, alpha=0.5, label=f"{name} mean |c_t|")
    ax[0, 0].set(title="error signal reaching step t", xlabel="t", ylabel="mean over rows of ‖·‖₂")
    ax[0, 1].set(title="step Jacobians ‖∂s_t/∂s_{t-1}‖₂", xlabel="t")
    ax[0, 1].axhline(1.0, color="grey", linewidth=0.8)
    ax[0, 2].set(title="products ‖∂s_{T-1}/∂s_{T-1-k}‖₂", xlabel="span k (steps back from the end)")
    ax[1, 0].set(title="gate means", xlabel="t")
    ax[1, 1].set(title="saturated fraction (and mean |c_t|)", xlabel="t")
    top = sorted(report.grad_share.items(), key=lambda kv: -kv[1])[:12]
    ax[1, 2].barh([name for name, _ in top][::-1], [share for _, share in top][::-1])
    ax[1, 2].set(title="share of ‖gradient‖²", xlabel="fraction")
    for a in ax.flat[:5]:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7, loc="best")
    fig.suptitle(f"gradient flow: loss {report.loss:.4g}, batch {report.batch} x {report.steps} steps")
    save(fig, path)
