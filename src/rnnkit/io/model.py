"""Model files: one ``.safetensors`` file holding a :class:`~rnnkit.models.Sequential` and its task.

The tensors are the model's parameters under their dotted names; the JSON document is::

    {"model": model.get_config(), "task": {...what the task needs to run again...}}

where ``task`` holds e.g. ``{"name": "lm", "vocabulary": ..., "tokenizer": ...}``. Loading rebuilds
the model from its config, checks every tensor's name, shape and dtype against it, and only then
copies the weights in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelFileError
from ..models import Sequential
from .safefile import check_tensors, read_tensors, write_tensors


def save_model(path: str | Path, model: Sequential, task: dict[str, Any] | None = None) -> None:
    """Write ``model`` and its ``task`` description to ``path`` atomically."""
    write_tensors(path, model.params, {"model": model.get_config(), "task": task or {}}, kind="model")


def load_model(path: str | Path, *, task: str | None = None) -> tuple[Sequential, dict[str, Any]]:
    """Read a model file; returns ``(model, task)``. With ``task=``, the file must be of that task."""
    tensors, document = read_tensors(path, kind="model")
    if not isinstance(document.get("model"), dict):
        raise ModelFileError(f"cannot load model file '{path}': it holds no model config. Hint: re-save it with rnnkit")
    info = document.get("task") or {}
    if task is not None and info.get("name") != task:
        found = info.get("name") or "no task"
        raise ModelFileError(
            f"cannot load model file '{path}': it is a {found!r} model, not a {task!r} one. "
            f"Hint: use the command for {found!r} models, or train a {task!r} model"
        )
    try:
        model = Sequential.from_config(document["model"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise ModelFileError(f"cannot load model file '{path}': its model config is invalid ({exc})") from None
    expected = {name: (p.shape, p.dtype) for name, p in model.params.items()}
    check_tensors(tensors, expected, path)
    for name, p in model.params.items():
        p[...] = tensors[name]
    return model, info
