"""``check_finite=False`` on the cells' forward, infer and backward skips only the NaN/Inf scans of x and dy.

The layers scan their inputs and output gradients once and pass ``check_finite=False`` to the cells
they run, so a layer's call scans each array once (as ``scipy.linalg``'s ``check_finite``).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import DataError, ShapeError
from rnnkit.cells import fast, gru, lstm, rnn
from rnnkit.layers.recurrent import Recurrent

CONFIGS = {rnn: rnn.RNNConfig(3, 4), gru: gru.GRUConfig(3, 4), lstm: lstm.LSTMConfig(3, 4)}
MODULES = [(ref, ref) for ref in CONFIGS] + [(ref, fast.module_for(ref.__name__.rsplit(".", 1)[1]))
                                             for ref in CONFIGS if fast.available()]


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # NaN through the products, on purpose
@pytest.mark.parametrize("ref, mod", MODULES, ids=lambda m: m.__name__.replace("rnnkit.cells.", ""))
def test_check_finite_false_skips_only_the_scans(ref, mod):
    cfg = CONFIGS[ref]
    rng = np.random.default_rng(0)
    p = {k: rng.uniform(-0.5, 0.5, s).astype(np.float32) for k, s in ref.param_shapes(cfg).items()}
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    x_nan = x.copy()
    x_nan[2, 1, 0] = np.nan
    for run in (lambda **kw: mod.forward(p, cfg, x_nan, **kw), lambda **kw: mod.infer(p, cfg, x_nan, **kw)):
        with pytest.raises(DataError, match="x contains 1 NaN or Inf"):
            run()
        y = run(check_finite=False)[0]
        assert np.isnan(y[2:, 1]).all() and np.isfinite(y[:, 0]).all()  # NaN from step 2 on, in that row only
    with pytest.raises(ShapeError):  # the other checks stay
        mod.forward(p, cfg, x[:, :, :2], check_finite=False)

    y, _, cache = mod.forward(p, cfg, x, check_finite=False)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy[4, 0, 1] = np.inf
    with pytest.raises(DataError, match="dy contains 1 NaN or Inf"):
        mod.backward(p, cfg, cache, dy)
    _, dx, _ = mod.backward(p, cfg, cache, dy, check_finite=False)
    assert not np.isfinite(dx[:, 0]).all() and np.isfinite(dx[:, 1]).all()
    with pytest.raises(ShapeError):
        mod.backward(p, cfg, cache, dy[:, :, :2], check_finite=False)
    clean = mod.backward(p, cfg, cache, np.nan_to_num(dy, posinf=0.0), check_finite=False)[0]
    expected = ref.backward(p, cfg, ref.forward(p, cfg, x)[2], np.nan_to_num(dy, posinf=0.0))[0]
    for k in expected:  # with finite input the flag changes nothing
        np.testing.assert_allclose(clean[k], expected[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["numpy", "auto"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_layer_scans_once_and_tells_its_cells(cell, engine, monkeypatch):
    """The layer checks x and dout (a training forward and a backward on their time-major copies, in the same pass),
    then tells its cells not to scan them again."""
    layer = Recurrent(cell, 3, 4, num_layers=2, engine=engine, seed=0)
    seen = []
    for name in ("forward", "infer", "backward"):
        original = getattr(layer.module, name)
        monkeypatch.setattr(layer.module, name,
                            lambda *a, _f=original, _n=name, **kw: seen.append((_n, kw.get("check_finite"))) or _f(*a, **kw))
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    layer.backward(np.ones_like(layer.forward(x, training=True)))
    layer.forward(x, cache=False)
    assert sorted(set(seen)) == [("backward", False), ("forward", False), ("infer", False)] and len(seen) == 6
    x[0, 1, 2] = np.nan
    for cache in (True, False):
        with pytest.raises(DataError, match="x contains 1 NaN or Inf"):
            layer.forward(x, cache=cache)
    dout = np.ones_like(layer.forward(np.nan_to_num(x), training=True))
    dout[1, 3, 0] = np.inf
    with pytest.raises(DataError, match="dout contains 1 NaN or Inf"):
        layer.backward(dout)
    last = Recurrent(cell, 3, 4, return_sequences=False, engine=engine, seed=0)
    last.forward(np.nan_to_num(x), training=True)
    with pytest.raises(DataError, match="dout contains 1 NaN or Inf"):
        last.backward(np.array([[np.nan, 0, 0, 0], [0, 0, 0, 0]], np.float32))
