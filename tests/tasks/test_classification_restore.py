"""TextClassifier.fit ends with the weights of its best validation epoch (Keras' restore_best_weights)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import train
from rnnkit.tasks.classification import TextClassifier, stratified_split

POS = ["good", "great", "excellent", "wonderful", "superb", "lovely"]
NEG = ["bad", "awful", "terrible", "boring", "dull", "poor"]
NOISE = ["the", "movie", "was", "a", "and", "plot", "it", "film", "acting", "really", "this", "of"]


def noisy_reviews(n: int, flip: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """n texts of 3-8 noise words and one sentiment word; a fraction ``flip`` of the labels is wrong."""
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(2))
        words = list(rng.choice(NOISE, size=int(rng.integers(3, 9))))
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice([NEG, POS][c])))
        texts.append(" ".join(words))
        labels.append(["neg", "pos"][c if rng.random() >= flip else 1 - c])
    return texts, labels


def test_fit_restores_the_weights_of_the_lowest_validation_loss():
    # a high learning rate on noisy labels: the validation loss rises after an early best epoch, and
    # patience = epochs lets training run to the end, so the last weights are not the best ones
    texts, labels = noisy_reviews(300, 0.25, np.random.default_rng(0))
    clf = TextClassifier(preset="bigru", hidden=16, embedding_dim=8, lr=3e-2, epochs=8, patience=8,
                         batch_size=16, seed=0).fit(texts, labels, val_frac=0.1)
    val_losses = clf.history_["val_loss"]
    assert len(val_losses) == 8 and int(np.argmin(val_losses)) < 7  # the best epoch is not the last

    # the validation split fit held out, scored independently of the training loop's bookkeeping
    _, val_idx = stratified_split(clf.label_encoder_.transform(labels), 0.1, clf.seed)
    x, lengths = clf.encode(texts)
    scored = train.evaluate(clf.model_, x[val_idx], clf.targets(labels)[val_idx], loss=clf.loss,
                            lengths=lengths[val_idx])
    assert scored["loss"] == pytest.approx(min(val_losses), rel=1e-9)
    assert scored["loss"] < val_losses[-1] - 0.05
