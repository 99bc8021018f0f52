"""The whole training step against PyTorch: from the same weights, on the same batches, ``fit_stream``
(embedding, 2-layer LSTM, dense head, cross-entropy, gradient-norm clipping, Adam, the state carried
from chunk to chunk) follows the trajectory of a plain PyTorch loop.

The PyTorch model is ``rnnkit.convert.to_torch`` of the rnnkit one (random weights and random biases).
In float64 the two stay together to rounding over every step; the clip threshold is low enough
that clipping acts on most of them.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit import optim, train
from rnnkit.convert import to_torch
from rnnkit.convert.torch import torch_names
from rnnkit.data import StreamBatcher
from rnnkit.layers.dense import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.recurrent import LSTM
from rnnkit.models import Sequential

V, E, H, BATCH, BPTT, STEPS, LR, CLIP = 11, 6, 9, 3, 7, 25, 0.02, 0.1


def torch_trajectory(net, tokens: np.ndarray) -> tuple[list[float], list[float]]:
    """Train ``net`` (embedding, LSTM, linear) as fit_stream does; per-step (loss, gradient norm before clipping)."""
    embedding, lstm, head = net
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    batches, state, losses, norms = StreamBatcher(tokens, BATCH, BPTT), None, [], []
    for j in range(STEPS):
        x, y = batches[j]
        out, state = lstm(embedding(torch.from_numpy(x)), state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), torch.from_numpy(y).reshape(-1))
        opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)))
        opt.step()
        losses.append(loss.item())
    return losses, norms


def test_fit_stream_follows_a_pytorch_training_loop():
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, V, BATCH * BPTT * STEPS + 1)
    model = Sequential([Embedding(V, E, dtype=np.float64, seed=1), LSTM(E, H, num_layers=2, dtype=np.float64, seed=2),
                        Dense(H, V, dtype=np.float64, seed=3)])
    net = to_torch(model)
    losses, norms = torch_trajectory(net, tokens)
    assert sum(n > CLIP for n in norms) >= STEPS // 2  # clipping is exercised

    history = train.fit_stream(model, tokens, batch_size=BATCH, bptt=BPTT, epochs=1, max_steps=STEPS,
                               optimizer=optim.Adam(model.params, lr=LR), clip_norm=CLIP, progress=False)
    assert history.rows[-1]["loss"] == pytest.approx(np.mean(losses), rel=1e-10)
    theirs = {name: p.detach().numpy() for name, p in net.state_dict().items()}
    for i, layer in enumerate(model.layers):
        for name, torch_name in torch_names(layer).items():
            np.testing.assert_allclose(layer.params[name], theirs[f"{i}.{torch_name}"], rtol=1e-9, atol=1e-12,
                                       err_msg=f"layer {i} {name}")
