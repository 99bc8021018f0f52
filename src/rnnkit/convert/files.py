"""Convert a model file to another format: :func:`convert_file` picks the direction from the two file types.

Read (:func:`rnnkit.convert.formats.detect`): rnnkit ``.safetensors``, PyTorch state_dicts (``.pt``/``.pth``,
foreign ``.safetensors``; architecture inferred by :mod:`.architecture`), Keras ``.keras``/``.h5``,
``.onnx``, TF1 LSTMCell checkpoints. Written, by extension: ``.safetensors`` (rnnkit), ``.onnx``,
``.keras``, ``.pt``/``.pth``. Every conversion passes through an rnnkit :class:`~rnnkit.models.Sequential`,
so foreign -> foreign works too. :func:`describe` (what a file holds) lives in :mod:`.formats`.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..models import Sequential
from .architecture import apply_arch, assumptions, build_layer, parse_arch, zero_biases
from .formats import FORMAT_NAMES, describe, detect, read_state_dict_arrays, state_dict_modules, tf1_prefix

__all__ = ["Conversion", "convert_file", "describe", "detect", "target_format"]

TARGETS = {".safetensors": "rnnkit", ".onnx": "onnx", ".keras": "keras", ".pt": "torch", ".pth": "torch"}


@dataclasses.dataclass
class Conversion:
    """What :func:`convert_file` did: the model it carried across and what the user should know."""

    source_format: str
    target_format: str
    model: Sequential
    notes: list[str]


def target_format(path: str | Path) -> str:
    """The format a file is written in, from its extension (ConfigError for any other)."""
    suffix = Path(path).suffix.lower()
    if suffix not in TARGETS:
        raise ConfigError(f"cannot write '{path}': unknown extension {suffix or '(none)'!r}; expected .safetensors "
                          "(rnnkit model), .onnx, .keras, .pt or .pth")
    return TARGETS[suffix]


def convert_file(src: str | Path, dst: str | Path, *, arch: tuple[str, ...] | list[str] = (),
                 opset: int | None = None) -> Conversion:
    """Convert the model in ``src`` to ``dst``; the direction comes from the two file types.

    Any readable format (see the module docstring) goes to ``.safetensors`` (an rnnkit model file
    with task ``{"name": "converted", ...}``, so ``rnnkit info`` describes it), ``.onnx`` (``opset``),
    ``.keras`` or ``.pt``/``.pth`` (a state_dict of plain tensors, under ``nn.LSTM``-style names for
    a one-layer model, ``"{index}.{name}"`` otherwise). ``arch``: one spec per module of a state_dict
    or TF1 LSTM options (:mod:`.architecture`). Unsupported layers and options raise ConversionError
    naming them; shape mismatches ShapeError naming both shapes.
    """
    target = target_format(dst)
    source = detect(src)
    if Path(src).resolve() == Path(dst).resolve():
        raise ConfigError(f"IN and OUT are the same file '{src}'; give a different OUT")
    if source == target == "rnnkit":
        raise ConfigError(f"'{src}' is already an rnnkit model file; convert it to .onnx, .keras or .pt")
    if arch and source not in ("torch", "safetensors", "tf1"):
        raise ConfigError(f"--arch applies to state_dicts (.pt/.pth/.safetensors) and TF checkpoints; '{src}' "
                          f"({FORMAT_NAMES[source]}) stores its own architecture: leave --arch out")
    if opset is not None and target != "onnx":
        raise ConfigError(f"--opset applies to .onnx output only, not to '{dst}' ({FORMAT_NAMES[target]}); leave it out")
    model, notes = _read(Path(src), source, list(arch))
    notes += _write(model, Path(dst), target, opset, source=Path(src).name, source_format=source)
    return Conversion(source, target, model, notes)


def _read(path: Path, fmt: str, arch: list[str]) -> tuple[Sequential, list[str]]:
    """The model in a file of format ``fmt`` and the notes on what had to be assumed."""
    if fmt == "rnnkit":
        from ..io.model import load_model

        model, task = load_model(path)
        if task.get("name") in (None, "converted"):
            return model, []
        extras = ", ".join(sorted(set(task) - {"name"}))
        return model, [f"the network only is converted; the {task['name']!r} task's {extras} stay in the rnnkit file"]
    if fmt in ("torch", "safetensors"):
        return _read_state_dict(path, fmt, arch)
    if fmt in ("keras", "keras-h5"):
        from .keras import load_keras_file

        return _as_model(load_keras_file(path)), []
    if fmt == "onnx":
        from .onnx_import import from_onnx

        return _as_model(from_onnx(path)), []
    return _read_tf1(path, arch)


def _as_model(converted: Any) -> Sequential:
    return converted if isinstance(converted, Sequential) else Sequential([converted])


def _read_state_dict(path: Path, fmt: str, arch: list[str]) -> tuple[Sequential, list[str]]:
    from .torch import load_state_dict

    arrays, notes = read_state_dict_arrays(path, fmt)
    modules, order_note = state_dict_modules({name: a.shape for name, a in arrays.items()}, fmt)
    if arch:
        apply_arch(modules, arch)
    dtypes = {a.dtype for a in arrays.values() if a.dtype.kind == "f"}
    dtype = np.float64 if dtypes == {np.dtype(np.float64)} else np.float32
    layers = {m.prefix: build_layer(m, dtype) for m in modules}
    for m in modules:
        arrays.update(zero_biases(m, layers[m.prefix]))
    spec = layers[""] if list(layers) == [""] else layers
    return _as_model(load_state_dict(arrays, spec, str(path))), notes + order_note + assumptions(modules)


def _read_tf1(path: Path, arch: list[str]) -> tuple[Sequential, list[str]]:
    from .tf1 import from_tf1_lstm, load_tf1_checkpoint

    options: dict[str, Any] = {}
    if arch:
        if len(arch) != 1:
            raise ConfigError(f"--arch: a TF checkpoint converts to one LSTM; give one 'lstm:...' spec, got {len(arch)}")
        kind, options = parse_arch(arch[0])
        if kind != "lstm" or set(options) - {"forget_bias", "cell_clip", "proj_clip"}:
            raise ConfigError(f"--arch {arch[0]!r}: a TF1 LSTMCell takes only 'lstm:forget_bias=...,cell_clip=...,"
                              "proj_clip=...' (everything else is stored in the checkpoint)")
    notes = [] if "forget_bias" in options else ["TF1 does not store forget_bias; TF's default 1.0 assumed "
                                                 "(--arch lstm:forget_bias=... for another)"]
    return _as_model(from_tf1_lstm(load_tf1_checkpoint(tf1_prefix(path)), **options)), notes


def _write(model: Sequential, path: Path, fmt: str, opset: int | None, *, source: str, source_format: str) -> list[str]:
    """Write ``model`` in format ``fmt`` atomically; returns notes."""
    from ..io.atomic import atomic_write_bytes

    if fmt == "rnnkit":
        from ..io.model import save_model

        save_model(path, model, {"name": "converted", "source": source, "source_format": source_format})
        return []
    if fmt == "onnx":
        from .onnx_export import DEFAULT_OPSET, to_onnx

        proto = to_onnx(model, None, opset=DEFAULT_OPSET if opset is None else opset)
        atomic_write_bytes(path, proto.SerializeToString())
        float64 = any(getattr(layer, "dtype", None) == np.float64 for layer in model.layers)
        return ["the model is float64: valid ONNX, but onnxruntime runs recurrent ops in float32 only"] if float64 else []
    if fmt == "torch":
        import torch

        from .torch import to_torch

        state = to_torch(model).state_dict()
        if len(model.layers) == 1:  # one layer: the names nn.LSTM / nn.Linear itself uses
            state = {key.removeprefix("0."): value for key, value in state.items()}
        buffer = io.BytesIO()
        torch.save({key: value.detach().contiguous() for key, value in state.items()}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
        return []
    from .keras import to_keras

    keras_model = to_keras(model)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        keras_model.save(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return []
