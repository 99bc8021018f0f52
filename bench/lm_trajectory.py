"""rnnkit and PyTorch training the Shakespeare language model from the same weights on the same batches:
the per-step training loss of each (slow-ish; not part of CI).

The model, data stream and settings are ``bench.quality_lm``'s (batch ``--batch-size``, bptt 100,
Adam 2e-3, clip 5, constant learning rate); the PyTorch model starts from the rnnkit model's initial
weights (``--same-init`` there). Each framework trains ``--steps`` steps in its own process, both at
once; the table shows where the two loss curves part (float32 rounding grows through training)::

    python -m bench.lm_trajectory --steps 400 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench import quality_lm as Q


def losses(framework: str, steps: int, hidden: int) -> list[float]:
    """Per-step training losses of ``framework`` ("rnnkit" or "torch") over the first ``steps`` batches."""
    from rnnkit.data import StreamBatcher, Vocabulary

    train, _ = Q.load_book("shakespeare")
    vocab = Vocabulary.build(train)
    batches, out = StreamBatcher(vocab.encode(train), Q.ARCH["batch_size"], Q.ARCH["bptt"]), []
    if framework == "rnnkit":
        from rnnkit import optim
        from rnnkit.tasks.language_model import LanguageModel
        from rnnkit.train import Trainer, _detach

        lm = LanguageModel("char", hidden=hidden, **Q.ARCH)
        lm.vocab = vocab
        model = lm._build_model()  # the model LanguageModel.fit trains
        trainer, states = Trainer(model, "cross_entropy", optim.Adam(model.params, lr=Q.ARCH["lr"]),
                                  clip_norm=Q.ARCH["clip_norm"], seed=Q.ARCH["seed"]), None
        for j in range(steps):
            value, states = trainer.step(*batches[j], states=states)
            states = _detach(states)  # carried as values, as fit_stream does
            out.append(float(value))
        return out
    import torch

    net = Q.torch_char_lm(len(vocab), hidden)
    net.load_state_dict(Q.rnnkit_initial_weights(train, hidden))
    opt, state = torch.optim.Adam(net.parameters(), lr=Q.ARCH["lr"]), None
    for j in range(steps):
        loss, state = Q.torch_step(net, opt, *batches[j], state)
        out.append(loss)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps of each framework (default 400)")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM units per layer (default 256)")
    parser.add_argument("--batch-size", type=int, default=64, help="stream rows per step (default 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write both loss curves here")
    parser.add_argument("--worker", choices=["rnnkit", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    Q.ARCH["batch_size"] = args.batch_size
    if args.worker:
        print(json.dumps(losses(args.worker, args.steps, args.hidden)))
        return
    command = [sys.executable, "-m", "bench.lm_trajectory", "--steps", str(args.steps), "--hidden", str(args.hidden),
               "--batch-size", str(args.batch_size), "--worker"]
    runs = {name: subprocess.Popen(command + [name], stdout=subprocess.PIPE, text=True) for name in ("rnnkit", "torch")}
    curves = {name: np.array(json.loads(run.communicate()[0].strip().splitlines()[-1])) for name, run in runs.items()}
    ours, theirs = curves["rnnkit"], curves["torch"]
    apart = np.abs(ours - theirs)
    print("| steps | rnnkit mean loss | PyTorch mean loss | largest |difference| |\n|---|---:|---:|---:|")
    for start in range(0, args.steps, max(1, args.steps // 8)):
        end = min(start + max(1, args.steps // 8), args.steps)
        print(f"| {start + 1}-{end} | {ours[start:end].mean():.5f} | {theirs[start:end].mean():.5f} | "
              f"{apart[start:end].max():.1e} |")
    print(f"first step with |difference| > 1e-4: {int(np.argmax(apart > 1e-4)) + 1 if (apart > 1e-4).any() else 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"settings": {**Q.ARCH, "hidden": args.hidden, "steps": args.steps},
                                         "rnnkit": ours.tolist(), "torch": theirs.tolist()}))


if __name__ == "__main__":
    main()
