"""Converters between rnnkit and other frameworks, driven by the conventions table in :mod:`.layouts`.

Frameworks are imported lazily, inside the converter functions: ``import rnnkit.convert`` needs
only NumPy (a test checks that torch, keras, onnx, tensorflow and h5py stay unimported). The
re-exports below import the converters' code, not the frameworks.

Files: :func:`describe` says what a model file of any framework holds, :func:`convert_file` converts
one file into another (``rnnkit info`` / ``rnnkit convert``).
"""

from .files import Conversion, convert_file
from .formats import describe, detect
from .keras import from_keras, load_keras_file, to_keras
from .layouts import (
    BIAS_LAYOUTS,
    CANONICAL_GATES,
    LAYOUTS,
    Layout,
    biases_from,
    biases_to,
    conventions_table,
    from_canonical,
    merge_xh_kernel,
    permute_gates,
    split_xh_kernel,
    to_canonical,
    transpose,
)
from .onnx import from_onnx, run_onnx_node, to_onnx
from .tf1 import from_tf1_lstm, load_tf1_checkpoint, to_tf1_lstm
from .torch import from_torch, load_state_dict, load_state_dict_file, read_state_dict, to_torch, torch_names

__all__ = [
    "BIAS_LAYOUTS",
    "CANONICAL_GATES",
    "Conversion",
    "LAYOUTS",
    "Layout",
    "biases_from",
    "biases_to",
    "conventions_table",
    "convert_file",
    "describe",
    "detect",
    "from_canonical",
    "from_keras",
    "from_onnx",
    "from_tf1_lstm",
    "from_torch",
    "load_keras_file",
    "load_state_dict",
    "load_state_dict_file",
    "load_tf1_checkpoint",
    "merge_xh_kernel",
    "permute_gates",
    "read_state_dict",
    "run_onnx_node",
    "split_xh_kernel",
    "to_canonical",
    "to_keras",
    "to_onnx",
    "to_tf1_lstm",
    "to_torch",
    "torch_names",
    "transpose",
]
