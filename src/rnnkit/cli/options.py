"""Options every ``rnnkit train`` command shares, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

CELLS = ("lstm", "gru", "rnn")


def train_options(*, out: str, cell: str = "lstm", hidden: int = 64, layers: int = 1, epochs: int = 20,
                  batch_size: int = 32, lr: float = 1e-3) -> Callable[[Callable], Callable]:
    """Add ``--out --cell --hidden --layers --epochs --batch-size --lr --seed --max-time --resume
    --progress/--no-progress`` with the given defaults to a command."""
    options = [
        click.option("--out", "-o", default=out, show_default=True, type=click.Path(dir_okay=False),
                     help="Where to write the model file (its checkpoint goes beside it as OUT.ckpt)."),
        click.option("--cell", type=click.Choice(CELLS), default=cell, show_default=True, help="Recurrent cell."),
        click.option("--hidden", type=click.IntRange(min=1), default=hidden, show_default=True, help="Hidden units per layer."),
        click.option("--layers", type=click.IntRange(min=1), default=layers, show_default=True, help="Stacked recurrent layers."),
        click.option("--epochs", type=click.IntRange(min=1), default=epochs, show_default=True, help="Passes over the training data."),
        click.option("--batch-size", type=click.IntRange(min=1), default=batch_size, show_default=True, help="Sequences per batch."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=lr, show_default=True, help="Learning rate (Adam)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every random draw."),
        click.option("--max-time", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Stop cleanly after this many seconds and save (resume later with --resume)."),
        click.option("--resume", is_flag=True, help="Continue from OUT.ckpt exactly where the last run stopped."),
        click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal)."),
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def checkpoint_path(out: str) -> str:
    """The checkpoint that goes with model file ``out``."""
    return f"{out}.ckpt"
