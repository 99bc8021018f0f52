"""``anneal=True``: the learning rate falls linearly to 0 where the run's budget ends, and resumes exactly."""

import os
import signal

import numpy as np
import pytest

from rnnkit import optim, schedules, train
from rnnkit.data import StreamBatcher
from rnnkit.errors import ConfigError
from rnnkit.train import TrainingInterrupted
from rnnkit.layers.dense import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.recurrent import GRU
from rnnkit.models import Sequential

TOKENS = np.random.default_rng(0).integers(0, 12, 2000)
BASE_LR = 0.01


def lm():
    return Sequential([Embedding(12, 5, seed=0), GRU(5, 8, seed=1), Dense(8, 12, seed=2)])


def RecordingAdam(params):
    """Adam(lr=BASE_LR) that records the lr of every step in ``.seen``."""
    opt = optim.Adam(params, lr=BASE_LR)
    opt.seen, step = [], opt.step

    def recorded(grads):
        opt.seen.append(opt.lr)
        step(grads)

    opt.step = recorded
    return opt


def steps_per_epoch(batch_size=4, bptt=10):
    return len(StreamBatcher(TOKENS, batch_size, bptt))


def test_lr_falls_linearly_to_zero_over_the_epochs():
    model = lm()
    opt = RecordingAdam(model.params)
    history = train.fit_stream(model, TOKENS, batch_size=4, bptt=10, epochs=2, optimizer=opt, anneal=True)
    total = 2 * steps_per_epoch()
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(total) / total), rtol=1e-12)
    assert [row["lr"] for row in history.rows] == [opt.seen[total // 2 - 1], opt.seen[-1]]


def test_max_steps_ends_the_budget_first():
    model = lm()
    opt = RecordingAdam(model.params)
    train.fit_stream(model, TOKENS, batch_size=4, bptt=10, epochs=100, max_steps=20, optimizer=opt, anneal=True)
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(20) / 20), rtol=1e-12)


def test_lr_follows_the_time_budget(monkeypatch):
    """A fake clock that advances one second per step: a 10-second budget gives 10 steps at lr (1 - k/10)."""
    clock = {"now": 100.0}
    monkeypatch.setattr(train.time, "monotonic", lambda: clock["now"])
    model = lm()
    opt = RecordingAdam(model.params)

    def tick(pred, target, mask=None):
        clock["now"] += 1.0
        return train.losses_mod.cross_entropy(pred, target, mask)

    train.fit_stream(model, TOKENS, batch_size=4, bptt=10, epochs=100, loss=tick, optimizer=opt, anneal=True,
                     max_time=10.0)
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(10) / 10), rtol=1e-12)


def test_without_anneal_the_lr_stays():
    model = lm()
    opt = RecordingAdam(model.params)
    train.fit_stream(model, TOKENS, batch_size=4, bptt=10, epochs=1, optimizer=opt)
    assert opt.seen == [BASE_LR] * steps_per_epoch()


def interrupt_at(step):
    """A loss that sends this process SIGINT (Ctrl-C) during the given step (1-based)."""
    calls = {"n": 0}

    def loss(pred, target, mask=None):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGINT)
        return train.losses_mod.cross_entropy(pred, target, mask)

    return loss


def test_an_interrupted_annealed_run_resumes_exactly(tmp_path):
    straight = lm()
    train.fit_stream(straight, TOKENS, batch_size=4, bptt=10, epochs=2, seed=1, anneal=True,
                     optimizer=optim.Adam(straight.params, lr=BASE_LR))
    first, ckpt = lm(), tmp_path / "lm.ckpt"
    with pytest.raises(TrainingInterrupted):
        train.fit_stream(first, TOKENS, batch_size=4, bptt=10, epochs=2, seed=1, anneal=True, checkpoint=ckpt,
                         loss=interrupt_at(steps_per_epoch() + 7), optimizer=optim.Adam(first.params, lr=BASE_LR))
    resumed = lm()
    opt = RecordingAdam(resumed.params)  # its own lr is the checkpoint's; anneal restores the base lr
    opt.lr = 0.5
    train.fit_stream(resumed, TOKENS, batch_size=4, bptt=10, epochs=2, seed=1, anneal=True, checkpoint=ckpt,
                     resume=True, optimizer=opt)
    total, done = 2 * steps_per_epoch(), steps_per_epoch() + 7
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(done, total) / total), rtol=1e-12)
    assert all(np.array_equal(resumed.params[k], straight.params[k]) for k in straight.params)


def test_a_resumed_time_budget_counts_the_seconds_already_trained(tmp_path, monkeypatch):
    """Interrupted after 4 s of a 10 s budget, resumed with max_time=6 (the seconds left): the same schedule."""
    clock = {"now": 0.0}
    monkeypatch.setattr(train.time, "monotonic", lambda: clock["now"])
    ckpt = tmp_path / "lm.ckpt"

    def tick(stop_at=None):
        calls = {"n": 0}

        def loss(pred, target, mask=None):
            clock["now"] += 1.0
            calls["n"] += 1
            if calls["n"] == stop_at:
                os.kill(os.getpid(), signal.SIGINT)
            return train.losses_mod.cross_entropy(pred, target, mask)

        return loss

    first = lm()
    with pytest.raises(TrainingInterrupted):
        train.fit_stream(first, TOKENS, batch_size=4, bptt=10, epochs=100, loss=tick(stop_at=4), anneal=True,
                         max_time=10.0, checkpoint=ckpt, optimizer=optim.Adam(first.params, lr=BASE_LR))
    clock["now"] = 1000.0  # time passes between the two invocations and does not count
    resumed = lm()
    opt = RecordingAdam(resumed.params)
    train.fit_stream(resumed, TOKENS, batch_size=4, bptt=10, epochs=100, loss=tick(), anneal=True, max_time=6.0,
                     checkpoint=ckpt, resume=True, optimizer=opt)
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(4, 10) / 10), rtol=1e-12)


def test_fit_anneals_over_its_epochs():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 6, 2)).astype(np.float32), rng.normal(size=(40, 1)).astype(np.float32)
    model = Sequential([GRU(2, 4, return_sequences=False, seed=0), Dense(4, 1, seed=1)])
    opt = RecordingAdam(model.params)
    train.fit(model, x, y, optimizer=opt, epochs=3, batch_size=10, anneal=True)
    np.testing.assert_allclose(opt.seen, BASE_LR * (1 - np.arange(12) / 12), rtol=1e-12)


def test_bad_anneal_options():
    model = lm()
    opt = optim.Adam(model.params, lr=BASE_LR)
    with pytest.raises(ConfigError, match="anneal=True and a schedule both set the learning rate"):
        train.fit_stream(model, TOKENS, epochs=1, optimizer=opt, anneal=True, schedule=schedules.StepLR(opt, 1))
    with pytest.raises(ConfigError, match="anneal must be True or False, got 'yes'"):
        train.fit_stream(model, TOKENS, epochs=1, optimizer=opt, anneal="yes")
