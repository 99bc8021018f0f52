"""Converters between rnnkit and other frameworks, driven by the conventions table in :mod:`.layouts`.

Frameworks are imported lazily, inside the converter functions: ``import rnnkit.convert`` needs
only NumPy. ``from rnnkit.convert.torch import from_torch`` / ``from rnnkit.convert.keras import
from_keras`` (or the re-exports below, which import those modules' code but not the frameworks).
"""

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
from .torch import from_torch, load_state_dict_file, to_torch, torch_names

__all__ = [
    "BIAS_LAYOUTS",
    "CANONICAL_GATES",
    "LAYOUTS",
    "Layout",
    "biases_from",
    "biases_to",
    "conventions_table",
    "from_canonical",
    "from_keras",
    "from_torch",
    "load_keras_file",
    "load_state_dict_file",
    "merge_xh_kernel",
    "permute_gates",
    "split_xh_kernel",
    "to_canonical",
    "to_keras",
    "to_torch",
    "torch_names",
    "transpose",
]
