"""Recurrent layers (rnnkit.layers.recurrent) against independent references.

- PyTorch nn.RNN/GRU/LSTM with packed variable-length sequences: outputs, final states and autograd
  gradients of every parameter, x, h0 and c0, in float32 and float64.
- Central finite differences in float64 (stacked, bidirectional concat and sum, lengths, last output,
  dropout masks).
- merge_mode="sum" against the concat layer with the same parameters (halves added, stacked by hand).
- A hand-written loop over the cell ``step`` functions, one sequence at a time (Flax-style equivalence).
- Pinned parameter names/shapes, config round trip, and every boundary error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.cells import fast, gru, lstm, rnn
from rnnkit.errors import ConfigError, DataError, DTypeError, ShapeError
from rnnkit.layers.recurrent import GRU, LSTM, RNN, Recurrent
from tests.gradcheck import assert_grad_close, numerical_grad

try:
    import torch
except ImportError:  # only the parity test needs it
    torch = None

CELL_MODULES = {"rnn": rnn, "gru": gru, "lstm": lstm}
TOL = {np.float32: 1e-5, np.float64: 1e-9}


def random_state(layer: Recurrent, batch: int, rng: np.random.Generator):
    """A random stacked state shaped like ``layer.state`` ((h, c) for an LSTM)."""
    n = layer.num_layers * layer.num_directions
    h = rng.standard_normal((n, batch, layer.state_size)).astype(layer.dtype)
    if layer.cell != "lstm":
        return h
    return h, rng.standard_normal((n, batch, layer.hidden_size)).astype(layer.dtype)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def copy_params(dst: Recurrent, src: Recurrent) -> None:
    for name, value in src.params.items():
        dst.params[name] = value.copy()


# ---- 1. parity with PyTorch ------------------------------------------------------------------

TORCH_NAMES = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh", "W_hr": "weight_hr"}


def torch_name(name: str) -> str:
    """'l1_reverse.W_ih' -> 'weight_ih_l1_reverse' (PyTorch's parameter names)."""
    prefix, param = name.split(".")
    return f"{TORCH_NAMES[param]}_{prefix}"


def torch_module(layer: Recurrent):
    kwargs = dict(num_layers=layer.num_layers, bidirectional=layer.bidirectional, batch_first=True)
    D, H = layer.input_size, layer.hidden_size
    if layer.cell == "rnn":
        module = torch.nn.RNN(D, H, nonlinearity=layer.configs[0].activation, **kwargs)
    elif layer.cell == "gru":
        module = torch.nn.GRU(D, H, **kwargs)
    else:
        module = torch.nn.LSTM(D, H, proj_size=layer.configs[0].proj_size, **kwargs)
    module = module.double() if layer.dtype == np.float64 else module
    theirs = dict(module.named_parameters())
    assert {torch_name(n) for n in layer.params} == set(theirs)
    with torch.no_grad():
        for name, value in layer.params.items():
            theirs[torch_name(name)].copy_(torch.from_numpy(value))
    return module


PARITY_CASES = [
    ("rnn", 1, False, {"activation": "tanh"}),
    ("rnn", 2, True, {"activation": "relu"}),
    ("gru", 1, True, {}),
    ("gru", 3, True, {}),
    ("lstm", 2, False, {}),
    ("lstm", 2, True, {}),
    ("lstm", 3, True, {"proj_size": 3}),
]


@pytest.mark.skipif(torch is None, reason="needs torch (pip install -e .[test])")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell, num_layers, bidirectional, options", PARITY_CASES)
def test_matches_torch_with_packed_lengths(cell, num_layers, bidirectional, options, dtype):
    B, T, D, H = 4, 6, 3, 5
    rng = np.random.default_rng(1)
    layer = Recurrent(cell, D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype, seed=2, **options)
    module = torch_module(layer)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    lengths = np.array([6, 2, 5, 1])  # unsorted, with 1 and T
    state0 = random_state(layer, B, rng)
    dout = rng.standard_normal((B, T, layer.output_size)).astype(dtype)  # nonzero on padded steps too
    dstate = random_state(layer, B, rng)

    out, state = layer(x, state0, lengths)
    dx = layer.backward(dout, dstate)

    x_t = torch.tensor(x, requires_grad=True)
    state0_t = tuple(torch.tensor(s, requires_grad=True) for s in as_tuple(state0))
    packed = torch.nn.utils.rnn.pack_padded_sequence(x_t, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out_packed, state_t = module(packed, state0_t if cell == "lstm" else state0_t[0])
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=True, total_length=T)
    state_t = as_tuple(state_t)
    loss = (out_t * torch.from_numpy(dout)).sum()
    loss = loss + sum((s * torch.from_numpy(d)).sum() for s, d in zip(state_t, as_tuple(dstate)))
    loss.backward()

    tol = TOL[dtype]

    def close(ours, ref, what):
        ref = ref.detach().numpy()
        assert ours.dtype == dtype, what
        np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=what)

    assert not out[1, 2:].any() and not out[3, 1:].any()  # padded steps output zero
    close(out, out_t, "out")
    for ours, ref in zip(as_tuple(state), state_t):
        close(ours, ref, "final state")
    close(dx, x_t.grad, "dx")
    for ours, ref in zip(as_tuple(layer.dstate0), state0_t):
        close(ours, ref.grad, "dstate0")
    theirs = dict(module.named_parameters())
    assert list(layer.grads) == list(layer.params)
    for name, g in layer.grads.items():
        close(g, theirs[torch_name(name)].grad, name)

    # return_sequences=False: forward direction at the last valid step, reverse direction at t=0
    last = Recurrent.from_config({**layer.get_config(), "return_sequences": False})
    copy_params(last, layer)
    top_h = torch.cat(list(state_t[0][-layer.num_directions :]), dim=1)  # (B, dirs*R)
    close(last.forward(x, state0=state0, lengths=lengths), top_h, "last")


# ---- 2. finite differences ---------------------------------------------------------------------

GRADCHECK_CELLS = [
    ("rnn", {"activation": "tanh"}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False}),
    # both clips bind on some steps here (and no value sits within eps of a clip edge)
    ("lstm", {"peepholes": True, "cell_clip": 0.3, "proj_size": 2, "proj_clip": 0.1, "forget_bias": 1.0}),
]


@pytest.mark.parametrize("merge_mode, return_sequences, dropout",
                         [("concat", True, 0.3), ("concat", False, 0.0), ("sum", True, 0.0), ("sum", False, 0.3)])
@pytest.mark.parametrize("cell, options", GRADCHECK_CELLS)
def test_gradients_match_finite_differences(cell, options, merge_mode, return_sequences, dropout):
    B, T, D, H = 3, 4, 2, 3
    rng = np.random.default_rng(3)
    layer = Recurrent(
        cell, D, H, num_layers=2, bidirectional=True, merge_mode=merge_mode, return_sequences=return_sequences,
        dropout=dropout, recurrent_dropout=dropout, dtype=np.float64, seed=4, **options,
    )
    x = rng.standard_normal((B, T, D))
    lengths = np.array([4, 2, 3])
    state0 = random_state(layer, B, rng)
    out_shape = (B, T, layer.output_size) if return_sequences else (B, layer.output_size)
    w_out, w_state = rng.standard_normal(out_shape), random_state(layer, B, rng)
    training = dropout > 0

    def loss() -> float:
        layer.rng = np.random.default_rng(5)  # replay the same dropout masks on every evaluation
        out = layer.forward(x, state0=state0, lengths=lengths, training=training)
        return float((out * w_out).sum() + sum((s * w).sum() for s, w in zip(as_tuple(layer.state), as_tuple(w_state))))

    loss()
    dx = layer.backward(w_out, w_state)
    grads, dstate0 = dict(layer.grads), as_tuple(layer.dstate0)
    if training:  # the masks really drop units: training output differs from inference
        out_train = layer.forward(x, state0=state0, lengths=lengths, training=True)
        assert not np.allclose(out_train, layer.forward(x, state0=state0, lengths=lengths))
    for name, p in layer.params.items():
        assert_grad_close(grads[name], numerical_grad(loss, p), name)
    assert_grad_close(dx, numerical_grad(loss, x), "x")
    for i, s in enumerate(as_tuple(state0)):
        assert_grad_close(dstate0[i], numerical_grad(loss, s), f"state0[{i}]")


# ---- 3. merge_mode="sum" against concat, and the layer against a hand loop over the cell step -----

@pytest.mark.parametrize("cell, options", [("rnn", {"activation": "tanh"}), ("gru", {"reset_after": False}),
                                           ("lstm", {"proj_size": 2, "peepholes": True})])
def test_sum_merge_adds_the_halves_of_concat(cell, options):
    """Layer k of a two-layer sum layer = the one-layer concat layer with layer k's parameters, halves added."""
    B, T, D, H = 3, 5, 2, 4
    rng = np.random.default_rng(8)
    summed = Recurrent(cell, D, H, num_layers=2, bidirectional=True, merge_mode="sum", dtype=np.float64, seed=9,
                       **options)
    R = summed.state_size
    assert summed.output_size == R and summed.params["l1.W_ih"].shape[1] == R  # layer 1 reads R features
    x, lengths = rng.standard_normal((B, T, D)), np.array([5, 2, 4])
    state0 = random_state(summed, B, rng)
    out = summed.forward(x, state0=state0, lengths=lengths)
    dout, dstate = rng.standard_normal(out.shape), random_state(summed, B, rng)
    dx = summed.backward(dout, dstate)

    concat = [Recurrent(cell, d_in, H, bidirectional=True, dtype=np.float64, **options) for d_in in (D, R)]
    seq, dseqs = x, []
    for k, layer in enumerate(concat):
        for name in layer.params:  # "l0.W_ih" <- "l{k}.W_ih", "l0_reverse.W_ih" <- "l{k}_reverse.W_ih"
            layer.params[name] = summed.params[f"l{k}" + name[2:]].copy()
        rows = slice(2 * k, 2 * k + 2)  # layer k's rows of the stacked state
        both = layer.forward(seq, state0=tuple(s[rows] for s in as_tuple(state0)) if cell == "lstm" else
                             state0[rows], lengths=lengths)
        for ours, ref in zip(as_tuple(summed.state), as_tuple(layer.state)):
            np.testing.assert_allclose(ours[rows], ref, rtol=0, atol=1e-12)
        seq = both[..., :R] + both[..., R:]
    np.testing.assert_allclose(out, seq, rtol=0, atol=1e-12)

    # backward: the sum's gradient reaches both directions whole, i.e. concat's with dout repeated
    dseq = dout
    for k in reversed(range(2)):
        rows = slice(2 * k, 2 * k + 2)
        layer_dstate = tuple(s[rows] for s in as_tuple(dstate)) if cell == "lstm" else dstate[rows]
        dseq = concat[k].backward(np.concatenate([dseq, dseq], axis=-1), layer_dstate)
        for name, g in concat[k].grads.items():
            np.testing.assert_allclose(summed.grads[f"l{k}" + name[2:]], g, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(dx, dseq, rtol=0, atol=1e-12)

    # return_sequences=False: the sum of the top layer's final h's
    last = Recurrent.from_config({**summed.get_config(), "return_sequences": False})
    copy_params(last, summed)
    h_top = as_tuple(summed.state)[0][-2:]  # (2, B, R): forward, reverse
    np.testing.assert_allclose(last.forward(x, state0=state0, lengths=lengths), h_top[0] + h_top[1], rtol=0,
                               atol=1e-12)


def hand_loop(layer: Recurrent, x: np.ndarray, lengths: np.ndarray, state0):
    """Reference: one sequence at a time, cell.step over its valid steps (reverse: backwards), no masks."""
    cell = CELL_MODULES[layer.cell]
    B, T, _ = x.shape
    R, dirs = layer.state_size, layer.num_directions
    seq, finals = x, []  # finals[i]: the final state of cell i = k*dirs + d, as a tuple of (B, .) arrays
    for k in range(layer.num_layers):
        out = np.zeros((B, T, dirs * R))
        for d in range(dirs):
            i, prefix = k * dirs + d, f"l{k}_reverse" if d else f"l{k}"
            p = {name.split(".")[1]: v for name, v in layer.params.items() if name.split(".")[0] == prefix}
            per_sequence = []
            for b in range(B):
                state = tuple(s[i, b : b + 1] for s in as_tuple(state0))
                state = state if layer.cell == "lstm" else state[0]
                for t in range(lengths[b]) if d == 0 else reversed(range(lengths[b])):
                    y, state = cell.step(p, layer.configs[k], seq[b : b + 1, t], state)
                    out[b, t, d * R : (d + 1) * R] = y[0]
                per_sequence.append(as_tuple(state))
            finals.append(tuple(np.concatenate(parts) for parts in zip(*per_sequence)))
        seq = out
    stacked = tuple(np.stack(parts) for parts in zip(*finals))
    return seq, stacked if layer.cell == "lstm" else stacked[0]


@pytest.mark.parametrize(
    "cell, options",
    [("rnn", {"activation": "relu"}), ("gru", {"reset_after": False}), ("lstm", {"proj_size": 2, "peepholes": True})],
)
def test_layer_equals_hand_loop_over_cell_step(cell, options):
    B, T, D, H = 3, 5, 2, 4
    rng = np.random.default_rng(6)
    layer = Recurrent(cell, D, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=7, **options)
    x = rng.standard_normal((B, T, D))
    lengths = np.array([5, 1, 3])
    state0 = random_state(layer, B, rng)
    out, state = layer(x, state0, lengths)
    out_ref, state_ref = hand_loop(layer, x, lengths, state0)
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-12)
    for ours, ref in zip(as_tuple(state), as_tuple(state_ref)):
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_streaming_step_equals_forward(cell):
    B, T, D, H = 2, 5, 3, 4
    rng = np.random.default_rng(8)
    layer = Recurrent(cell, D, H, num_layers=2, dtype=np.float64, seed=9)
    x = rng.standard_normal((B, T, D))
    out = layer.forward(x)
    state = None
    for t in range(T):
        y, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(y, out[:, t], rtol=0, atol=1e-12)
    for ours, ref in zip(as_tuple(state), as_tuple(layer.state)):
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


ENGINES = ["numpy"] + (["fast"] if fast.available() else [])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("num_layers, batch", [(2, 1), (2, 3), (1, 1)])
@pytest.mark.parametrize("cell, options", [
    ("lstm", {}), ("lstm", {"proj_size": 2, "peepholes": True, "forget_bias": 1.0}),
    ("gru", {}), ("gru", {"reset_after": False}), ("rnn", {}),
])
def test_streaming_20_steps_with_carried_state_equals_forward(cell, options, num_layers, batch, engine):
    """step() fed its own state back for 20 steps from a random state0 == forward(x, state0), per step and at the end."""
    T = 20
    rng = np.random.default_rng(12)
    layer = Recurrent(cell, 3, 4, num_layers=num_layers, dtype=np.float64, seed=13, engine=engine, **options)
    x = rng.standard_normal((batch, T, 3))
    state0 = random_state(layer, batch, rng)
    saved = [s.copy() for s in as_tuple(state0)]
    out = layer.forward(x, state0=state0)
    state = state0
    for t in range(T):
        y, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(y, out[:, t], rtol=0, atol=1e-12)
    for ours, ref in zip(as_tuple(state), as_tuple(layer.state)):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    for before, after in zip(saved, as_tuple(state0)):
        np.testing.assert_array_equal(after, before)  # the caller's state is read, never written


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_step_rejects_nan_and_inf_in_x_t_and_state(cell, engine):
    rng = np.random.default_rng(14)
    layer = Recurrent(cell, 3, 4, num_layers=2, seed=15, engine=engine)
    x_t = rng.standard_normal((2, 3)).astype(np.float32)
    state = random_state(layer, 2, rng)
    for bad in (np.nan, np.inf, -np.inf):
        x_bad = x_t.copy()
        x_bad[1, 2] = bad
        with pytest.raises(DataError, match=r"x_t contains 1 NaN or Inf value\(s\)"):
            layer.step(x_bad, state)
        for k, part in enumerate(("h", "c")[: len(as_tuple(state))]):
            parts = [s.copy() for s in as_tuple(state)]
            parts[k][1, 0, 2] = bad
            with pytest.raises(DataError, match=rf"state {part} contains 1 NaN or Inf value\(s\)"):
                layer.step(x_t, tuple(parts) if cell == "lstm" else parts[0])


def test_step_checks_the_layer_parameters():
    layer = LSTM(3, 4, num_layers=2, seed=17)
    x_t = np.zeros((2, 3), np.float32)
    layer.params["l1.W_hh"] = np.zeros((16, 3), np.float32)
    with pytest.raises(ShapeError, match=r"l1.W_hh must have shape \(16, 4\) .* got \(16, 3\)"):
        layer.step(x_t)
    layer.params["l1.W_hh"] = np.zeros((16, 4))
    with pytest.raises(DTypeError, match=r"l1.W_hh has dtype float64 but the parameters are float32"):
        layer.step(x_t)


def test_mask_is_the_same_as_lengths():
    rng = np.random.default_rng(10)
    layer = GRU(2, 3, bidirectional=True, seed=0)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    lengths = np.array([4, 1, 2])
    mask = np.arange(4)[None, :] < lengths[:, None]
    np.testing.assert_array_equal(layer.forward(x, mask=mask), layer.forward(x, lengths=lengths))


def test_recurrent_dropout_is_one_mask_per_sequence_and_direction():
    """Linear RNN, x = 0, no biases, W_hh = I, h_0 = 1: h_t = mask^t exactly when the mask is fixed over time."""
    B, T, H = 4, 3, 8
    layer = RNN(1, H, activation="linear", bidirectional=True, recurrent_dropout=0.5, dtype=np.float64, seed=0)
    for name in layer.params:
        layer.params[name][...] = np.eye(H) if name.endswith("W_hh") else 0.0
    out = layer.forward(np.zeros((B, T, 1)), state0=np.ones((2, B, H)), training=True)
    forward_mask, reverse_mask = out[:, 0, :H], out[:, -1, H:]
    assert set(np.unique(forward_mask)) == {0.0, 2.0}  # inverted dropout: kept units scaled by 1/(1-p)
    for t in range(T):
        np.testing.assert_array_equal(out[:, t, :H], forward_mask ** (t + 1))
        np.testing.assert_array_equal(out[:, T - 1 - t, H:], reverse_mask ** (t + 1))
    assert not np.array_equal(forward_mask, reverse_mask)
    np.testing.assert_array_equal(layer.forward(np.zeros((B, T, 1)), state0=np.ones((2, B, H))), np.ones((B, T, 2 * H)))


def test_dropout_acts_between_layers_in_training_only():
    rng = np.random.default_rng(12)
    layer = LSTM(3, 4, num_layers=2, dropout=0.5, seed=0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    eval_out, (eval_h, _) = layer(x)
    np.testing.assert_array_equal(layer(x)[0], eval_out)  # inference is deterministic
    train_out, (train_h, _) = layer(x, training=True)
    np.testing.assert_array_equal(train_h[0], eval_h[0])  # the first layer's input is never dropped
    assert not np.allclose(train_h[1], eval_h[1]) and not np.allclose(train_out, eval_out)



@pytest.mark.parametrize("engine", ["numpy", "auto"])
@pytest.mark.parametrize("cell, options", [("lstm", {"proj_size": 2, "peepholes": True, "cell_clip": 0.3}),
                                           ("lstm", {}), ("gru", {"reset_after": False}), ("rnn", {})])
def test_forward_without_cache_gives_the_same_output_and_state(cell, options, engine):
    """cache=False (the inference path: the fast LSTM keeps one step) against the cached forward, which
    the other tests check against PyTorch and finite differences; then backward() refuses."""
    rng = np.random.default_rng(13)
    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=0, engine=engine,
                      **options)
    x, lengths = rng.standard_normal((4, 6, 3)), np.array([6, 1, 4, 5])
    state0 = random_state(layer, 4, rng)
    out, state = layer(x, state0, lengths)
    out_nc, state_nc = layer(x, state0, lengths, cache=False)
    np.testing.assert_allclose(out_nc, out, rtol=0, atol=1e-13)
    for a, b in zip(state if cell == "lstm" else (state,), state_nc if cell == "lstm" else (state_nc,)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-13)
    with pytest.raises(ConfigError, match=r"backward\(\) needs the cache of a forward\(\).*cache=True"):
        layer.backward(np.ones_like(out))
    with pytest.raises(ConfigError, match="training=True needs cache=True"):
        layer.forward(x, training=True, cache=False)

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("input_size, bidirectional", [(1, False), (3, True)])
def test_output_of_a_forward_with_cache_is_read_only(cell, input_size, bidirectional, engine):
    """With the cache the output sequence may be the cache's own states (the fast cells' y = hs[1:]), so it is
    read-only whichever engine and lengths; writing to it raises, and the backward that follows the refused write
    gives the gradients of an untouched forward. Inference's output is an array of its own, writeable."""
    rng = np.random.default_rng(21)
    layer = Recurrent(cell, input_size, 4, bidirectional=bidirectional, dtype=np.float64, seed=1, engine=engine)
    x, g = rng.standard_normal((3, 5, input_size)), rng.standard_normal((3, 5, 8 if bidirectional else 4))
    for lengths in (None, np.array([5, 2, 4])):
        out = layer.forward(x, lengths=lengths, training=True)
        expected = layer.backward(g)
        out = layer.forward(x, lengths=lengths, training=True)
        assert not out.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            out[0, 0, 0] = 1.0
        np.testing.assert_array_equal(layer.backward(g), expected)
        inferred = layer.forward(x, lengths=lengths, cache=False)
        np.testing.assert_array_equal(inferred, out)
        inferred[0, 0, 0] = 1.0  # writeable


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_read_only_output_feeds_the_next_layer(cell, engine):
    """The read-only output of a forward with the cache is a valid input: the next layer's inference (which reads
    its input in place) and training give what they give on a writeable copy."""
    rng = np.random.default_rng(22)
    first = Recurrent(cell, 3, 4, dtype=np.float32, seed=0, engine=engine)
    second = Recurrent(cell, 4, 5, dtype=np.float32, seed=1, engine=engine)
    out = first.forward(rng.standard_normal((6, 7, 3)).astype(np.float32), training=True)
    assert not out.flags.writeable
    np.testing.assert_array_equal(second.forward(out, cache=False), second.forward(np.array(out), cache=False))
    g = rng.standard_normal((6, 7, 5)).astype(np.float32)
    second.forward(np.array(out), training=True)
    expected = second.backward(g)
    second.forward(out, training=True)
    np.testing.assert_array_equal(second.backward(g), expected)


# ---- 4. pinned parameter names and shapes ---------------------------------------------------------

def test_parameter_names_and_shapes_are_pinned():
    layer = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    expected = {}
    for prefix, d_in in [("l0", 3), ("l0_reverse", 3), ("l1", 4), ("l1_reverse", 4)]:
        expected.update({
            f"{prefix}.W_ih": (16, d_in), f"{prefix}.W_hh": (16, 2), f"{prefix}.b_ih": (16,),
            f"{prefix}.b_hh": (16,), f"{prefix}.W_hr": (2, 4),
        })
    assert {n: p.shape for n, p in layer.params.items()} == expected
    assert all(p.dtype == np.float32 for p in layer.params.values())
    layer.forward(np.zeros((5, 7, 3), np.float32))
    assert (layer.state[0].shape, layer.state[1].shape) == ((4, 5, 2), (4, 5, 4))

    peep = LSTM(2, 3, peepholes=True)
    assert {n: p.shape for n, p in peep.params.items()} == {
        "l0.W_ih": (12, 2), "l0.W_hh": (12, 3), "l0.b_ih": (12,), "l0.b_hh": (12,),
        "l0.w_ci": (3,), "l0.w_cf": (3,), "l0.w_co": (3,),
    }
    assert {n: p.shape for n, p in GRU(2, 3, num_layers=2).params.items()} == {
        "l0.W_ih": (9, 2), "l0.W_hh": (9, 3), "l0.b_ih": (9,), "l0.b_hh": (9,),
        "l1.W_ih": (9, 3), "l1.W_hh": (9, 3), "l1.b_ih": (9,), "l1.b_hh": (9,),
    }
    assert {n: p.shape for n, p in RNN(2, 3, bidirectional=True).params.items()} == {
        "l0.W_ih": (3, 2), "l0.W_hh": (3, 3), "l0.b_ih": (3,), "l0.b_hh": (3,),
        "l0_reverse.W_ih": (3, 2), "l0_reverse.W_hh": (3, 3), "l0_reverse.b_ih": (3,), "l0_reverse.b_hh": (3,),
    }


def test_same_seed_same_parameters():
    a, b = GRU(3, 4, num_layers=2, seed=11), GRU(3, 4, num_layers=2, seed=11)
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
    assert not np.array_equal(a.params["l0.W_ih"], GRU(3, 4, num_layers=2, seed=12).params["l0.W_ih"])


# ---- 5. config round trip -----------------------------------------------------------------------

@pytest.mark.parametrize("layer", [
    RNN(3, 4, activation="relu", num_layers=2, dropout=0.2, seed=0),
    GRU(3, 4, bidirectional=True, reset_after=False, return_sequences=False, seed=0),
    LSTM(3, 4, proj_size=2, peepholes=True, forget_bias=1.0, cell_clip=3.0, recurrent_dropout=0.1,
         dtype=np.float64, seed=0),
    Recurrent("lstm", 3, 4, num_layers=2, bidirectional=True, seed=0),
    GRU(3, 4, num_layers=2, bidirectional=True, merge_mode="sum", seed=0),
], ids=["rnn", "gru", "lstm", "recurrent", "gru-sum"])
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    assert config["merge_mode"] == layer.merge_mode
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    copy_params(clone, layer)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(layer.dtype)
    np.testing.assert_array_equal(clone.forward(x, lengths=[5, 3]), layer.forward(x, lengths=[5, 3]))


# ---- 6. errors at the boundary ------------------------------------------------------------------

def test_bad_inputs_raise_specific_errors():
    gru_layer = GRU(3, 4, num_layers=2, seed=0)
    x = np.zeros((2, 5, 3), np.float32)
    cases = [
        (lambda: gru_layer.forward(np.zeros((5, 3), np.float32)), ShapeError, "x must have 3 dimensions"),
        (lambda: gru_layer.forward(np.zeros((2, 5, 4), np.float32)), ShapeError, r"input_size=3.*got \(2, 5, 4\)"),
        (lambda: gru_layer.forward(np.zeros((2, 0, 3), np.float32)), ShapeError, "no empty axis"),
        (lambda: gru_layer.forward(np.zeros((2, 5, 3), np.int64)), DTypeError, "float32 or float64"),
        (lambda: gru_layer.forward(np.zeros((2, 5, 3))), DTypeError, "dtype float64 but the parameters are float32"),
        (lambda: gru_layer.forward(np.full((2, 5, 3), np.nan, np.float32)), DataError, "NaN"),
        (lambda: gru_layer.forward(x, state0=np.zeros((1, 2, 4), np.float32)), ShapeError,
         r"state0 h must have shape \(2, 2, 4\) = \(num_layers\*num_directions, batch, hidden_size\), got \(1, 2, 4\)"),
        (lambda: gru_layer.forward(x, state0=(np.zeros((2, 2, 4), np.float32),) * 2), ShapeError, "only an LSTM"),
        (lambda: gru_layer.forward(x, lengths=[5, 6]), DataError, r"lengths must lie in \[1, 5\]"),
        (lambda: gru_layer.forward(x, lengths=[5, 0]), DataError, r"lengths must lie in \[1, 5\]"),
        (lambda: gru_layer.forward(x, lengths=[5]), ShapeError, r"lengths must have shape \(2,\)"),
        (lambda: gru_layer.forward(x, lengths=[5.0, 2.0]), DTypeError, "lengths must be integers"),
        (lambda: gru_layer.forward(x, lengths=[5, 2], mask=np.ones((2, 5))), ConfigError, "not both"),
        (lambda: gru_layer.forward(x, mask=np.ones((2, 4))), ShapeError, r"mask must have shape \(2, 5\)"),
        (lambda: gru_layer.forward(x, mask=[[1, 0, 1, 0, 0], [1] * 5]), DataError, "prefix"),
        (lambda: gru_layer.forward(x, mask=[[0] * 5, [1] * 5]), DataError, r"mask row sums \(lengths\) must lie in"),
        (lambda: GRU(3, 4, seed=0).backward(np.zeros((2, 5, 4), np.float32)), ConfigError, "call forward"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()

    gru_layer.forward(x)
    with pytest.raises(ShapeError, match=r"dout must have shape \(2, 5, 4\)"):
        gru_layer.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"dstate h must have shape \(2, 2, 4\) = .*got \(2, 4\)"):
        gru_layer.backward(np.zeros((2, 5, 4), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"state h must have shape \(2, 3, 4\)"):
        gru_layer.step(np.zeros((3, 3), np.float32), np.zeros((2, 2, 4), np.float32))

    lstm_layer = LSTM(3, 4, bidirectional=True, proj_size=2)
    with pytest.raises(ShapeError, match=r"must be a tuple \(h, c\) with h \(2, 2, 2\) and c \(2, 2, 4\)"):
        lstm_layer.forward(x, state0=np.zeros((2, 2, 2), np.float32))
    with pytest.raises(ShapeError, match=r"state0 c must have shape \(2, 2, 4\) = .*hidden_size\), got \(2, 2, 2\)"):
        lstm_layer.forward(x, state0=(np.zeros((2, 2, 2), np.float32),) * 2)
    with pytest.raises(ShapeError, match=r"state0 h must have shape \(2, 2, 2\) = .*proj_size\)"):
        lstm_layer.forward(x, state0=(np.zeros((2, 2, 4), np.float32),) * 2)
    with pytest.raises(ConfigError, match="bidirectional layer needs the whole sequence"):
        lstm_layer.step(x[:, 0])
    with pytest.raises(ShapeError, match=r"x_t must have shape \(batch, input_size\)"):
        LSTM(3, 4).step(np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("make, error, match", [
    (lambda: Recurrent("lstmx", 3, 4), ConfigError, "cell must be one of"),
    (lambda: GRU(0, 4), ConfigError, "input_size must be >= 1"),
    (lambda: GRU(3, 4, num_layers=0), ConfigError, "num_layers must be >= 1"),
    (lambda: GRU(3, 4, bidirectional="yes"), ConfigError, "bidirectional must be True or False"),
    (lambda: GRU(3, 4, bidirectional=True, merge_mode="mul"), ConfigError,
     r"merge_mode must be one of \['concat', 'sum'\], got 'mul'"),
    (lambda: LSTM(3, 4, merge_mode="sum"), ConfigError,
     "merge_mode='sum' merges the two directions of a bidirectional layer, but bidirectional=False; pass"),
    (lambda: GRU(3, 4, num_layers=2, dropout=1.0), ConfigError, r"dropout must be in \[0, 1\)"),
    (lambda: GRU(3, 4, recurrent_dropout=-0.1), ConfigError, "recurrent_dropout must be in"),
    (lambda: GRU(3, 4, dropout=0.5), ConfigError, "acts between stacked layers, but num_layers=1"),
    (lambda: GRU(3, 4, proj_size=2), ConfigError, r"unknown option\(s\) \['proj_size'\] for a 'gru' layer"),
    (lambda: RNN(3, 4, activation="gelu"), ConfigError, "activation must be one of"),
    (lambda: LSTM(3, 4, dtype=np.int32), ConfigError, "dtype must be float32 or float64"),
    (lambda: LSTM(3, 4, seed=-1), ConfigError, "seed must be"),
])
def test_bad_configs_raise_config_error(make, error, match):
    with pytest.raises(error, match=match):
        make()
