"""Training checkpoints: everything needed to resume training exactly where it stopped.

A checkpoint is an rnnkit safetensors file of kind ``"checkpoint"`` (see :mod:`.safefile`):

- tensors ``params/<name>``, ``optimizer/<name>`` and ``extra/<name>`` hold the model
  parameters, the optimizer's arrays (moments, velocities) and extra arrays such as a
  carried RNN state, all bit-exact;
- the JSON document holds the optimizer's scalars (config, step), the random generators'
  states, the training progress (epoch, step, batch position, best metric) and the config.

Random generator states are NumPy ``Generator.bit_generator.state`` dicts. PCG64's state
holds Python ints above 2**64, which JSON stores exactly; arrays inside a state (MT19937's
key, Philox's counter) are stored as tagged lists of ints. :func:`restore_rng` turns a
state back into a Generator whose next draws equal those of the saved one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelFileError
from .safefile import read_tensors, write_tensors

__all__ = ["Checkpoint", "load_checkpoint", "restore_rng", "save_checkpoint"]

# tensor-name prefix -> the group of arrays stored under it
_PARAMS, _OPTIMIZER, _EXTRA = "params/", "optimizer/", "extra/"
_DOCUMENT_KEYS = ("optimizer_state", "rng_states", "progress", "config")
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox, np.random.SFC64)
}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded training checkpoint (the arguments of :func:`save_checkpoint`, read back)."""

    params: dict[str, np.ndarray]  # parameter name -> array, e.g. "layers.0.cell.W_ih"
    optimizer_state: dict[str, Any]  # optimizer.state_dict(): {"config": ..., "step": ..., "arrays": {...}}
    rng_states: dict[str, dict[str, Any]]  # generator name -> bit_generator.state; see restore_rng
    progress: dict[str, Any]  # epoch, step, batch position, best metric, ...
    config: dict[str, Any]  # the model and training configuration
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. the carried RNN state


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    params: Mapping[str, np.ndarray],
    optimizer_state: Mapping[str, Any],
    rng_states: Mapping[str, Mapping[str, Any]],
    progress: Mapping[str, Any],
    config: Mapping[str, Any],
    extra_arrays: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Atomically write a training checkpoint to ``path``.

    ``optimizer_state`` is an optimizer's ``state_dict()``: its ``"arrays"`` entry (name ->
    array) is stored as tensors, every other entry must be plain JSON. ``rng_states`` maps a
    name to ``generator.bit_generator.state``. ``progress`` and ``config`` must be plain JSON
    (tuples come back as lists; use None rather than inf for "no best loss yet").
    """
    for name, value in (("params", params), ("optimizer_state", optimizer_state), ("rng_states", rng_states),
                        ("progress", progress), ("config", config)):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a dict, got {type(value).__name__}")
    optimizer_scalars = {k: v for k, v in optimizer_state.items() if k != "arrays"}
    for name, state in rng_states.items():
        _check_rng_state(state, f"rng_states[{name!r}]")

    tensors = {
        **_prefixed(_PARAMS, params, "params"),
        **_prefixed(_OPTIMIZER, optimizer_state.get("arrays", {}), "optimizer_state['arrays']"),
        **_prefixed(_EXTRA, extra_arrays or {}, "extra_arrays"),
    }
    document = {
        "optimizer_state": optimizer_scalars,
        "rng_states": {name: _encode_arrays(dict(state)) for name, state in rng_states.items()},
        "progress": dict(progress),
        "config": dict(config),
    }
    write_tensors(path, tensors, document, kind="checkpoint")


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`; arrays are bit-exact.

    Raises ModelFileError if the file is missing, damaged, not a checkpoint, or its random
    generator states cannot be restored. The returned ``optimizer_state`` always has ``"arrays"``.
    """
    tensors, document = read_tensors(path, kind="checkpoint")

    def fail(problem: str) -> ModelFileError:
        return ModelFileError(
            f"cannot load checkpoint '{path}': {problem}. Hint: the file is damaged or was not written "
            "by save_checkpoint; resume from another checkpoint"
        )

    missing = [key for key in _DOCUMENT_KEYS if not isinstance(document.get(key), dict)]
    if missing:
        raise fail(f"its document lacks {', '.join(missing)}")
    groups: dict[str, dict[str, np.ndarray]] = {_PARAMS: {}, _OPTIMIZER: {}, _EXTRA: {}}
    for name, array in tensors.items():
        prefix = next((p for p in groups if name.startswith(p)), None)
        if prefix is None:
            raise fail(f"tensor '{name}' is not under params/, optimizer/ or extra/")
        groups[prefix][name[len(prefix) :]] = array

    rng_states = {}
    for name, encoded in document["rng_states"].items():
        try:
            rng_states[name] = _decode_arrays(encoded)
            _check_rng_state(rng_states[name], f"rng_states[{name!r}]")
        except (ConfigError, TypeError, ValueError) as e:
            raise fail(f"its random generator state {name!r} is invalid ({e})") from None

    return Checkpoint(
        params=groups[_PARAMS],
        optimizer_state={**document["optimizer_state"], "arrays": groups[_OPTIMIZER]},
        rng_states=rng_states,
        progress=document["progress"],
        config=document["config"],
        extra_arrays=groups[_EXTRA],
    )


def restore_rng(state: Mapping[str, Any]) -> np.random.Generator:
    """Return a Generator continuing exactly from ``state`` (a ``bit_generator.state`` dict).

    Supported bit generators: PCG64 (NumPy's default), PCG64DXSM, MT19937, Philox, SFC64.
    """
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    if name not in _BIT_GENERATORS:
        raise ConfigError(
            f"state must be a bit_generator.state dict whose 'bit_generator' is one of {sorted(_BIT_GENERATORS)}, "
            f"got {name!r} in {type(state).__name__}; pass rng.bit_generator.state"
        )
    bit_generator = _BIT_GENERATORS[name](0)
    try:
        bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"state is not a valid {name} state ({e!r}); pass rng.bit_generator.state") from None
    return np.random.Generator(bit_generator)


def _check_rng_state(state: Any, where: str) -> None:
    """Raise ConfigError (naming ``where``) unless ``state`` can be restored."""
    if isinstance(state, np.random.Generator):
        raise ConfigError(f"{where} is a Generator; pass its state instead: rng.bit_generator.state")
    try:
        restore_rng(state)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _prefixed(prefix: str, arrays: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Name each array ``prefix + name``; names must be strings."""
    if not isinstance(arrays, Mapping):
        raise ConfigError(f"{where} must be a dict of name -> array, got {type(arrays).__name__}")
    for name in arrays:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where} has key {name!r}; array names must be non-empty strings")
    return {prefix + name: array for name, array in arrays.items()}


def _encode_arrays(value: Any) -> Any:
    """Make a bit-generator state plain JSON: integer arrays become {"__ndarray__": dtype, "values": [...]}."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.dtype.name, "values": value.tolist()}
    if isinstance(value, dict):
        return {key: _encode_arrays(item) for key, item in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _decode_arrays(value: Any) -> Any:
    """Inverse of :func:`_encode_arrays` (integer dtypes only)."""
    if isinstance(value, dict) and "__ndarray__" in value:
        dtype = np.dtype(value["__ndarray__"])
        if dtype.kind not in "iu":
            raise ValueError(f"array dtype {dtype} is not an integer type")
        return np.array(value["values"], dtype=dtype)
    if isinstance(value, dict):
        return {key: _decode_arrays(item) for key, item in value.items()}
    return value
