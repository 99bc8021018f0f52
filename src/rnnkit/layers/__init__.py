"""Layers: parameters and gradients over the cell math (recurrent), plus embedding, dense, dropout, pooling."""

from .base import Layer
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .pooling import LastStep, MaxPool, MeanPool
from .recurrent import GRU, LSTM, RNN, Recurrent

__all__ = ["GRU", "LSTM", "RNN", "Dense", "Dropout", "Embedding", "LastStep", "Layer", "MaxPool", "MeanPool", "Recurrent"]
