"""What the benchmark measures: the configurations, the modes and the FLOP count of each.

A configuration is a recurrent stack run on a batch-first input of shape (B, T, D). Most are one
layer; ``stacked-16-8-4`` chains three single-layer cells (hidden 16, then 8, then 4) as the
tutorial's sentiment model does. The sizes come from the tutorials (issues 3 and 7).
"""

from __future__ import annotations

from dataclasses import dataclass

CELLS = ("lstm", "gru", "rnn")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # G: gate blocks per cell

MODES = ("train", "infer", "stream")
MODE_HELP = {
    "train": "forward(training=True) + backward(g), g a fixed random (B, T, H) gradient",
    "infer": "forward only (torch under inference_mode)",
    "stream": "one step at batch 1, state carried between steps (time per step)",
}


@dataclass(frozen=True)
class Config:
    name: str  # short label used on the command line
    batch: int  # B
    time: int  # T
    input_size: int  # D
    hidden: tuple[int, ...]  # H of each chained single-layer cell, bottom first
    origin: str  # the tutorial task it comes from

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(D_k, H_k) of each layer: the input of layer k is the output of layer k-1."""
        inputs = (self.input_size,) + self.hidden[:-1]
        return list(zip(inputs, self.hidden))

    def label(self) -> str:
        """'(B,T,D,H)', with H written 16-8-4 for a stack."""
        h = "-".join(str(h) for h in self.hidden)
        return f"({self.batch},{self.time},{self.input_size},{h})"


CONFIGS = {
    c.name: c
    for c in (
        Config("sine-1", 1, 50, 1, (16,), "sine prediction, one window"),
        Config("sine-64", 512, 50, 1, (64,), "sine prediction"),
        Config("sine-128", 512, 50, 1, (128,), "sine prediction"),
        Config("binary-add", 16, 8, 2, (16,), "8-bit binary addition"),
        Config("charlm-128", 32, 100, 65, (128,), "character language model"),
        Config("charlm-256", 64, 100, 65, (256,), "character language model"),
        Config("charlm-512", 32, 100, 65, (512,), "character language model"),
        Config("sentiment", 64, 200, 8, (16,), "sentiment classifier, one layer"),
        Config("stacked-16-8-4", 64, 200, 8, (16, 8, 4), "sentiment classifier, three chained layers"),
        Config("large", 64, 100, 256, (1024,), "large model"),
    )
}

# Streaming: one step at a time, batch 1 (a model answering a live signal).
STREAM = Config("stream", 1, 1, 65, (128,), "streaming, one step per call")

CONFIG_SETS = {
    "all": tuple(CONFIGS),
    "small": ("sine-1", "binary-add", "charlm-128", "sentiment", "stacked-16-8-4"),
    "quick": ("binary-add", "sentiment"),
}

FLOPS_FORMULA = (
    "forward = sum over layers of 2*B*T*(D+H)*G*H (the input and recurrent GEMMs; gate math ignored); "
    "train = 3 x forward (backward ~ 2 x forward: the weight-gradient and input-gradient GEMMs); "
    "infer = forward; stream = forward with B = T = 1 per step"
)


def forward_flops(config: Config, cell: str) -> int:
    """2*B*T*(D+H)*G*H summed over layers: multiply-adds of x W_ih^T and h W_hh^T, counted as 2 FLOPs."""
    G = GATES[cell]
    return sum(2 * config.batch * config.time * (D + H) * G * H for D, H in config.layer_sizes())


def mode_flops(config: Config, cell: str, mode: str) -> int:
    """FLOPs of one measured unit: a training step (3 x forward), a forward pass or one streaming step."""
    return 3 * forward_flops(config, cell) if mode == "train" else forward_flops(config, cell)


def resolve_configs(spec: str) -> list[Config]:
    """'all', 'small', 'quick' or a comma list of names -> configurations (ValueError names the valid ones)."""
    names = CONFIG_SETS.get(spec, tuple(n for n in spec.split(",") if n))
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        raise ValueError(
            f"--configs: unknown configuration(s) {unknown or spec!r}; "
            f"use one of {sorted(CONFIG_SETS)} or a comma list of {sorted(CONFIGS)}"
        )
    return [CONFIGS[n] for n in names]
