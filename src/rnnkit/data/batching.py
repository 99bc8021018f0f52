"""Batches: padding with lengths, seeded resumable minibatch order, and a stream batcher for
stateful truncated BPTT."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .._validation import as_rng, check_choice, check_positive_int
from ..errors import ConfigError, DataError, DTypeError, ShapeError

PAD_ID = 0  # the id padding uses (``Vocabulary.pad_id``)


def pad_sequences(
    sequences: Sequence[Sequence[int] | np.ndarray], max_len: int | None = None, truncate: str = "pre"
) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length id sequences into one padded batch, padding at the END (rnnkit's convention).

        ids[b, t] = sequences[b][t]  for t < lengths[b],   PAD_ID (0) after
        ids: (B, T) int64,  lengths: (B,) int64,  T = min(max_len, longest sequence)

    Sequences longer than ``max_len`` are truncated: "pre" drops their first tokens (keeps the end,
    which the last RNN state sees), "post" drops their last tokens. T never exceeds the longest
    sequence, so no column is all padding. Empty sequences raise DataError (an RNN needs at least one
    step; drop empty texts first) rather than being silently replaced.
    """
    truncate = check_choice(truncate, "truncate", ("pre", "post"))
    if max_len is not None:
        max_len = check_positive_int(max_len, "max_len")
    if len(sequences) == 0:
        raise DataError("sequences is empty; pad_sequences needs at least one sequence")
    try:
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))  # (B,)
    except TypeError:
        raise DataError("sequences must be a list of 1-D integer sequences, e.g. [[3, 4], [5]]") from None
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise DataError(
            f"sequence(s) {empty[:10].tolist()} are empty; an RNN needs at least one step per sequence: "
            "drop empty texts before padding"
        )
    flat = np.concatenate(sequences)  # (sum lengths,)
    if flat.ndim != 1:
        raise ShapeError(f"each sequence must be 1-D, got {flat.ndim - 1} extra axes")
    if flat.dtype.kind not in "iu":
        raise DTypeError(f"sequences must hold integer ids, got dtype {flat.dtype}; encode tokens first")
    if flat.min() < 0:
        raise DataError(f"ids must be >= 0, got {flat.min()}")

    T = int(lengths.max()) if max_len is None else min(max_len, int(lengths.max()))
    kept = np.minimum(lengths, T)  # (B,)
    first = np.cumsum(lengths) - lengths + (lengths - kept if truncate == "pre" else 0)  # (B,) index in flat
    t = np.arange(T)
    valid = t < kept[:, None]  # (B, T)
    ids = np.full((len(lengths), T), PAD_ID, dtype=np.int64)
    ids[valid] = flat[(first[:, None] + t)[valid]]
    return ids, kept


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches ``minibatches`` yields per epoch: ceil(n / batch_size), or floor with drop_last."""
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    return n // batch_size if drop_last else -(-n // batch_size)


def minibatches(
    n: int,
    batch_size: int,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    *,
    start: int = 0,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's minibatches over ``n`` samples: order[b*bs : (b+1)*bs], b = start..

    ``order`` is ``rng.permutation(n)`` (or 0..n-1 with shuffle=False), drawn when this function is
    called, so each call takes exactly one permutation from ``rng``. To resume an epoch at batch
    ``start``, restore ``rng`` to its state at the epoch's beginning and pass ``start``: the batches
    are then the same as the remaining ones of the interrupted epoch, and ``rng`` ends in the same
    state. The last batch is smaller when batch_size does not divide n, unless ``drop_last``.
    """
    count = num_batches(n, batch_size, drop_last)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= count:
        raise ConfigError(f"start must be a batch index in [0, {count}] ({count} batches per epoch), got {start!r}")
    order = as_rng(rng).permutation(n) if shuffle else np.arange(n)
    return (order[b * batch_size : (b + 1) * batch_size] for b in range(start, count))


class StreamBatcher:
    """Chunks of one long token stream for stateful truncated BPTT (char-rnn style).

    The stream s (N,) is cut into ``batch_size`` contiguous rows of L = (N - 1) // batch_size steps;
    row i reads s[i*L : (i+1)*L] and predicts the next token, s[i*L + 1 : (i+1)*L + 1]. Chunk j holds
    steps j*k .. (j+1)*k - 1 of every row (k = ``seq_len``; the last chunk may be shorter):

        x_j = rows[:, j*k : (j+1)*k]      (B, k)    y_j = x_j shifted one step ahead in the stream

    so row i of chunk j+1 continues row i of chunk j, and the final hidden state of chunk j is the
    right initial state for chunk j+1. The last N - 1 - B*L (< B) tokens are unused. Index the
    batcher (``batcher[j]``) or iterate ``batcher.chunks(start=m)`` to resume at chunk m.
    Works for any array with time on axis 0 (token ids (N,), or a float series (N, D)).
    """

    def __init__(self, stream: np.ndarray, batch_size: int, seq_len: int) -> None:
        stream = np.asarray(stream)
        if stream.ndim < 1 or stream.dtype.kind not in "iuf":
            raise DTypeError(f"stream must be a numeric array with time on axis 0, got {stream.dtype} {stream.shape}")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.steps_per_row = (len(stream) - 1) // self.batch_size  # L
        if self.steps_per_row < 1:
            raise DataError(
                f"a stream of {len(stream)} tokens is too short for batch_size={batch_size}: "
                f"need at least {self.batch_size + 1}; lower batch_size"
            )
        B, L = self.batch_size, self.steps_per_row
        self._x = stream[: B * L].reshape(B, L, *stream.shape[1:])  # (B, L, ...) view
        self._y = stream[1 : B * L + 1].reshape(B, L, *stream.shape[1:])  # (B, L, ...) next tokens

    def __len__(self) -> int:
        """Number of chunks per pass: ceil(L / seq_len)."""
        return -(-self.steps_per_row // self.seq_len)

    def __getitem__(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk j as contiguous (x, y), each (batch_size, k, ...) with k = seq_len (less for the last)."""
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < len(self):
            raise IndexError(f"chunk index must be in [0, {len(self)}), got {j!r}")
        steps = slice(j * self.seq_len, (j + 1) * self.seq_len)
        return np.ascontiguousarray(self._x[:, steps]), np.ascontiguousarray(self._y[:, steps])

    def chunks(self, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks start, start+1, ..., len(self)-1 in order (start > 0 resumes an interrupted pass)."""
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start <= len(self):
            raise ConfigError(f"start must be a chunk index in [0, {len(self)}], got {start!r}")
        return (self[j] for j in range(start, len(self)))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.chunks()
