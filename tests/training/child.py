"""A training run in its own process, for the kill/interrupt tests: ``python -m tests.training.child OUT CKPT [resume]``.

Each step sleeps a little (inside the loss, which does not change the numbers) so that a signal
lands in the middle of training. Final parameters are written to OUT as .npz.
"""

import sys
import time

import numpy as np

from rnnkit import losses, optim, train
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.recurrent import LSTM
from rnnkit.models import Sequential


def build() -> Sequential:
    return Sequential([LSTM(2, 8, recurrent_dropout=0.2, return_sequences=False, seed=1), Dropout(0.3, seed=2), Dense(8, 1, seed=3)])


def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(96, 12, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None].astype(np.float32) / 5
    return x, y


def slow_mse(pred, target, mask=None):
    time.sleep(0.03)  # 36 steps: over a second of training for a signal to land in
    return losses.mse(pred, target, mask)


def main(out: str, ckpt: str, resume: bool) -> None:
    model = build()
    x, y = data()
    train.fit(model, x, y, loss=slow_mse, optimizer=optim.Adam(model.params, lr=1e-2), epochs=4, batch_size=8,
              validation_split=0.25, checkpoint=ckpt, checkpoint_every=1, resume=resume, seed=3, progress=False)
    np.savez(out, **model.params)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], len(sys.argv) > 3)
