"""The recurrent math: one module per family, pure forward/backward/step functions over parameter dicts.

``rnn``, ``gru`` and ``lstm`` share one contract (see docs/conventions.md): ``forward(p, cfg, x,
state0, lengths, rec_mask) -> (y, state, cache)`` on time-major ``x (T, B, D)``, ``backward(p, cfg,
cache, dy, dstate) -> (grads, dx, dstate0)``, and ``step`` for streaming.
"""

from . import gru, lstm, rnn
from .gru import GRUConfig
from .lstm import LSTMConfig
from .rnn import RNNConfig

FAMILIES = {"rnn": rnn, "gru": gru, "lstm": lstm}

__all__ = ["FAMILIES", "GRUConfig", "LSTMConfig", "RNNConfig", "gru", "lstm", "rnn"]
