"""Checks shared by the RNN and GRU cell tests: finite differences, PyTorch parity, hand loops, bad input.

Every check drives a cell module (``rnnkit.cells.rnn`` / ``gru``) through its public functions and
compares with an independent reference; the loss is always L = Σ y ⊙ R1 + Σ h_T ⊙ R2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import ConfigError, DataError, DTypeError, ShapeError
from tests.gradcheck import assert_grad_close, numerical_grad


def random_inputs(mod, cfg, rng, T, B, dtype=np.float64):
    """Random parameters (weights and biases), x (T, B, D), h_0 and loss weights R1, R2."""
    p = {k: rng.uniform(-0.8, 0.8, s).astype(dtype) for k, s in mod.param_shapes(cfg).items()}
    x = rng.standard_normal((T, B, cfg.input_size)).astype(dtype)
    h0 = rng.standard_normal((B, cfg.hidden_size)).astype(dtype)
    R1 = rng.standard_normal((T, B, cfg.hidden_size)).astype(dtype)
    R2 = rng.standard_normal((B, cfg.hidden_size)).astype(dtype)
    return p, x, h0, R1, R2


def check_gradients(mod, cfg, rng, *, T=4, B=3, lengths=None, rec_mask=False, use_dy=True, use_dstate=True):
    """backward() against central differences for every parameter, x and h_0 (float64)."""
    p, x, h0, R1, R2 = random_inputs(mod, cfg, rng, T, B)
    rm = rng.uniform(0.0, 2.0, (B, cfg.hidden_size)) * (rng.random((B, cfg.hidden_size)) > 0.3) if rec_mask else None
    R1 = R1 if use_dy else np.zeros_like(R1)
    R2 = R2 if use_dstate else np.zeros_like(R2)

    def loss() -> float:
        y, hT, _ = mod.forward(p, cfg, x, h0, lengths=lengths, rec_mask=rm)
        return float((y * R1).sum() + (hT * R2).sum())

    _, _, cache = mod.forward(p, cfg, x, h0, lengths=lengths, rec_mask=rm)
    grads, dx, dh0 = mod.backward(p, cfg, cache, R1 if use_dy else None, R2 if use_dstate else None)
    assert sorted(grads) == sorted(p)
    for name in p:
        assert_grad_close(grads[name], numerical_grad(loss, p[name]), name)
    assert_grad_close(dx, numerical_grad(loss, x), "x")
    assert_grad_close(dh0, numerical_grad(loss, h0), "h0")
    assert np.abs(dh0).max() > 0 and np.abs(dx).max() > 0  # the check exercised real gradients


def check_torch_parity(mod, cfg, torch_rnn, rng, dtype, tol, *, T=5, B=4, lengths=None):
    """Outputs, final state and gradients (all parameters, x, h_0) against a one-layer torch.nn.RNN/GRU."""
    p, x, h0, R1, R2 = random_inputs(mod, cfg, rng, T, B, dtype)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    net = torch_rnn.to(tdtype)
    with torch.no_grad():
        for ours, theirs in [("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")]:
            getattr(net, theirs).copy_(torch.from_numpy(p[ours]))
    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0[None]).requires_grad_()
    if lengths is None:
        yt, hTt = net(xt, h0t)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.as_tensor(lengths), enforce_sorted=False)
        yt, hTt = net(packed, h0t)
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yt, total_length=T)
    (torch.sum(yt * torch.from_numpy(R1)) + torch.sum(hTt[0] * torch.from_numpy(R2))).backward()

    y, hT, cache = mod.forward(p, cfg, x, h0, lengths=lengths)
    grads, dx, dh0 = mod.backward(p, cfg, cache, R1, R2)
    close = dict(rtol=tol, atol=tol)
    np.testing.assert_allclose(y, yt.detach().numpy(), **close)
    np.testing.assert_allclose(hT, hTt[0].detach().numpy(), **close)
    if lengths is not None:
        padded = np.arange(T)[:, None] >= np.asarray(lengths)[None, :]
        assert (y[padded] == 0).all()
    for ours, theirs in [("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")]:
        np.testing.assert_allclose(grads[ours], getattr(net, theirs).grad.numpy(), err_msg=ours, **close)
    np.testing.assert_allclose(dx, xt.grad.numpy(), err_msg="x", **close)
    np.testing.assert_allclose(dh0, h0t.grad[0].numpy(), err_msg="h0", **close)


def check_step_loop(mod, cfg, rng, *, lengths=None):
    """forward() equals a hand loop over step() (padded steps: state carried, output zero)."""
    T, B = 6, 3
    p, x, h0, _, _ = random_inputs(mod, cfg, rng, T, B)
    y, hT, _ = mod.forward(p, cfg, x, h0, lengths=lengths)
    valid = np.ones((T, B), bool) if lengths is None else np.arange(T)[:, None] < np.asarray(lengths)[None, :]
    h = h0
    for t in range(T):
        h_t, state = mod.step(p, cfg, x[t], h)
        assert h_t is state or np.array_equal(h_t, state)
        h = np.where(valid[t][:, None], state, h)
        np.testing.assert_allclose(y[t], np.where(valid[t][:, None], h_t, 0.0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hT, h, rtol=1e-12, atol=1e-14)


def check_float32(mod, cfg, rng):
    """float32 in, float32 out: outputs, state, every gradient, dx and dh_0; float32 init/zero_state."""
    p, x, h0, R1, R2 = random_inputs(mod, cfg, rng, 5, 3, np.float32)
    y, hT, cache = mod.forward(p, cfg, x, h0, lengths=[5, 2, 1], rec_mask=np.full((3, cfg.hidden_size), 1.25, np.float32))
    grads, dx, dh0 = mod.backward(p, cfg, cache, R1, R2)
    for a in [y, hT, dx, dh0, *grads.values(), *mod.init_params(cfg, rng).values(), mod.zero_state(cfg, 2)]:
        assert a.dtype == np.float32
    assert mod.step(p, cfg, x[0], h0)[0].dtype == np.float32


def check_cache_independent(mod, cfg, rng):
    """A second forward() call does not disturb the first call's cache (no hidden buffers)."""
    p, x, h0, R1, R2 = random_inputs(mod, cfg, rng, 4, 2)
    y, hT, cache = mod.forward(p, cfg, x, h0)
    expected = mod.backward(p, cfg, cache, R1, R2)
    mod.forward(p, cfg, -x, -h0)
    y[...] = 7.0  # the caller owns the outputs
    hT[...] = 7.0
    got = mod.backward(p, cfg, cache, R1, R2)
    for name in p:
        np.testing.assert_array_equal(got[0][name], expected[0][name])
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])


# (description, change to the valid call forward(p, cfg, x=(5, 2, D) float32, ...), error, message pattern)
BAD_FORWARD_INPUTS = [
    ("rank 2 x", lambda x, kw: (x[0], kw), ShapeError, r"x must have 3 dimensions, got shape \(2, 3\)"),
    ("wrong feature size", lambda x, kw: (x[..., :2], kw), ShapeError, r"x must have 3 features .* got shape \(5, 2, 2\)"),
    ("integer x", lambda x, kw: (x.astype(np.int64), kw), DTypeError, r"x must be float32 or float64, got int64"),
    ("float64 x, float32 params", lambda x, kw: (x.astype(np.float64), kw), DTypeError, r"x has dtype float64 but the parameters are float32"),
    ("NaN in x", lambda x, kw: (np.where(x > 1, np.nan, x).astype(np.float32), kw), DataError, r"x contains \d+ NaN or Inf"),
    ("Inf in x", lambda x, kw: (np.where(x > 1, np.inf, x).astype(np.float32), kw), DataError, r"x contains \d+ NaN or Inf"),
    ("state0 wrong shape", lambda x, kw: (x, {"state0": np.zeros((3, 4), np.float32)}), ShapeError, r"state0 must have shape \(2, 4\) .* got \(3, 4\)"),
    ("state0 float64", lambda x, kw: (x, {"state0": np.zeros((2, 4))}), DTypeError, r"state0 has dtype float64 but the parameters are float32"),
    ("lengths 0", lambda x, kw: (x, {"lengths": np.array([0, 5])}), DataError, r"lengths must lie in \[1, 5\] .* got min 0"),
    ("lengths > T", lambda x, kw: (x, {"lengths": np.array([6, 5])}), DataError, r"lengths must lie in \[1, 5\] .* max 6"),
    ("lengths wrong shape", lambda x, kw: (x, {"lengths": np.array([5, 5, 5])}), ShapeError, r"lengths must have shape \(2,\) .* got \(3,\)"),
    ("float lengths", lambda x, kw: (x, {"lengths": np.array([5.0, 2.0])}), DTypeError, r"lengths must be integers, got dtype float64"),
    ("rec_mask wrong shape", lambda x, kw: (x, {"rec_mask": np.ones((2, 3), np.float32)}), ShapeError, r"rec_mask must have shape \(2, 4\)"),
]


def check_bad_forward_input(mod, cfg, change, error, match):
    """forward() rejects the changed input with the specific rnnkit error and a message naming the problem."""
    assert (cfg.input_size, cfg.hidden_size) == (3, 4)
    p = mod.init_params(cfg, np.random.default_rng(0))
    x, kwargs = change(np.random.default_rng(1).standard_normal((5, 2, 3)).astype(np.float32), {})
    with pytest.raises(error, match=match):
        mod.forward(p, cfg, x, **kwargs)


def check_bad_step_and_backward(mod, cfg):
    """step() validates x_t and state; backward() validates dy and dstate."""
    p = mod.init_params(cfg, np.random.default_rng(0))
    x = np.ones((5, 2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"x_t must have shape \('\*', 3\) .* got \(2, 2\)"):
        mod.step(p, cfg, x[0, :, :2], mod.zero_state(cfg, 2))
    with pytest.raises(ShapeError, match=r"state must have shape \(2, 4\) .* got \(1, 4\)"):
        mod.step(p, cfg, x[0], mod.zero_state(cfg, 1))
    with pytest.raises(DTypeError, match=r"x_t has dtype float64 but the parameters are float32"):
        mod.step(p, cfg, x[0].astype(np.float64), mod.zero_state(cfg, 2))
    _, _, cache = mod.forward(p, cfg, x)
    with pytest.raises(ShapeError, match=r"dy must have shape \(5, 2, 4\) .* got \(5, 2, 3\)"):
        mod.backward(p, cfg, cache, dy=np.ones((5, 2, 3), np.float32))
    with pytest.raises(ShapeError, match=r"dstate must have shape \(2, 4\) .* got \(4,\)"):
        mod.backward(p, cfg, cache, dstate=np.ones(4, np.float32))


def check_bad_config(config_cls, **valid):
    """Sizes must be positive integers."""
    with pytest.raises(ConfigError, match=r"hidden_size must be >= 1, got 0"):
        config_cls(**{**valid, "hidden_size": 0})
    with pytest.raises(ConfigError, match=r"input_size must be an integer >= 1, got 2.5"):
        config_cls(**{**valid, "input_size": 2.5})
