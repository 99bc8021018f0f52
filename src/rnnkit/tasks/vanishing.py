"""The vanishing-gradient demo: remember the first symbol across T steps, tanh RNN vs GRU vs LSTM.

Task ("copy a symbol across T steps"): step 0 shows one of ``K`` symbols (one-hot), the next
``T - 1`` steps are blank (``noise`` adds N(0, noise²) distractors to the symbol channels), and a
query flag on the last step asks for the symbol; the model reads its final state through a Dense
layer and is trained with cross-entropy. Chance accuracy is 1/K. The only way to the answer is
back through all T step Jacobians (seed 004), so the error signal must survive their product.

For each T, a tanh RNN, a GRU and an LSTM of the same hidden size are trained with the same step
budget, learning rate, seed and batches (Adam). Variants: gradient-norm clipping, and the LSTM with
its forget-gate bias initialised to 1 (``rnnkit.init.lstm_forget_bias``). Reported per cell and T:
held-out accuracy, and the **reach** ``‖∂L/∂h_0‖ / ‖∂L/∂h_{T-1}‖`` measured with
:func:`rnnkit.diagnostics.gradient_flow` (how much of the error signal at the last step arrives at
the first), at initialisation and after training, with the ``‖∂L/∂h_t‖`` curves at the longest T.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import init, optim
from .._validation import as_rng, check_positive_int
from ..diagnostics import gradient_flow
from ..plotting import figure, save
from ..layers import Dense, Recurrent
from ..models import Sequential
from ..train import Trainer

CELLS = ("rnn", "gru", "lstm")
#: variant name -> (cells trained, clip_norm, LSTM forget-gate bias or None)
VARIANTS = {"plain": (CELLS, None, None), "clip 1.0": (CELLS, 1.0, None), "forget bias 1": (("lstm",), None, 1.0)}
FULL = {"lengths": (10, 20, 40), "steps": 400, "hidden": 16, "symbols": 4, "batch": 32, "lr": 3e-3, "noise": 0.0}
QUICK = {**FULL, "lengths": (5, 15), "steps": 40}
EVAL_BATCH = 256  # held-out sequences for the accuracy; the first 64 give the gradient flow


def copy_batch(rng: np.random.Generator, batch: int, steps: int, symbols: int, noise: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """``x (batch, steps, symbols + 1)`` float32 and the symbol ids ``y (batch,)`` to recall.

    ``x[b, 0]`` is the one-hot symbol ``y[b]``, ``x[b, 1:, :symbols]`` zeros (plus noise), and the
    last channel is the query flag, 1 on the last step only.
    """
    y = rng.integers(0, symbols, batch)
    x = np.zeros((batch, steps, symbols + 1), np.float32)
    x[np.arange(batch), 0, y] = 1.0
    if noise:
        x[:, 1:, :symbols] = rng.normal(0.0, noise, (batch, steps - 1, symbols))
    x[:, -1, symbols] = 1.0
    return x, y


def build_model(cell: str, hidden: int, symbols: int, seed: int, forget_bias: float | None = None) -> Sequential:
    """Recurrent(cell, final state only) -> Dense(symbols) logits, PyTorch's default init, seeded."""
    rng = as_rng(seed)
    recurrent = Recurrent(cell, symbols + 1, hidden, return_sequences=False, seed=rng)
    if forget_bias is not None:
        init.lstm_forget_bias(recurrent.params["l0.b_ih"], hidden, forget_bias)
    return Sequential([recurrent, Dense(hidden, symbols, seed=rng)], name=f"copy_{cell}")


def reach(model: Sequential, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``(reach, dh_norm)`` of the model's recurrent layer on (x, y).

    reach = ‖∂L/∂h_0‖ / ‖∂L/∂h_{T-1}‖; dh_norm (T,) is the ‖∂L/∂h_t‖ curve of :func:`gradient_flow`.
    """
    dh = gradient_flow(model, x, y, "cross_entropy", jacobian_samples=1).cells["0.l0"].dh_norm
    return float(dh[0] / dh[-1]), dh


def train_one(cell: str, steps: int, *, config: dict[str, Any], seed: int, clip_norm: float | None,
              forget_bias: float | None) -> dict[str, Any]:
    """Train one cell on the copy task of length ``steps``; its accuracy, reach and dL/dh_t curves."""
    K = config["symbols"]
    model = build_model(cell, config["hidden"], K, seed, forget_bias)
    x_eval, y_eval = copy_batch(np.random.default_rng([seed, steps, 1]), EVAL_BATCH, steps, K, config["noise"])
    reach_init, flow_init = reach(model, x_eval[:64], y_eval[:64])
    adam = optim.Adam(model.params, lr=config["lr"])
    trainer = Trainer(model, "cross_entropy", adam, clip_norm=clip_norm, seed=seed)
    data = np.random.default_rng([seed, steps, 0])  # the same batches for every cell and variant
    for _ in range(config["steps"]):
        trainer.step(*copy_batch(data, config["batch"], steps, K, config["noise"]))
    accuracy = float(np.mean(model.forward(x_eval, cache=False).argmax(axis=1) == y_eval))
    reach_trained, flow_trained = reach(model, x_eval[:64], y_eval[:64])
    return {"accuracy": accuracy, "reach_init": reach_init, "reach_trained": reach_trained,
            "flow_init": flow_init, "flow_trained": flow_trained}


@dataclass
class VanishingResult:
    """``results[variant][cell][i]`` is :func:`train_one`'s dict for ``lengths[i]``."""

    lengths: tuple[int, ...]
    results: dict[str, dict[str, list[dict[str, Any]]]]
    config: dict[str, Any] = field(default_factory=dict)

    def table(self, key: str) -> dict[str, dict[str, list[float]]]:
        """``{variant: {cell: [value per T]}}`` of one scalar: accuracy, reach_init or reach_trained."""
        return {v: {c: [r[key] for r in runs] for c, runs in cells.items()} for v, cells in self.results.items()}

    def to_json(self) -> str:
        scalars = {key: self.table(key) for key in ("accuracy", "reach_init", "reach_trained")}
        return json.dumps({"lengths": list(self.lengths), "config": self.config, **scalars}, indent=1)

    def to_text(self) -> str:
        chance = 1 / self.config["symbols"]
        head = "".join(f"{f'T={T}':>10}" for T in self.lengths)
        lines = [f"copy the first of {self.config['symbols']} symbols across T steps (chance {chance:.0%}); "
                 f"hidden {self.config['hidden']}, {self.config['steps']} Adam steps of {self.config['batch']}, "
                 f"lr {self.config['lr']:g}, seed {self.config['seed']}"]
        for key, title, fmt in (("accuracy", "held-out accuracy", "{:>10.0%}"),
                                ("reach_init", "reach |dL/dh_0| / |dL/dh_T-1| at initialisation", "{:>10.1e}"),
                                ("reach_trained", "reach after training", "{:>10.1e}")):
            lines += ["", title, f"{'':<24}{head}"]
            for variant, cells in self.table(key).items():
                lines += [f"{cell + ' ' + variant:<24}" + "".join(fmt.format(v) for v in values)
                          for cell, values in cells.items()]
        return "\n".join(lines)

    def plot(self, path: str | Path) -> None:
        """Accuracy against T per cell and variant; ‖∂L/∂h_t‖ at the longest T, at init and trained."""
        fig = figure(15, 4.5)
        acc, at_init, trained = fig.subplots(1, 3)
        T = self.lengths[-1]
        for j, (variant, cells) in enumerate(self.results.items()):
            for cell, runs in cells.items():
                color = f"C{CELLS.index(cell)}"
                style = ("-", "--", ":")[j % 3]
                acc.plot(self.lengths, [r["accuracy"] for r in runs], color=color, linestyle=style, marker="o",
                         label=f"{cell} {variant}")
                at_init.semilogy(runs[-1]["flow_init"], color=color, linestyle=style, label=f"{cell} {variant}")
                trained.semilogy(runs[-1]["flow_trained"], color=color, linestyle=style, label=f"{cell} {variant}")
        acc.axhline(1 / self.config["symbols"], color="grey", linewidth=0.8, label="chance")
        acc.set(title="held-out accuracy", xlabel="T (steps to carry the symbol)", ylim=(0, 1.05))
        at_init.set(title=f"‖∂L/∂h_t‖ at initialisation, T={T}", xlabel="t")
        trained.set(title=f"‖∂L/∂h_t‖ after training, T={T}", xlabel="t")
        for ax in (acc, at_init, trained):
            ax.legend(fontsize=7)
        save(fig, path)


def vanishing_demo(quick: bool = False, seed: int = 0, **overrides: Any) -> VanishingResult:
    """Run every variant of :data:`VARIANTS` for each T of the configuration (``FULL`` or ``QUICK``).

    ``overrides`` replace entries of the configuration (``lengths``, ``steps``, ``hidden``,
    ``symbols``, ``batch``, ``lr``, ``noise``).
    """
    config = {**(QUICK if quick else FULL), **overrides}
    lengths = tuple(check_positive_int(T, "lengths[i]", minimum=2) for T in config["lengths"])
    for key in ("steps", "hidden", "batch"):
        check_positive_int(config[key], key)
    check_positive_int(config["symbols"], "symbols", minimum=2)
    results = {
        variant: {cell: [train_one(cell, T, config=config, seed=seed, clip_norm=clip, forget_bias=bias)
                         for T in lengths] for cell in cells}
        for variant, (cells, clip, bias) in VARIANTS.items()
    }
    return VanishingResult(lengths, results, {**config, "lengths": list(lengths), "seed": seed})
