"""The training loop: learning, history, early stopping, truncated BPTT, divergence, bad input."""

import json

import numpy as np
import pytest

from rnnkit import optim, train
from rnnkit.errors import ConfigError, DataError, TrainingError
from rnnkit.io import load_checkpoint
from rnnkit.layers.dense import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.recurrent import GRU, RNN
from rnnkit.models import Sequential


def bits(n):
    """8-bit binary, least significant bit first (the order a carry travels)."""
    return (np.asarray(n)[:, None] >> np.arange(8)) & 1


def addition_data(n, rng):
    a, b = rng.integers(0, 128, n), rng.integers(0, 128, n)
    return np.stack([bits(a), bits(b)], -1).astype(np.float32), bits(a + b).astype(np.float32)[..., None]


def test_binary_addition_reaches_100_percent_on_every_pair():
    """Seed 003: a 16-unit sigmoid RNN trained with SGD adds any two 7-bit numbers."""
    x, y = addition_data(3000, np.random.default_rng(0))
    model = Sequential([RNN(2, 16, activation="sigmoid", seed=0), Dense(16, 1, seed=1)])
    train.fit(model, x, y, loss="binary_cross_entropy_with_logits",
              optimizer=optim.SGD(model.params, lr=1.0, momentum=0.9), epochs=8, batch_size=16, seed=0)
    a, b = (g.ravel() for g in np.meshgrid(np.arange(128), np.arange(128)))
    held_out = np.stack([bits(a), bits(b)], -1).astype(np.float32)
    predicted = (model.predict(held_out)[..., 0] > 0).astype(np.int64) @ (1 << np.arange(8))
    assert np.array_equal(predicted, a + b)


def small_regression(seed=0, n=64, T=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 3)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=1).astype(np.float32) / 3  # one target per step
    return x, y


def gru_model(return_sequences=True):
    return Sequential([GRU(3, 6, return_sequences=return_sequences, seed=0), Dense(6, 1, seed=1)])


def test_history_records_epochs_and_writes_csv_and_json(tmp_path):
    x, y = small_regression()
    model = gru_model()
    history = train.fit(model, x, y, optimizer=optim.Adam(model.params, lr=1e-2), epochs=3, batch_size=16,
                        validation_split=0.25, metrics=["mae", "rmse"])
    assert [r["epoch"] for r in history.rows] == [1, 2, 3]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["loss"][-1] < history["loss"][0]
    history.to_csv(tmp_path / "h.csv")
    history.to_json(tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text()) == history.rows
    header = (tmp_path / "h.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "epoch" and {"loss", "val_loss", "val_mae", "val_rmse", "lr"} <= set(header)


def test_validation_metrics_match_evaluate():
    x, y = small_regression()
    model = gru_model()
    history = train.fit(model, x[:48], y[:48], epochs=1, validation_data=(x[48:], y[48:]), metrics=["mae"])
    logs = train.evaluate(model, x[48:], y[48:], metrics=["mae"])
    assert history["val_loss"][0] == pytest.approx(logs["loss"], rel=1e-6)
    assert history["val_mae"][0] == pytest.approx(np.abs(model.predict(x[48:]) - y[48:]).mean(), rel=1e-5)


def test_same_seed_same_numbers_and_different_seed_differs():
    x, y = small_regression()
    runs = []
    for seed in (5, 5, 6):
        model = gru_model()
        train.fit(model, x, y, epochs=2, batch_size=8, seed=seed)
        runs.append(model.params)
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_early_stopping_restores_the_best_weights():
    x, y = small_regression()
    model = gru_model()
    snapshots = {}

    def remember(epoch, logs):
        snapshots[epoch] = {k: v.copy() for k, v in model.params.items()}

    # min_delta so large that no epoch after the first counts as an improvement
    stopper = train.EarlyStopping(monitor="val_loss", patience=2, min_delta=1e9)
    history = train.fit(model, x, y, optimizer=optim.Adam(model.params, lr=1e-2), epochs=10, batch_size=16,
                        validation_split=0.25, early_stopping=stopper, callbacks=[remember])
    assert len(history.rows) == 3  # epoch 1 is best, epochs 2 and 3 exhaust the patience
    assert all(np.array_equal(model.params[k], snapshots[1][k]) for k in model.params)
    assert not all(np.array_equal(snapshots[3][k], snapshots[1][k]) for k in model.params)


def test_truncated_bptt_equals_chunks_with_the_state_carried_and_detached():
    x, y = small_regression(T=12)
    fitted = gru_model()
    train.fit(fitted, x, y, optimizer=optim.SGD(fitted.params, lr=0.1), epochs=1, batch_size=64, bptt=4, shuffle=False)
    manual = gru_model()
    trainer = train.Trainer(manual, "mse", optim.SGD(manual.params, lr=0.1))
    states = None
    for t0 in (0, 4, 8):
        _, states = trainer.step(x[:, t0:t0 + 4], y[:, t0:t0 + 4], states=states)
        states = {i: s.copy() for i, s in states.items()}
    assert all(np.allclose(fitted.params[k], manual.params[k], rtol=0, atol=0) for k in manual.params)


def test_truncated_bptt_with_the_whole_length_is_full_bptt():
    x, y = small_regression(T=12)
    full, truncated = gru_model(), gru_model()
    train.fit(full, x, y, epochs=1, batch_size=16, seed=1)
    train.fit(truncated, x, y, epochs=1, batch_size=16, seed=1, bptt=12)
    assert all(np.array_equal(full.params[k], truncated.params[k]) for k in full.params)


def test_divergence_stops_with_a_message_and_leaves_the_checkpoint_intact(tmp_path):
    x, y = small_regression()
    y[:, :, :] *= 1e3
    model = Sequential([RNN(3, 6, activation="relu", seed=0), Dense(6, 1, seed=1)])
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(TrainingError, match=r"step \d+: the (model output|loss|gradient) became .*lower the learning rate"):
        train.fit(model, x, y, optimizer=optim.SGD(model.params, lr=50.0), epochs=50, batch_size=8,
                  checkpoint=ckpt, checkpoint_every=1)
    saved = load_checkpoint(ckpt)
    assert all(np.isfinite(v).all() for v in saved.params.values())
    assert all(np.array_equal(saved.params[k], model.params[k]) for k in model.params)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((0, 5, 3), np.float32), np.zeros((0, 1), np.float32), "x is empty"),
        (np.zeros((4, 5, 3), np.float32), np.zeros((3, 1), np.float32), "4 samples but y has 3"),
        (np.full((4, 5, 3), np.nan, np.float32), np.zeros((4, 1), np.float32), "x contains NaN"),
        (np.zeros((4, 5, 3), np.float32), np.array([["a"]] * 4), "y must be numeric"),
    ],
)
def test_bad_input_to_fit(x, y, match):
    with pytest.raises(DataError, match=match):
        train.fit(gru_model(return_sequences=False), x, y)


def test_bad_options_to_fit():
    x, y = small_regression()
    with pytest.raises(ConfigError, match="loss must be one of"):
        train.fit(gru_model(), x, y, loss="hinge")
    with pytest.raises(ConfigError, match="bptt needs equal-length sequences"):
        train.fit(gru_model(), x, y, bptt=4, lengths=np.full(len(x), 10))
    with pytest.raises(ConfigError, match="epochs must be"):
        train.fit(gru_model(), x, y, epochs=0)
    with pytest.raises(DataError, match="leaves no training samples"):
        train.fit(gru_model(), x[:1], y[:1], validation_split=0.9)
    with pytest.raises(ConfigError, match="metric must be one of"):
        train.fit(gru_model(), x, y, validation_split=0.2, metrics=["auc"])


@pytest.mark.parametrize(
    "budget, match",
    [
        ({"max_steps": 0}, r"max_steps must be >= 1, got 0"),
        ({"max_steps": 2.5}, r"max_steps must be an integer >= 1, got 2.5"),
        ({"max_time": 0}, r"max_time must be a positive finite number or None, got 0"),
        ({"max_time": -5.0}, r"max_time must be a positive finite number or None, got -5.0"),
        ({"max_time": "soon"}, r"max_time must be a positive number or None, got 'soon'"),
        ({"checkpoint_every": 0}, r"checkpoint_every must be >= 1, got 0"),
    ],
)
def test_bad_budgets_are_refused_before_any_step(budget, match):
    x, y = small_regression()
    model = gru_model()
    before = {k: v.copy() for k, v in model.params.items()}
    if "max_steps" not in budget:  # (fit's budget is epochs and max_time)
        with pytest.raises(ConfigError, match=match):
            train.fit(model, x, y, **budget)
    with pytest.raises(ConfigError, match=match):
        train.fit_stream(Sequential([Embedding(5, 3), Dense(3, 5)]), np.arange(40) % 5, batch_size=2, bptt=4,
                         **budget)
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())  # nothing was trained


def test_best_weights_are_restored_even_when_training_runs_all_its_epochs():
    x, y = small_regression()
    model = gru_model()
    snapshots = {}

    def remember(epoch, logs):
        snapshots[epoch] = ({k: v.copy() for k, v in model.params.items()}, logs["val_loss"])

    # a learning rate this large makes validation loss jump around; the best epoch is rarely the last
    train.fit(model, x, y, optimizer=optim.SGD(model.params, lr=1.0), epochs=6, batch_size=16,
              validation_split=0.25, early_stopping=train.EarlyStopping(patience=100), callbacks=[remember])
    best_epoch = min(snapshots, key=lambda e: snapshots[e][1])
    assert best_epoch != 6
    assert all(np.array_equal(model.params[k], snapshots[best_epoch][0][k]) for k in model.params)



def test_best_weights_are_restored_when_the_time_budget_ends_an_epoch_midway(monkeypatch):
    """max_time runs out after the first batch of epoch 3: fit keeps the best of epochs 1-2, not the
    weights that batch left. A fake clock stands still until epoch 2 has ended, then jumps past the
    deadline."""
    x, y = small_regression()
    model = gru_model()
    clock = {"now": 0.0}
    monkeypatch.setattr(train.time, "monotonic", lambda: clock["now"])
    snapshots = {}

    def remember(epoch, logs):
        snapshots[epoch] = ({k: v.copy() for k, v in model.params.items()}, logs["val_loss"])
        if epoch == 2:
            clock["now"] = 1e9  # past the deadline from here on

    history = train.fit(model, x, y, optimizer=optim.SGD(model.params, lr=1.0), epochs=6, batch_size=16,
                        validation_split=0.25, early_stopping=train.EarlyStopping(patience=100),
                        callbacks=[remember], max_time=60.0)
    assert len(history.rows) == 2 and sorted(snapshots) == [1, 2]  # epoch 3 began and was cut short
    best_epoch = min(snapshots, key=lambda e: snapshots[e][1])
    assert all(np.array_equal(model.params[k], snapshots[best_epoch][0][k]) for k in model.params)

def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path):
    x, y = small_regression()
    model = gru_model()
    ckpt = tmp_path / "run.ckpt"
    stopper = train.EarlyStopping(patience=1, min_delta=1e9)
    train.fit(model, x, y, epochs=10, validation_split=0.25, early_stopping=stopper, checkpoint=ckpt)
    before = {k: v.copy() for k, v in model.params.items()}
    history = train.fit(model, x, y, epochs=10, validation_split=0.25, early_stopping=stopper, checkpoint=ckpt,
                        resume=True)
    assert len(history.rows) == 2
    assert all(np.array_equal(model.params[k], before[k]) for k in before)


def test_accuracy_of_a_binary_model_with_float_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.float32)[:, None]
    model = Sequential([GRU(2, 4, return_sequences=False, seed=0), Dense(4, 1, seed=1)])
    history = train.fit(model, x, y, loss="binary_cross_entropy_with_logits", epochs=1,
                        validation_data=(x, y), metrics=["accuracy"])
    expected = np.mean((model.predict(x) > 0) == (y > 0.5))
    assert history["val_accuracy"][0] == pytest.approx(expected)


def test_padding_past_the_longest_sequence_of_a_batch_changes_nothing():
    """fit trims each batch to its longest sequence; the parameters must equal those of untrimmed data."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 7, size=32)
    x = rng.normal(size=(32, 6, 3)).astype(np.float32)
    y = rng.normal(size=(32, 1)).astype(np.float32)
    padded = np.concatenate([x, rng.normal(size=(32, 9, 3)).astype(np.float32)], axis=1)  # 9 garbage steps
    short, long = gru_model(return_sequences=False), gru_model(return_sequences=False)
    train.fit(short, x, y, lengths=lengths, epochs=2, batch_size=8, validation_data=(x, y, lengths))
    history = train.fit(long, padded, y, lengths=lengths, epochs=2, batch_size=8,
                        validation_data=(padded, y, lengths))
    assert all(np.allclose(short.params[k], long.params[k], rtol=1e-6, atol=1e-7) for k in short.params)
    assert np.isfinite(history["val_loss"]).all()
