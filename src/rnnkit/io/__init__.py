"""rnnkit's file layer: atomic writes, validated ``.safetensors`` files and training checkpoints.

- :func:`atomic_write` / :func:`atomic_write_bytes` / :func:`atomic_write_text`: a reader
  sees the old file or the new one, never a partial write.
- :func:`write_tensors` / :func:`read_tensors` / :func:`check_tensors`: the only code that
  writes and reads rnnkit ``.safetensors`` files (arrays + JSON document + checksum).
- :func:`save_checkpoint` / :func:`load_checkpoint` / :func:`restore_rng`: exact resume.
"""

from .atomic import atomic_write, atomic_write_bytes, atomic_write_text
from .checkpoint import Checkpoint, load_checkpoint, restore_rng, save_checkpoint
from .model import load_model, save_model
from .safefile import FORMAT_VERSION, check_tensors, read_tensors, write_tensors

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_tensors",
    "load_checkpoint",
    "load_model",
    "read_tensors",
    "restore_rng",
    "save_checkpoint",
    "save_model",
    "write_tensors",
]
