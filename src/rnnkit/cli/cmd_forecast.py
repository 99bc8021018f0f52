"""``rnnkit train forecast`` and ``rnnkit forecast``: time-series forecasting from a CSV file."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import click

from ..data import load_series_csv
from ..io.atomic import atomic_write_text
from ..tasks.forecasting import Forecaster, future_times
from ..tasks.plotting import plot_forecast
from .main import cli, train
from .options import checkpoint_path, train_options
from .reports import forecast_table


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def _load(path: str, columns: tuple[str, ...], time_column: str | None, interpolate: bool):
    """Read the value column(s) (one name: a 1-D series) and print the loader's notes."""
    data = load_series_csv(path, columns[0] if len(columns) == 1 else list(columns), time_column, interpolate)
    for note in data.notes:
        _note(note)
    return data


@train.command("forecast")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--column", "-c", "columns", multiple=True, required=True,
              help="Value column to learn; repeat for several input columns.")
@click.option("--target", default=None, help="Column to predict (default: every --column; a roll-out needs that).")
@click.option("--time-column", default=None, help="Column of time labels (dates or numbers), used to label forecasts.")
@click.option("--window", type=click.IntRange(min=1), default=50, show_default=True,
              help="Past values the model reads to predict the next one.")
@click.option("--difference", type=click.IntRange(min=0), default=0, show_default=True,
              help="Model x[t] - x[t-D] instead of x[t]: 1 removes a trend, the season length also removes "
                   "the seasonal pattern; 0 is off.")
@click.option("--season", type=click.IntRange(min=1), default=None,
              help="Season length in steps for the seasonal-naive baseline (default: detected).")
@click.option("--scaler", type=click.Choice(["standard", "minmax"]), default="standard", show_default=True,
              help="Per-column scaling, fitted on the training part only.")
@click.option("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of the time steps (before the test part) for early stopping.")
@click.option("--test-frac", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of the time steps at the end held out for the evaluation.")
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Stop after this many epochs without a better validation loss.")
@click.option("--no-interpolate", is_flag=True, help="Fail on missing values instead of filling them linearly.")
@train_options(out="forecast.safetensors", epochs=50, hidden=32)
def train_forecast(data, columns, target, time_column, window, difference, season, scaler, val_frac, test_frac,
                   patience, no_interpolate, out, cell, hidden, layers, epochs, batch_size, lr, seed, max_time,
                   resume, progress) -> None:
    """Train a next-value forecaster on column(s) of a CSV file; print its test scores; save it to OUT.

    \b
    Example:
      rnnkit train forecast passengers.csv --column passengers --time-column month --window 12 --difference 12
      rnnkit forecast forecast.safetensors passengers.csv --steps 24 --plot forecast.png
    """
    series = _load(data, columns, time_column, not no_interpolate)
    forecaster = Forecaster(cell=cell, hidden=hidden, layers=layers, window=window, difference=difference,
                            scaler=scaler, lr=lr,
                            epochs=epochs, batch_size=batch_size, patience=patience, season=season,
                            target=target, seed=seed)
    started = time.monotonic()
    forecaster.fit(series, val_frac=val_frac, test_frac=test_frac, time_column=time_column,
                   checkpoint=checkpoint_path(out), resume=resume, max_time=max_time, progress=progress)
    rows = forecaster.history_.rows
    if max_time is not None and time.monotonic() - started >= max_time:
        _note(f"stopped after --max-time {max_time:g} s; run the same command with --resume to continue")
    if rows:
        last = rows[-1]
        val = f", val loss {last['val_loss']:.4g}" if "val_loss" in last else ""
        click.echo(f"trained {len(rows)} epoch(s): loss {last['loss']:.4g}{val} (scaled units)")
    if test_frac > 0:
        click.echo(forecast_table(forecaster.evaluate(series, split="test")))
    forecaster.save(out)
    click.echo(f"saved {out}")


@cli.command("forecast")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True, help="Values to forecast.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw the history and the forecast to this image (.png, .svg, .pdf).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the forecast to this CSV file (default: print it).")
@click.option("--no-interpolate", is_flag=True, help="Fail on missing values instead of filling them linearly.")
def forecast(model, data, steps, plot_path, output, no_interpolate) -> None:
    """Forecast STEPS values past the end of DATA with a model from `rnnkit train forecast`.

    The model reads the same columns it was trained on from DATA and rolls out autoregressively:
    each forecast becomes the newest input of the next one.

    \b
    Example:
      rnnkit forecast forecast.safetensors passengers.csv --steps 24 --plot forecast.png --output forecast.csv
    """
    forecaster = Forecaster.load(model)
    series = _load(data, forecaster.columns_, forecaster.time_column_, not no_interpolate)
    values = forecaster.forecast(series, steps).reshape(steps, -1)  # (steps, k)
    times = future_times(series.time, steps)
    if series.time is not None and times is None:
        _note(f"the time column {forecaster.time_column_!r} is not evenly spaced dates or numbers; "
              "the forecast is labelled by step only")
    header = ["step"] + (["time"] if times else []) + list(forecaster.columns_)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for s in range(steps):
        writer.writerow([s + 1] + ([times[s]] if times else []) + [f"{v:.6g}" for v in values[s]])
    if output is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        atomic_write_text(output, buffer.getvalue())
        click.echo(f"wrote {steps} forecast(s) to {output}")
    if plot_path is not None:
        history = series.values[-4 * forecaster.window :]
        plot_forecast(history, None, values, plot_path, title=f"{steps}-step forecast from {Path(data).name}",
                      names=list(forecaster.columns_))
        click.echo(f"wrote {plot_path}")
