"""``rnnkit explain``: see inside a trained model (gradient flow through time, gate activity)."""

from __future__ import annotations

import click

from ..tasks.explain import explain_files
from .main import cli


@cli.command("explain")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON instead of a table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw the report to this image (.png, .svg, .pdf).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Sequences of DATA in the batch.")
@click.option("--jacobian-samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="Rows whose step Jacobians' spectral norms are computed (O(state size³) each).")
@click.option("--text-column", default="text", show_default=True, help="classify models: column of the texts.")
@click.option("--label-column", default="label", show_default=True, help="classify models: column of the labels.")
def explain(model, data, as_json, plot_path, batch_size, jacobian_samples, text_column, label_column) -> None:
    """Show how the error signal flows back through time in MODEL on a batch of DATA.

    Per recurrent layer and direction: the norm of dL/dh_t at every step t, the norms of the step
    Jacobians ds_t/ds_{t-1} and of their products over spans, gate means and saturation, the LSTM
    cell-state magnitude, and each parameter's share of the gradient. DATA is the kind of file the
    model was trained on (forecast: CSV; lm: text; classify: .csv/.tsv/.jsonl with labels).

    \b
    Example:
      rnnkit explain forecast.safetensors passengers.csv --plot report.png
    """
    report = explain_files(model, data, batch_size=batch_size, jacobian_samples=jacobian_samples,
                           text_column=text_column, label_column=label_column)
    click.echo(report.to_json() if as_json else report.to_text())
    if plot_path is not None:
        report.plot(plot_path)
        click.echo(f"wrote {plot_path}", err=as_json)
