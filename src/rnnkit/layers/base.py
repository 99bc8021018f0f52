"""The minimal layer interface every rnnkit layer implements.

A layer owns named parameters and their gradients (two dicts with the same keys), a
JSON-serialisable config that rebuilds it, and a forward/backward pair:
``forward`` caches what ``backward`` needs, ``backward`` returns the gradient of the loss
with respect to the layer's input and *overwrites* ``self.grads``. Because the cache lives
on the layer, ``backward`` always refers to the most recent ``forward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Layer:
    """Base class: ``params``/``grads`` dicts, ``get_config``/``from_config``, ``forward``/``backward``."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments that rebuild this layer (parameters excluded)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Build a layer (with fresh parameters) from the output of :meth:`get_config`."""
        return cls(**config)

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        """Compute the output for a batch and cache what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Given dL/d(output), set ``self.grads`` (overwriting them) and return dL/d(input)."""
        raise NotImplementedError
