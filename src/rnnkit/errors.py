"""Exceptions raised by rnnkit.

Every error rnnkit raises on bad input derives from :class:`RnnkitError` *and*
from the matching builtin (``ValueError`` or ``TypeError``), so callers can
catch either. Messages say what was wrong, what was expected and how to fix it.
"""

from __future__ import annotations


class RnnkitError(Exception):
    """Base class of every error rnnkit raises on purpose."""


class ShapeError(RnnkitError, ValueError):
    """An array has the wrong rank or size."""


class DTypeError(RnnkitError, TypeError):
    """An array has the wrong dtype (e.g. integers where floats are needed)."""


class ConfigError(RnnkitError, ValueError):
    """A hyperparameter or option is out of range or inconsistent."""


class DataError(RnnkitError, ValueError):
    """Input data are unusable: empty, non-finite, malformed, unknown columns or tokens."""


class ModelFileError(RnnkitError, ValueError):
    """A model or checkpoint file cannot be read: not ours, corrupted, or from a newer format."""


class ConversionError(RnnkitError, ValueError):
    """A foreign model uses a layer or option rnnkit cannot convert faithfully."""


class TrainingError(RnnkitError, RuntimeError):
    """Training cannot continue (e.g. the loss became NaN or Inf)."""
