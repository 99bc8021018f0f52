"""``rnnkit train classify`` and ``rnnkit predict``: text classification from the command line."""

from __future__ import annotations

import json
import sys

import click
from click.core import ParameterSource

from ..data import LabelEncoder, load_labelled, load_text
from ..data.text import TOKENIZERS
from ..tasks.classification import POOLINGS, PRESETS, TextClassifier, stratified_split
from .main import cli, train
from .options import checkpoint_path, train_options
from .reports import classify_table

# Options that override the preset's architecture only when given on the command line.
_ARCHITECTURE = ("cell", "hidden", "layers")


@train.command("classify")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--text-column", default="text", show_default=True, help="Column (CSV) or field (JSONL) of the texts.")
@click.option("--label-column", default="label", show_default=True, help="Column or field of the labels.")
@click.option("--tokenizer", type=click.Choice(sorted(TOKENIZERS)), default="whitespace", show_default=True,
              help="whitespace: words (lower-cased, punctuation split); char: characters; jieba: Chinese words.")
@click.option("--max-len", type=click.IntRange(min=1), default=200, show_default=True,
              help="Keep at most the last MAX_LEN tokens of each text.")
@click.option("--max-vocab", type=click.IntRange(min=3), default=20000, show_default=True,
              help="Vocabulary size, <pad> and <unk> included.")
@click.option("--min-freq", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep tokens seen at least this often.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tutorial", show_default=True,
              help="Architecture; tutorial = Embedding(8) -> GRU(16) -> GRU(8) -> GRU(4) -> Dense. "
                   "--cell/--hidden/--layers/--embedding-dim/--bidirectional/--dropout/--embedding-dropout/"
                   "--pooling/--word2vec-epochs override it.")
@click.option("--embedding-dim", type=click.IntRange(min=1), default=None, help="Embedding size (preset's by default).")
@click.option("--bidirectional/--unidirectional", default=None, help="Read texts in both directions.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout between recurrent layers and before the output layer.")
@click.option("--embedding-dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout on the embedded tokens.")
@click.option("--pooling", type=click.Choice(list(POOLINGS)), default=None,
              help="last: the top layer's final state; max/mean: over all its outputs (valid steps only).")
@click.option("--word2vec-epochs", type=click.IntRange(min=0), default=None,
              help="Start the embedding table from word2vec trained this many epochs on the training texts "
                   "(needs gensim; 0: random start).")
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True,
              help="Stop after this many epochs without a lower validation loss.")
@click.option("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of the training texts held out for early stopping.")
@click.option("--test-frac", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of all texts held out for the final metrics (0: none).")
@train_options(out="classifier.safetensors", cell="gru", hidden=16, layers=1, epochs=10, batch_size=32, lr=1e-3)
def train_classify(data: str, text_column: str, label_column: str, tokenizer: str, max_len: int, max_vocab: int,
                   min_freq: int, preset: str, embedding_dim: int | None, bidirectional: bool | None,
                   dropout: float | None, embedding_dropout: float | None, pooling: str | None,
                   word2vec_epochs: int | None, patience: int, val_frac: float, test_frac: float, out: str, cell: str,
                   hidden: int, layers: int, epochs: int, batch_size: int, lr: float, seed: int,
                   max_time: float | None, resume: bool, progress: bool | None) -> None:
    """Train a text classifier on DATA (.csv/.tsv with a header, or .jsonl) and save it to OUT.

    Two classes give a sigmoid output, more a softmax. A stratified --test-frac of the texts is
    held out and scored at the end (accuracy, precision/recall/F1, confusion matrix).

    \b
    Example:
      rnnkit train classify reviews.jsonl --text-column text --label-column label --epochs 5
    """
    ctx = click.get_current_context()
    given = {name: ctx.params[name] for name in _ARCHITECTURE
             if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    texts, labels = load_labelled(data, text_column, label_column)
    train_idx, test_idx = stratified_split(LabelEncoder().fit_transform(labels), test_frac, seed)
    classifier = TextClassifier(
        tokenizer, max_vocab=max_vocab, min_freq=min_freq, max_len=max_len, preset=preset,
        embedding_dim=embedding_dim, bidirectional=bidirectional, dropout=dropout,
        embedding_dropout=embedding_dropout, pooling=pooling, word2vec_epochs=word2vec_epochs, lr=lr, epochs=epochs,
        batch_size=batch_size, patience=patience, seed=seed, **given,
    )
    classifier.fit([texts[i] for i in train_idx], [labels[i] for i in train_idx], val_frac=val_frac,
                   checkpoint=checkpoint_path(out), resume=resume, max_time=max_time, progress=progress)
    classifier.save(out)
    last = classifier.history_.rows[-1]
    val_loss = f", val_loss {last['val_loss']:.4f}" if "val_loss" in last else ""
    click.echo(f"trained {classifier.model_.num_params():,} parameters on {len(train_idx)} texts of "
               f"{len(classifier.classes_)} classes {classifier.classes_} for {last['epoch']} epoch(s): "
               f"loss {last['loss']:.4f}{val_loss}")
    if len(test_idx):
        scores = classifier.evaluate([texts[i] for i in test_idx], [labels[i] for i in test_idx])
        click.echo(classify_table(scores, "held-out test set"))
    click.echo(f"saved {out}")


@cli.command("predict")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("texts", nargs=-1)
@click.option("--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="A UTF-8 file with one text per line (blank lines skipped); - reads standard input.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text: text, label, probabilities.")
def predict(model: str, texts: tuple[str, ...], input_path: str | None, as_json: bool) -> None:
    """Classify TEXTs (and/or the lines of --input) with a model from `rnnkit train classify`.

    Prints, per text: the predicted label, then each class's probability, then the text.

    \b
    Example:
      rnnkit predict classifier.safetensors "a gripping, beautiful film" "dull and far too long"
    """
    all_texts = list(texts) + (_read_lines(input_path) if input_path is not None else [])
    if not all_texts:
        raise click.UsageError("give at least one TEXT argument or --input FILE")
    classifier = TextClassifier.load(model)
    proba = classifier.predict_proba(all_texts)
    labels = classifier.label_encoder_.inverse_transform(proba.argmax(axis=1))
    for text, label, p in zip(all_texts, labels, proba):
        probabilities = {str(c): round(float(q), 6) for c, q in zip(classifier.classes_, p)}
        if as_json:
            click.echo(json.dumps({"text": text, "label": label, "probabilities": probabilities}, ensure_ascii=False))
        else:
            shown = " ".join(f"{c}={q:.3f}" for c, q in probabilities.items())
            click.echo(f"{label}\t{shown}\t{' '.join(text.split())}")


def _read_lines(path: str) -> list[str]:
    """Non-blank lines of a UTF-8 file, or of standard input for ``-``."""
    text = sys.stdin.read() if path == "-" else load_text(path)
    return [line for line in text.split("\n") if line.strip()]
