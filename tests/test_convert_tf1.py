"""TF1 LSTMCell <-> rnnkit LSTM, checked against TensorFlow's ``tf.compat.v1.nn.rnn_cell.LSTMCell``.

TensorFlow runs in ONE subprocess (``TF_USE_LEGACY_KERAS=1`` is read at import time, and other test
files import Keras with the torch backend in this process). In graph mode it builds LSTMCells with every
option on (peepholes, cell_clip, num_proj, proj_clip, forget_bias) under ``dynamic_rnn`` with
``sequence_length``: (a) random variables, saved with ``tf.compat.v1.train.Saver`` (a real TF1
checkpoint); (b) the variables :func:`to_tf1_lstm` exported from a random rnnkit layer. Tolerance:
float32, atol 1e-5. Without TensorFlow those tests skip; the NumPy-only tests always run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rnnkit.convert.tf1 import from_tf1_lstm, load_tf1_checkpoint, to_tf1_lstm
from rnnkit.errors import ConfigError, ConversionError, ShapeError
from rnnkit.layers.recurrent import GRU, LSTM

ATOL = 1e-5
D, H, P = 3, 5, 4
OPTIONS = {"forget_bias": 0.7, "cell_clip": 0.5, "proj_clip": 0.3}  # both clips bind on some elements (asserted)
LENGTHS = np.array([6, 3, 1, 5], np.int32)
HAVE_TF = all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_keras"))
needs_tf = pytest.mark.skipif(not HAVE_TF, reason="TensorFlow + tf-keras not installed (pip install rnnkit[tf])")

TF_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"      # tf.compat.v1 rnn cells live in tf-keras
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    work = sys.argv[1]
    given = dict(np.load(os.path.join(work, "inputs.npz")))
    spec = json.load(open(os.path.join(work, "spec.json")))
    x, lengths = given.pop("x"), given.pop("lengths")
    rng = np.random.default_rng(0)

    def run(options, value_of, checkpoint=None):
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            cell = tf.compat.v1.nn.rnn_cell.LSTMCell(**options)
            y, (c, h) = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(x), sequence_length=tf.constant(lengths),
                                                    dtype=tf.float32)
            values = {v.name[:-2]: value_of(v) for v in cell.variables}
            sess.run([v.assign(values[v.name[:-2]]) for v in cell.variables])
            if checkpoint:
                tf.compat.v1.train.Saver().save(sess, checkpoint)
            return values, *sess.run([y, c, h])

    random = lambda v: rng.uniform(-1, 1, v.shape).astype(np.float32)
    values, y, c, h = run(spec["tf_options"], random, os.path.join(work, "model.ckpt"))
    out = {"a_y": y, "a_c": c, "a_h": h, **{"var:" + k: v for k, v in values.items()}}
    _, out["b_y"], out["b_c"], out["b_h"] = run(spec["exported_options"], lambda v: given[v.name[:-2]])
    np.savez(os.path.join(work, "results.npz"), **out)

    from rnnkit.convert.tf1 import load_tf1_checkpoint   # rnnkit reads the checkpoint here, with TF imported
    np.savez(os.path.join(work, "checkpoint.npz"), **load_tf1_checkpoint(os.path.join(work, "model.ckpt")))
    try:
        load_tf1_checkpoint(os.path.join(work, "missing.ckpt"))
    except Exception as err:
        open(os.path.join(work, "missing.txt"), "w").write(f"{type(err).__name__}: {err}")
""")


def random_lstm(seed: int, **options) -> LSTM:
    layer = LSTM(D, H, **options, seed=seed)
    rng = np.random.default_rng(seed)
    for p in layer.params.values():
        p[...] = rng.uniform(-1, 1, p.shape)
    return layer


def sequences(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((len(LENGTHS), int(LENGTHS.max()), D)).astype(np.float32)


@pytest.fixture(scope="module")
def tf_run(tmp_path_factory):
    """Run TF once in a subprocess; returns (work dir, results, the exported rnnkit layer)."""
    if not HAVE_TF:
        pytest.skip("TensorFlow + tf-keras not installed (pip install rnnkit[tf])")
    work = tmp_path_factory.mktemp("tf1")
    exported = random_lstm(2, proj_size=P, peepholes=True, **OPTIONS)
    variables, options = to_tf1_lstm(exported)
    np.savez(work / "inputs.npz", x=sequences(), lengths=LENGTHS, **variables)
    tf_options = {"num_units": H, "use_peepholes": True, "num_proj": P, **OPTIONS}
    (work / "spec.json").write_text(json.dumps({"tf_options": tf_options, "exported_options": options}))
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    proc = subprocess.run([sys.executable, "-c", TF_SCRIPT, str(work)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, dict(np.load(work / "results.npz")), exported


def assert_matches(layer: LSTM, y: np.ndarray, c: np.ndarray, h: np.ndarray) -> None:
    np.testing.assert_allclose(layer.forward(sequences(), lengths=LENGTHS), y, atol=ATOL)
    h_rnnkit, c_rnnkit = layer.state
    np.testing.assert_allclose(h_rnnkit[0], h, atol=ATOL)
    np.testing.assert_allclose(c_rnnkit[0], c, atol=ATOL)


@needs_tf
def test_from_tf1_lstm_matches_tf_with_every_option(tf_run):
    _, results, _ = tf_run
    variables = {k[4:]: v for k, v in results.items() if k.startswith("var:")}
    assert sorted(variables) == sorted(f"rnn/lstm_cell/{n}" for n in
                                       ("kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel"))
    layer = from_tf1_lstm(variables, **OPTIONS)
    assert_matches(layer, results["a_y"], results["a_c"], results["a_h"])
    # the clips bind on some elements but not all, so both branches are compared
    for value, clip in [(results["a_c"], OPTIONS["cell_clip"]), (results["a_y"], OPTIONS["proj_clip"])]:
        at_clip = np.isclose(np.abs(value), clip)
        assert at_clip.any() and (np.abs(value)[~at_clip] < clip).any()


@needs_tf
def test_tf1_checkpoint_round_trip(tf_run):
    work, results, _ = tf_run
    variables = dict(np.load(work / "checkpoint.npz"))  # load_tf1_checkpoint's result, from the TF subprocess
    for name in ("kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel"):
        np.testing.assert_array_equal(variables[f"rnn/lstm_cell/{name}"], results[f"var:rnn/lstm_cell/{name}"])
    layer = from_tf1_lstm(variables, scope="rnn/lstm_cell", **OPTIONS)
    assert_matches(layer, results["a_y"], results["a_c"], results["a_h"])


@needs_tf
def test_missing_checkpoint_is_a_model_file_error(tf_run):
    work, _, _ = tf_run
    assert (work / "missing.txt").read_text().startswith("ModelFileError: ")
    assert "not a readable TF checkpoint prefix" in (work / "missing.txt").read_text()


@needs_tf
def test_to_tf1_lstm_runs_in_tf_like_rnnkit(tf_run):
    _, results, exported = tf_run
    assert_matches(exported, results["b_y"], results["b_c"], results["b_h"])


def test_load_tf1_checkpoint_without_tensorflow_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install rnnkit\[tf\]"):
        load_tf1_checkpoint("model.ckpt")


# ---- NumPy only ---------------------------------------------------------------------------------


def seed_numpy_lstm(kernel: np.ndarray, bias: np.ndarray, seqs: np.ndarray, forget_bias: float) -> np.ndarray:
    """The seed tutorial's NumPy re-implementation of TF1 LSTMCell.call (plus the bias it left out), one sequence."""
    H = kernel.shape[1] // 4
    h, c, outputs = np.zeros((1, H)), np.zeros((1, H)), []
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for x_t in seqs:
        i, j, f, o = np.split(np.concatenate(([x_t], h), axis=-1) @ kernel + bias, 4, axis=1)
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(j)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h[0])
    return np.array(outputs)


def test_from_tf1_lstm_matches_the_seed_numpy_lstmcell():
    rng = np.random.default_rng(4)
    kernel, bias = rng.uniform(-1, 1, (D + H, 4 * H)), rng.uniform(-1, 1, 4 * H)
    layer = from_tf1_lstm({"rnn/lstm_cell/kernel:0": kernel, "rnn/lstm_cell/bias:0": bias})  # forget_bias=1.0, TF's default
    x = rng.standard_normal((2, 6, D))
    out = layer.forward(x)
    for b in range(2):
        np.testing.assert_allclose(out[b], seed_numpy_lstm(kernel, bias, x[b], 1.0), atol=1e-12)


@pytest.mark.parametrize("options", [{}, {"peepholes": True, "forget_bias": 1.0}, {"proj_size": 2, "proj_clip": 0.4}])
def test_to_tf1_and_back_is_the_same_function(options):
    layer = random_lstm(3, **options)
    variables, tf_options = to_tf1_lstm(layer, scope="encoder/lstm_cell")
    assert variables["encoder/lstm_cell/kernel"].shape == (D + (options.get("proj_size") or H), 4 * H)
    back = from_tf1_lstm(variables, forget_bias=tf_options["forget_bias"], proj_clip=tf_options["proj_clip"])
    x = sequences()
    np.testing.assert_allclose(back.forward(x, lengths=LENGTHS), layer.forward(x, lengths=LENGTHS), atol=ATOL)
    np.testing.assert_allclose(back.params["l0.b_ih"], layer.params["l0.b_ih"] + layer.params["l0.b_hh"], atol=1e-6)
    assert not back.params["l0.b_hh"].any()  # TF1's one bias goes to b_ih


def test_bad_variables_raise():
    variables, _ = to_tf1_lstm(random_lstm(0, peepholes=True))
    with pytest.raises(ConversionError, match=r"pass scope="):
        from_tf1_lstm({**variables, "other/lstm_cell/kernel": variables["rnn/lstm_cell/kernel"]})
    with pytest.raises(ConversionError, match=r"needs 'rnn/lstm_cell/kernel' and 'rnn/lstm_cell/bias'"):
        from_tf1_lstm({"rnn/lstm_cell/kernel": variables["rnn/lstm_cell/kernel"]}, scope="rnn/lstm_cell")
    with pytest.raises(ConversionError, match=r"peepholes need all of .*found only \['w_i_diag'\]"):
        from_tf1_lstm({k: v for k, v in variables.items() if not k.endswith(("w_f_diag", "w_o_diag"))})
    with pytest.raises(ShapeError, match=r"kernel must be \(D\+R, 4H\) and bias \(4H,\)"):
        from_tf1_lstm({**variables, "rnn/lstm_cell/bias": np.zeros(7)})
    with pytest.raises(ConversionError, match=r"num_layers=2, bidirectional=False"):
        to_tf1_lstm(LSTM(D, H, num_layers=2))
    with pytest.raises(ConversionError, match=r"takes an rnnkit LSTM layer, got GRU"):
        to_tf1_lstm(GRU(D, H))
