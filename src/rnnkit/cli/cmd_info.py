"""``rnnkit info MODEL`` and ``rnnkit evaluate MODEL DATA``: inspect and score any saved rnnkit model.

``info`` reads the file through the same validation as loading (checksum, tensor names and shapes
against the stored config), so a file it describes is a file that loads. ``evaluate`` reads the
task name stored in the file and hands DATA to that task's ``evaluate``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import ModelFileError, RnnkitError
from ..io.model import load_model
from ..io.safefile import read_tensors
from .main import cli
from .reports import classify_table, forecast_table, lm_line

TASK_OPTIONS = {  # evaluate's options that only apply to one task
    "forecast": ("columns", "time_column", "split"),
    "classify": ("text_column", "label_column"),
    "lm": (),
}


# ---- info -------------------------------------------------------------------------------------


def _header_metadata(path: str | Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's header; {} if the file has no readable header."""
    try:
        data = Path(path).read_bytes()
        (n,) = struct.unpack("<Q", data[:8])
        metadata = json.loads(data[8 : 8 + n]).get("__metadata__") if n <= len(data) - 8 else None
    except (OSError, ValueError, struct.error, AttributeError):  # ValueError: bad JSON or UTF-8
        return {}
    return metadata if isinstance(metadata, dict) else {}


def task_highlights(task: dict[str, Any]) -> dict[str, Any]:
    """What a user wants to know about a task document, without the bulky parts (vocabulary, unigram)."""
    name, config = task.get("name"), task.get("config") or {}
    if name == "lm":
        return {"level": task.get("level"), "tokenizer": task.get("tokenizer"),
                "vocabulary_size": len((task.get("vocabulary") or {}).get("tokens", [])),
                "bptt": config.get("bptt"), "head": config.get("head")}
    if name == "forecast":
        scaler = task.get("scaler") or {}
        return {"window": task.get("window"), "difference": config.get("difference"), "columns": task.get("columns"),
                "targets": task.get("targets"), "time_column": task.get("time_column"), "season": task.get("season"),
                "scaler": {k: scaler.get(k) for k in ("type", "shift", "scale")}, "split": task.get("split")}
    if name == "classify":
        tokenizer = task.get("tokenizer") or {}
        return {"labels": (task.get("label_encoder") or {}).get("classes"), "tokenizer": tokenizer.get("name"),
                "vocabulary_size": len((task.get("vocabulary") or {}).get("tokens", [])),
                "max_len": task.get("max_len"), "preset": config.get("preset")}
    return {key: value for key, value in task.items() if key != "name"}


def model_info(path: str | Path) -> dict[str, Any]:
    """Everything ``rnnkit info`` reports about an rnnkit model file, as plain JSON data."""
    model, task = load_model(path)  # validates the whole file
    meta = _header_metadata(path)
    layers = [{"index": i, "type": type(layer).__name__, "output_shape": list(shape) if shape else None,
               "parameters": sum(p.size for p in layer.params.values()), "config": layer.get_config()}
              for i, (layer, shape) in enumerate(zip(model.layers, model.output_shapes))]
    return {
        "path": str(path), "format": meta.get("format"), "format_version": meta.get("format_version"),
        "rnnkit_version": meta.get("rnnkit_version"), "task": task.get("name"), "task_details": task_highlights(task),
        "model": {"name": model.name, "parameters": model.num_params(), "layers": layers},
        "tensors": {name: {"shape": list(p.shape), "dtype": p.dtype.name} for name, p in model.params.items()},
        "summary": model.summary(),
    }


def _describe_foreign(path: str, error: ModelFileError) -> dict[str, Any]:
    """What :func:`rnnkit.convert.describe` finds in a file that is not an rnnkit model."""
    from .. import convert

    try:
        return {"path": path, **convert.describe(path)}
    except RnnkitError:
        raise error from None


def _print_info(info: dict[str, Any]) -> None:
    if info.get("format") != "rnnkit":
        click.echo(f"{info['path']}: not an rnnkit model file ({info['format']})")
        for line in info.get("summary", []):
            click.echo(f"  {line}")
        click.echo("Import it with `rnnkit convert` to use it with rnnkit.")
        return
    click.echo(f"{info['path']}: rnnkit model file, format version {info['format_version']}, "
               f"written by rnnkit {info['rnnkit_version']}")
    click.echo(f"task: {info['task'] or '(none)'}")
    for key, value in info["task_details"].items():
        click.echo(f"  {key}: {value}")
    click.echo(info["summary"])


@cli.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def info(model: str, as_json: bool) -> None:
    """Describe a model file: task, versions, layers and shapes, parameter count, vocabulary/labels/scaler.

    \b
    Examples:
      rnnkit info lm.safetensors
      rnnkit info forecast.safetensors --json
    """
    try:
        details = model_info(model)
    except ModelFileError as error:
        if _header_metadata(model).get("format") == "rnnkit" or not Path(model).is_file():
            raise  # a damaged rnnkit file or no file: the load error says it all
        details = _describe_foreign(model, error)
    if as_json:
        details = {k: v for k, v in details.items() if k != "summary"}
        click.echo(json.dumps(details, indent=2, ensure_ascii=False, default=str))
    else:
        _print_info(details)


# ---- evaluate ---------------------------------------------------------------------------------


def model_task(model: str) -> str | None:
    """The task name stored in a model file (after validating the whole file)."""
    _, document = read_tensors(model, kind="model")
    return (document.get("task") or {}).get("name")


def evaluate_model(model: str, data: str, task: str | None, *, columns: tuple[str, ...] = (),
                   time_column: str | None = None, split: str = "all", text_column: str = "text",
                   label_column: str = "label") -> dict[str, Any]:
    """Scores of the model file (of task ``task``) on the data file, by the task's own ``evaluate``."""
    if task == "forecast":
        from ..data import load_series_csv
        from ..tasks.forecasting import Forecaster

        forecaster = Forecaster.load(model)
        names = list(columns or forecaster.columns_)
        series = load_series_csv(data, names[0] if len(names) == 1 else names, time_column or forecaster.time_column_)
        return forecaster.evaluate(series, split=split)
    if task == "lm":
        from ..data import load_text
        from ..tasks.language_model import LanguageModel

        return LanguageModel.load(model).evaluate(load_text(data))
    if task == "classify":
        from ..tasks.classification import evaluate_file

        return evaluate_file(model, data, text_column=text_column, label_column=label_column)
    raise ModelFileError(f"cannot evaluate '{model}': its task is {task!r}, and rnnkit evaluates "
                         f"{sorted(TASK_OPTIONS)} models. Hint: `rnnkit info {model}` shows what the file holds")


def format_evaluation(task: str, scores: dict[str, Any], data: str) -> str:
    """The scores of the model on the file ``data`` as the task's own report."""
    if task == "forecast":
        return forecast_table(scores)
    if task == "classify":
        return classify_table(scores, Path(data).name)
    return lm_line(scores, f"{scores['tokens']:,} tokens")


@cli.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--column", "columns", multiple=True,
              help="forecast: value column(s) of DATA (default: the columns the model was trained on).")
@click.option("--time-column", default=None, help="forecast: time column of DATA (default: the training one).")
@click.option("--split", type=click.Choice(["all", "train", "val", "test"]), default="all", show_default=True,
              help="forecast: score every window of DATA (all), or one part cut with the training fractions "
                   "(test = the held-out end of the training series).")
@click.option("--text-column", default="text", show_default=True, help="classify: column or field of the texts.")
@click.option("--label-column", default="label", show_default=True, help="classify: column or field of the labels.")
def evaluate(model: str, data: str, as_json: bool, **options: Any) -> None:
    """Score a saved model on a data file: a CSV series (forecast), a text file (lm) or labelled texts (classify).

    \b
    Examples:
      rnnkit evaluate forecast.safetensors passengers.csv --split test
      rnnkit evaluate lm.safetensors held_out.txt --json
      rnnkit evaluate classifier.safetensors test.jsonl --text-column review
    """
    ctx = click.get_current_context()
    task = model_task(model)
    given = [name for name in options if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    wrong = ["--" + ("column" if n == "columns" else n.replace("_", "-"))
             for n in given if n not in TASK_OPTIONS.get(task, ())]
    if wrong:
        raise click.UsageError(f"{', '.join(wrong)}: not an option for '{model}', which is a {task!r} model")
    scores = evaluate_model(model, data, task, **options)
    if as_json:
        click.echo(json.dumps({"task": task, "model_file": model, "data_file": data, **scores}, indent=2,
                              ensure_ascii=False, default=str))
    else:
        click.echo(format_evaluation(task, scores, data))
