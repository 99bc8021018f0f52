"""The fast engine (rnnkit.cells.fast, numba) against the NumPy reference cells, on every variant.

For each family and option set, both engines run forward and backward on the same random weights,
biases, inputs, initial state, lengths (including length 1) and recurrent-dropout mask, and every
output is compared: y, the final state, every parameter gradient, dx and the initial-state gradient.
float64 must agree to 1e-12 of each array's scale (only the summation order of a few products
differs); float32 to 2e-6 (float32 tanh/σ are a rational approximation there, |error| < 3e-7).
The reference is itself checked against finite differences and PyTorch (tests/cells/test_*.py);
the fast RNN and GRU are also checked against finite differences directly here.
"""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import pytest

pytest.importorskip("numba")

from rnnkit import ConfigError, DataError, DTypeError, ShapeError
from rnnkit.cells import fast, gru, lstm, rnn
from rnnkit.cells.fast import _blas
from rnnkit.layers.recurrent import Recurrent
from tests.cells.cell_checks import check_gradients

FAST = {mod: fast.module_for(name) for name, mod in (("rnn", rnn), ("gru", gru), ("lstm", lstm))}
TOL = {np.float64: 1e-12, np.float32: 2e-6}
T, B = 5, 4


def _random_case(mod, cfg, rng, dtype, *, masked: bool, dy: bool = True, dstate: bool = True, B: int = B) -> tuple:
    """(p, forward args, backward kwargs): random parameters, x, state0, lengths, rec_mask, dy, dstate."""
    p = {k: rng.uniform(-0.8, 0.8, s).astype(dtype) for k, s in mod.param_shapes(cfg).items()}
    x = rng.standard_normal((T, B, cfg.input_size)).astype(dtype)

    def state(scale: float = 1.0):
        h = mod.zero_state(cfg, B, dtype)
        return tuple(scale * rng.standard_normal(s.shape).astype(dtype) for s in h) if isinstance(h, tuple) \
            else (scale * rng.standard_normal(h.shape)).astype(dtype)

    R = mod.param_shapes(cfg)["W_hh"][1]
    lengths = np.resize([T, 1, 3, T - 1], B) if masked else None
    rec_mask = (rng.uniform(0.0, 2.0, (B, R)) * (rng.random((B, R)) > 0.3)).astype(dtype) if masked else None
    args = (x, state(), lengths, rec_mask)
    dy_ = rng.standard_normal((T, B, R)).astype(dtype) if dy else None
    return p, args, {"dy": dy_, "dstate": state() if dstate else None}


def _flat(result, name: str = "") -> list[tuple[str, np.ndarray]]:
    """(name, array) for every array in a nested (tuple / dict) result, dict entries by sorted key."""
    if isinstance(result, dict):
        return [pair for k in sorted(result) for pair in _flat(result[k], f"{name}.{k}")]
    if isinstance(result, (tuple, list)):
        return [pair for i, r in enumerate(result) for pair in _flat(r, f"{name}[{i}]")]
    return [] if result is None else [(name, result)]


def _assert_close(expected, actual, dtype, tol: float | None) -> None:
    """Every array of ``actual`` agrees with ``expected`` (same structure) to ``tol`` (default ``TOL[dtype]``)
    of its scale."""
    for (name, a), (_, b) in zip(_flat(expected), _flat(actual), strict=True):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, name
        scale = max(1.0, float(np.abs(a).max()))
        err = float(np.abs(a - b).max())
        assert err <= (tol or TOL[dtype]) * scale, f"{name}: max |fast - reference| = {err:.3g} (scale {scale:.3g})"


def _assert_parity(mod, cfg, dtype, rng, tol: float | None = None, **case) -> dict:
    """Run both engines on one random case; assert every output agrees to ``tol`` (default ``TOL[dtype]``) of
    its scale, and that both engines' ``infer`` gives the reference forward's (y, state) without the
    recurrent-dropout mask; return the reference's cache."""
    p, args, bwd = _random_case(mod, cfg, rng, dtype, **case)
    outs, caches = [], []
    for engine in (mod, FAST[mod]):
        y, stateT, cache = engine.forward(p, cfg, *args)
        grads, dx, dstate0 = engine.backward(p, cfg, cache, **bwd)
        assert sorted(grads) == sorted(p)
        outs.append({"y": y, "state": stateT, "grads": grads, "dx": dx, "dstate0": dstate0})
        caches.append(cache)
    _assert_close(outs[0], outs[1], dtype, tol)
    x, state0, lengths, _ = args  # inference: no recurrent dropout
    y, stateT, _ = mod.forward(p, cfg, x, state0, lengths)
    for engine in (mod, FAST[mod]):
        _assert_close({"infer": (y, stateT)}, {"infer": engine.infer(p, cfg, x, state0, lengths)}, dtype, tol)
    return caches[0]


DTYPES = [np.float64, np.float32]


@pytest.fixture(params=["one row block", "rows split over 2 threads", "rows split over 2 pool threads"])
def loop_path(request, monkeypatch):
    """Run the compiled time loops on all rows at once, or on two row blocks in parallel threads: numba's (OpenMP,
    for small jobs, when available) or the pool's."""
    if "pool" in request.param:
        monkeypatch.setattr(_blas, "SPINNING_MAX_MACS", -1)
    if "split" in request.param:
        monkeypatch.setattr(_blas, "blas_threads", lambda: 2)
        monkeypatch.setattr(_blas, "MIN_ROWS_PER_THREAD", 1)
        monkeypatch.setattr(_blas, "GEMM_MIN_ROWS_PER_THREAD", 1)  # the weight-gradient products are split too
        monkeypatch.setattr(_blas, "SPLIT_MIN_MACS", 0)
        assert _blas.split_rows(B) == [(0, B // 2), (B // 2, B)]


@pytest.fixture(params=["weight gradients step by step", "weight gradients after the loop"])
def step_gradients(request, monkeypatch):
    """The fast cells' two ways to dW_ih, dW_hh, db and dx: summed inside the backward loop (``_gradients``: weights
    up to STEP_GRADIENTS_MAX_BYTES, which every test size here is below, on row blocks of STEP_GRADIENTS_MIN_ROWS
    or more and STEP_GRADIENTS_MIN_COLUMNS pre-activations, both lowered to 1 here), or as GEMMs over all steps
    after it."""
    from rnnkit.cells.fast import _gradients

    if "after" in request.param:
        monkeypatch.setattr(_gradients, "STEP_GRADIENTS_MAX_BYTES", 0)
    else:
        assert (17 + 37) * 4 * 37 * 8 <= _gradients.STEP_GRADIENTS_MAX_BYTES  # the largest test cell, float64
        monkeypatch.setattr(_gradients, "STEP_GRADIENTS_MIN_ROWS", 1)
        monkeypatch.setattr(_gradients, "STEP_GRADIENTS_MIN_COLUMNS", 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_rnn_parity(activation, masked, dtype, loop_path, step_gradients):
    _assert_parity(rnn, rnn.RNNConfig(3, 5, activation), dtype, np.random.default_rng(1), masked=masked)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_parity(reset_after, masked, dtype, loop_path, step_gradients):
    _assert_parity(gru, gru.GRUConfig(3, 5, reset_after), dtype, np.random.default_rng(2), masked=masked)


LSTM_OPTIONS = {
    "plain": {},
    "peepholes": {"peepholes": True},
    "forget_bias": {"forget_bias": 1.0},
    "cell_clip": {"cell_clip": 0.4},
    "projection": {"proj_size": 3},
    "proj_clip": {"proj_size": 3, "proj_clip": 0.2},
    "everything": {"proj_size": 3, "proj_clip": 0.2, "peepholes": True, "forget_bias": 0.5, "cell_clip": 0.4},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("options", list(LSTM_OPTIONS))
def test_lstm_parity(options, masked, dtype, loop_path, step_gradients):
    cfg = lstm.LSTMConfig(3, 5, **LSTM_OPTIONS[options])
    cache = _assert_parity(lstm, cfg, dtype, np.random.default_rng(3), masked=masked)
    for clip, raw in [(cfg.cell_clip, cache["c_raw"]), (cfg.proj_clip, cache["h_raw"])]:
        if clip is not None:  # the clip binds on some entries and not on others
            assert (np.abs(raw) > clip).any() and (np.abs(raw) < clip).any()


WHOLE_VECTOR_CASES = [(hidden, name, options) for hidden in (16, 48) for name, options in LSTM_OPTIONS.items()] + [
    (48, "projection to 16, clipped", {"proj_size": 16, "proj_clip": 0.2})]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("hidden, name, options", WHOLE_VECTOR_CASES, ids=[f"{h}-{n}" for h, n, _ in WHOLE_VECTOR_CASES])
def test_lstm_parity_on_whole_vectors(hidden, name, options, masked, loop_path, step_gradients):
    """float32 LSTMs whose hidden size (and output size, for dL/dh_raw) is a multiple of 16 up to LANES_MAX_H run
    their cell math on whole vectors (``_lanes``; 5e-6 as in test_parity_on_every_tile: sums of 48 products), on
    blocks of at least LANES_MIN_ROWS rows (16 rows here: 8 per block when split)."""
    fast_lstm = FAST[lstm]
    assert hidden % fast_lstm.LANES == 0 and hidden <= fast_lstm.LANES_MAX_H and 8 >= fast_lstm.LANES_MIN_ROWS
    cfg = lstm.LSTMConfig(3, hidden, **options)
    _assert_parity(lstm, cfg, np.float32, np.random.default_rng(7), tol=5e-6, masked=masked, B=16)


UNIT_SPLIT_CASES = [  # (hidden, input features, threads, dtype): parts of 16-48 units, whole vectors or not
    (37, 20, 2, np.float64), (37, 5, 2, np.float32), (64, 20, 2, np.float32), (48, 3, 3, np.float32),
    (130, 20, 3, np.float32)]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("options", [name for name, options in LSTM_OPTIONS.items() if "proj_size" not in options])
@pytest.mark.parametrize("hidden, features, threads, dtype", UNIT_SPLIT_CASES)
def test_lstm_split_by_units(hidden, features, threads, dtype, options, masked, monkeypatch):
    """A forward on two threads or more with weights beyond ``UNIT_SPLIT_MIN_BYTES`` runs one part of the units per
    thread (``_run_unit_parts``), waiting step by step for the others' part of h_{t-1}. Inference and training
    (forward, then the backward from its cache) give the reference's outputs and gradients, with lengths (1 to T
    steps) and from a random state; and the row split's bitwise where that computes a step as two products (more
    than STEPWISE_PROJECTION_MAX_D input features)."""
    fast_lstm = FAST[lstm]
    cfg = lstm.LSTMConfig(features, hidden, **LSTM_OPTIONS[options])
    p, (x, state0, lengths, _), bwd = _random_case(lstm, cfg, np.random.default_rng(11), dtype, masked=masked, B=16)

    def run(engine):
        y, stateT, cache = engine.forward(p, cfg, x, state0, lengths)
        return {"infer": engine.infer(p, cfg, x, state0, lengths), "train": (y, stateT),
                "grads": engine.backward(p, cfg, cache, **bwd)}

    expected, row_split = run(lstm), run(fast_lstm)
    monkeypatch.setattr(fast_lstm, "blas_threads", lambda: threads)
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT_MIN_MACS", 0)
    monkeypatch.setattr(fast_lstm, "UNIT_SPLIT_TRAINING_MIN_INNER", 0)
    parts = fast_lstm._unit_parts(cfg, x.shape, True, dtype)
    assert len(parts) == threads and parts[0][0] == 0 and parts[-1][1] == hidden
    assert all(u1 - u0 >= 16 and u0 % 16 == 0 for u0, u1 in parts)
    calls = []
    run_together = fast_lstm.run_together
    monkeypatch.setattr(fast_lstm, "run_together", lambda loop, arguments, counters: (
        calls.append(len(arguments)), run_together(loop, arguments, counters)))
    units = run(fast_lstm)
    assert calls == [threads, threads]  # the training forward and the inference
    _assert_close(expected, units, dtype, 5e-6 if dtype == np.float32 else None)
    if features > fast_lstm.STEPWISE_PROJECTION_MAX_D:
        for (name, a), (_, b) in zip(_flat(row_split), _flat(units), strict=True):
            assert np.array_equal(a, b), name


def test_lstm_unit_split_only_where_it_gains(monkeypatch):
    """The rule of ``_unit_parts``: weights beyond UNIT_SPLIT_MIN_BYTES and work beyond UNIT_SPLIT_MIN_MACS, on
    two threads or more, no projection, at least 16 units per part; in training also D + H from
    UNIT_SPLIT_TRAINING_MIN_INNER on."""
    fast_lstm = FAST[lstm]
    monkeypatch.setattr(fast_lstm, "blas_threads", lambda: 2)
    charlm512, shape = lstm.LSTMConfig(65, 512), (100, 32, 65)
    assert fast_lstm._unit_parts(charlm512, shape, False, np.float32) == [(0, 256), (256, 512)]
    assert fast_lstm._unit_parts(lstm.LSTMConfig(65, 520), shape, False, np.float32) == [(0, 256), (256, 520)]
    assert fast_lstm._unit_parts(charlm512, shape, True, np.float32) == []  # training: D + H = 577
    large = lstm.LSTMConfig(256, 1024)
    assert fast_lstm._unit_parts(large, (100, 64, 256), True, np.float32) == [(0, 512), (512, 1024)]
    assert fast_lstm._unit_parts(lstm.LSTMConfig(65, 512, proj_size=256), shape, False, np.float32) == []
    assert fast_lstm._unit_parts(lstm.LSTMConfig(65, 128), shape, False, np.float32) == []  # 0.4 MB of weights
    assert fast_lstm._unit_parts(charlm512, (1, 1, 65), False, np.float32) == []  # one step of one sequence
    monkeypatch.setattr(fast_lstm, "blas_threads", lambda: 1)
    assert fast_lstm._unit_parts(charlm512, shape, False, np.float32) == []


def test_whole_vectors_only_where_they_fit():
    """The vector cell math runs for float32 with H a multiple of 16 up to LANES_MAX_H on blocks of LANES_MIN_ROWS
    rows or more, and leaves the rest to the scalar loops."""
    import numba

    fast_lstm = FAST[lstm]

    @numba.njit
    def ran(a, c):
        H = c.shape[1]
        w = np.zeros(H, c.dtype)
        return fast_lstm._cell_forward_lanes(0, c.shape[0], 0, np.ones(c.shape[0], np.int64), a, np.zeros(4 * H, c.dtype),
                                             c, w, w, w, c.dtype.type(np.inf), c.copy(), c.copy(), c.copy(), c.copy())

    rows = fast_lstm.LANES_MIN_ROWS
    for B, H, dtype, expected in [(rows, 16, np.float32, True), (rows, 48, np.float32, True), (rows, 8, np.float32, False),
                                  (rows, 24, np.float32, False), (rows, 64, np.float32, False),
                                  (rows, 16, np.float64, False), (rows - 1, 16, np.float32, False)]:
        assert ran(np.zeros((B, 4 * H), dtype), np.zeros((B, H), dtype)) is expected, (B, H, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("input_size", [1, 8, 17])
@pytest.mark.parametrize("mod, cfg", [(rnn, {}), (gru, {"reset_after": False}), (lstm, LSTM_OPTIONS["everything"])])
def test_parity_input_sizes(mod, cfg, input_size, masked, dtype, loop_path, step_gradients):
    """One feature (a (1, G·H) weight, whose row stride NumPy may set to anything, and OpenBLAS's weak spot),
    8 and 17: the fast LSTM's two ways to a step's products (one on [x_t, h̃_{t-1}] up to
    STEPWISE_PROJECTION_MAX_D features, two per step above), and the GRU's and RNN's input projection inside
    the loop and as one GEMM before it (training with more features than their STEPWISE_PROJECTION_MAX_D); with
    all sequences full (the output is then the cache's states) and with lengths and a recurrent-dropout mask."""
    config = {rnn: rnn.RNNConfig, gru: gru.GRUConfig, lstm: lstm.LSTMConfig}[mod]
    _assert_parity(mod, config(input_size, 5, **cfg), dtype, np.random.default_rng(3), masked=masked)


@pytest.mark.parametrize("mod, cfg, shared", [(rnn, rnn.RNNConfig(1, 5), True), (rnn, rnn.RNNConfig(2, 5, "relu"), True),
                                              (rnn, rnn.RNNConfig(3, 5), False), (gru, gru.GRUConfig(3, 5), True),
                                              (lstm, lstm.LSTMConfig(3, 5, proj_size=2, proj_clip=0.2), True)])
def test_training_output_is_the_cached_states_when_every_sequence_is_full(mod, cfg, shared, loop_path):
    """When every sequence has all T steps (no lengths, or lengths all T), y_t = h_t on every step and a training
    forward returns y as the cache's own h_1..h_T (the simple RNN with up to STEPWISE_PROJECTION_MAX_D features:
    its pre-activations are y's own array otherwise), read-only; with a shorter sequence y is an array of its own,
    zero on padded steps. Parity of the values, gradients included, is checked by the tests above."""
    p, (x, state0, _, _), _ = _random_case(mod, cfg, np.random.default_rng(8), np.float64, masked=False)
    for lengths in (None, np.full(B, T)):
        y, _, cache = FAST[mod].forward(p, cfg, x, state0, lengths)
        assert np.shares_memory(y, cache["hs"]) == shared and y.flags.writeable != shared
        np.testing.assert_array_equal(y, cache["hs"][1:])
        if shared:
            with pytest.raises(ValueError, match="read-only"):
                y[0, 0, 0] = 1.0
    lengths = np.resize([T, 1, 3, T - 1], B)
    y, _, cache = FAST[mod].forward(p, cfg, x, state0, lengths)
    assert not np.shares_memory(y, cache["hs"]) and y.flags.writeable
    assert not y[1:, 1].any() and y[0, 1].any()  # the second sequence has one step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_size", [3, 17])
def test_lstm_input_projection_as_one_gemm(input_size, dtype, loop_path, step_gradients, monkeypatch):
    """A W_ih larger than STEPWISE_PROJECTION_MAX_BYTES (lowered here) gets x W_ih^T as one GEMM before the loop in
    training (above STEPWISE_PROJECTION_MAX_D features; with fewer, one product per step on [x_t, h̃_{t-1}]
    whatever its size); inference keeps a product per step, also on the time-major view of a batch-major x that
    a layer's inference passes."""
    fast_lstm = FAST[lstm]
    monkeypatch.setattr(fast_lstm, "STEPWISE_PROJECTION_MAX_BYTES", 0)
    cfg = lstm.LSTMConfig(input_size, 5, **LSTM_OPTIONS["everything"])
    _assert_parity(lstm, cfg, dtype, np.random.default_rng(3), masked=True)
    p = lstm.init_params(cfg, np.random.default_rng(4), dtype)  # random weights and biases
    x = np.random.default_rng(6).standard_normal((4, 7, input_size)).astype(dtype)  # (B, T, D)
    y, state = fast_lstm.infer(p, cfg, x.transpose(1, 0, 2))
    _assert_close({"infer": (y, state)}, {"infer": lstm.infer(p, cfg, np.ascontiguousarray(x.transpose(1, 0, 2)))},
                  dtype, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(3, 37)), (gru, gru.GRUConfig(3, 37, reset_after=False)),
                                      (gru, gru.GRUConfig(3, 37)), (lstm, lstm.LSTMConfig(3, 37, **LSTM_OPTIONS["everything"]))])
def test_parity_on_every_tile(mod, cfg, dtype, loop_path, step_gradients):
    """15 rows (tiles of 8, 4, 2 and 1 rows; 7 and 8 per block when split) and 37 units (every packed product
    has full panels and a narrow last one) exercise every path of the packed kernel inside the loops.

    float32 gets 5e-6 here rather than 2e-6: each recurrent sum has 37 products instead of 5, which the
    packed kernel's chain of fused multiply-adds rounds differently from NumPy's BLAS (float32 ε is 1.2e-7)."""
    _assert_parity(mod, cfg, dtype, np.random.default_rng(6), tol=5e-6 if dtype == np.float32 else None,
                   masked=True, B=15)


@pytest.mark.parametrize("dy, dstate", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(2, 4)), (gru, gru.GRUConfig(2, 4)),
                                      (lstm, lstm.LSTMConfig(2, 4, proj_size=3, peepholes=True))])
def test_gradient_from_outputs_or_state_only(mod, cfg, dy, dstate, loop_path):
    _assert_parity(mod, cfg, np.float64, np.random.default_rng(4), masked=True, dy=dy, dstate=dstate)


@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(3, 4, "sigmoid")), (gru, gru.GRUConfig(3, 4, False)),
                                      (gru, gru.GRUConfig(3, 4, True))])
def test_fast_rnn_gru_against_finite_differences(mod, cfg):
    check_gradients(FAST[mod], cfg, np.random.default_rng(5), lengths=np.array([4, 1, 2]), rec_mask=True)


@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(3, 5)), (gru, gru.GRUConfig(3, 5, False)),
                                      (lstm, lstm.LSTMConfig(3, 5, proj_size=2, peepholes=True, cell_clip=0.5))])
def test_step_matches_reference(mod, cfg):
    rng = np.random.default_rng(6)
    p, (x, state, _, _), _ = _random_case(mod, cfg, rng, np.float32, masked=False)
    for x_t in x:
        (h_ref, state_ref), (h_fast, state) = mod.step(p, cfg, x_t, state), FAST[mod].step(p, cfg, x_t, state)
        _assert_close((h_ref, state_ref), (h_fast, state), np.float32, 2e-6)


@pytest.mark.parametrize("cell, options", [("lstm", {"proj_size": 3, "peepholes": True}), ("gru", {}), ("rnn", {})])
def test_bidirectional_stacked_layer_parity(cell, options):
    """A 2-layer bidirectional layer with lengths and both dropouts, run once per engine (same masks)."""
    layer = Recurrent(cell, 3, 5, num_layers=2, bidirectional=True, dropout=0.3, recurrent_dropout=0.3,
                      dtype=np.float64, seed=7, **options)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 6, 3))
    lengths = np.array([6, 1, 4, 5])
    dout = rng.standard_normal((4, 6, layer.output_size))
    reference = {"rnn": rnn, "gru": gru, "lstm": lstm}[cell]
    results = []
    for module in (reference, FAST[reference]):
        layer.module, layer.rng = module, np.random.default_rng(9)
        out = layer.forward(x, lengths=lengths, training=True)
        dx = layer.backward(dout)
        results.append((out, dx, layer.state, layer.grads))
    _assert_close(*results, np.float64, 1e-11)


def test_fast_modules_share_the_reference_api():
    for ref, mod in FAST.items():
        assert mod is not ref and mod.param_shapes is ref.param_shapes and mod.init_params is ref.init_params
        for name in ("forward", "infer", "backward", "step"):
            assert list(inspect.signature(getattr(mod, name)).parameters) == \
                list(inspect.signature(getattr(ref, name)).parameters)
    with pytest.raises(ValueError, match="family must be one of"):
        fast.module_for("transformer")


def test_bad_input_raises_the_reference_errors():
    cfg = lstm.LSTMConfig(3, 4)
    p = lstm.init_params(cfg, np.random.default_rng(0))
    x = np.zeros((2, 1, 3), np.float32)
    for mod in (lstm, FAST[lstm]):
        with pytest.raises(ShapeError, match="x must have 3 features"):
            mod.forward(p, cfg, np.zeros((2, 1, 4), np.float32))
        with pytest.raises(DataError, match="lengths must lie in"):
            mod.forward(p, cfg, x, lengths=np.array([3]))
        with pytest.raises(DTypeError, match="x"):
            mod.forward(p, cfg, x.astype(np.float64))
        _, _, cache = mod.forward(p, cfg, x)
        with pytest.raises(ShapeError, match="dy"):
            mod.backward(p, cfg, cache, dy=np.zeros((2, 1, 5), np.float32))


def test_without_numba_no_fast_module(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else find_spec(name, *a))
    assert not fast.available()
    assert all(fast.module_for(name) is None for name in ("rnn", "gru", "lstm"))


@pytest.mark.skipif("engine" not in inspect.signature(Recurrent.__init__).parameters,
                    reason="the layer's engine= argument (notes/engine_patch.diff) is not applied yet")
def test_layer_engine_choice(monkeypatch):
    assert Recurrent("gru", 2, 4).module is FAST[gru]  # engine="auto" with numba
    assert Recurrent("gru", 2, 4, engine="numpy").module is gru
    with pytest.raises(ConfigError, match="engine"):
        Recurrent("gru", 2, 4, engine="cuda")
    x = np.random.default_rng(0).standard_normal((2, 3, 2)).astype(np.float32)
    expected = Recurrent("lstm", 2, 4, seed=0, engine="numpy").forward(x)
    find_spec = importlib.util.find_spec  # now pretend numba is not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numba" else find_spec(name, *a))
    layer = Recurrent("lstm", 2, 4, seed=0)  # "auto" falls back to the reference, with the same results
    assert layer.module is lstm
    np.testing.assert_array_equal(layer.forward(x), expected)
    with pytest.raises(ConfigError, match="numba"):
        Recurrent("lstm", 2, 4, engine="fast")


@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(3, 5)), (gru, gru.GRUConfig(3, 5, reset_after=False)),
                                      (lstm, lstm.LSTMConfig(3, 5, **LSTM_OPTIONS["everything"]))])
def test_parity_with_column_major_weights(mod, cfg, loop_path):
    """Weights given as Fortran-ordered (or transposed) arrays: BLAS reads rows, the engine must copy them."""
    rng = np.random.default_rng(5)
    p, args, bwd = _random_case(mod, cfg, rng, np.float64, masked=True)
    p_f = {k: np.asfortranarray(v) for k, v in p.items()}
    y, state, cache = mod.forward(p, cfg, *args)
    y_f, state_f, cache_f = FAST[mod].forward(p_f, cfg, *args)
    grads, dx, dstate0 = mod.backward(p, cfg, cache, **bwd)
    grads_f, dx_f, dstate0_f = FAST[mod].backward(p_f, cfg, cache_f, **bwd)
    _assert_close((y, state, grads, dx, dstate0), (y_f, state_f, grads_f, dx_f, dstate0_f), np.float64, 1e-10)


@pytest.mark.parametrize("shape", [7, (3, 5), (2, 0, 4), (4, 1, 16), (5000,), (30, 7, 33)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_aligned_arrays_start_on_a_cache_line(shape, dtype, monkeypatch):
    """The fast cells' arrays start on 64-byte boundaries (NumPy's own start 16 bytes past one here): from
    ALIGNED_MIN_BYTES on, which the test lowers to every size, and at the default (the last two shapes)."""
    from rnnkit.cells.fast import _jit

    if np.prod(shape) * np.dtype(dtype).itemsize < _jit.ALIGNED_MIN_BYTES:
        monkeypatch.setattr(_jit, "ALIGNED_MIN_BYTES", 0)

    source = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    for array in (_jit.aligned_empty(shape, dtype), _jit.aligned_full(shape, 2.5, dtype),
                  _jit.aligned_copy(np.asfortranarray(source))):
        assert array.size == 0 or array.ctypes.data % 64 == 0  # an empty array has no data to align
        assert array.flags.c_contiguous and array.flags.writeable
        assert array.shape == source.shape and array.dtype == dtype
    assert (_jit.aligned_full(shape, 2.5, dtype) == 2.5).all()
    np.testing.assert_array_equal(_jit.aligned_copy(np.asfortranarray(source)), source)


@pytest.mark.parametrize("mod, cfg", [(rnn, rnn.RNNConfig(3, 5)), (gru, gru.GRUConfig(3, 5, False)),
                                      (lstm, lstm.LSTMConfig(3, 5, proj_size=2, peepholes=True)),
                                      (lstm, lstm.LSTMConfig(20, 5))])
def test_time_major_views_of_batch_major_inputs(mod, cfg, loop_path):
    """The layers hand an inference x (B, T, D) to the cells as its time-major view, which the fast cells read in
    place (rows contiguous, a step's rows T·D apart); a view with a negative stride is copied first. Either gives
    what the same input made contiguous gives, in inference and in training."""
    rng = np.random.default_rng(10)
    p = {k: rng.uniform(-0.8, 0.8, s) for k, s in mod.param_shapes(cfg).items()}
    x_bt = rng.standard_normal((6, 4, cfg.input_size))  # (B, T, D)
    for view in (x_bt.transpose(1, 0, 2), x_bt[::-1].transpose(1, 0, 2)):
        x = np.ascontiguousarray(view)
        _assert_close(FAST[mod].infer(p, cfg, x), FAST[mod].infer(p, cfg, view), np.float64, None)
        _assert_close(FAST[mod].forward(p, cfg, x)[:2], FAST[mod].forward(p, cfg, view)[:2], np.float64, None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dy_steps_copies_any_layout_time_major(dtype):
    """The backward's dy (T, B, R): contiguous as given, a layer's batch-major gradient seen time-major through the
    compiled copy, any other layout (here reversed in time, and every other unit) through NumPy; None is one zero
    step. Copies are contiguous and equal to the input."""
    from rnnkit.cells.fast import _jit

    g = np.random.default_rng(3).standard_normal((6, 7, 10)).astype(dtype)  # (B, T, R)
    contiguous = np.ascontiguousarray(g.transpose(1, 0, 2))
    assert _jit.dy_steps(contiguous, 6, 10, dtype) is contiguous
    for view in (g.transpose(1, 0, 2), g[:, ::-1].transpose(1, 0, 2), contiguous[:, :, ::2]):
        steps = _jit.dy_steps(view, 6, view.shape[2], dtype)
        assert steps.flags.c_contiguous and steps.dtype == dtype
        np.testing.assert_array_equal(steps, view)
    np.testing.assert_array_equal(_jit.dy_steps(None, 6, 10, dtype), np.zeros((1, 6, 10), dtype))
