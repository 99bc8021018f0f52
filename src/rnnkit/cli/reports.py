"""The scores of each task as the text the commands print (``rnnkit train ...`` and ``rnnkit evaluate``)."""

from __future__ import annotations

from typing import Any


def forecast_table(scores: dict[str, Any]) -> str:
    """:meth:`Forecaster.evaluate` as a small fixed-width table: model vs naive vs seasonal naive."""
    rows = [("model", scores["model"]), ("naive", scores["naive"])]
    if scores["seasonal_naive"] is not None:
        rows.append((f"seasonal naive (m={scores['season']})", scores["seasonal_naive"]))
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"one-step forecasts of the {scores['split']} part ({scores['n']} values, original units):",
             f"{'':{width}}{'MAE':>12}{'RMSE':>12}{'MASE':>8}"]
    lines += [f"{name:{width}}{s['mae']:>12.4g}{s['rmse']:>12.4g}{s['mase']:>8.3f}" for name, s in rows]
    if scores["seasonal_naive"] is None:
        lines.append("(no seasonal-naive row: no season found; set one with --season N)")
    lines.append("MASE < 1: better than the naive forecast's error on the training part.")
    return "\n".join(lines)


def classify_table(scores: dict[str, Any], heading: str) -> str:
    """:meth:`TextClassifier.evaluate` under ``heading`` (what was scored, e.g. "held-out test set"),
    then the confusion matrix (rows: true label, columns: predicted)."""
    which = (f"positive class {scores['positive_label']!r}" if scores["average"] == "binary"
             else "macro average over classes")
    summary = (f"{heading} ({scores['n']} texts): accuracy {scores['accuracy']:.4f}, "
               f"precision {scores['precision']:.4f}, recall {scores['recall']:.4f}, f1 {scores['f1']:.4f} ({which})")
    lines = [summary, "confusion matrix (rows: true label, columns: predicted):"]
    names = [str(c) for c in scores["labels"]]
    width = max(len(s) for s in names + [str(v) for row in scores["confusion_matrix"] for v in row]) + 2
    lines.append(" " * width + "".join(name.rjust(width) for name in names))
    lines += [name.rjust(width) + "".join(str(v).rjust(width) for v in row)
              for name, row in zip(names, scores["confusion_matrix"])]
    return "\n".join(lines)


def lm_line(scores: dict[str, Any], heading: str) -> str:
    """:meth:`LanguageModel.evaluate` on one line after ``heading``: cross-entropy, perplexity and bits
    per character (and per word), or for a word-vector head, which has no probabilities, MSE and accuracy."""
    if "cross_entropy" not in scores:
        return f"{heading}: mse {scores['mse']:.4f}, nearest word = next word {scores['accuracy']:.1%}"
    per_word = f", {scores['bits_per_token']:.3f} bits/word" if "bits_per_token" in scores else ""
    return (f"{heading}: cross-entropy {scores['cross_entropy']:.4f} nats/token, "
            f"perplexity {scores['perplexity']:.3f}, {scores['bits_per_char']:.3f} bits/char{per_word}")
