"""Embedding: a lookup table from integer ids to vectors.

Forward, for ids ``x (B, T)`` and the table ``W (V, E)``::

    y[b, t] = W[x[b, t]]                                  # (B, T, E)

Backward scatters the output gradient back onto the rows that were read; an id that occurs
several times receives the sum of its gradients::

    dW[v] = sum_{(b, t): x[b, t] = v} dy[b, t]            # (V, E)

The ``padding_idx`` row (if any) is initialised to zeros and never receives a gradient, as in
PyTorch's ``nn.Embedding``. Ids are not differentiable, so ``backward`` returns ``None``.
With ``trainable=False`` the gradient of the whole table is zero (fixed pretrained vectors: an
optimizer's update of a zero gradient is zero, as long as it applies no weight decay).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_rng, check_dtype, check_float_array, check_positive_int
from ..errors import ConfigError, DataError, DTypeError, ShapeError
from .base import Layer


class Embedding(Layer):
    """Map integer ids ``(...)`` to vectors ``(..., E)``; usually ids ``(B, T)`` -> ``(B, T, E)``.

    Args:
        num_embeddings: V, the vocabulary size; valid ids are ``0 .. V-1``.
        embedding_dim: E, the size of each vector.
        padding_idx: an id whose row stays zero and untrained (e.g. the padding id), or None.
        trainable: False keeps the table fixed (its gradient is zero), e.g. for pretrained vectors.
        dtype: float32 (default) or float64.
        seed: seeds the initialisation ``W ~ N(0, 1)`` (PyTorch's).

    Parameters: ``W (V, E)``, row ``v`` is the vector of id ``v`` (PyTorch ``weight``).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        trainable: bool = True,
        dtype: Any = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(trainable, (bool, np.bool_)):
            raise ConfigError(f"trainable must be True or False, got {trainable!r}")
        self.trainable = bool(trainable)
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.padding_idx = _check_padding_idx(padding_idx, self.num_embeddings)
        self.dtype = check_dtype(dtype)
        W = as_rng(seed).standard_normal((self.num_embeddings, self.embedding_dim)).astype(self.dtype)
        if self.padding_idx is not None:
            W[self.padding_idx] = 0.0
        self.params["W"] = W
        self.grads["W"] = np.zeros_like(W)
        self._ids: np.ndarray | None = None

    @classmethod
    def from_pretrained(cls, matrix: np.ndarray, padding_idx: int | None = None, *, trainable: bool = True) -> Embedding:
        """An Embedding whose table is a copy of ``matrix (V, E)`` (e.g. word2vec vectors).

        The ``padding_idx`` row is kept as given (PyTorch does the same) but never trained;
        ``trainable=False`` freezes the whole table (PyTorch's ``freeze=True``).
        """
        matrix = check_float_array(matrix, "matrix", ndim=2)
        layer = cls(matrix.shape[0], matrix.shape[1], padding_idx, trainable=trainable, dtype=matrix.dtype, seed=0)
        layer.params["W"][...] = matrix
        return layer

    def get_config(self) -> dict[str, Any]:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "trainable": self.trainable,
            "dtype": self.dtype.name,
        }

    def output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``(...)`` ids -> ``(..., E)``; a float feature axis in front of an Embedding is an error."""
        if len(input_shape) != 2:
            raise ShapeError(
                f"Embedding takes integer ids of shape (batch, time), got an input of shape {input_shape}; "
                "put the Embedding first, directly on the ids"
            )
        return (*input_shape, self.embedding_dim)

    def forward(self, x: np.ndarray, *, lengths: np.ndarray | None = None, training: bool = False) -> np.ndarray:
        """Look up ``x (B, T)`` integer ids -> ``(B, T, E)``. ``lengths`` and ``training`` are unused."""
        self._ids = self._check_ids(x)
        return self.params["W"][self._ids]  # (B, T, E)

    def backward(self, dy: np.ndarray) -> None:
        """Scatter-add ``dy (B, T, E)`` into ``self.grads["W"]``; ids have no gradient, so return None."""
        if self._ids is None:
            raise ConfigError("backward() needs the cache of a forward(); call forward() first")
        dy = check_float_array(
            dy, "dy", shape=(*self._ids.shape, self.embedding_dim), dtype=self.dtype, allow_nonfinite=True
        )
        dW = np.zeros_like(self.params["W"])  # (V, E)
        if not self.trainable:
            self.grads = {"W": dW}
            return None
        # through y = W[x]: dW[v] = sum of the dy rows whose id is v (rows grouped by a stable sort, then summed)
        ids = self._ids.ravel()
        if ids.size:
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])  # first row of each distinct id
            dW[sorted_ids[starts]] = np.add.reduceat(dy.reshape(-1, self.embedding_dim)[order], starts, axis=0)
        if self.padding_idx is not None:
            dW[self.padding_idx] = 0.0
        self.grads = {"W": dW}
        return None

    def _check_ids(self, x: Any) -> np.ndarray:
        """Integer ids in [0, V), as an array."""
        ids = np.asarray(x)
        if ids.dtype.kind not in "iu":
            raise DTypeError(
                f"Embedding input must be integer ids, got dtype {ids.dtype}; "
                "convert with x.astype(np.int64) (and feed float features to a recurrent or Dense layer instead)"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise DataError(
                f"Embedding ids must lie in [0, {self.num_embeddings - 1}] (vocabulary size num_embeddings="
                f"{self.num_embeddings}), got min id {ids.min()} and max id {ids.max()}; "
                "build the Embedding with a larger num_embeddings or map unknown tokens to an <unk> id"
            )
        return ids


def _check_padding_idx(padding_idx: Any, num_embeddings: int) -> int | None:
    """None, or an id in [0, V)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise ConfigError(f"padding_idx must be an integer id or None, got {padding_idx!r}")
    if not 0 <= padding_idx < num_embeddings:
        raise ConfigError(
            f"padding_idx must be an id in [0, {num_embeddings - 1}] (num_embeddings={num_embeddings}), "
            f"got {padding_idx}"
        )
    return int(padding_idx)
