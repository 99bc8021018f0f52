"""Checkpoints: a run killed (SIGKILL) or interrupted (SIGINT) and resumed ends bit-identical."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit import optim, train
from rnnkit.errors import ConfigError, ModelFileError
from rnnkit.layers.dense import Dense
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.recurrent import GRU
from rnnkit.models import Sequential

ROOT = Path(__file__).resolve().parents[2]


def child(out, ckpt, resume=False):
    args = [sys.executable, "-m", "tests.training.child", str(out), str(ckpt)] + (["resume"] if resume else [])
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    finished(child(d / "ref.npz", d / "ref.ckpt"))
    return load(d / "ref.npz")


def wait_for(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("delay", [0.05, 0.4])
def test_sigkill_then_resume_is_bit_identical(tmp_path, reference, delay):
    ckpt = tmp_path / "run.ckpt"
    proc = child(tmp_path / "out.npz", ckpt)
    wait_for(ckpt)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "out.npz").exists()
    finished(child(tmp_path / "out.npz", ckpt, resume=True))
    result = load(tmp_path / "out.npz")
    assert result.keys() == reference.keys()
    assert all(np.array_equal(result[k], reference[k]) for k in reference)


def test_sigint_saves_a_checkpoint_says_how_to_resume_and_resumes_exactly(tmp_path, reference):
    ckpt = tmp_path / "run.ckpt"
    proc = child(tmp_path / "out.npz", ckpt)
    wait_for(ckpt)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "interrupted at epoch" in err and "resume" in err and str(ckpt) in err
    finished(child(tmp_path / "out.npz", ckpt, resume=True))
    result = load(tmp_path / "out.npz")
    assert all(np.array_equal(result[k], reference[k]) for k in reference)


def lm():
    return Sequential([Embedding(12, 5, seed=0), GRU(5, 8, seed=1), Dense(8, 12, seed=2)])


def test_stream_training_resumes_exactly_after_max_steps(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 12, 2000)
    straight = lm()
    train.fit_stream(straight, tokens, batch_size=4, bptt=10, epochs=2, seed=1)
    resumed = lm()
    ckpt = tmp_path / "lm.ckpt"
    train.fit_stream(resumed, tokens, batch_size=4, bptt=10, epochs=2, seed=1, checkpoint=ckpt, max_steps=30)
    assert not all(np.array_equal(resumed.params[k], straight.params[k]) for k in straight.params)
    again = lm()
    train.fit_stream(again, tokens, batch_size=4, bptt=10, epochs=2, seed=1, checkpoint=ckpt, resume=True)
    assert all(np.array_equal(again.params[k], straight.params[k]) for k in straight.params)


def test_stream_training_carries_the_state_between_batches():
    tokens = np.random.default_rng(1).integers(0, 12, 400)
    model = lm()
    seen = []
    original = model.forward

    def spy(x, **kw):
        seen.append(kw.get("states"))
        return original(x, **kw)

    model.forward = spy
    train.fit_stream(model, tokens, batch_size=4, bptt=10, epochs=1, optimizer=optim.SGD(model.params, lr=0.0))
    assert seen[0] is None and all(s is not None and 1 in s for s in seen[1:])
    seen.clear()
    train.fit_stream(model, tokens, batch_size=4, bptt=10, epochs=1, reset_every=3,
                     optimizer=optim.SGD(model.params, lr=0.0))
    assert [s is None for s in seen] == [j % 3 == 0 for j in range(len(seen))] and len(seen) == 10


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 12, 500)
    ckpt = tmp_path / "lm.ckpt"
    train.fit_stream(lm(), tokens, batch_size=4, bptt=10, epochs=1, checkpoint=ckpt)
    with pytest.raises(ConfigError, match="different run.*bptt"):
        train.fit_stream(lm(), tokens, batch_size=4, bptt=5, epochs=1, checkpoint=ckpt, resume=True)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="lm.ckpt"):
        train.fit_stream(lm(), tokens, batch_size=4, bptt=10, epochs=1, checkpoint=ckpt, resume=True)
