"""Streaming ``step`` of every cell family and engine against the same module's ``forward`` on one step.

``step`` validates and then runs ``advance``, the unchecked step the layer's ``step`` calls per cell.
Each case uses random weights and biases (no constants), a random nonzero state, batch 1 (the fast
LSTM runs its cell kernel on (1, H) views there, without peepholes) and batch 3 (the (H, B) layout),
and every LSTM option (peepholes, projection with clip, cell clip, forget bias). float64 must agree
to 1e-12; ``forward`` is itself checked against finite differences and PyTorch in tests/cells/test_*.py.
The inputs are not modified (the layer passes views of the caller's state).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnkit.cells import fast, gru, lstm, rnn

MODULES = [rnn, gru, lstm]
if importlib.util.find_spec("numba") is not None:
    MODULES += [fast.module_for(name) for name in ("rnn", "gru", "lstm")]

CONFIGS = {
    "rnn": [rnn.RNNConfig(3, 5), rnn.RNNConfig(3, 5, "relu")],
    "gru": [gru.GRUConfig(3, 5), gru.GRUConfig(3, 5, reset_after=False)],
    "lstm": [lstm.LSTMConfig(3, 5, forget_bias=1.0),
             lstm.LSTMConfig(3, 5, peepholes=True, cell_clip=0.4),
             lstm.LSTMConfig(3, 5, proj_size=2, proj_clip=0.3, forget_bias=0.5)],
}
CASES = [(mod, cfg) for mod in MODULES for cfg in CONFIGS[mod.__name__.rsplit(".", 1)[1]]]


def _flat(state):
    return state if isinstance(state, tuple) else (state,)


def _random_step_inputs(mod, cfg, batch, rng):
    """Random parameters (weights and biases), x_t (batch, D) and state, float64."""
    p = {k: rng.uniform(-0.9, 0.9, s) for k, s in mod.param_shapes(cfg).items()}
    x_t = rng.standard_normal((batch, cfg.input_size))
    zeros = mod.zero_state(cfg, batch, np.float64)
    state = tuple(rng.standard_normal(s.shape) for s in _flat(zeros))
    return p, x_t, state if isinstance(zeros, tuple) else state[0]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("mod, cfg", CASES, ids=lambda v: getattr(v, "__name__", repr(v)))
def test_step_equals_one_forward_step(mod, cfg, batch):
    p, x_t, state = _random_step_inputs(mod, cfg, batch, np.random.default_rng(batch))
    saved = [s.copy() for s in (x_t, *_flat(state))]
    y, state_ref, _ = mod.forward(p, cfg, x_t[None], state)
    h_t, state_t = mod.step(p, cfg, x_t, state)
    np.testing.assert_allclose(h_t, y[0], rtol=0, atol=1e-12)
    for ours, ref in zip(_flat(state_t), _flat(state_ref)):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    for before, after in zip(saved, (x_t, *_flat(state))):
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_step_float32_batch_one(mod):
    """The streaming case (batch 1, float32): float32 out, within float32 rounding of the float64 step."""
    cfg = CONFIGS[mod.__name__.rsplit(".", 1)[1]][0]
    p, x_t, state = _random_step_inputs(mod, cfg, 1, np.random.default_rng(4))
    h64, state64 = mod.step(p, cfg, x_t, state)
    state32 = tuple(s.astype(np.float32) for s in _flat(state))
    h32, state32 = mod.step({k: v.astype(np.float32) for k, v in p.items()}, cfg, x_t.astype(np.float32),
                            state32 if isinstance(state, tuple) else state32[0])
    for ours, ref in zip((h32, *_flat(state32)), (h64, *_flat(state64))):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)
