"""``rnnkit train lm`` and ``rnnkit generate``: train a language model on a text file, sample from it."""

from __future__ import annotations

import sys
import warnings

import click

from ..data.text import load_text
from ..tasks.language_model import LanguageModel
from ..tasks.word_vectors import train_word2vec
from .main import cli, train
from .options import checkpoint_path, train_options
from .reports import lm_line

SAMPLE_LENGTH = 200


@train.command("lm")
@click.argument("text", type=click.Path(dir_okay=False))
@click.option("--level", type=click.Choice(["char", "word"]), default="char", show_default=True,
              help="Predict the next character or the next word.")
@click.option("--tokenizer", type=click.Choice(["whitespace", "jieba"]), default=None,
              help="How --level word splits words (default whitespace; jieba for Chinese).")
@click.option("--bptt", type=click.IntRange(min=1), default=100, show_default=True,
              help="Truncated-BPTT length: tokens per training step (the state is carried beyond it).")
@click.option("--embedding-dim", type=click.IntRange(min=1), default=None,
              help="Size of the token embedding (default 64, or the dimension of --vectors).")
@click.option("--vectors", type=click.Path(dir_okay=False), default=None,
              help="word2vec file (text or binary) to initialise the word embedding (--level word).")
@click.option("--word2vec", "word2vec_dim", type=click.IntRange(min=1), default=None,
              help="Train word2vec vectors of this size on TEXT first and start from them (--level word; "
                   "needs gensim: pip install 'rnnkit[word2vec]').")
@click.option("--head", type=click.Choice(["softmax", "vector"]), default="softmax", show_default=True,
              help="softmax: probabilities over the vocabulary; vector: regress the next word's (fixed) "
                   "--vectors vector and decode the nearest word by cosine (the seed tutorial's model).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Dropout between stacked layers and before the output layer.")
@click.option("--max-vocab", type=click.IntRange(min=3), default=None, help="Keep only the most frequent tokens.")
@click.option("--min-freq", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tokens seen fewer times become <unk>.")
@click.option("--val-frac", type=click.FloatRange(0, 1, max_open=True), default=0.05, show_default=True,
              help="Fraction at the end of the text held out to report perplexity and bits per char.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many training steps (resume later with --resume).")
@click.option("--anneal", is_flag=True,
              help="Lower the learning rate linearly to 0 where the budget (--epochs, --max-steps or --max-time, "
                   "whichever ends first) runs out.")
@train_options(out="lm.safetensors", hidden=128, epochs=5, lr=2e-3)
def train_lm(text, level, tokenizer, bptt, embedding_dim, vectors, word2vec_dim, head, dropout, max_vocab, min_freq,
             val_frac, max_steps, anneal, out, cell, hidden, layers, epochs, batch_size, lr, seed, max_time, resume, progress) -> None:
    """Train a character- or word-level language model on TEXT (UTF-8); print held-out perplexity and a sample.

    \b
    Examples:
      rnnkit train lm shakespeare.txt --layers 2 --hidden 256 --max-time 900 --anneal
      rnnkit train lm hongloumeng.txt --out hlm.safetensors          # Chinese, one token per character
      rnnkit train lm novel.txt --level word --tokenizer jieba --vectors w2v.bin
      rnnkit train lm novel.txt --level word --tokenizer jieba --word2vec 100 --head vector
      rnnkit generate lm.safetensors --prime "ROMEO:" --temperature 0.8
    """
    corpus = load_text(text)
    if word2vec_dim is not None:
        if vectors is not None:
            raise click.UsageError("--word2vec trains word vectors and --vectors reads them; give one of the two")
        if level != "word":
            raise click.UsageError("--word2vec needs --level word (word vectors for a word-level model)")
        vectors = train_word2vec(corpus, word2vec_dim, tokenizer=tokenizer or "whitespace", seed=seed)
    lm = LanguageModel(level, tokenizer, cell=cell, hidden=hidden, layers=layers, embedding_dim=embedding_dim,
                       dropout=dropout, max_vocab=max_vocab, min_freq=min_freq, bptt=bptt, batch_size=batch_size,
                       lr=lr, seed=seed, vectors=vectors, head=head)
    lm.fit(corpus, val_frac=val_frac, epochs=epochs, max_steps=max_steps, checkpoint=checkpoint_path(out),
           checkpoint_every=500, resume=resume, max_time=max_time, anneal=anneal, progress=progress)
    lm.save(out)
    click.echo(f"vocabulary: {len(lm.vocab)} {level} tokens; model saved to {out}")
    temperature = 0.8 if head == "softmax" else 0.05  # a vector model scores words by cosine, in [-1, 1]
    click.echo("held-out: none (--val-frac 0)" if lm.metrics is None else lm_line(lm.metrics, "held-out"))
    click.echo(f"sample (temperature {temperature}):")
    click.echo("".join(lm.generate(length=SAMPLE_LENGTH, temperature=temperature, seed=seed)))


@cli.command("generate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--prime", default="", help="Text the sample continues (default: start from nothing).")
@click.option("--length", type=click.IntRange(min=1), default=SAMPLE_LENGTH, show_default=True,
              help="Tokens to generate (characters or words).")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sharpen (<1) or flatten (>1) the distribution; 0 = always the most likely token.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample only among the K most likely tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Sample only among the most likely tokens holding probability mass P (nucleus sampling).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed: the same seed gives the same text.")
def generate(model, prime, length, temperature, top_k, top_p, seed) -> None:
    """Generate text from a language model file MODEL, printing each token as it is sampled.

    Prime tokens the model never saw are read as <unk> (a warning names them).

    \b
    Examples:
      rnnkit generate lm.safetensors --prime "ROMEO:" --length 500 --temperature 0.8
      rnnkit generate hlm.safetensors --prime "黛玉" --top-p 0.9 --seed 1
    """
    lm = LanguageModel.load(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokens = lm.generate(prime, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    for w in caught:
        click.echo(f"rnnkit: warning: {w.message}", err=True)
    sys.stdout.write(prime)
    for token in tokens:
        sys.stdout.write(token)
        sys.stdout.flush()
    sys.stdout.write("\n")
