"""The fast engine: the cell modules' functions compiled with numba, chosen automatically when numba is installed.

``rnnkit.cells.{rnn,gru,lstm}`` stay the readable reference of the math; ``rnnkit.cells.fast.{rnn,gru,lstm}``
expose the same functions (``forward``, ``backward``, ``step``, and the reference's config, ``param_shapes``,
``init_params``, ``zero_state``) with the same checks and the same results to rounding, and run faster:
each time loop is one compiled function that calls NumPy's own OpenBLAS for its products (``_blas``),
batch-major like the inputs, run on blocks of batch rows in parallel threads, one per BLAS thread.
Without numba (or with a NumPy whose BLAS is not OpenBLAS), the reference modules do everything.

Importing this package does not import numba; ``module_for`` does (about 0.5 s, then about 0.5 s
more to load the cached machine code on first use; the first run ever compiles, a few seconds). When the
engine loads (its ``_jit`` module), it asks glibc's malloc to keep freed memory for reuse
(``_memory.keep_freed_memory``: a training step's large arrays then need no page fault per page;
``RNNKIT_KEEP_MALLOC_DEFAULTS=1`` opts out).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType

import numpy as np

from ..._validation import nonfinite_error

FAMILIES = ("rnn", "gru", "lstm")


def available() -> bool:
    """True when numba is installed (the fast modules need it)."""
    return importlib.util.find_spec("numba") is not None


def module_for(family: str) -> ModuleType | None:
    """The fast module of ``family`` ("rnn", "gru" or "lstm"), or None when numba is missing or broken."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    return _import(family)


def _import(name: str) -> ModuleType | None:
    if not available():
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as error:  # e.g. a numba built for another NumPy, or a NumPy without OpenBLAS
        warnings.warn(f"rnnkit's fast engine is unavailable ({error}); using the NumPy cells", RuntimeWarning,
                      stacklevel=3)
        return None


_HELPERS: dict[str, ModuleType | None] = {}  # the engine's helper modules looked up so far, None when unavailable


def _helper(name: str) -> ModuleType | None:
    """``rnnkit.cells.fast.<name>`` (``_blas``, ``_jit``), or None when unavailable (looked up once: a failed
    import would otherwise be retried, and warned about, per call)."""
    if name not in _HELPERS:
        _HELPERS[name] = _import(name)
    return _HELPERS[name]


def matmul(A: np.ndarray, B: np.ndarray, *, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """op(A) @ op(B), op(X) = X.T if trans, B 2-D, A 2-D or (without trans_a) ``(..., K)``: the fast engine's
    product, rows split over the BLAS threads (``_blas.matmul``), when the engine is available; NumPy's otherwise.

    Layers around the recurrent ones use it so that no multi-threaded OpenBLAS call (whose worker
    threads then spin for about 0.1 s) slows the parallel time loops that follow.
    """
    blas = _helper("_blas")
    if blas is None or A.dtype != B.dtype or A.dtype not in (np.float32, np.float64):
        return (A.T if trans_a else A) @ (B.T if trans_b else B)
    rows = A if trans_a else A.reshape(-1, A.shape[-1])
    C = blas.matmul(rows, B, trans_a=trans_a, trans_b=trans_b)
    return C if trans_a else C.reshape(*A.shape[:-1], C.shape[1])


def time_major(x: np.ndarray, name: str | None = None) -> np.ndarray:
    """A C-contiguous (T, B, D) copy of a batch-major ``x (B, T, D)``: the engine's (``_jit.time_major``, a compiled
    copy for the row lengths where it beats NumPy's) for float32 and float64 when the engine is available; NumPy's
    otherwise. ``name``: also check that every element is finite (``DataError`` naming it), in the same pass
    where the engine copies."""
    jit = _helper("_jit")
    if jit is None or x.dtype not in (np.float32, np.float64):
        copy = np.ascontiguousarray(x.transpose(1, 0, 2))
        if name is not None and not np.isfinite(copy).all():
            raise nonfinite_error(copy, name)
        return copy
    return jit.time_major(x, name)


def column_sums(X: np.ndarray) -> np.ndarray:
    """Σ_r X[r, :] of a 2-D X, (N,): the fast engine's parallel sums (``_blas.column_sums``) for float32 and
    float64 when the engine is available; NumPy's ``X.sum(axis=0)`` otherwise."""
    blas = _helper("_blas")
    if blas is None or X.dtype not in (np.float32, np.float64):
        return X.sum(axis=0)
    return blas.column_sums(X)
