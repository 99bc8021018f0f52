"""rnnkit: recurrent neural networks in NumPy with hand-derived backpropagation through time."""

from .errors import (
    ConfigError,
    ConversionError,
    DataError,
    DTypeError,
    ModelFileError,
    RnnkitError,
    ShapeError,
    TrainingError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ConversionError",
    "DataError",
    "DTypeError",
    "ModelFileError",
    "RnnkitError",
    "ShapeError",
    "TrainingError",
    "__version__",
]
