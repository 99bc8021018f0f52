"""Optimizers, clipping and schedules against torch.optim / torch.nn.utils on identical gradient sequences."""

import json

import numpy as np
import pytest
import torch

from rnnkit.errors import ConfigError, DataError, DTypeError, ModelFileError, ShapeError, TrainingError
from rnnkit.optim import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    clip_grad_norm,
    clip_grad_value,
)
from rnnkit.schedules import CosineWithWarmup, ExponentialLR, ReduceLROnPlateau, StepLR

SHAPES = {"W_ih": (6, 3), "W_hh": (6, 2), "b_ih": (6,)}
N_STEPS, SAVE_AT, LR_CHANGE_AT = 100, 50, 30

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.05)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.9)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.02)),
]
CASE_IDS = [f"{ours.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for ours, _, kw in CASES]


def random_params(rng, dtype):
    return {name: rng.normal(size=shape).astype(dtype) for name, shape in SHAPES.items()}


def run_torch(torch_cls, kwargs, params0, grad_seq):
    """Parameters and optimizer after the gradient sequence, with lr halved at LR_CHANGE_AT."""
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params0.items()}
    opt = torch_cls(list(tparams.values()), foreach=False, **kwargs)
    for t, grads in enumerate(grad_seq):
        if t == LR_CHANGE_AT:
            opt.param_groups[0]["lr"] *= 0.5
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in tparams.items()}, opt, tparams


def run_ours_with_checkpoint(cls, kwargs, params0, grad_seq):
    """Our optimizer over the same sequence, saved at SAVE_AT to JSON + arrays, rebuilt and resumed."""
    params = {k: v.copy() for k, v in params0.items()}
    opt = cls(params, **kwargs)
    for t, grads in enumerate(grad_seq):
        if t == LR_CHANGE_AT:
            opt.lr *= 0.5
        if t == SAVE_AT:
            state = opt.state_dict()
            scalars = json.loads(json.dumps({k: v for k, v in state.items() if k != "arrays"}))
            arrays = {k: v.copy() for k, v in state["arrays"].items()}
            params = {k: v.copy() for k, v in params.items()}  # the model's own checkpoint
            opt = cls(params, **kwargs)  # fresh: step 0, lr from kwargs, zero buffers
            opt.load_state_dict({**scalars, "arrays": arrays})
        opt.step(grads)
        assert all(opt.params[k] is params[k] for k in params), "parameters must be updated in place"
    return params, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, torch_cls, kwargs", CASES, ids=CASE_IDS)
def test_optimizer_matches_torch_over_100_steps_with_resume(cls, torch_cls, kwargs, dtype, rng):
    params0 = random_params(rng, dtype)
    grad_seq = [
        {k: (rng.normal(size=v.shape) * rng.uniform(0.1, 3)).astype(dtype) for k, v in params0.items()}
        for _ in range(N_STEPS)
    ]
    ref, torch_opt, tparams = run_torch(torch_cls, kwargs, params0, grad_seq)
    ours, opt = run_ours_with_checkpoint(cls, kwargs, params0, grad_seq)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    for k in params0:
        assert ours[k].dtype == np.dtype(dtype)
        assert np.abs(ours[k] - params0[k]).max() > 1e-3, "the parameters must actually move"
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=rtol * np.abs(ref[k]).max(), err_msg=k)
    for key, buf in opt.state.items():  # buffers are named "<torch's state key>.<param name>"
        kind, name = key.split(".", 1)
        theirs = torch_opt.state[tparams[name]][kind].numpy()
        assert buf.dtype == np.dtype(dtype)
        np.testing.assert_allclose(buf, theirs, rtol=10 * rtol, atol=10 * rtol * np.abs(theirs).max(), err_msg=key)


def test_resume_is_bit_identical_to_uninterrupted_run(rng):
    params0 = random_params(rng, np.float32)
    grad_seq = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in params0.items()} for _ in range(N_STEPS)]
    straight = {k: v.copy() for k, v in params0.items()}
    opt = Adam(straight, lr=0.01, amsgrad=True, weight_decay=0.1)
    for t, grads in enumerate(grad_seq):
        if t == LR_CHANGE_AT:
            opt.lr *= 0.5
        opt.step(grads)
    resumed, _ = run_ours_with_checkpoint(Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1), params0, grad_seq)
    for k in params0:
        np.testing.assert_array_equal(resumed[k], straight[k])


def test_state_dict_layout_is_json_scalars_plus_named_arrays(rng):
    opt = RMSprop(random_params(rng, np.float32), lr=0.01, centered=True, momentum=0.9)
    state = opt.state_dict()
    assert json.loads(json.dumps({k: v for k, v in state.items() if k != "arrays"})) == {
        "type": "RMSprop",
        "config": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.9, "centered": True},
        "step": 0,
    }
    kinds = ("square_avg", "grad_avg", "momentum_buffer")
    assert set(state["arrays"]) == {f"{kind}.{name}" for kind in kinds for name in SHAPES}
    assert all(isinstance(a, np.ndarray) for a in state["arrays"].values())


def test_registry_lists_every_optimizer():
    assert OPTIMIZERS == {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad, "rmsprop": RMSprop}


# ----------------------------------------------------------------------------- clipping


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clips / leaves alone
def test_clip_grad_norm_matches_torch(max_norm, dtype, rng):
    grads = {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}
    tparams = [torch.zeros(s, dtype=torch.from_numpy(grads[k]).dtype, requires_grad=True) for k, s in SHAPES.items()]
    for p, g in zip(tparams, grads.values()):
        p.grad = torch.tensor(g)
    ref_norm = torch.nn.utils.clip_grad_norm_(tparams, max_norm).item()
    norm = clip_grad_norm(grads, max_norm)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert norm == pytest.approx(ref_norm, rel=rtol)
    for p, g in zip(tparams, grads.values()):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=rtol, atol=0)
    if max_norm < norm:
        assert np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values())) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_value_matches_torch(rng):
    grads = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    tparams = [torch.zeros(s, requires_grad=True) for s in SHAPES.values()]
    for p, g in zip(tparams, grads.values()):
        p.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tparams, 0.3)
    clip_grad_value(grads, 0.3)
    for p, g in zip(tparams, grads.values()):
        np.testing.assert_array_equal(g, p.grad.numpy())


def test_clip_grad_norm_nonfinite():
    grads = {"w": np.array([np.nan, 1.0])}
    assert np.isnan(clip_grad_norm(grads, 1.0))
    with pytest.raises(TrainingError, match=r"total gradient norm is inf"):
        clip_grad_norm({"w": np.array([np.inf, 1.0])}, 1.0, error_if_nonfinite=True)


# ----------------------------------------------------------------------------- schedules


def torch_lrs(make_scheduler, n, metrics=None, base_lr=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make_scheduler(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for t in range(n):
        opt.step()
        sched.step(*([] if metrics is None else [metrics[t]]))
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def our_lrs(make_schedule, n, metrics=None, base_lr=0.1, save_at=None):
    """lr before the first step and after each step; optionally checkpointed (JSON) and rebuilt at ``save_at``."""
    opt = SGD({"w": np.zeros(1)}, lr=base_lr)
    sched = make_schedule(opt)
    lrs = [opt.lr]
    for t in range(n):
        if t == save_at:
            opt_state, sched_state = opt.state_dict(), json.loads(json.dumps(sched.state_dict()))
            opt = SGD({"w": np.zeros(1)}, lr=base_lr)
            sched = make_schedule(opt)
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)
        sched.step(None if metrics is None else metrics[t])
        lrs.append(opt.lr)
    return lrs


def warmup_cosine_lambda(W, T, base_lr, min_lr):
    """The schedule's formula written out independently, as a LambdaLR factor."""
    def factor(t):
        if t < W:
            return (t + 1) / (W + 1)
        if t > T:
            return min_lr / base_lr
        return (min_lr + (base_lr - min_lr) * 0.5 * (1 + np.cos(np.pi * (t - W) / (T - W)))) / base_lr
    return factor


SCHEDULES = {
    "step": (lambda o: StepLR(o, step_size=7, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5), 120),
    "exponential": (lambda o: ExponentialLR(o, 0.97), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97), 120),
    "cosine_warmup": (
        lambda o: CosineWithWarmup(o, total_steps=100, warmup_steps=10, min_lr=1e-3),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, warmup_cosine_lambda(10, 100, 0.1, 1e-3)),
        130,
    ),
    "cosine_no_warmup": (
        lambda o: CosineWithWarmup(o, total_steps=110, min_lr=1e-3),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=110, eta_min=1e-3),
        110,
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(name):
    ours, theirs, n = SCHEDULES[name]
    ref = torch_lrs(theirs, n)
    assert len(set(np.round(ref, 12))) > 3, "the reference schedule must actually vary"
    np.testing.assert_allclose(our_lrs(ours, n), ref, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(our_lrs(ours, n, save_at=n // 2), ref, rtol=1e-9, atol=1e-15)


def plateau_metrics(rng, n=150):
    """A loss that falls, stalls, and jitters: improvements and plateaus of various lengths."""
    trend = np.concatenate([np.linspace(1, 0.5, 30), np.full(40, 0.5), np.linspace(0.5, 0.3, 20), np.full(60, 0.3)])
    return list(trend[:n] + 0.01 * rng.normal(size=n) * (rng.random(n) < 0.5))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(mode="min", factor=0.5, patience=3, threshold=1e-2, cooldown=2, min_lr=0.01),
        dict(mode="min", factor=0.3, patience=2, threshold=0.005, threshold_mode="abs"),
        dict(mode="max", factor=0.5, patience=4, threshold=1e-3, cooldown=1),
        dict(mode="max", factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", min_lr=0.02),
    ],
)
def test_reduce_on_plateau_matches_torch(kwargs, rng):
    metrics = plateau_metrics(rng)
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kwargs), len(metrics), metrics)
    assert len(set(ref)) >= 2, "the metric sequence must trigger at least one reduction"
    make = lambda o: ReduceLROnPlateau(o, **kwargs)  # noqa: E731
    np.testing.assert_allclose(our_lrs(make, len(metrics), metrics), ref, rtol=1e-12)
    for save_at in (0, 37, 75):  # incl. before the first metric (best = inf is saved as JSON null)
        np.testing.assert_allclose(our_lrs(make, len(metrics), metrics, save_at=save_at), ref, rtol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_step_rejects_bad_gradients(rng):
    opt = Adam(random_params(rng, np.float32))
    grads = {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}
    with pytest.raises(DataError, match=r"grads keys do not match: missing \['b_ih'\], unexpected \['bias'\]"):
        opt.step({**{k: v for k, v in grads.items() if k != "b_ih"}, "bias": grads["b_ih"]})
    with pytest.raises(ShapeError, match=r"grads\['W_hh'\] must have the parameter's shape \(6, 2\), got \(2, 6\)"):
        opt.step({**grads, "W_hh": np.zeros((2, 6), np.float32)})
    with pytest.raises(DTypeError, match=r"grads\['W_ih'\] must be an ndarray of the parameter's dtype float32, got float64"):
        opt.step({**grads, "W_ih": np.zeros((6, 3))})
    assert opt.step_count == 0


def test_load_state_dict_validates_before_changing_anything(rng):
    params = random_params(rng, np.float32)
    state = Adam(params, amsgrad=True).state_dict()
    with pytest.raises(ModelFileError, match=r"optimizer state is for 'Adam', but this optimizer is AdamW"):
        AdamW(params).load_state_dict(state)
    with pytest.raises(ModelFileError, match=r"optimizer arrays keys do not match: missing \[\], unexpected \['max_exp_avg_sq.W_hh'"):
        Adam(params, amsgrad=False).load_state_dict(state)
    opt = Adam(params, lr=0.5, amsgrad=True)
    bad = {**state, "arrays": {**state["arrays"], "exp_avg.b_ih": np.zeros(5, np.float32)}}
    with pytest.raises(ShapeError, match=r"optimizer array 'exp_avg.b_ih' must have shape \(6,\), got \(5,\)"):
        opt.load_state_dict(bad)
    bad = {**state, "arrays": {**state["arrays"], "exp_avg.b_ih": np.zeros(6)}}
    with pytest.raises(DTypeError, match=r"optimizer array 'exp_avg.b_ih' must have dtype float32, got float64"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.5


BAD_CONFIGS = [
    (lambda p: SGD(p, lr=-1.0), ConfigError, r"lr must be a finite number >= 0, got -1.0"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), ConfigError, r"nesterov=True needs momentum > 0 and dampening = 0"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), ConfigError, r"betas\[1\] must be in \[0, 1\), got 1.0"),
    (lambda p: Adam(p, betas=(0.9,)), ConfigError, r"betas must be a pair"),
    (lambda p: RMSprop(p, momentum=-0.1), ConfigError, r"momentum must be a finite number >= 0"),
    (lambda p: Adam({}), ConfigError, r"params must be a non-empty dict"),
    (lambda p: Adam({"w": np.zeros(3, int)}), DTypeError, r"params\['w'\] must be float32 or float64, got int64"),
    (lambda p: CosineWithWarmup(SGD(p), total_steps=10, warmup_steps=10), ConfigError, r"warmup_steps must be < total_steps=10"),
    (lambda p: StepLR(SGD(p), step_size=0), ConfigError, r"step_size must be >= 1, got 0"),
    (lambda p: ReduceLROnPlateau(SGD(p), mode="lowest"), ConfigError, r"mode must be one of \['min', 'max'\], got 'lowest'"),
    (lambda p: ReduceLROnPlateau(SGD(p), factor=1.0), ConfigError, r"factor must be in \[0, 1\), got 1.0"),
    (lambda p: ReduceLROnPlateau(SGD(p)).step(), ConfigError, r"needs the monitored metric"),
    (lambda p: StepLR(SGD(p), 3).load_state_dict(ExponentialLR(SGD(p), 0.9).state_dict()), ModelFileError, r"is for 'ExponentialLR'"),
    (lambda p: clip_grad_norm({"w": np.ones(2)}, -1), ConfigError, r"max_norm must be a finite number >= 0"),
]


@pytest.mark.parametrize("make, error, match", BAD_CONFIGS)
def test_bad_configuration_raises_specific_error(make, error, match, rng):
    with pytest.raises(error, match=match):
        make(random_params(rng, np.float32))
