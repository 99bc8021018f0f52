"""Quality check of rnnkit's language model against PyTorch at equal wall time (slow; not part of CI).

Three runs, each in its own process, one after the other:

- ``rnnkit``: :class:`rnnkit.tasks.language_model.LanguageModel`, Shakespeare, char level,
  Embedding(64) -> 2-layer LSTM(H) (or GRU(H) with ``--cell gru``) -> Dense(V), Adam, stateful
  truncated BPTT (B=32, bptt=100);
- ``torch``: the same architecture, data stream, batch layout, optimiser and clipping in a plain
  PyTorch loop (``nn.Embedding -> nn.LSTM or nn.GRU -> nn.Linear``), for the same training wall time;
- ``hlm``: rnnkit on 红楼梦 (the 脂砚斋 commentary in 【…】 removed), char level, for samples.

Training text: the first 95 % of each book; held out: the first ``--eval-chars`` characters of the
last 5 %, scored identically for both frameworks (32 contiguous rows, state carried over chunks of
100, zero state at the start). Prints held-out bits per character and samples (JSON with ``--json``)::

    python -m bench.quality_lm --seconds 900            # the issue's target: 15 minutes per run
    python -m bench.quality_lm --seconds 180 --json /tmp/quality_lm.json
    python -m bench.quality_lm --seconds 120 --batch-size 64 --runs rnnkit,torch   # training speed

Each run also reports its training speed in characters per second (steps x batch x bptt / seconds).
With ``--anneal`` every run lowers its learning rate linearly to 0 at the end of its wall time
(rnnkit: ``fit(anneal=True)``; PyTorch: the same rule, ``lr = base (1 - elapsed / seconds)`` before
each step). With ``--same-init`` the PyTorch model starts from the rnnkit run's initial weights (the
same draws; a paired comparison) instead of PyTorch's own draw from the same distributions.

Data: shared/data beside the repository (see its README).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/ beside the repository
ARCH = {"cell": "lstm", "embedding_dim": 64, "layers": 2, "bptt": 100, "batch_size": 32, "lr": 2e-3, "clip_norm": 5.0, "seed": 0}
ANNEAL = {"on": False}  # --anneal
SAME_INIT = {"on": False}  # --same-init


def load_book(name: str) -> tuple[str, str]:
    """(training text, held-out tail) of ``shakespeare`` or ``hlm``."""
    if name == "shakespeare":
        text = (DATA_DIR / "shakespeare.txt").read_text(encoding="utf-8")
    else:
        text = re.sub(r"【[^【】]*】", "", (DATA_DIR / "zh_hongloumeng_80.txt").read_text(encoding="utf-8"))
    cut = int(len(text) * 0.95)
    return text[:cut], text[cut:]


def chars_per_second(steps: int, seconds: float) -> float:
    """Training throughput: every step reads batch_size rows of bptt characters."""
    return steps * ARCH["batch_size"] * ARCH["bptt"] / seconds


def run_rnnkit(book: str, seconds: float, hidden: int, eval_chars: int, prime: str) -> dict:
    import tempfile

    from rnnkit.io.checkpoint import load_checkpoint
    from rnnkit.tasks.language_model import LanguageModel

    train, held_out = load_book(book)
    lm = LanguageModel("char", hidden=hidden, max_vocab=3000 if book == "hlm" else None, **ARCH)
    with tempfile.TemporaryDirectory() as folder:  # the checkpoint saved at the stop tells the step count
        started = time.monotonic()
        history = lm.fit(train, val_frac=0, epochs=1000, max_time=seconds, progress=False,
                         checkpoint=Path(folder) / "lm.ckpt", anneal=ANNEAL["on"])
        trained = time.monotonic() - started
        steps = load_checkpoint(Path(folder) / "lm.ckpt").progress["global_step"]
    metrics = lm.evaluate(held_out[:eval_chars])
    sample = "".join(lm.generate(prime, 400, temperature=0.8, seed=0))
    return {"framework": "rnnkit", "book": book, "train_seconds": round(trained, 1), "steps": steps,
            "chars_per_second": chars_per_second(steps, trained), "epochs_completed": len(history.rows),
            "vocab": len(lm.vocab), "params": lm.model.num_params(),
            "bits_per_char": metrics["bits_per_char"], "sample": prime + sample}


def torch_char_lm(V: int, hidden: int):
    """The PyTorch model: nn.Embedding(V, E) -> nn.LSTM or nn.GRU (``ARCH["cell"]``, E -> hidden, layers) ->
    nn.Linear(hidden, V), batch-first; ``model(x, state) -> (logits, state)``."""
    from torch import nn

    class CharLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(V, ARCH["embedding_dim"])
            recurrent = {"lstm": nn.LSTM, "gru": nn.GRU}[ARCH["cell"]]
            self.rnn = recurrent(ARCH["embedding_dim"], hidden, ARCH["layers"], batch_first=True)
            self.out = nn.Linear(hidden, V)

        def forward(self, x, state=None):
            h, state = self.rnn(self.embedding(x), state)
            return self.out(h), state

    return CharLM()


def rnnkit_initial_weights(train: str, hidden: int) -> dict:
    """The weights the rnnkit run starts from (the same seed, vocabulary and draws), as the PyTorch CharLM's
    state dict: rnnkit's layout is PyTorch's, so this is renaming (``rnnkit.convert.torch.torch_names``)."""
    import torch

    from rnnkit.convert.torch import torch_names
    from rnnkit.data import Vocabulary
    from rnnkit.tasks.language_model import LanguageModel

    lm = LanguageModel("char", hidden=hidden, **ARCH)
    lm.vocab = Vocabulary.build(train)  # what fit builds before the model
    layers = zip(("embedding", "rnn", "out"), lm._build_model().layers)
    return {f"{module}.{theirs}": torch.from_numpy(np.ascontiguousarray(layer.params[ours]))
            for module, layer in layers for ours, theirs in torch_names(layer).items()}


def torch_step(model, opt, x: np.ndarray, y: np.ndarray, state):
    """One step of the PyTorch loop, as ``fit_stream`` does it: forward from the carried ``state``,
    cross-entropy, backward, gradient-norm clipping at ``clip_norm``, ``opt`` step; -> (loss, state)."""
    import torch

    logits, state = model(torch.from_numpy(x), state)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), ARCH["clip_norm"])
    opt.step()
    return loss.item(), state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)


def run_torch(book: str, seconds: float, hidden: int, eval_chars: int) -> dict:
    import torch
    from torch import nn

    from rnnkit.data import StreamBatcher, Vocabulary

    torch.manual_seed(ARCH["seed"])
    train, held_out = load_book(book)
    vocab = Vocabulary.build(train)  # the same ids as the rnnkit run
    V, B, k = len(vocab), ARCH["batch_size"], ARCH["bptt"]

    model = torch_char_lm(V, hidden)
    if SAME_INIT["on"]:
        model.load_state_dict(rnnkit_initial_weights(train, hidden))
    opt = torch.optim.Adam(model.parameters(), lr=ARCH["lr"])
    batches = StreamBatcher(vocab.encode(train), B, k)
    started, deadline, steps = time.monotonic(), time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        state = None  # reset each epoch, as fit_stream does
        for x, y in batches:
            if ANNEAL["on"]:
                for group in opt.param_groups:
                    group["lr"] = ARCH["lr"] * (1 - min(1.0, (time.monotonic() - started) / seconds))
            _, state = torch_step(model, opt, x, y, state)
            steps += 1
            if time.monotonic() >= deadline:
                break
    trained = time.monotonic() - started
    ids = vocab.encode(held_out[:eval_chars])
    rows = max(1, min(B, (len(ids) - 1) // k))  # the layout LanguageModel.evaluate uses
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for x, y in StreamBatcher(ids, rows, k):
            logits, state = model(torch.from_numpy(x), state)
            total += nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1),
                                                 reduction="sum").item()
            count += y.size
    return {"framework": "torch", "book": book, "train_seconds": round(trained, 1), "steps": steps,
            "chars_per_second": chars_per_second(steps, trained), "torch_threads": torch.get_num_threads(), "bits_per_char": total / count / math.log(2)}


def worker(args: argparse.Namespace) -> dict:
    if args.worker == "torch":
        return run_torch("shakespeare", args.seconds, args.hidden, args.eval_chars)
    book, prime = ("shakespeare", "ROMEO.\n") if args.worker == "rnnkit" else ("hlm", "黛玉")
    return run_rnnkit(book, args.seconds, args.hidden, args.eval_chars, prime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=900.0, help="training wall time per run (default 900)")
    parser.add_argument("--cell", choices=["lstm", "gru"], default=ARCH["cell"], help="recurrent cell (default lstm)")
    parser.add_argument("--hidden", type=int, default=256, help="recurrent units per layer (default 256)")
    parser.add_argument("--eval-chars", type=int, default=100_000, help="held-out characters scored")
    parser.add_argument("--batch-size", type=int, default=ARCH["batch_size"], help="stream rows per step (default 32)")
    parser.add_argument("--runs", default="rnnkit,torch,hlm", help="comma list of rnnkit, torch, hlm")
    parser.add_argument("--seed", type=int, default=ARCH["seed"], help="initialisation seed of every run (default 0)")
    parser.add_argument("--anneal", action="store_true", help="lower every run's lr linearly to 0 at its deadline")
    parser.add_argument("--same-init", action="store_true",
                        help="start the PyTorch model from the rnnkit run's initial weights (a paired comparison)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", choices=["rnnkit", "torch", "hlm"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    ARCH["batch_size"], ARCH["seed"], ARCH["cell"] = args.batch_size, args.seed, args.cell
    ANNEAL["on"], SAME_INIT["on"] = args.anneal, args.same_init
    if args.worker:
        print(json.dumps(worker(args), ensure_ascii=False))
        return
    results = []
    for run in args.runs.split(","):
        command = [sys.executable, "-m", "bench.quality_lm", "--worker", run, "--seconds", str(args.seconds),
                   "--hidden", str(args.hidden), "--eval-chars", str(args.eval_chars),
                   "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--cell", args.cell] + ["--anneal"] * args.anneal + ["--same-init"] * args.same_init
        done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{result['framework']:>6} {result['book']:<11} {result['train_seconds']:>7.1f} s  "
              f"{result['steps']:>6} steps  {result['chars_per_second']:>8.0f} chars/s  "
              f"held-out {result['bits_per_char']:.3f} bits/char", flush=True)
        if "sample" in result:
            print(result["sample"], "\n", flush=True)
    if args.json:
        settings = {**ARCH, "anneal": args.anneal, "same_init": args.same_init, "hidden": args.hidden, "seconds": args.seconds, "eval_chars": args.eval_chars}
        args.json.write_text(json.dumps({"settings": settings, "results": results}, ensure_ascii=False, indent=1),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
