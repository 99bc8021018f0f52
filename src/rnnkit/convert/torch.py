"""Convert between rnnkit layers/models and PyTorch modules (``import torch`` happens on first use).

rnnkit's layout *is* PyTorch's (``layouts.LAYOUTS["torch"]``), so conversion is renaming::

    l{k}.W_ih  <->  weight_ih_l{k}        l{k}_reverse.b_hh  <->  bias_hh_l{k}_reverse
    l{k}.W_hr  <->  weight_hr_l{k}        Embedding W / Dense W, b  <->  weight / weight, bias

What :func:`from_torch` accepts:

- one ``nn.RNN`` (tanh/relu), ``nn.GRU``, ``nn.LSTM`` (``proj_size`` too), ``nn.Embedding``,
  ``nn.Linear`` or ``nn.Dropout`` -> the rnnkit layer;
- a stack: a list/tuple, ``nn.ModuleList`` or ``nn.Sequential`` of those (plus ``nn.Sigmoid``,
  ``nn.Tanh``, ``nn.ReLU``, ``nn.Softmax(dim=-1)`` or ``nn.Identity`` right after an ``nn.Linear``,
  folded into the Dense activation) -> :class:`rnnkit.models.Sequential`. Torch cannot *run* an
  ``nn.Sequential`` holding an RNN (it returns a tuple); the modules are only read, in order, so
  pass e.g. ``[net.emb, net.lstm, net.fc]`` from your own ``nn.Module``. Every recurrent module
  returns its output sequence, except that ``return_sequences=False`` makes the *last* recurrent
  module return its final ``h`` (``h_n[-dirs:]`` concatenated, i.e. ``fc(h_n[-1])`` style heads);
- the ``TorchStack`` :func:`to_torch` returns for a model (it records ``return_sequences``).

``batch_first`` may be either: rnnkit layers are always batch-first, so feed a converted time-major
module's inputs as ``x.transpose(1, 0, 2)``; :func:`to_torch` takes ``batch_first`` (default True).

Options torch lacks (LSTM ``peepholes``, ``forget_bias``, ``cell_clip``, ``proj_clip``, GRU
``reset_after=False``, RNN ``sigmoid``/``linear``, ``recurrent_dropout``, ``merge_mode="sum"``) raise
ConversionError on export.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..errors import ConversionError, ModelFileError
from ..layers.base import Layer
from ..layers.dense import Dense
from ..layers.dropout import Dropout
from ..layers.embedding import Embedding
from ..layers.recurrent import GRU, LSTM, RNN, Recurrent
from ..models import Sequential
from .layouts import assign_params

Converted = Union[Layer, Sequential]
TORCH_PARAM = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh", "W_hr": "weight_hr"}
LINEAR_PARAM = {"W": "weight", "b": "bias"}  # Dense and Embedding (Embedding has W only)
TORCH_RECURRENT = {"RNN_TANH": (RNN, "tanh"), "RNN_RELU": (RNN, "relu"), "GRU": (GRU, None), "LSTM": (LSTM, None)}


def _torch():
    import torch

    return torch


# ---- names -------------------------------------------------------------------------------


def torch_names(layer: Layer) -> dict[str, str]:
    """``{rnnkit parameter name: PyTorch state_dict name}`` for one layer, e.g. ``l1_reverse.W_ih -> weight_ih_l1_reverse``."""
    if isinstance(layer, Recurrent):
        names = {}
        for name in layer.params:
            prefix, param = name.split(".")  # "l1_reverse", "W_ih"
            names[name] = f"{TORCH_PARAM[param]}_l{prefix[1:]}"
        return names
    return {name: LINEAR_PARAM[name] for name in layer.params}


def _load(layer: Layer, state: Mapping[str, Any], where: str) -> Layer:
    """Copy a torch-named state (tensors or arrays) into ``layer.params`` via :func:`torch_names`."""
    by_torch = {torch_name: name for name, torch_name in torch_names(layer).items()}
    arrays = {by_torch.get(key, key): _numpy(value) for key, value in state.items()}
    assign_params(layer.params, arrays, where)
    return layer


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _activation_of(m: Any) -> str | None:
    """The Dense activation an activation module stands for (None if ``m`` is not one)."""
    nn = _torch().nn
    kinds = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.Softmax: "softmax", nn.Identity: "linear"}
    return kinds.get(type(m))


def _dtype(module: Any, where: str) -> str:
    """rnnkit dtype name of a module's parameters (float32 or float64)."""
    dtypes = {str(p.dtype).removeprefix("torch.") for p in module.parameters()}
    if not dtypes <= {"float32", "float64"} or len(dtypes) > 1:
        raise ConversionError(f"{where}: parameters must be all float32 or all float64, got {sorted(dtypes)}")
    return dtypes.pop() if dtypes else "float32"


# ---- torch -> rnnkit ---------------------------------------------------------------------


def _recurrent_from_torch(m: Any, return_sequences: bool, where: str) -> Recurrent:
    cls, activation = TORCH_RECURRENT[m.mode]
    options = {"activation": activation} if activation else {}
    if m.mode == "LSTM" and m.proj_size:
        options["proj_size"] = m.proj_size
    layer = cls(
        m.input_size, m.hidden_size, num_layers=m.num_layers, bidirectional=m.bidirectional,
        return_sequences=return_sequences, dropout=m.dropout if m.num_layers > 1 else 0.0,  # torch ignores it at L=1
        dtype=_dtype(m, where), seed=0, **options,
    )
    state = dict(m.state_dict())
    if not m.bias:  # rnnkit always has biases: bias=False is zero biases
        state.update({torch_names(layer)[n]: np.zeros_like(p) for n, p in layer.params.items() if ".b_" in n})
    return _load(layer, state, where)


def _module_from_torch(m: Any, return_sequences: bool, where: str) -> Layer:
    """One torch module -> one rnnkit layer."""
    nn = _torch().nn
    if isinstance(m, nn.RNNBase):
        return _recurrent_from_torch(m, return_sequences, where)
    if isinstance(m, nn.Embedding):
        for option, default in [("max_norm", None), ("scale_grad_by_freq", False)]:
            if getattr(m, option) != default:
                raise ConversionError(f"{where}: option {option}={getattr(m, option)!r} has no rnnkit counterpart")
        layer = Embedding(m.num_embeddings, m.embedding_dim, m.padding_idx, dtype=_dtype(m, where), seed=0)
        return _load(layer, m.state_dict(), where)
    if isinstance(m, nn.Linear):
        layer = Dense(m.in_features, m.out_features, use_bias=m.bias is not None, dtype=_dtype(m, where), seed=0)
        return _load(layer, m.state_dict(), where)
    if isinstance(m, nn.Dropout):
        return Dropout(m.p)
    raise ConversionError(
        f"{where}: {type(m).__name__} has no rnnkit counterpart; supported: nn.RNN, nn.GRU, nn.LSTM, nn.Embedding, "
        "nn.Linear, nn.Dropout (and an activation module right after an nn.Linear)"
    )


def _fold_activation(layers: list[Layer], m: Any, where: str) -> None:
    """Make an activation module the activation of the Dense before it."""
    activation = _activation_of(m)
    if activation == "softmax" and m.dim not in (-1, None):
        raise ConversionError(f"{where}: nn.Softmax(dim={m.dim}) is not over the last axis; only dim=-1 converts")
    if not layers or not isinstance(layers[-1], Dense) or layers[-1].activation != "linear":
        raise ConversionError(f"{where}: {type(m).__name__} must follow an nn.Linear without an activation")
    previous = layers[-1]
    dense = Dense(previous.in_features, previous.out_features, activation, previous.use_bias, dtype=previous.dtype, seed=0)
    assign_params(dense.params, previous.params, where)
    layers[-1] = dense


def from_torch(module: Any, *, return_sequences: bool | None = None) -> Converted:
    """A PyTorch module (or stack of modules, see the module docstring) -> an rnnkit layer or Sequential.

    ``return_sequences``: None keeps recorded flags (or True); a bool sets the last recurrent layer's.
    Raises ConversionError naming the module and option it cannot convert, ShapeError on a shape mismatch.
    """
    torch = _torch()
    stack_types = (list, tuple, torch.nn.ModuleList, torch.nn.Sequential)
    if not isinstance(module, stack_types):
        flag = True if return_sequences is None else return_sequences
        return _module_from_torch(module, flag, f"torch {type(module).__name__}")
    modules = list(module)
    if isinstance(module, _torch_stack_class()):
        modules = module.entries()
        recorded = [flag for m, flag in zip(module, module.return_sequences) if isinstance(m, torch.nn.RNNBase)]
        return_sequences = recorded[-1] if recorded and return_sequences is None else return_sequences
    if not modules:
        raise ConversionError("from_torch got an empty stack; pass at least one module")
    recurrent = [i for i, m in enumerate(modules) if isinstance(m, torch.nn.RNNBase)]
    layers: list[Layer] = []
    for i, m in enumerate(modules):
        where = f"torch stack[{i}] {type(m).__name__}"
        if _activation_of(m) is not None:
            _fold_activation(layers, m, where)
            continue
        last = recurrent and i == recurrent[-1] and return_sequences is not None
        flag = return_sequences if last else True
        layers.append(_module_from_torch(m, flag, where))
    return Sequential(layers)


# ---- rnnkit -> torch ---------------------------------------------------------------------


def _check_exportable(layer: Recurrent, where: str) -> None:
    """ConversionError for every rnnkit option ``nn.RNN/GRU/LSTM`` cannot express."""
    config = layer.get_config()
    unsupported = {
        "activation": lambda v: v not in (None, "tanh", "relu"),
        "reset_after": lambda v: v is False,
        "peepholes": lambda v: v is True,
        "forget_bias": lambda v: v not in (None, 0.0),
        "cell_clip": lambda v: v is not None,
        "proj_clip": lambda v: v is not None,
        "recurrent_dropout": lambda v: v > 0,
        "merge_mode": lambda v: v != "concat",  # torch concatenates [forward, reverse]
    }
    for option, bad in unsupported.items():
        if option in config and bad(config[option]):
            raise ConversionError(
                f"{where}: option {option}={config[option]!r} has no PyTorch counterpart; "
                "rebuild the layer without it to export"
            )


def _recurrent_to_torch(layer: Recurrent, batch_first: bool, where: str) -> Any:
    _check_exportable(layer, where)
    nn = _torch().nn
    config = layer.get_config()
    kwargs = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional, dropout=layer.dropout,
                  batch_first=batch_first, dtype=getattr(_torch(), layer.dtype.name))
    if layer.cell == "rnn":
        module = nn.RNN(layer.input_size, layer.hidden_size, nonlinearity=config["activation"], **kwargs)
    elif layer.cell == "gru":
        module = nn.GRU(layer.input_size, layer.hidden_size, **kwargs)
    else:
        module = nn.LSTM(layer.input_size, layer.hidden_size, proj_size=config["proj_size"], **kwargs)
    return _fill(module, layer)


def _fill(module: Any, layer: Layer) -> Any:
    """Copy ``layer.params`` into ``module`` under the torch names (strict)."""
    torch = _torch()
    names = torch_names(layer)
    state = {names[n]: torch.from_numpy(np.ascontiguousarray(p)) for n, p in layer.params.items()}
    module.load_state_dict(state, strict=True)
    return module


def _layer_to_torch(layer: Layer, batch_first: bool, where: str) -> tuple[Any, str]:
    """One rnnkit layer -> (torch module, activation applied after it)."""
    nn, torch = _torch().nn, _torch()
    if isinstance(layer, Recurrent):
        return _recurrent_to_torch(layer, batch_first, where), "linear"
    if isinstance(layer, Embedding):
        m = nn.Embedding(layer.num_embeddings, layer.embedding_dim, layer.padding_idx, dtype=getattr(torch, layer.dtype.name))
        return _fill(m, layer), "linear"
    if isinstance(layer, Dense):
        m = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias, dtype=getattr(torch, layer.dtype.name))
        return _fill(m, layer), layer.activation
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate), "linear"
    raise ConversionError(f"{where}: {type(layer).__name__} has no PyTorch counterpart in rnnkit.convert")


def to_torch(obj: Converted, *, batch_first: bool = True) -> Any:
    """An rnnkit layer or Sequential -> a PyTorch module computing the same function.

    A recurrent layer becomes ``nn.RNN/GRU/LSTM`` (``batch_first`` as given); a Dense with an
    activation ``nn.Sequential(nn.Linear, activation)``. A :class:`Sequential` becomes a
    ``TorchStack`` (an ``nn.Sequential`` subclass, always batch-first) whose ``forward(x, lengths=None)``
    packs sequences by ``lengths`` like rnnkit; its ``state_dict`` keys are ``"{index}.{torch name}"``.
    """
    if isinstance(obj, Sequential):
        modules, activations = zip(
            *(_layer_to_torch(layer, True, f"layer {i} ({type(layer).__name__})") for i, layer in enumerate(obj.layers))
        )
        sequences = [getattr(layer, "return_sequences", True) for layer in obj.layers]
        return _torch_stack_class()(list(modules), list(activations), sequences)
    module, activation = _layer_to_torch(obj, batch_first, type(obj).__name__)
    if activation != "linear":
        return _torch().nn.Sequential(module, _activation_module(activation))
    return module


def _activation_module(activation: str) -> Any:
    nn = _torch().nn
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=-1)}[activation]()


@functools.cache
def _torch_stack_class() -> type:
    """Define (once, after importing torch) the module :func:`to_torch` returns for a Sequential."""
    torch = _torch()
    nn, rnn_utils = torch.nn, torch.nn.utils.rnn

    class TorchStack(nn.Sequential):
        """rnnkit Sequential in PyTorch: ``forward(x, lengths=None)``, batch-first.

        ``activations[i]`` is applied after module i; ``return_sequences[i]`` says whether recurrent
        module i returns its output sequence ``(B, T, dirs*R)`` (zeros past each length) or its final
        ``h`` ``(B, dirs*R)`` (``h_n[-dirs:]`` concatenated), as the rnnkit layer did.
        """

        def __init__(self, modules: list[nn.Module], activations: list[str], return_sequences: list[bool]) -> None:
            super().__init__(*modules)
            self.activations, self.return_sequences = list(activations), list(return_sequences)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
            for module, activation, sequences in zip(self, self.activations, self.return_sequences):
                x = self.recurrent(module, x, lengths, sequences) if isinstance(module, nn.RNNBase) else module(x)
                if activation != "linear":
                    x = torch.softmax(x, dim=-1) if activation == "softmax" else getattr(torch, activation)(x)
            return x

        @staticmethod
        def recurrent(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor | None, sequences: bool) -> torch.Tensor:
            if lengths is None:
                out, state = rnn(x)
            else:
                lengths = torch.as_tensor(lengths).cpu()
                packed = rnn_utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                out, state = rnn(packed)
                out, _ = rnn_utils.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            if sequences:
                return out
            h = state[0] if isinstance(state, tuple) else state  # (L*dirs, B, R)
            dirs = 2 if rnn.bidirectional else 1
            return torch.cat(list(h[-dirs:]), dim=1)  # (B, dirs*R): [forward, reverse]

        def entries(self) -> list[nn.Module]:
            """The modules in order, each activation as a module after its Linear (what from_torch reads)."""
            out = []
            for module, activation in zip(self, self.activations):
                out += [module] if activation == "linear" else [module, _activation_module(activation)]
            return out

    return TorchStack


# ---- state_dict files --------------------------------------------------------------------


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The ``{key: tensor}`` of a ``torch.save(module.state_dict())`` file, read with ``weights_only=True``.

    Nothing is unpickled beyond tensors and containers; a file holding anything else raises ModelFileError.
    """
    torch = _torch()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for foreign files
        raise ModelFileError(f"{path}: not a weights-only PyTorch state_dict file ({type(err).__name__}: {err})") from err
    if not isinstance(state, Mapping):
        raise ModelFileError(f"{path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    return dict(state)


def load_state_dict(state: Mapping[str, Any], spec: Converted | Mapping[str, Layer], where: str = "state_dict") -> Converted:
    """Copy a torch-named state (tensors or arrays) into the layers of ``spec``; returns the filled architecture.

    ``spec`` is the architecture, whose parameters are overwritten:

    - an rnnkit layer: keys are its torch names (``weight_ih_l0``, ...);
    - a Sequential: keys ``"{index}.{torch name}"`` (an ``nn.Sequential``/``nn.ModuleList`` of the same
      modules, or the :func:`to_torch` module);
    - ``{prefix: layer}``: keys ``"{prefix}.{torch name}"`` (your own ``nn.Module``'s attributes, e.g.
      ``{"emb": Embedding(...), "lstm": LSTM(...), "fc": Dense(...)}``); returns a Sequential of the layers in order.

    Missing or unexpected keys raise ConversionError, shape mismatches ShapeError (``where`` names the source).
    """
    if isinstance(spec, Layer):
        return _load(spec, state, where)
    if isinstance(spec, Sequential):
        prefixed = {str(i): layer for i, layer in enumerate(spec.layers)}
    elif isinstance(spec, Mapping):
        prefixed = dict(spec)
    else:
        raise ConversionError(f"spec must be an rnnkit layer, a Sequential or a {{prefix: layer}} dict, got {type(spec).__name__}")
    claimed = set()
    for prefix, layer in prefixed.items():
        own = {key[len(prefix) + 1 :]: value for key, value in state.items() if key.startswith(prefix + ".")}
        claimed |= {f"{prefix}.{key}" for key in own}
        _load(layer, own, f"{where} [{prefix}]")
    unexpected = sorted(set(state) - claimed)
    if unexpected:
        raise ConversionError(f"{where}: keys {unexpected} belong to no layer of spec (prefixes {sorted(prefixed)})")
    return spec if isinstance(spec, Sequential) else Sequential(list(prefixed.values()))


def load_state_dict_file(path: str | Path, spec: Converted | Mapping[str, Layer]) -> Converted:
    """Load a ``torch.save(module.state_dict())`` file into ``spec`` (see :func:`load_state_dict`).

    The file is read with ``torch.load(weights_only=True)`` (:func:`read_state_dict`): nothing is
    unpickled beyond tensors.
    """
    return load_state_dict(read_state_dict(path), spec, str(path))
