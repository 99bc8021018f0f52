"""``rnnkit demo``: the tour and the seed tutorials reproduced, on built-in data, nothing downloaded."""

from __future__ import annotations

import contextlib

import click

from .main import cli

DESCRIPTIONS = {
    "tour": "char LSTM on Macbeth, airline forecast with plot, next steps (about a minute)",
    "sine": "learn sin(x) from 50 past values, roll out 50 steps, plot (seeds 000, 004)",
    "addition": "8-bit binary addition RNN with SGD, printing its sums (seed 003)",
    "primes": "LSTM predicting the next prime from the previous 50, honestly scored (seed 003)",
    "cells": "one step of the Keras minimal cell and TF1 LSTMCell, gate by gate (seed 000)",
    "vanishing": "tanh RNN vs GRU vs LSTM remembering a symbol across T steps, gradient flow plot",
}
WRITES_FILES = ("tour", "sine", "vanishing")  # demos that take --out-dir and show training progress


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread while a demo runs, if threadpoolctl is installed.

    The demos' matrices are small (batch 32, at most 128 units): one thread is about as fast as
    two on an idle machine, and on a busy one two spinning BLAS threads were measured up to 40x
    slower (2 cores, load 12), which would break the tour's one-minute promise.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@cli.command("demo", epilog="\b\nDemos:\n" + "\n".join(f"  {n:9} {d}" for n, d in DESCRIPTIONS.items()))
@click.argument("name", type=click.Choice(list(DESCRIPTIONS)), default="tour", required=False)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where tour, sine and vanishing write their plots.")
@click.option("--progress/--no-progress", default=None, help="Show training progress bars (default: on a terminal).")
def demo(name: str, seed: int, out_dir: str, progress: bool | None) -> None:
    """Run a demo on built-in data (no downloads); without NAME, the tour.

    \b
    Examples:
      rnnkit demo                       # the tour: language model, forecast, plot
      rnnkit demo addition              # the binary-addition RNN of the seed tutorial
      rnnkit demo cells --seed 3        # LSTM gates step by step, other random weights
      rnnkit demo sine --out-dir plots  # writes plots/sine.png
      rnnkit demo vanishing             # why LSTM and GRU learn long dependencies
    """
    from ..tasks.demos import DEMOS  # imported here: `rnnkit --help` stays fast

    options = {"out_dir": out_dir, "progress": progress} if name in WRITES_FILES else {}
    with _one_blas_thread():
        DEMOS[name](seed=seed, echo=click.echo, **options)
