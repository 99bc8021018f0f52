"""Every framework's recurrent-weight conventions in one table, plus the pure helpers that map them.

rnnkit's canonical layout is PyTorch's (see ``docs/conventions.md``): gate blocks stacked along the
rows of ``W_ih (G*H, D)`` / ``W_hh (G*H, R)``, LSTM gates ``i, f, g, o``, GRU gates ``r, z, n``,
two biases ``b_ih`` and ``b_hh``, GRU reset applied after the recurrent product, state ``(h, c)``.

A converter reads a framework's arrays, then

    W_ih = permute_gates(transpose(kernel), layout.gates[family], CANONICAL_GATES[family])
    b_ih, b_hh = biases_from(layout.biases[family], bias, gate_size)

and the reverse on export. ``LAYOUTS[framework]`` says which orientation, gate order and bias
layout apply; nothing here imports a framework. Gate orders are written in rnnkit's letters
(``g`` = Keras ``c`` = ONNX ``c`` = TF1 ``j``; ``n`` = Keras/ONNX ``h``); each framework's own
letters are in ``Layout.gate_names`` for messages and docs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConversionError, ShapeError

CANONICAL_GATES: dict[str, tuple[str, ...]] = {"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
"""rnnkit's gate blocks per family, top to bottom (PyTorch's order)."""

BIAS_LAYOUTS = {
    "pair": "two vectors b_ih (G*H,) and b_hh (G*H,)",
    "single": "one vector b = b_ih + b_hh (G*H,)",
    "stacked": "one array (2, G*H): row 0 = b_ih, row 1 = b_hh",
    "concat": "one vector [b_ih | b_hh] (2*G*H,)",
}
"""How a framework stores the two bias vectors; ``biases_from``/``biases_to`` convert each."""

WEIGHT_LAYOUTS = {
    "rows": "W_ih (G*H, D), W_hh (G*H, R): gate blocks along rows, applied as x @ W.T",
    "columns": "kernel (D, G*H), recurrent_kernel (R, G*H): gate blocks along columns, applied as x @ kernel",
    "columns_xh": "kernel (D+R, G*H) over the concatenation [x ; h_prev], applied as [x, h] @ kernel",
}


@dataclass(frozen=True)
class Layout:
    """One framework's storage conventions for recurrent weights (see the module docstring)."""

    framework: str
    gates: dict[str, tuple[str, ...]]  # family -> gate blocks in storage order, in rnnkit's letters
    gate_names: dict[str, tuple[str, ...]]  # family -> the same blocks in the framework's own letters
    weights: str  # a key of WEIGHT_LAYOUTS
    biases: dict[str, str]  # family -> a key of BIAS_LAYOUTS
    gru_reset: str  # where r_t is applied in the candidate n_t
    gru_update: str  # how h_t mixes h_{t-1} and n_t (all are the same function, written differently)
    state: str  # state order
    time_axis: str  # batch-first or time-major, and how it is chosen
    peepholes: tuple[str, ...] = ()  # peephole names in storage order (i, f, o in rnnkit's w_ci, w_cf, w_co)
    projection: str = ""  # LSTM output projection name and shape
    notes: str = ""


LAYOUTS: dict[str, Layout] = {
    "rnnkit": Layout(
        framework="rnnkit",
        gates=CANONICAL_GATES,
        gate_names=CANONICAL_GATES,
        weights="rows",
        biases={"rnn": "pair", "gru": "pair", "lstm": "pair"},
        gru_reset="after the matmul (reset_after=True, default) or before (reset_after=False); b_hn kept apart",
        gru_update="h = (1 - z) * n + z * h_prev",
        state="(h, c)",
        time_axis="batch-first (B, T, D) in layers; cell functions time-major",
        peepholes=("w_ci", "w_cf", "w_co"),
        projection="W_hr (P, H)",
        notes="forget_bias is a run-time constant, not a parameter; cell_clip clips c_t, proj_clip clips h_t",
    ),
    "torch": Layout(
        framework="torch",
        gates=CANONICAL_GATES,
        gate_names={"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")},
        weights="rows",
        biases={"rnn": "pair", "gru": "pair", "lstm": "pair"},
        gru_reset="after the matmul only: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))",
        gru_update="h = (1 - z) * n + z * h_prev",
        state="(h_n, c_n), each (L*dirs, B, R or H)",
        time_axis="time-major by default; batch_first=True makes it (B, T, D)",
        projection="weight_hr_l{k} (P, H)",
        notes="names weight_ih_l{k}[_reverse], weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}; no peepholes or clipping",
    ),
    "keras": Layout(
        framework="keras",
        gates={"rnn": ("h",), "gru": ("z", "r", "n"), "lstm": ("i", "f", "g", "o")},
        gate_names={"rnn": ("h",), "gru": ("z", "r", "h"), "lstm": ("i", "f", "c", "o")},
        weights="columns",
        biases={"rnn": "single", "gru": "stacked", "lstm": "single"},
        gru_reset="reset_after=True (default): after, bias (2, 3H); reset_after=False: before, bias (3H,)",
        gru_update="h = z * h_prev + (1 - z) * hh",
        state="[h, c]",
        time_axis="batch-first (B, T, D)",
        notes="GRU reset_after=False has one bias (3H,) (biases 'single'); Bidirectional concat = [forward, backward]",
    ),
    "onnx": Layout(
        framework="onnx",
        gates={"rnn": ("h",), "gru": ("z", "r", "n"), "lstm": ("i", "o", "f", "g")},
        gate_names={"rnn": ("i",), "gru": ("z", "r", "h"), "lstm": ("i", "o", "f", "c")},
        weights="rows",
        biases={"rnn": "concat", "gru": "concat", "lstm": "concat"},
        gru_reset="attribute linear_before_reset: 0 (default) = before, 1 = after (PyTorch-style)",
        gru_update="h = (1 - z) * hh + z * h_prev",
        state="Y_h, Y_c, each (dirs, B, H)",
        time_axis="layout=0 (default): time-major (T, B, D); layout=1: batch-first",
        peepholes=("w_ci", "w_co", "w_cf"),
        notes="W (dirs, G*H, D), R (dirs, G*H, H), B (dirs, 2*G*H) = [Wb | Rb], P (dirs, 3H) in i, o, f; "
        "clip clips gate pre-activations (not rnnkit's cell_clip)",
    ),
    "tf1": Layout(
        framework="tf1",
        gates={"rnn": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "g", "f", "o")},
        gate_names={"rnn": ("h",), "gru": ("r", "u", "c"), "lstm": ("i", "j", "f", "o")},
        weights="columns_xh",
        biases={"rnn": "single", "gru": "single", "lstm": "single"},
        gru_reset="GRUCell: before the matmul (reset_after=False); gates/kernel (D+H, 2H) r,u and candidate/kernel (D+H, H)",
        gru_update="h = u * h_prev + (1 - u) * c",
        state="LSTMStateTuple(c, h)",
        time_axis="dynamic_rnn: batch-first by default (time_major=False)",
        peepholes=("w_i_diag", "w_f_diag", "w_o_diag"),
        projection="projection/kernel (H, P) (transpose of W_hr)",
        notes="LSTMCell kernel (D+R, 4H) rows [x ; h_prev]; forget_bias (default 1.0) added at run time, not stored; "
        "cell_clip clips c_t, proj_clip clips h_t",
    ),
}
"""The conventions table: one :class:`Layout` per framework (``docs/interop.md`` prints it)."""


def permute_gates(array: np.ndarray, src: Sequence[str], dst: Sequence[str], axis: int = 0) -> np.ndarray:
    """Reorder the equal gate blocks of ``array`` along ``axis`` from order ``src`` to order ``dst``.

    ``permute_gates(kernel_T, ("z", "r", "n"), ("r", "z", "n"))`` turns Keras GRU blocks into rnnkit's.
    """
    if sorted(src) != sorted(dst):
        raise ValueError(f"gate orders {tuple(src)} and {tuple(dst)} name different gates")
    if array.shape[axis] % len(src):
        raise ShapeError(f"an array of {len(src)} gate blocks {tuple(src)} along axis {axis} has shape {array.shape}")
    blocks = dict(zip(src, np.split(array, len(src), axis=axis)))
    return np.concatenate([blocks[g] for g in dst], axis=axis)


def to_canonical(array: np.ndarray, framework: str, family: str, axis: int = 0) -> np.ndarray:
    """Gate blocks of ``array`` (along ``axis``) from ``framework``'s order to rnnkit's."""
    return permute_gates(array, LAYOUTS[framework].gates[family], CANONICAL_GATES[family], axis)


def from_canonical(array: np.ndarray, framework: str, family: str, axis: int = 0) -> np.ndarray:
    """Gate blocks of ``array`` (along ``axis``) from rnnkit's order to ``framework``'s."""
    return permute_gates(array, CANONICAL_GATES[family], LAYOUTS[framework].gates[family], axis)


def transpose(kernel: np.ndarray) -> np.ndarray:
    """``(D, G*H)`` column layout <-> ``(G*H, D)`` row layout, as a contiguous copy."""
    return np.ascontiguousarray(kernel.T)


def split_xh_kernel(kernel: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """TF1 ``kernel (D+R, G*H)`` over ``[x ; h]`` -> ``(W_ih (G*H, D), W_hh (G*H, R))`` in storage gate order."""
    return transpose(kernel[:input_size]), transpose(kernel[input_size:])


def merge_xh_kernel(W_ih: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """``W_ih (G*H, D)``, ``W_hh (G*H, R)`` -> TF1 ``kernel (D+R, G*H)`` over ``[x ; h]``."""
    return np.ascontiguousarray(np.concatenate([W_ih, W_hh], axis=1).T)


def biases_from(layout: str, bias: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A framework's stored bias -> ``(b_ih, b_hh)``, each ``(size,)`` with ``size = G*H``.

    A ``"single"`` bias goes entirely to ``b_ih`` (``b_hh = 0``): the sum, which is all the
    equations use, is kept (except GRU reset_after=True, whose frameworks store two biases).
    """
    bias = np.asarray(bias)
    expected = {"single": (size,), "stacked": (2, size), "concat": (2 * size,)}[layout]
    if bias.shape != expected:
        raise ShapeError(f"a {layout!r} bias ({BIAS_LAYOUTS[layout]}) must have shape {expected}, got {bias.shape}")
    if layout == "single":
        return bias.copy(), np.zeros_like(bias)
    if layout == "stacked":
        return bias[0].copy(), bias[1].copy()
    return bias[:size].copy(), bias[size:].copy()


def biases_to(layout: str, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """``(b_ih, b_hh)`` -> a framework's stored bias (``"single"``: their sum; see :data:`BIAS_LAYOUTS`)."""
    if layout == "single":
        return b_ih + b_hh
    if layout == "stacked":
        return np.stack([b_ih, b_hh])
    if layout == "concat":
        return np.concatenate([b_ih, b_hh])
    raise ValueError(f"unknown bias layout {layout!r}; one of {sorted(BIAS_LAYOUTS)}")


def conventions_table(frameworks: Sequence[str] = ("rnnkit", "torch", "keras", "onnx", "tf1")) -> str:
    """The table as Markdown (``docs/interop.md`` embeds this output; a test keeps them equal)."""
    rows = [
        ("LSTM gate order", lambda L: ", ".join(L.gate_names["lstm"])),
        ("GRU gate order", lambda L: ", ".join(L.gate_names["gru"])),
        ("weights", lambda L: WEIGHT_LAYOUTS[L.weights]),
        ("biases (rnn / gru / lstm)", lambda L: " / ".join(L.biases[f] for f in ("rnn", "gru", "lstm"))),
        ("GRU reset", lambda L: L.gru_reset),
        ("GRU update", lambda L: L.gru_update),
        ("state", lambda L: L.state),
        ("time axis", lambda L: L.time_axis),
        ("peepholes (storage order)", lambda L: ", ".join(L.peepholes) or "none"),
        ("projection", lambda L: L.projection or "none"),
        ("notes", lambda L: L.notes or ""),
    ]
    layouts = [LAYOUTS[f] for f in frameworks]
    lines = ["| | " + " | ".join(frameworks) + " |", "|---" * (len(frameworks) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(L).replace("|", "\\|") for L in layouts) + " |" for label, cell in rows]
    return "\n".join(lines)


def assign_params(params: dict[str, np.ndarray], arrays: dict[str, np.ndarray], where: str) -> None:
    """Copy ``arrays`` into ``params`` in place (names and shapes must match exactly; dtypes are cast).

    ``where`` names the source in messages, e.g. ``"torch nn.LSTM 'lstm'"``. Missing or extra names
    raise ConversionError; a shape mismatch raises ShapeError naming both shapes.
    """
    missing, extra = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
    if missing or extra:
        raise ConversionError(f"{where}: parameters do not match: missing {missing}, unexpected {extra}")
    for name, target in params.items():
        value = np.asarray(arrays[name])
        if value.shape != target.shape:
            raise ShapeError(f"{where}: parameter {name!r} has shape {value.shape}, rnnkit expects {target.shape}")
        target[...] = value
