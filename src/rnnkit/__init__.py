"""rnnkit: recurrent neural networks in NumPy with hand-derived backpropagation through time.

The parts, each importing only from the ones before it:

- :mod:`rnnkit.cells`: the math of the simple RNN, GRU and LSTM (forward, BPTT, streaming step)
- :mod:`rnnkit.layers`: recurrent layers over the cells; Embedding, Dense, Dropout, pooling
- :mod:`rnnkit.models`: :class:`Sequential`
- :mod:`rnnkit.losses`, :mod:`rnnkit.optim`, :mod:`rnnkit.schedules`, :mod:`rnnkit.init`,
  :mod:`rnnkit.metrics`, :mod:`rnnkit.train`: training
- :mod:`rnnkit.data`, :mod:`rnnkit.io`: data preparation; model files and checkpoints
- :mod:`rnnkit.diagnostics`: gradient flow through time and gate activity
- :mod:`rnnkit.tasks`: forecasting, language models, text classification, the tutorials' demos
- :mod:`rnnkit.convert`: PyTorch, Keras 3, TF1 and ONNX
"""

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
from .io import load_model, save_model
from .layers import GRU, LSTM, RNN, Dense, Dropout, Embedding, LastStep, MeanPool, Recurrent
from .models import Sequential
from .train import EarlyStopping, History, evaluate, fit, fit_stream

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "ConfigError",
    "ConversionError",
    "DTypeError",
    "DataError",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Embedding",
    "History",
    "LastStep",
    "MeanPool",
    "ModelFileError",
    "Recurrent",
    "RnnkitError",
    "Sequential",
    "ShapeError",
    "TrainingError",
    "__version__",
    "evaluate",
    "fit",
    "fit_stream",
    "load_model",
    "save_model",
]
