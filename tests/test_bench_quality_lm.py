"""The paired design of ``bench/quality_lm.py``: with ``--same-init`` the PyTorch model starts from exactly
the weights the rnnkit language model starts from.

Checked by running both initial models on the same ids: the logits agree to float32 rounding, so the
renaming into PyTorch's state dict is right. The weights are rnnkit's initialisation (random weights and
random biases, U(±1/√fan-in), embeddings N(0, 1)).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
quality_lm = pytest.importorskip("bench.quality_lm")

from rnnkit.data import Vocabulary
from rnnkit.tasks.language_model import LanguageModel

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 4


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_model_starts_from_the_rnnkit_models_weights(cell, monkeypatch) -> None:
    monkeypatch.setitem(quality_lm.ARCH, "cell", cell)
    hidden, arch = 16, quality_lm.ARCH
    torch_model = quality_lm.torch_char_lm(len(Vocabulary.build(TEXT)), hidden)
    torch_model.load_state_dict(quality_lm.rnnkit_initial_weights(TEXT, hidden))

    lm = LanguageModel("char", hidden=hidden, **arch)
    lm.vocab = Vocabulary.build(TEXT)  # what fit builds before the model
    model = lm._build_model()  # the model fit trains, before its first step
    ids = lm.encode(TEXT[:120]).reshape(4, 30)
    ours = model.forward(ids)
    with torch.no_grad():
        theirs, _ = torch_model(torch.from_numpy(ids.astype(np.int64)))
    assert np.abs(ours).max() > 1e-2  # random weights and biases: the logits are not all zero
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)
