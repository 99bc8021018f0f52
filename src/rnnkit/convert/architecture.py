"""An rnnkit architecture read off the names and shapes of a PyTorch-named state_dict, and ``--arch`` specs.

A state_dict names its tensors ``{module}.{parameter}``; the parameters tell each module's type::

    weight_ih_l{k}[_reverse], weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}  ->  nn.RNN / GRU / LSTM
    weight (V, E) alone, in a module named *emb* or feeding a layer of input size E      ->  nn.Embedding
    weight (out, in) [+ bias (out,)]                                                       ->  nn.Linear

and their shapes give every size: ``weight_ih_l0 (G*H, D)``, ``weight_hh_l0 (G*H, R)`` with ``R = H``,
or ``R = P`` with a projection ``weight_hr_l0 (P, H)``; the gate count ``G = rows / H`` is 1 (RNN),
3 (GRU) or 4 (LSTM). What a state_dict does not store cannot be inferred, and is assumed with a note:
the RNN nonlinearity (tanh; nn.RNN's relu has the same shapes), activations applied between modules
(none), dropout (training only), and whether a recurrent module feeds the next one its whole output
sequence (assumed) or its last step. An ``--arch`` spec per module, ``KIND[:key=value,...]``, checks the
inferred sizes and sets those options, e.g. ``"lstm:input=8,hidden=32,layers=2,bidirectional"``.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError, ConversionError, ShapeError
from ..layers.base import Layer
from ..layers.dense import Dense
from ..layers.embedding import Embedding
from ..layers.recurrent import GRU, LSTM, RNN

RECURRENT_PARAM = re.compile(r"(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")
FAMILY_BY_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
TORCH_CLASS = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM", "embedding": "nn.Embedding", "linear": "nn.Linear"}
SIZES = {  # --arch keys read off the shapes (checked against the spec) ...
    "rnn": ("input", "hidden", "layers", "bidirectional", "bias"), "gru": ("input", "hidden", "layers", "bidirectional", "bias"),
    "lstm": ("input", "hidden", "layers", "bidirectional", "bias", "proj"), "embedding": ("vocab", "dim"),
    "linear": ("in", "out", "bias"),
}
OPTIONS = {  # ... and keys a state_dict does not store (set by the spec)
    "rnn": ("activation", "last", "dropout"), "gru": ("last", "dropout"),
    "lstm": ("last", "dropout", "forget_bias", "cell_clip", "proj_clip"), "embedding": ("padding_idx",),
    "linear": ("activation",),
}
KIND_ALIASES = {"dense": "linear", "emb": "embedding"}


@dataclasses.dataclass
class Module:
    """One module of a state_dict: its key prefix, kind, sizes (``SIZES``) and options (``given``: set by --arch)."""

    prefix: str
    kind: str
    sizes: dict[str, Any]
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    given: set[str] = dataclasses.field(default_factory=set)

    @property
    def name(self) -> str:
        return repr(self.prefix) if self.prefix else "(top level)"

    def describe(self) -> str:
        """``'lstm': nn.LSTM input=8 hidden=32 layers=2 bidirectional=True``."""
        shown = {k: v for k, v in {**self.sizes, **self.options}.items() if (k, v) != ("bias", True)}
        values = " ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.name}: {TORCH_CLASS[self.kind]} {values}"


def group_modules(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, dict[str, tuple[int, ...]]]:
    """``{"lstm.weight_ih_l0": shape, ...}`` -> ``{"lstm": {"weight_ih_l0": shape}, ...}`` in file order."""
    modules: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        prefix, _, param = key.rpartition(".")
        modules.setdefault(prefix, {})[param] = tuple(shape)
    return modules


def _recurrent(prefix: str, params: dict[str, tuple[int, ...]]) -> Module:
    """An nn.RNN/GRU/LSTM from its parameter shapes (see the module docstring)."""
    where = f"state_dict module {prefix!r}"
    if "weight_ih_l0" not in params or "weight_hh_l0" not in params:
        raise ConversionError(f"{where}: a recurrent module needs weight_ih_l0 and weight_hh_l0; found {sorted(params)}")
    (rows, D), (_, R) = params["weight_ih_l0"], params["weight_hh_l0"]
    H = params["weight_hr_l0"][1] if "weight_hr_l0" in params else R
    G = rows // H if H and rows % H == 0 else 0
    if G not in FAMILY_BY_GATES or ("weight_hr_l0" in params and G != 4):
        raise ShapeError(f"{where}: weight_ih_l0 {params['weight_ih_l0']} and weight_hh_l0 {params['weight_hh_l0']} "
                         f"must have G*H rows with H={H} and G = 1 (nn.RNN), 3 (nn.GRU) or 4 (nn.LSTM)")
    kind = FAMILY_BY_GATES[G]
    layers = 1 + max(int(RECURRENT_PARAM.match(p)[3]) for p in params)
    sizes = {"input": D, "hidden": H, "layers": layers, "bidirectional": any(p.endswith("_reverse") for p in params),
             "bias": "bias_ih_l0" in params}
    return Module(prefix, kind, sizes | ({"proj": R} if "weight_hr_l0" in params else {}),
                  {"activation": "tanh"} if kind == "rnn" else {})


def _linear_or_embedding(prefix: str, params: dict[str, tuple[int, ...]]) -> Module:
    where = f"state_dict module {prefix!r}"
    weight = params.get("weight")
    if weight is None or len(weight) != 2 or set(params) - {"weight", "bias"} or params.get("bias", (weight[0],)) != (weight[0],):
        raise ConversionError(
            f"{where} with parameters {params} is not an nn.RNN/GRU/LSTM, nn.Embedding or nn.Linear; rnnkit "
            "converts only those (convolutions, normalisation layers and the like have no rnnkit counterpart)"
        )
    if "bias" not in params and "emb" in prefix.lower():
        return Module(prefix, "embedding", {"vocab": weight[0], "dim": weight[1]})
    return Module(prefix, "linear", {"in": weight[1], "out": weight[0], "bias": "bias" in params})


def _input_size(module: Module) -> int:
    return module.sizes.get("input", module.sizes.get("in", -1))


def _output_size(module: Module) -> int:
    sizes = module.sizes
    if module.kind in ("rnn", "gru", "lstm"):
        return (2 if sizes["bidirectional"] else 1) * sizes.get("proj", sizes["hidden"])
    return sizes["dim"] if module.kind == "embedding" else sizes["out"]


def infer_modules(shapes: Mapping[str, tuple[int, ...]]) -> list[Module]:
    """Every module of a torch-named state_dict, in file order, as guessed from names and shapes."""
    modules = []
    for prefix, params in group_modules(shapes).items():
        recurrent = [p for p in params if RECURRENT_PARAM.match(p)]
        if recurrent and len(recurrent) != len(params):
            others = sorted(set(params) - set(recurrent))
            raise ConversionError(f"state_dict module {prefix!r} mixes recurrent parameters with {others}")
        modules.append(_recurrent(prefix, params) if recurrent else _linear_or_embedding(prefix, params))
    if not modules:
        raise ConversionError("the state_dict holds no tensors; save module.state_dict() of a trained module")
    first = modules[0]
    if first.kind == "linear" and not first.sizes["bias"] and len(modules) > 1:
        # a bias-free weight (A, B) is an nn.Linear B -> A or an embedding table of A vectors of size B:
        # the next module's input size tells which
        A, B = first.sizes["out"], first.sizes["in"]
        if _input_size(modules[1]) == B != A:
            modules[0] = Module(first.prefix, "embedding", {"vocab": A, "dim": B})
    return modules


def _chains(modules: tuple[Module, ...] | list[Module]) -> bool:
    """Whether each module reads what the one before it outputs (an Embedding only first)."""
    return all(b.kind != "embedding" and _output_size(a) == _input_size(b) for a, b in zip(modules, modules[1:]))


def order_chain(modules: list[Module]) -> tuple[list[Module], str | None]:
    """The modules in the one order whose sizes chain, plus a note; for files that do not keep the order.

    A safetensors file stores tensors sorted by dtype and name, not in the module's order.
    """
    if _chains(modules):
        return modules, None
    orders = [list(p) for p in itertools.permutations(modules) if _chains(p)] if len(modules) <= 7 else []
    if len(orders) == 1:
        chain = " -> ".join(m.name for m in orders[0])
        return orders[0], f"the file does not keep the module order; ordered by matching sizes: {chain}"
    return modules, (f"the file does not keep the module order and {len(orders) or 'no'} order(s) match the sizes; "
                     "file order kept")


def assumptions(modules: list[Module]) -> list[str]:
    """What the conversion assumes because a state_dict does not store it (and no --arch spec said)."""
    notes = []
    for m in modules:
        if m.kind == "rnn" and "activation" not in m.given:
            notes.append(f"{m.name}: an nn.RNN's nonlinearity is not stored; tanh assumed (for relu: --arch "
                         "rnn:activation=relu)")
        if m.kind == "linear" and not m.sizes["bias"] and m is modules[0] and not m.given:
            notes.append(f"{m.name}: a weight without bias, read as a bias-free nn.Linear (for an embedding "
                         "table: --arch embedding)")
    if any(m.kind == "linear" for m in modules) and not any("activation" in m.given for m in modules):
        notes.append("activations after nn.Linear modules are not stored in a state_dict; none assumed "
                     "(e.g. --arch linear:activation=softmax for the head)")
    if any(m.kind in ("rnn", "gru", "lstm") and "last" not in m.given for m in modules[:-1]):
        notes.append("recurrent modules are assumed to pass on their whole output sequence; for a head on the "
                     "last step add 'last' to that module's --arch spec")
    return notes


def parse_arch(spec: str) -> tuple[str, dict[str, Any]]:
    """``"lstm:input=8,hidden=32,bidirectional"`` -> ``("lstm", {"input": 8, "hidden": 32, "bidirectional": True})``."""
    kind, _, rest = spec.strip().partition(":")
    kind = KIND_ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if kind not in SIZES:
        raise ConfigError(f"--arch {spec!r}: unknown kind {kind!r}; expected one of {sorted(SIZES)}, e.g. "
                          "'lstm:input=8,hidden=32,layers=2,bidirectional'")
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, text = (s.strip() for s in item.partition("="))
        if key not in SIZES[kind] + OPTIONS[kind]:
            raise ConfigError(f"--arch {spec!r}: unknown key {key!r} for {kind}; expected {list(SIZES[kind] + OPTIONS[kind])}")
        values[key] = True if not sep else _value(text)
    return kind, values


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes", "false", "no", "none"):
        return {"true": True, "yes": True, "false": False, "no": False, "none": None}[lowered]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def apply_arch(modules: list[Module], specs: list[str]) -> list[Module]:
    """Check the inferred modules against one ``--arch`` spec each (in order) and set the options they give."""
    if len(specs) != len(modules):
        names = ", ".join(m.name for m in modules)
        raise ConfigError(f"--arch was given {len(specs)} time(s) but the file holds {len(modules)} module(s) ({names}); "
                          "give one spec per module, in file order")
    for module, spec in zip(modules, specs):
        kind, values = parse_arch(spec)
        swappable = {kind, module.kind} == {"linear", "embedding"} and module.sizes.get("bias") is not True
        if kind != module.kind and not swappable:
            raise ConversionError(f"--arch {spec!r}: module {module.name} holds an {TORCH_CLASS[module.kind]} "
                                  f"({module.describe()}), not an {TORCH_CLASS[kind]}")
        if swappable and kind == "embedding":
            module.kind, module.sizes = kind, {"vocab": module.sizes["out"], "dim": module.sizes["in"]}
        elif swappable:
            module.kind, module.sizes = kind, {"in": module.sizes["dim"], "out": module.sizes["vocab"], "bias": False}
        for key, value in values.items():
            if key in SIZES[kind] and module.sizes.get(key, 0 if key == "proj" else None) != value:
                raise ShapeError(f"--arch {spec!r}: {key}={value}, but the tensors of module {module.name} give "
                                 f"{key}={module.sizes.get(key, 0)} ({module.describe()})")
            if key in OPTIONS[kind]:
                module.options[key] = value
        module.given |= set(values) | {"kind"}
    return modules


def build_layer(module: Module, dtype: Any) -> Layer:
    """The (randomly initialised) rnnkit layer for a module; its weights are loaded afterwards."""
    s, o = module.sizes, dict(module.options)
    try:
        if module.kind == "embedding":
            return Embedding(s["vocab"], s["dim"], o.get("padding_idx"), dtype=dtype, seed=0)
        if module.kind == "linear":
            return Dense(s["in"], s["out"], o.get("activation", "linear"), s["bias"], dtype=dtype, seed=0)
        cls = {"rnn": RNN, "gru": GRU, "lstm": LSTM}[module.kind]
        extra = {k: o[k] for k in ("activation", "forget_bias", "cell_clip", "proj_clip") if k in o}
        return cls(s["input"], s["hidden"], num_layers=s["layers"], bidirectional=s["bidirectional"],
                   return_sequences=not o.get("last", False), dropout=o.get("dropout", 0.0) if s["layers"] > 1 else 0.0,
                   dtype=dtype, seed=0, **({"proj_size": s["proj"]} if s.get("proj") else {}), **extra)
    except (ConfigError, TypeError) as err:
        raise ConversionError(f"module {module.name} ({module.describe()}): {err}") from None


def zero_biases(module: Module, layer: Layer) -> dict[str, np.ndarray]:
    """The zero biases, under their state_dict keys, of a recurrent module saved with ``bias=False``."""
    if module.kind not in ("rnn", "gru", "lstm") or module.sizes["bias"]:
        return {}
    from .torch import torch_names

    prefix, names = f"{module.prefix}." if module.prefix else "", torch_names(layer)
    return {prefix + names[n]: np.zeros_like(p) for n, p in layer.params.items() if ".b_" in n}
