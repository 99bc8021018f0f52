"""The fast engine: the cell modules' functions compiled with numba, chosen automatically when numba is installed.

``rnnkit.cells.{rnn,gru,lstm}`` stay the readable reference of the math; ``rnnkit.cells.fast.{rnn,gru,lstm}``
expose the same functions (``forward``, ``backward``, ``step``, and the reference's config, ``param_shapes``,
``init_params``, ``zero_state``) with the same checks and the same results to rounding, and run faster:
fused compiled elementwise kernels around NumPy's own GEMMs (one BLAS in the process), and whole
compiled time loops for small problems. Without numba, the reference modules do everything.

Importing this package does not import numba; ``module_for`` does (about 0.5 s, then about 0.5 s
more to load the cached machine code on first use; the first run ever compiles, a few seconds).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType

FAMILIES = ("rnn", "gru", "lstm")


def available() -> bool:
    """True when numba is installed (the fast modules need it)."""
    return importlib.util.find_spec("numba") is not None


def module_for(family: str) -> ModuleType | None:
    """The fast module of ``family`` ("rnn", "gru" or "lstm"), or None when numba is missing or broken."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if not available():
        return None
    try:
        return importlib.import_module(f"{__name__}.{family}")
    except ImportError as error:  # e.g. a numba built for another NumPy: fall back to the reference
        warnings.warn(f"rnnkit's fast engine is unavailable ({error}); using the NumPy cells", RuntimeWarning,
                      stacklevel=2)
        return None
