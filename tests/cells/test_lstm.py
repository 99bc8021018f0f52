"""rnnkit.cells.lstm against independent references: central finite differences (float64),
torch.nn.LSTM, TF1 LSTMCell.call (tests/cells/tf1_reference.py) and seed 001's lstm_cell."""

from types import SimpleNamespace

import numpy as np
import pytest

from rnnkit.cells import lstm
from rnnkit.cells.lstm import LSTMConfig
from rnnkit.errors import ConfigError, DataError, DTypeError, ShapeError
from tests.cells.tf1_reference import run_tf1, sigmoid
from tests.gradcheck import assert_grad_close, numerical_grad

D, H, P = 3, 4, 2
# Clip thresholds that bind on some elements of the problems below and not on others (asserted).
CLIPS = dict(cell_clip=1.0, proj_clip=0.2)
ALL = dict(proj_size=P, peepholes=True, forget_bias=0.8, **CLIPS)  # every option on


def problem(cfg, T=4, B=3, seed=0, dtype=np.float64, scale=0.6):
    """Random parameters (weights AND biases), input x (T, B, D) and initial state (h0, c0)."""
    rng = np.random.default_rng(seed)
    p = {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in lstm.param_shapes(cfg).items()}
    x = rng.standard_normal((T, B, cfg.input_size)).astype(dtype)
    h0 = rng.standard_normal((B, cfg.output_size)).astype(dtype)
    return p, x, (h0, rng.standard_normal((B, cfg.hidden_size)).astype(dtype))


def dropout_mask(B, R, seed=3, drop=0.3):
    """A fixed recurrent-dropout mask, already scaled by 1/(1 - drop)."""
    return (np.random.default_rng(seed).random((B, R)) > drop) / (1 - drop)


def assert_clips_bind(cfg, trace, margin=0.0):
    """Each clip binds on some pre-clip values and not on others, none closer than margin to it."""
    for key, clip in (("c", cfg.cell_clip), ("proj", cfg.proj_clip)):
        if clip is not None:
            gap = np.abs(trace[key]) - clip
            assert (gap > 0).any() and (gap < 0).any(), f"{key}: the clip must bind somewhere, not everywhere"
            assert np.abs(gap).min() > margin, f"{key}: finite differences would straddle the clip"


def check_gradients(cfg, lengths=None, rec_mask=None, with_dy=True, with_dstate=True, T=4, B=3):
    """backward == central differences of L = Σ y⊙R1 + Σ h_T⊙R2 + Σ c_T⊙R3 for every parameter, x, h0, c0."""
    p, x, (h0, c0) = problem(cfg, T, B)
    rng = np.random.default_rng(1)
    R1 = rng.standard_normal((T, B, cfg.output_size)) if with_dy else None
    R2, R3 = rng.standard_normal((B, cfg.output_size)), rng.standard_normal((B, cfg.hidden_size))
    dstate = (R2, R3) if with_dstate else None

    def loss():
        y, (hT, cT), _ = lstm.forward(p, cfg, x, (h0, c0), lengths, rec_mask)
        return (np.sum(y * R1) if with_dy else 0.0) + (np.sum(hT * R2) + np.sum(cT * R3) if with_dstate else 0.0)

    _, _, cache = lstm.forward(p, cfg, x, (h0, c0), lengths, rec_mask)
    grads, dx, (dh0, dc0) = lstm.backward(p, cfg, cache, R1, dstate)
    assert set(grads) == set(p)
    for name in p:
        assert_grad_close(grads[name], numerical_grad(loss, p[name]), name, rtol=1e-6, atol=1e-8)
    for name, a, da in (("x", x, dx), ("h0", h0, dh0), ("c0", c0, dc0)):
        assert_grad_close(da, numerical_grad(loss, a), name, rtol=1e-6, atol=1e-8)


GRAD_CASES = {
    "plain": {},
    "peepholes": dict(peepholes=True),
    "forget_bias": dict(forget_bias=1.3),
    "projection": dict(proj_size=P),
    "cell_clip": dict(cell_clip=CLIPS["cell_clip"]),
    "proj_clip+cell_clip": dict(proj_size=P, **CLIPS),
    "all options": ALL,
}


@pytest.mark.parametrize("options", GRAD_CASES.values(), ids=GRAD_CASES.keys())
def test_gradients_match_finite_differences(options):
    cfg = LSTMConfig(D, H, **options)
    if cfg.cell_clip or cfg.proj_clip:
        p, x, (h0, c0) = problem(cfg)
        assert_clips_bind(cfg, run_tf1(p, cfg, x, h0, c0)[2], margin=1e-4)
    check_gradients(cfg)


@pytest.mark.parametrize("options", [{}, ALL], ids=["plain", "all options"])
@pytest.mark.parametrize("lengths", [[4, 1, 3], [1, 2, 1]])
def test_gradients_with_lengths(options, lengths):
    check_gradients(LSTMConfig(D, H, **options), lengths=np.array(lengths))


def test_gradients_of_a_single_step_sequence():
    check_gradients(LSTMConfig(D, H, **ALL), T=1)


@pytest.mark.parametrize("options", [{}, ALL], ids=["plain", "all options"])
def test_gradients_with_recurrent_dropout_mask(options):
    cfg = LSTMConfig(D, H, **options)
    check_gradients(cfg, rec_mask=dropout_mask(3, cfg.output_size))


@pytest.mark.parametrize("with_dy, with_dstate", [(True, False), (False, True)], ids=["dy only", "dstate only"])
def test_gradients_from_outputs_only_or_final_state_only(with_dy, with_dstate):
    check_gradients(LSTMConfig(D, H, **ALL), lengths=np.array([4, 2, 3]), with_dy=with_dy, with_dstate=with_dstate)


TORCH_NAMES = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0", "W_hr": "weight_hr_l0"}


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)], ids=["float32", "float64"])
@pytest.mark.parametrize("proj_size", [0, 3], ids=["no projection", "projection"])
@pytest.mark.parametrize("lengths", [None, [6, 2, 5, 1]], ids=["full", "packed"])
def test_matches_torch_lstm(dtype, tol, proj_size, lengths):
    torch = pytest.importorskip("torch")
    T, B = 6, 4
    cfg = LSTMConfig(5, 7, proj_size=proj_size)
    p, x, (h0, c0) = problem(cfg, T, B, dtype=dtype, scale=0.4)
    net = torch.nn.LSTM(5, 7, proj_size=proj_size).to(torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():
        for name, a in p.items():
            getattr(net, TORCH_NAMES[name]).copy_(torch.from_numpy(a))
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    if lengths is None:
        out, (hn, cn) = net(xt, (h0t, c0t))
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
        out, (hn, cn) = net(packed, (h0t, c0t))
        out = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)[0]
    rng = np.random.default_rng(2)
    R1, R2, R3 = (rng.standard_normal(s).astype(dtype) for s in (out.shape, hn[0].shape, cn[0].shape))
    ((out * torch.from_numpy(R1)).sum() + (hn[0] * torch.from_numpy(R2)).sum() + (cn[0] * torch.from_numpy(R3)).sum()).backward()

    y, (hT, cT), cache = lstm.forward(p, cfg, x, (h0, c0), lengths=None if lengths is None else np.array(lengths))
    grads, dx, (dh0, dc0) = lstm.backward(p, cfg, cache, R1, (R2, R3))
    pairs = [("y", y, out), ("h_n", hT, hn[0]), ("c_n", cT, cn[0]), ("dx", dx, xt.grad), ("dh0", dh0, h0t.grad[0]),
             ("dc0", dc0, c0t.grad[0])] + [(k, grads[k], getattr(net, TORCH_NAMES[k]).grad) for k in p]
    for name, ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("options", [ALL, dict(peepholes=True, forget_bias=1.0, cell_clip=CLIPS["cell_clip"]), {}],
                         ids=["all options", "peepholes+cell_clip", "plain"])
def test_matches_tf1_lstmcell_call(options):
    cfg = LSTMConfig(5, 6, **options)
    p, x, (h0, c0) = problem(cfg, T=7, B=3, seed=5, scale=0.8)
    y_tf, (c_tf, m_tf), trace = run_tf1(p, cfg, x, h0, c0)
    assert_clips_bind(cfg, trace)
    y, (hT, cT), _ = lstm.forward(p, cfg, x, (h0, c0))
    for name, ours, theirs in (("y", y, y_tf), ("h_T", hT, m_tf), ("c_T", cT, c_tf)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=name)


def test_step_matches_seed_001_lstm_cell():
    """Seed 001's lstm_cell_forward: column-major (n, m) arrays, W over concat(a_prev, xt), gates f, i, c̃, o."""
    rs = np.random.RandomState(1)  # the seed's np.random.seed(1), without touching the global state
    xt, a_prev, c_prev = rs.randn(3, 10), rs.randn(5, 10), rs.randn(5, 10)
    W, b = {}, {}
    for gate in "fioc":
        W[gate], b[gate] = rs.randn(5, 5 + 3), rs.randn(5, 1)
    concat = np.concatenate((a_prev, xt), axis=0)
    ft, it = sigmoid(W["f"] @ concat + b["f"]), sigmoid(W["i"] @ concat + b["i"])
    cct, ot = np.tanh(W["c"] @ concat + b["c"]), sigmoid(W["o"] @ concat + b["o"])
    c_next = c_prev * ft + cct * it
    a_next = ot * np.tanh(c_next)

    b_all = np.concatenate([b[gate] for gate in "ifco"]).ravel()  # rnnkit order i, f, g = c̃, o
    b_hh = np.random.default_rng(0).standard_normal(20)  # split the seed's single bias at random
    p = {"W_ih": np.vstack([W[gate][:, 5:] for gate in "ifco"]), "W_hh": np.vstack([W[gate][:, :5] for gate in "ifco"]),
         "b_ih": b_all - b_hh, "b_hh": b_hh}
    h, (h_state, c) = lstm.step(p, LSTMConfig(3, 5), xt.T, (a_prev.T, c_prev.T))
    np.testing.assert_allclose(h.T, a_next, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.T, c_next, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(h, h_state)


def test_iterated_step_equals_forward():
    cfg = LSTMConfig(D, H, **ALL)
    p, x, state = problem(cfg, T=5)
    y, stateT, _ = lstm.forward(p, cfg, x, state)
    for t in range(len(x)):
        h, state = lstm.step(p, cfg, x[t], state)
        np.testing.assert_allclose(h, y[t], rtol=1e-13, atol=1e-13)
    for ours, theirs in zip(state, stateT):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-13)


def test_lengths_and_rec_mask_act_like_separate_truncated_rows():
    """Row b alone: x[:L_b], W_hh scaled by its dropout mask ((h ⊙ r_b) W_hh^T = h (W_hh diag r_b)^T)."""
    cfg = LSTMConfig(D, H, **ALL)
    p, x, (h0, c0) = problem(cfg, T=5)
    lengths, r = np.array([5, 2, 1]), dropout_mask(3, P)
    y, (hT, cT), _ = lstm.forward(p, cfg, x, (h0, c0), lengths, rec_mask=r)
    for b, L in enumerate(lengths):
        y_b, (h_b, c_b), _ = lstm.forward({**p, "W_hh": p["W_hh"] * r[b]}, cfg, x[:L, b:b + 1], (h0[b:b + 1], c0[b:b + 1]))
        np.testing.assert_allclose(y[:L, b:b + 1], y_b, rtol=1e-12, atol=1e-12)
        assert not y[L:, b].any(), "outputs past a sequence's length are zero"
        np.testing.assert_allclose(hT[b:b + 1], h_b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cT[b:b + 1], c_b, rtol=1e-12, atol=1e-12)


def test_outputs_are_not_views_of_the_cache():
    cfg = LSTMConfig(D, H, **ALL)
    p, x, state0 = problem(cfg)
    y, (hT, cT), cache = lstm.forward(p, cfg, x, state0)
    dy, dstate = np.random.default_rng(1).standard_normal(y.shape), (hT.copy(), cT.copy())
    grads = lstm.backward(p, cfg, cache, dy, dstate)[0]
    for a in (y, hT, cT):
        a += 1.0  # a caller editing the outputs must not change the gradients
    grads_again = lstm.backward(p, cfg, cache, dy, dstate)[0]
    for name in p:
        np.testing.assert_array_equal(grads[name], grads_again[name], err_msg=name)


def test_float32_stays_float32_and_agrees_with_float64():
    cfg = LSTMConfig(D, H, **ALL)
    lengths, rec_mask = np.array([4, 2, 3]), dropout_mask(3, P)
    results = []
    for dtype in (np.float32, np.float64):
        p, x, state0 = problem(cfg, dtype=dtype)
        dy = np.random.default_rng(1).standard_normal((4, 3, P)).astype(dtype)
        y, stateT, cache = lstm.forward(p, cfg, x, state0, lengths, rec_mask.astype(dtype))
        grads, dx, dstate0 = lstm.backward(p, cfg, cache, dy, tuple(s.astype(dtype) for s in stateT))
        arrays = {"y": y, "h_T": stateT[0], "c_T": stateT[1], "dx": dx, "dh0": dstate0[0], "dc0": dstate0[1], **grads}
        assert all(a.dtype == dtype for a in arrays.values()), {k: a.dtype for k, a in arrays.items()}
        results.append(arrays)
    for name, a32 in results[0].items():
        np.testing.assert_allclose(a32, results[1][name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_parameter_names_shapes_and_init():
    cfg = LSTMConfig(D, H, **ALL)
    assert lstm.param_shapes(cfg) == {"W_ih": (16, 3), "W_hh": (16, 2), "b_ih": (16,), "b_hh": (16,),
                                      "w_ci": (4,), "w_cf": (4,), "w_co": (4,), "W_hr": (2, 4)}
    assert set(lstm.param_shapes(LSTMConfig(D, H))) == {"W_ih", "W_hh", "b_ih", "b_hh"}
    p = lstm.init_params(cfg, np.random.default_rng(0))
    assert all(a.dtype == np.float32 and a.shape == lstm.param_shapes(cfg)[k] for k, a in p.items())
    values = np.concatenate([a.ravel() for a in p.values()])  # U(-1/sqrt(H), 1/sqrt(H)) = U(-0.5, 0.5)
    assert values.max() <= 0.5 and values.min() >= -0.5 and values.max() > 0.45 and values.min() < -0.45
    h0, c0 = lstm.zero_state(cfg, 5, np.float64)
    assert h0.shape == (5, P) and c0.shape == (5, H) and h0.dtype == c0.dtype == np.float64 and not h0.any()


def bad_setup():
    cfg = LSTMConfig(D, H, proj_size=P)
    p, x, (h0, c0) = problem(cfg, dtype=np.float32)
    return SimpleNamespace(cfg=cfg, p=p, x=x, h0=h0, c0=c0, cache=lstm.forward(p, cfg, x)[2])


def run_forward(s, x=None, state0=None, **kw):
    return lstm.forward(s.p, s.cfg, s.x if x is None else x, state0, **kw)


BAD_INPUTS = {
    "x rank": (lambda s: run_forward(s, s.x[0]), ShapeError, r"x must have 3 dimensions, got shape \(3, 3\)"),
    "x features": (lambda s: run_forward(s, s.x[..., :2]), ShapeError, r"x must have 3 features .* got shape \(4, 3, 2\)"),
    "x int": (lambda s: run_forward(s, s.x.astype(int)), DTypeError, "x must be float32 or float64, got int64"),
    "x float64": (lambda s: run_forward(s, s.x.astype(np.float64)), DTypeError, "x has dtype float64 but the parameters are float32"),
    "x NaN": (lambda s: run_forward(s, np.where(s.x > 1, np.nan, s.x)), DataError, "x contains .* NaN or Inf"),
    "x Inf": (lambda s: run_forward(s, np.where(s.x > 1, np.inf, s.x)), DataError, "x contains .* NaN or Inf"),
    "state not a pair": (lambda s: run_forward(s, state0=s.h0), ShapeError, r"state0 must be a pair \(h, c\) .* got ndarray"),
    "state triple": (lambda s: run_forward(s, state0=(s.h0, s.c0, s.c0)), ShapeError, "got tuple of length 3"),
    "state (c, h)": (lambda s: run_forward(s, state0=(s.c0, s.h0)), ShapeError, r"state0\[0\] \(h\) must have shape \(3, 2\)"),
    "c0 shape": (lambda s: run_forward(s, state0=(s.h0, s.c0[:, :2])), ShapeError, r"state0\[1\] \(c\) must have shape \(3, 4\)"),
    "state float64": (lambda s: run_forward(s, state0=(s.h0, s.c0.astype(np.float64))), DTypeError, "parameters are float32"),
    "length > T": (lambda s: run_forward(s, lengths=np.array([5, 1, 2])), DataError, r"lengths must lie in \[1, 4\]"),
    "length 0": (lambda s: run_forward(s, lengths=np.array([0, 1, 2])), DataError, r"lengths must lie in \[1, 4\]"),
    "lengths shape": (lambda s: run_forward(s, lengths=np.array([1, 2])), ShapeError, r"lengths must have shape \(3,\)"),
    "lengths float": (lambda s: run_forward(s, lengths=np.array([1.0, 2.0, 3.0])), DTypeError, "lengths must be integers"),
    "rec_mask shape": (lambda s: run_forward(s, rec_mask=np.ones((3, H), np.float32)), ShapeError, r"rec_mask must have shape \(3, 2\)"),
    "params missing": (lambda s: lstm.forward({"W_ih": s.p["W_ih"]}, s.cfg, s.x), ConfigError, "p must hold .* build it with init_params"),
    "param shape": (lambda s: lstm.forward({**s.p, "W_hr": s.p["W_hr"].T}, s.cfg, s.x), ShapeError, r"p\['W_hr'\] must have shape \(2, 4\)"),
    "step x_t rank": (lambda s: lstm.step(s.p, s.cfg, s.x, (s.h0, s.c0)), ShapeError, r"x_t must have 2 dimensions, got shape \(4, 3, 3\)"),
    "step x_t features": (lambda s: lstm.step(s.p, s.cfg, s.x[0, :, :2], (s.h0, s.c0)), ShapeError, r"x_t must have shape .*3\).* got \(3, 2\)"),
    "step state": (lambda s: lstm.step(s.p, s.cfg, s.x[0], s.h0), ShapeError, r"state must be a pair \(h, c\)"),
    "dy shape": (lambda s: lstm.backward(s.p, s.cfg, s.cache, s.x), ShapeError, r"dy must have shape \(4, 3, 2\)"),
    "dstate shape": (lambda s: lstm.backward(s.p, s.cfg, s.cache, None, (s.c0, s.c0)), ShapeError, r"dstate\[0\] \(h\)"),
}


@pytest.mark.parametrize("call, error, match", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_raises_a_specific_error(call, error, match):
    with pytest.raises(error, match=match):
        call(bad_setup())


BAD_CONFIGS = {
    "proj_clip without proj_size": (dict(proj_clip=1.0), "set proj_size > 0 or proj_clip=None"),
    "negative cell_clip": (dict(cell_clip=-1.0), "cell_clip must be a positive finite number or None, got -1.0"),
    "proj_size == hidden_size": (dict(proj_size=H), "proj_size must be smaller than hidden_size=4 .*got 4"),
    "negative proj_size": (dict(proj_size=-1), "proj_size must be >= 0, got -1"),
    "peepholes not bool": (dict(peepholes="yes"), "peepholes must be True or False, got 'yes'"),
    "forget_bias NaN": (dict(forget_bias=float("nan")), "forget_bias must be a finite number, got nan"),
    "hidden_size 0": (dict(hidden_size=0), "hidden_size must be >= 1, got 0"),
}


@pytest.mark.parametrize("options, match", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_raises_config_error(options, match):
    with pytest.raises(ConfigError, match=match):
        LSTMConfig(**{"input_size": D, "hidden_size": H, **options})
