"""Quality check of rnnkit's text classifier on real sentiment data (slow; not part of CI).

Trains :class:`rnnkit.tasks.classification.TextClassifier` on

- ``en``: Rotten Tomatoes snippets (12,808, fresh/rotten), word tokens;  target accuracy >= 0.72
- ``zh``: Chinese product reviews (17,363, pos/neg), character tokens;  target accuracy >= 0.85

with a seeded stratified 10 % test split, a fixed time budget per run (``--max-time``), and prints
the held-out accuracy, F1 and training time, one line per run (and JSON with ``--json``). It also
prints the accuracy on the validation split ``fit`` held out for early stopping (10 % of the rest,
drawn with the same seed): choose settings on that, not on the test accuracy::

    python -m bench.quality_classify                       # both data sets, tutorial preset
    python -m bench.quality_classify --dataset en --preset bigru --max-time 280

Data: shared/data beside the repository (override with ``--data-dir``), see its README.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rnnkit.data import LabelEncoder, load_labelled
from rnnkit.tasks.classification import PRESETS, TextClassifier, stratified_split

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/ beside the repository
VAL_FRAC = 0.1  # of the training 90 %, held out by fit for early stopping
TRAINING = {"lr": 3e-3, "batch_size": 64, "min_freq": 2}  # min_freq=2: <unk> is seen (and trained) in training
DATASETS = {  # max_len: ~90th percentile of the token counts (en: median 21, 90 % 35; zh: median 46 characters)
    "en": {"file": "sentiment_en_rotten_tomatoes.jsonl", "target": 0.72,
           "options": {"tokenizer": "whitespace", "max_len": 40, "max_vocab": 20000, **TRAINING}},
    "zh": {"file": "sentiment_zh_reviews.jsonl", "target": 0.85,
           "options": {"tokenizer": "char", "max_len": 64, "max_vocab": 5000, **TRAINING}},
}


def run(name: str, preset: str, *, data_dir: Path, epochs: int, max_time: float, seed: int,
        options: dict[str, Any]) -> dict:
    """Train on one data set's 90 % and score the held-out 10 %; ``options`` go to TextClassifier."""
    spec = DATASETS[name]
    options = {**spec["options"], **options}
    texts, labels = load_labelled(data_dir / spec["file"], "text", "label")
    train_idx, test_idx = stratified_split(LabelEncoder().fit_transform(labels), 0.1, seed)
    classifier = TextClassifier(preset=preset, epochs=epochs, seed=seed, **options)
    started = time.monotonic()
    train_texts, train_labels = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
    classifier.fit(train_texts, train_labels, val_frac=VAL_FRAC, max_time=max_time)
    seconds = time.monotonic() - started
    _, val_idx = stratified_split(classifier.label_encoder_.transform(train_labels), VAL_FRAC, seed)  # fit's split
    val = classifier.evaluate([train_texts[i] for i in val_idx], [train_labels[i] for i in val_idx])
    scores = classifier.evaluate([texts[i] for i in test_idx], [labels[i] for i in test_idx])
    return {"dataset": name, "preset": preset, "options": options, "seed": seed,
            "epochs_run": len(classifier.history_.rows), "train_seconds": round(seconds, 1),
            "params": classifier.model_.num_params(), "val_n": val["n"], "val_accuracy": val["accuracy"],
            "test_n": scores["n"], "accuracy": scores["accuracy"],
            "f1": scores["f1"], "target": spec["target"], "meets_target": scores["accuracy"] >= spec["target"],
            "history": classifier.history_.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tutorial")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-time", type=float, default=240.0, help="training budget per run, seconds")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=JSON",
                        help="a TextClassifier argument, e.g. --option lr=3e-3 --option bidirectional=true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--json", type=Path, default=None, help="also write the results (with histories) here")
    args = parser.parse_args()
    options = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.option)}
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    results = []
    for name in names:
        r = run(name, args.preset, data_dir=args.data_dir, epochs=args.epochs, max_time=args.max_time,
                seed=args.seed, options=options)
        results.append(r)
        print(f"{name}  preset={r['preset']:<9} {json.dumps(options)}  epochs={r['epochs_run']:>2}  train {r['train_seconds']:>6.1f}s  "
              f"val accuracy {r['val_accuracy']:.4f}  test n={r['test_n']}  accuracy {r['accuracy']:.4f}  "
              f"f1 {r['f1']:.4f}  "
              f"(target {r['target']}: {'met' if r['meets_target'] else 'NOT met'})", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
