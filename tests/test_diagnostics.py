"""rnnkit.diagnostics against independent references.

- dL/dh_t (and dL/dc_t) per step: PyTorch autograd on an unrolled computation built from
  torch.nn.{RNN,GRU,LSTM}Cell with the model's weights, ``retain_grad`` on every state (float32).
- step Jacobians: central finite differences through the cells' own ``step`` (float64).
- gate statistics: the gates recomputed from the equations in this file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit import ConfigError
from rnnkit.cells import FAMILIES, GRUConfig, LSTMConfig, RNNConfig
from rnnkit.diagnostics import gradient_flow, step_jacobian
from rnnkit.layers import Dense, Recurrent
from rnnkit.models import Sequential
from tests.gradcheck import assert_grad_close, numerical_grad

TORCH_CELLS = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


def random_model(cell: str, *, D=3, H=5, K=2, num_layers=1, bidirectional=False, return_sequences=True, seed=0):
    """A recurrent layer and a Dense head, every weight and bias random (not the default init)."""
    rng = np.random.default_rng(seed)
    rec = Recurrent(cell, D, H, num_layers=num_layers, bidirectional=bidirectional,
                    return_sequences=return_sequences, seed=seed)
    model = Sequential([rec, Dense(rec.output_size, K, seed=seed + 1)])
    for p in model.params.values():
        p[...] = rng.uniform(-0.9, 0.9, p.shape)
    return model


def torch_state_grads(model: Sequential, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None):
    """Per cell ``i = k*dirs + d``: lists over t of (dL/dh_t, dL/dc_t or None) from autograd, in data order.

    The unrolled loop follows docs/conventions.md: padded steps carry the state and output zero; a
    reverse direction reads each sequence backwards from its own last valid step; the loss is the
    MSE of the Dense head over every step (or over the last state without return_sequences).
    """
    rec, dense = model.layers
    B, T, _ = x.shape
    lengths = np.full(B, T) if lengths is None else lengths
    valid = torch.from_numpy((np.arange(T)[:, None] < lengths).astype(np.float32))[:, :, None]  # (T, B, 1)
    seq = [torch.from_numpy(x[:, t]) for t in range(T)]
    states, finals = {}, []
    for k in range(rec.num_layers):
        outs = []
        for d in range(rec.num_directions):
            i = k * rec.num_directions + d
            p = rec._cell_params(i)
            cell = TORCH_CELLS[rec.cell](seq[0].shape[1], rec.hidden_size)
            cell.load_state_dict({"weight_ih": torch.from_numpy(p["W_ih"]), "weight_hh": torch.from_numpy(p["W_hh"]),
                                  "bias_ih": torch.from_numpy(p["b_ih"]), "bias_hh": torch.from_numpy(p["b_hh"])})
            h = torch.zeros(B, rec.hidden_size)
            c = torch.zeros(B, rec.hidden_size)
            hs, cs = [None] * T, [None] * T
            # step s of sequence b reads time order[s][b]
            order = [np.where(s < lengths, lengths - 1 - s, s) if d else np.full(B, s) for s in range(T)]
            for s in range(T):
                x_s = torch.stack([seq[order[s][b]][b] for b in range(B)])
                v = valid[s]
                if rec.cell == "lstm":
                    h_new, c_new = cell(x_s, (h, c))
                    c = v * c_new + (1 - v) * c
                    c.retain_grad()
                else:
                    h_new = cell(x_s, h)
                h = v * h_new + (1 - v) * h
                h.retain_grad()
                hs[s], cs[s] = h, (c if rec.cell == "lstm" else None)
            # data time t is processing step order[t][b] (the map is its own inverse); padded outputs are 0
            outs.append([torch.stack([(valid[order[t][b]] * hs[order[t][b]])[b] for b in range(B)]) for t in range(T)])
            states[i] = (hs, cs, order)
            finals.append(h)
        seq = [torch.cat([o[t] for o in outs], dim=1) for t in range(T)]
    W, b = (torch.from_numpy(model.params[f"1.{n}"]) for n in ("W", "b"))
    if rec.return_sequences:
        pred = torch.stack(seq, dim=1) @ W.T + b
    else:
        pred = torch.cat(finals[-rec.num_directions:], dim=1) @ W.T + b
    torch.mean((pred - torch.from_numpy(y)) ** 2).backward()
    return states, lengths


def torch_flow(states, i, lengths, lstm):
    """Mean over valid rows of the per-row norms of dL/dh_t (and dL/dc_t), in data time order."""
    hs, cs, order = states[i]
    T, B = len(hs), len(lengths)
    dh, dc = np.zeros((T, B)), np.zeros((T, B))
    for s in range(T):
        for b in range(B):
            t = order[s][b]
            dh[t, b] = hs[s].grad[b].norm().item()
            if lstm and cs[s].grad is not None:  # the last c_t feeds nothing: no gradient
                dc[t, b] = cs[s].grad[b].norm().item()
    valid = np.arange(T)[:, None] < lengths
    mean = lambda a: (a * valid).sum(axis=1) / valid.sum(axis=1)  # noqa: E731
    return mean(dh), mean(dc)


CASES = [
    ("rnn", dict()),
    ("gru", dict()),
    ("lstm", dict()),
    ("lstm", dict(return_sequences=False)),
    ("gru", dict(num_layers=2, bidirectional=True)),
    ("lstm", dict(num_layers=2, bidirectional=True)),
    ("rnn", dict(bidirectional=True)),
]


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("cell, options", CASES)
def test_dh_norm_matches_torch_autograd(cell, options, with_lengths):
    model = random_model(cell, **options)
    rng = np.random.default_rng(1)
    B, T = 4, 6
    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    y_shape = (B, T, 2) if options.get("return_sequences", True) else (B, 2)
    y = rng.standard_normal(y_shape).astype(np.float32)
    lengths = np.array([6, 3, 5, 1]) if with_lengths else None
    report = gradient_flow(model, x, y, "mse", lengths=lengths)
    states, full_lengths = torch_state_grads(model, x, y, lengths)
    assert list(report.cells) == [f"0.{p}" for p in model.layers[0].prefixes]
    for i, flow in enumerate(report.cells.values()):
        dh, dc = torch_flow(states, i, full_lengths, cell == "lstm")
        np.testing.assert_allclose(flow.dh_norm, dh, rtol=2e-5, atol=1e-8, err_msg=flow.name)
        assert dh.min() > 0  # the comparison is not between zeros
        if cell == "lstm":
            np.testing.assert_allclose(flow.dc_norm, dc, rtol=2e-5, atol=1e-8, err_msg=flow.name)


# ---- step Jacobians against finite differences ---------------------------------------------------

JACOBIAN_CASES = [
    ("rnn", RNNConfig(3, 4)),
    ("rnn", RNNConfig(3, 4, activation="sigmoid")),
    ("gru", GRUConfig(3, 4)),
    ("gru", GRUConfig(3, 4, reset_after=False)),
    ("lstm", LSTMConfig(3, 4)),
    ("lstm", LSTMConfig(3, 4, peepholes=True, forget_bias=1.0)),
    ("lstm", LSTMConfig(3, 4, proj_size=2, peepholes=True, cell_clip=0.6, proj_clip=0.3)),
]


@pytest.mark.parametrize("cell, cfg", JACOBIAN_CASES, ids=lambda v: getattr(v, "__repr__")()[:60])
def test_step_jacobian_matches_finite_differences(cell, cfg):
    mod = FAMILIES[cell]
    rng = np.random.default_rng(3)
    p = {k: rng.uniform(-0.9, 0.9, s) for k, s in mod.param_shapes(cfg).items()}
    T, B = 4, 3
    x = rng.standard_normal((T, B, cfg.input_size))
    lstm = cell == "lstm"
    R = cfg.output_size if lstm else cfg.hidden_size
    s0 = rng.standard_normal((B, R + (cfg.hidden_size if lstm else 0)))
    split = (lambda s: (s[:, :R], s[:, R:])) if lstm else (lambda s: s)
    lengths = np.array([4, 2, 3])
    _, _, cache = mod.forward(p, cfg, x, split(s0), lengths=lengths)
    for t in range(T):
        J = step_jacobian(cell, p, cfg, cache, t)
        s_prev = np.concatenate([cache["hs"][t].T, cache["cs"][t].T], axis=1) if lstm else cache["hs"][t].copy()
        for b in range(B):
            if t >= lengths[b]:  # padded: the state is carried
                np.testing.assert_array_equal(J[b], np.eye(len(s_prev[b])))
                continue

            def s_t(k):  # component k of the state after step t, for row b
                _, state = mod.step(p, cfg, x[t, b : b + 1], split(s_prev[b : b + 1]))
                return float(np.concatenate(state, axis=1)[0, k] if lstm else state[0, k])

            numeric = np.stack([numerical_grad(lambda: s_t(k), s_prev[b : b + 1])[0] for k in range(J.shape[1])])
            assert_grad_close(J[b], numeric, f"{cell} J[t={t}, b={b}]", rtol=1e-6, atol=1e-8)


# ---- gate statistics against a recomputation -----------------------------------------------------


def test_lstm_gate_stats_match_the_equations():
    model = random_model("lstm", H=6)
    for p in model.params.values():
        p *= 3  # saturate some gates
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    y = rng.standard_normal((5, 7, 2)).astype(np.float32)
    flow = gradient_flow(model, x, y, "mse").cells["0.l0"]
    p = {k.split(".", 2)[-1]: v.astype(np.float64) for k, v in model.params.items() if k.startswith("0.")}
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, c = np.zeros((5, 6)), np.zeros((5, 6))
    expected = {g: {"mean": [], "saturated": []} for g in "ifgo"}
    cell_norm = []
    for t in range(7):
        a = x[:, t] @ p["W_ih"].T + p["b_ih"] + h @ p["W_hh"].T + p["b_hh"]
        i, f, g, o = sig(a[:, :6]), sig(a[:, 6:12]), np.tanh(a[:, 12:18]), sig(a[:, 18:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, v in zip("ifgo", (i, f, g, o)):
            sat = np.abs(v) > 0.95 if name == "g" else (v < 0.05) | (v > 0.95)
            expected[name]["mean"].append(v.mean())
            expected[name]["saturated"].append(sat.mean())
        cell_norm.append(np.abs(c).mean())
    for name in "ifgo":
        np.testing.assert_allclose(flow.gates[name]["mean"], expected[name]["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(flow.gates[name]["saturated"], expected[name]["saturated"], atol=1e-9)
    assert 0 < np.mean(expected["i"]["saturated"]) < 1  # saturation was exercised
    np.testing.assert_allclose(flow.cell_norm, cell_norm, rtol=1e-5)


def test_gru_and_rnn_gate_names_and_padding_excluded():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    y = rng.standard_normal((3, 5, 2)).astype(np.float32)
    lengths = np.array([5, 2, 2])
    gru = gradient_flow(random_model("gru"), x, y, "mse", lengths=lengths).cells["0.l0"]
    assert set(gru.gates) == {"r", "z", "n"} and gru.dc_norm is None and gru.cell_norm is None
    rnn_model = random_model("rnn")
    rnn = gradient_flow(rnn_model, x, y, "mse", lengths=lengths).cells["0.l0"]
    out = rnn_model.layers[0].forward(x, lengths=lengths)
    # steps 2.. are valid for row 0 only: the mean is row 0's alone
    np.testing.assert_allclose(rnn.gates["h"]["mean"][2:], out[0, 2:].mean(axis=-1), rtol=1e-5)


# ---- report ---------------------------------------------------------------------------------------


def test_report_products_shares_and_outputs(tmp_path):
    model = random_model("gru", num_layers=2)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    y = rng.standard_normal((4, 6, 2)).astype(np.float32)
    report = gradient_flow(model, x, y, "mse", jacobian_samples=2)
    flow = report.cells["0.l1"]
    assert flow.jacobian_product_norm(0) == 1.0
    # the product norm is bounded by the product of the step norms (submultiplicative), per row
    p = model.layers[0]
    cache, params, cfg = p._cache["caches"][1], p._cell_params(1), p._config(1)
    Js = [step_jacobian("gru", params, cfg, cache, t)[:2].astype(np.float64) for t in range(6)]
    P = Js[5] @ Js[4] @ Js[3]
    np.testing.assert_allclose(report.jacobian_product_norm(3, "0.l1"), np.linalg.norm(P, 2, axis=(1, 2)).mean(),
                               rtol=1e-6)
    np.testing.assert_allclose(flow.jacobian_norm[5], np.linalg.norm(Js[5], 2, axis=(1, 2)).mean(), rtol=1e-6)
    assert sum(report.grad_share.values()) == pytest.approx(1.0)
    g = model.grads
    total = sum(float((v.astype(np.float64) ** 2).sum()) for v in g.values())
    W_hh_sq = float((g["0.l0.W_hh"].astype(np.float64) ** 2).sum())
    assert report.grad_share["0.l0.W_hh"] == pytest.approx(W_hh_sq / total)
    doc = json.loads(report.to_json())
    assert doc["cells"]["0.l1"]["dh_norm"] == pytest.approx(flow.dh_norm.tolist())
    text = report.to_text()
    assert "0.l1 (GRU)" in text and "|dL/dh_t|" in text and "gradient share" in text
    report.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="span must be in"):
        flow.jacobian_product_norm(7)


def test_bad_arguments_raise():
    x = np.zeros((2, 3, 3), np.float32)
    with pytest.raises(ConfigError, match="needs a model with a recurrent layer"):
        gradient_flow(Sequential([Dense(3, 2)]), x, np.zeros((2, 3, 2), np.float32), "mse")
    with pytest.raises(ConfigError, match="loss must be one of"):
        gradient_flow(random_model("rnn"), x, np.zeros((2, 3, 2), np.float32), "l7")
    with pytest.raises(ConfigError, match="jacobian_samples must be"):
        gradient_flow(random_model("rnn"), x, np.zeros((2, 3, 2), np.float32), "mse", jacobian_samples=0)


# ---- the vanishing demo (quick) ------------------------------------------------------------------


def test_quick_vanishing_demo_gated_cells_carry_the_gradient_further_back(tmp_path):
    from rnnkit.tasks.vanishing import vanishing_demo

    result = vanishing_demo(quick=True, seed=0)
    assert result.lengths == (5, 15)
    for key in ("reach_init", "reach_trained"):
        plain = result.table(key)["plain"]
        # at the longest T, more of the last step's error signal reaches step 0 through a GRU or an LSTM
        assert plain["gru"][-1] > 3 * plain["rnn"][-1], key
        assert plain["lstm"][-1] > 3 * plain["rnn"][-1], key
        assert result.table(key)["forget bias 1"]["lstm"][-1] > plain["lstm"][-1], key
    assert all(0 <= a <= 1 for cells in result.table("accuracy").values() for acc in cells.values() for a in acc)
    again = vanishing_demo(quick=True, seed=0, lengths=(15,), steps=5)
    assert again.table("reach_init")["plain"]["rnn"] == [result.table("reach_init")["plain"]["rnn"][-1]]  # seeded
    assert "held-out accuracy" in result.to_text()
    assert json.loads(result.to_json())["lengths"] == [5, 15]
    result.plot(tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 0
