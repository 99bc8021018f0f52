"""The fast engine: the cell modules' functions compiled with numba, chosen automatically when numba is installed.

``rnnkit.cells.{rnn,gru,lstm}`` stay the readable reference of the math; ``rnnkit.cells.fast.{rnn,gru,lstm}``
expose the same functions (``forward``, ``backward``, ``step``, and the reference's config, ``param_shapes``,
``init_params``, ``zero_state``) with the same checks and the same results to rounding, and run faster:
fused compiled elementwise kernels around NumPy's own GEMMs. Without numba, use the reference modules.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

FAMILIES = ("rnn", "gru", "lstm")


def available() -> bool:
    """True when numba can be imported (the fast modules need it)."""
    return importlib.util.find_spec("numba") is not None


def module_for(family: str) -> ModuleType | None:
    """The fast module of ``family`` ("rnn", "gru" or "lstm"), or None when numba is not installed."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if not available():
        return None
    return importlib.import_module(f"{__name__}.{family}")
