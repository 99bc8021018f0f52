"""GRU cell (both reset placements): finite differences, PyTorch parity, d2l's formulas, step loop, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import ConfigError
from rnnkit.cells import gru
from rnnkit.cells.gru import GRUConfig
from tests.cells import cell_checks as checks

RESET = [True, False]
RESET_IDS = ["reset_after", "reset_before"]


def test_param_shapes_names_and_init(rng):
    cfg = GRUConfig(input_size=3, hidden_size=4)
    assert gru.param_shapes(cfg) == {"W_ih": (12, 3), "W_hh": (12, 4), "b_ih": (12,), "b_hh": (12,)}
    p = gru.init_params(cfg, rng, np.float64)
    assert {k: v.shape for k, v in p.items()} == gru.param_shapes(cfg)
    assert all(np.abs(v).max() <= 0.5 and np.unique(v).size == v.size for v in p.values())  # U(-1/√H, 1/√H)
    assert np.array_equal(gru.zero_state(cfg, 2, np.float64), np.zeros((2, 4)))


# ---- 1. central finite differences (float64) ----

@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_gradients(reset_after, rng):
    checks.check_gradients(gru, GRUConfig(2, 3, reset_after), rng)


@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_gradients_with_lengths(reset_after, rng):
    checks.check_gradients(gru, GRUConfig(2, 3, reset_after), rng, B=4, lengths=np.array([4, 1, 2, 3]))


@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_gradients_with_rec_mask_and_lengths(reset_after, rng):
    checks.check_gradients(gru, GRUConfig(2, 3, reset_after), rng, lengths=np.array([2, 4, 1]), rec_mask=True)


@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
@pytest.mark.parametrize("use_dy", [True, False], ids=["dy_only", "dstate_only"])
def test_gradients_one_upstream_gradient(reset_after, use_dy, rng):
    cfg = GRUConfig(2, 3, reset_after)
    checks.check_gradients(gru, cfg, rng, lengths=np.array([3, 4, 1]), use_dy=use_dy, use_dstate=not use_dy)


# ---- 2. parity with torch.nn.GRU (reset_after=True is PyTorch's formula) ----

@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("lengths", [None, [5, 2, 1, 4]], ids=["full", "packed"])
def test_torch_parity(dtype, tol, lengths, rng):
    torch.manual_seed(0)
    checks.check_torch_parity(gru, GRUConfig(3, 6), torch.nn.GRU(3, 6), rng, dtype, tol, lengths=lengths)


# ---- 3. reset_after=False against d2l's from-scratch GRU (seed 002) ----

def d2l_gru(inputs, state, params):
    """Seed 002's loop, in NumPy: row-vector weights W_x* (D, H), W_h* (H, H), one bias per gate."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h = params
    H = state
    outputs = []
    for X in inputs:
        Z = 1 / (1 + np.exp(-(X @ W_xz + H @ W_hz + b_z)))
        R = 1 / (1 + np.exp(-(X @ W_xr + H @ W_hr + b_r)))
        H_tilda = np.tanh(X @ W_xh + (R * H) @ W_hh + b_h)
        H = Z * H + (1 - Z) * H_tilda
        outputs.append(H)
    return np.stack(outputs), H


def test_reset_before_matches_d2l_gru(rng):
    T, B, D, H = 7, 3, 4, 5
    cfg = GRUConfig(D, H, reset_after=False)
    p, x, h0, _, _ = checks.random_inputs(gru, cfg, rng, T, B)
    (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = np.split(p["W_ih"], 3), np.split(p["W_hh"], 3)
    b_r, b_z, b_h = np.split(p["b_ih"] + p["b_hh"], 3)  # d2l has one bias per gate
    params = [W_iz.T, W_hz.T, b_z, W_ir.T, W_hr.T, b_r, W_in.T, W_hn.T, b_h]
    expected_y, expected_h = d2l_gru(x, h0, params)
    y, hT, _ = gru.forward(p, cfg, x, h0)
    np.testing.assert_allclose(y, expected_y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hT, expected_h, rtol=1e-12, atol=1e-14)
    # and the two placements really differ on the same parameters
    assert np.abs(gru.forward(p, GRUConfig(D, H, reset_after=True), x, h0)[0] - y).max() > 1e-3


# ---- 6. step loop == forward ----

@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
@pytest.mark.parametrize("lengths", [None, [6, 1, 3]], ids=["full", "lengths"])
def test_forward_equals_step_loop(reset_after, lengths, rng):
    checks.check_step_loop(gru, GRUConfig(2, 4, reset_after), rng, lengths=lengths)


@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_input_size_one(reset_after, rng):
    """D == 1 takes the broadcast path of the input projection."""
    checks.check_step_loop(gru, GRUConfig(1, 4, reset_after), rng)


# ---- 8. dtypes and caches ----

@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_float32_stays_float32(reset_after, rng):
    checks.check_float32(gru, GRUConfig(3, 4, reset_after), rng)


@pytest.mark.parametrize("reset_after", RESET, ids=RESET_IDS)
def test_cache_is_independent_of_later_calls(reset_after, rng):
    checks.check_cache_independent(gru, GRUConfig(3, 4, reset_after), rng)


# ---- 7. bad input ----

@pytest.mark.parametrize("change, error, match", [c[1:] for c in checks.BAD_FORWARD_INPUTS],
                         ids=[c[0] for c in checks.BAD_FORWARD_INPUTS])
def test_bad_forward_input(change, error, match):
    checks.check_bad_forward_input(gru, GRUConfig(3, 4), change, error, match)


def test_bad_step_and_backward_input():
    checks.check_bad_step_and_backward(gru, GRUConfig(3, 4, reset_after=False))


def test_bad_config():
    checks.check_bad_config(GRUConfig, input_size=3, hidden_size=4)
    with pytest.raises(ConfigError, match=r"reset_after must be True or False, got 'yes'"):
        GRUConfig(3, 4, reset_after="yes")
