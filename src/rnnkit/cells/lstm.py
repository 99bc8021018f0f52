"""LSTM cell with every TF1 ``LSTMCell`` option: forward and hand-derived backward through time.

One step, for a batch of rows (gate blocks of ``W_ih (4H, D)``, ``W_hh (4H, R)``, ``b_ih``, ``b_hh``
stacked i, f, g, o; ``R = P if proj_size P > 0 else H``)::

    i_t = σ(x_t W_ii^T + b_ii + h_{t-1} W_hi^T + b_hi + w_ci ⊙ c_{t-1})
    f_t = σ(x_t W_if^T + b_if + h_{t-1} W_hf^T + b_hf + w_cf ⊙ c_{t-1} + forget_bias)
    g_t = tanh(x_t W_ig^T + b_ig + h_{t-1} W_hg^T + b_hg)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    c_t = clip(c_t, -cell_clip, cell_clip)                 # if cell_clip
    o_t = σ(x_t W_io^T + b_io + h_{t-1} W_ho^T + b_ho + w_co ⊙ c_t)
    m_t = o_t ⊙ tanh(c_t)
    h_t = clip(m_t W_hr^T, -proj_clip, proj_clip)          # if proj_size (clip only if proj_clip)
    h_t = m_t                                              # otherwise

The peephole terms exist only with ``peepholes=True``; options that are off cost nothing. Gradients
through a clip are zero where it binds. Sequences are time-major, ``x (T, B, D)``; the state is the
pair ``(h (B, R), c (B, H))``. With variable lengths, ``v_t`` (1 on valid steps, 0 on padded ones)
gives ``h_t = h_{t-1} + v_t (h_new - h_{t-1})`` (the same for c) and ``y_t = v_t h_new``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_dtype, check_float_array, check_optional_positive, check_positive_int
from ..errors import ConfigError, ShapeError
from ..ops import sigmoid
from ._common import check_sequence, check_state_array, inference_of, step_mask, uniform_params

State = tuple[np.ndarray, np.ndarray]  # (h (B, R), c (B, H)), always in this order


@dataclass(frozen=True)
class LSTMConfig:
    """Hyperparameters of an LSTM cell (TF1 ``LSTMCell`` options; PyTorch ``proj_size``)."""

    input_size: int  # D, features of x_t
    hidden_size: int  # H, units of the cell state c_t
    proj_size: int = 0  # P, size of h_t = m_t W_hr^T; 0: no projection (h_t = m_t). PyTorch: 0 <= P < H
    peepholes: bool = False  # diagonal peepholes w_ci, w_cf (on c_{t-1}) and w_co (on c_t)
    forget_bias: float = 0.0  # constant added to the forget pre-activation (TF1), not a parameter
    cell_clip: float | None = None  # clip c_t to [-cell_clip, cell_clip]
    proj_clip: float | None = None  # clip h_t = m_t W_hr^T to [-proj_clip, proj_clip]; needs proj_size

    def __post_init__(self) -> None:
        check_positive_int(self.input_size, "input_size")
        H = check_positive_int(self.hidden_size, "hidden_size")
        P = check_positive_int(self.proj_size, "proj_size", minimum=0)
        if P >= H:
            raise ConfigError(f"proj_size must be smaller than hidden_size={H} (as in PyTorch), got {P}")
        if not isinstance(self.peepholes, (bool, np.bool_)):
            raise ConfigError(f"peepholes must be True or False, got {self.peepholes!r}")
        if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float, np.number)) \
                or not np.isfinite(self.forget_bias):
            raise ConfigError(f"forget_bias must be a finite number, got {self.forget_bias!r}")
        cell_clip = check_optional_positive(self.cell_clip, "cell_clip")
        proj_clip = check_optional_positive(self.proj_clip, "proj_clip")
        if proj_clip is not None and P == 0:
            raise ConfigError(f"proj_clip={proj_clip} clips the projection; set proj_size > 0 or proj_clip=None")
        # Python floats keep float32 arithmetic float32.
        for name, value in [("peepholes", bool(self.peepholes)), ("forget_bias", float(self.forget_bias)),
                            ("cell_clip", cell_clip), ("proj_clip", proj_clip)]:
            object.__setattr__(self, name, value)

    @property
    def output_size(self) -> int:
        """R, the size of h_t and of each output y_t."""
        return self.proj_size or self.hidden_size


def param_shapes(cfg: LSTMConfig) -> dict[str, tuple[int, ...]]:
    """Canonical parameter names and shapes (PyTorch's layout plus TF1's peepholes)."""
    D, H, P, R = cfg.input_size, cfg.hidden_size, cfg.proj_size, cfg.output_size
    shapes = {"W_ih": (4 * H, D), "W_hh": (4 * H, R), "b_ih": (4 * H,), "b_hh": (4 * H,)}
    if cfg.peepholes:
        shapes.update(w_ci=(H,), w_cf=(H,), w_co=(H,))
    if P:
        shapes["W_hr"] = (P, H)
    return shapes


def init_params(cfg: LSTMConfig, rng: np.random.Generator, dtype: np.dtype | type = np.float32) -> dict[str, np.ndarray]:
    """Every parameter (peepholes too) uniform in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's default)."""
    return uniform_params(param_shapes(cfg), cfg.hidden_size, rng, check_dtype(dtype))


def zero_state(cfg: LSTMConfig, batch: int, dtype: np.dtype | type = np.float32) -> State:
    """(h_0, c_0) = (0 (batch, R), 0 (batch, H))."""
    dtype = check_dtype(dtype)
    return np.zeros((batch, cfg.output_size), dtype), np.zeros((batch, cfg.hidden_size), dtype)


def _check_params(p: dict[str, np.ndarray], cfg: LSTMConfig) -> dict[str, np.ndarray]:
    """Check that p holds exactly the arrays of param_shapes(cfg), all of W_ih's float dtype."""
    shapes = param_shapes(cfg)
    if not isinstance(p, dict) or set(p) != set(shapes):
        got = sorted(p) if isinstance(p, dict) else type(p).__name__
        raise ConfigError(f"p must hold {sorted(shapes)} for this LSTMConfig, got {got}; build it with init_params(cfg, rng)")
    dtype = check_float_array(p["W_ih"], "p['W_ih']", allow_nonfinite=True).dtype
    checked = dict(p)
    for k, s in shapes.items():  # the full check (which raises with details) only on a mismatch: step() is hot
        if not (isinstance(p[k], np.ndarray) and p[k].shape == s and p[k].dtype == dtype):
            checked[k] = check_float_array(p[k], f"p['{k}']", shape=s, dtype=dtype, allow_nonfinite=True)
    return checked


def _check_state(state: State | None, batch: int, cfg: LSTMConfig, dtype: np.dtype, name: str) -> State:
    """Check a state pair (h (batch, R), c (batch, H)); None gives zeros."""
    if state is None:
        return zero_state(cfg, batch, dtype)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        got = f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list)) else type(state).__name__
        raise ShapeError(f"{name} must be a pair (h, c) with shapes ({batch}, {cfg.output_size}) and "
                         f"({batch}, {cfg.hidden_size}), got {got}")
    return (check_state_array(state[0], batch, cfg.output_size, dtype, f"{name}[0] (h)"),
            check_state_array(state[1], batch, cfg.hidden_size, dtype, f"{name}[1] (c)"))


def _input_projection(x: np.ndarray, W_ih: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a_x[t] = W_ih x_t^T + b for all steps at once, feature-major: (T, B, D) -> (T, 4H, B).

    With one input feature the product is a broadcast multiply (OpenBLAS is slow at inner dimension 1).
    """
    xT = x.transpose(0, 2, 1)  # (T, D, B)
    a = W_ih[:, :1] * xT if x.shape[2] == 1 else np.matmul(W_ih, xT)  # (4H, D) @ (T, D, B)
    a += b[:, None]
    return a


def _activate(a: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """Gate nonlinearities in place with one tanh: σ(a) = ½ tanh(a/2) + ½ (scale ½, shift ½), tanh (1, 0)."""
    a *= scale
    np.tanh(a, out=a)
    a *= scale
    a += shift


def _times_derivative(u: np.ndarray, y: np.ndarray, f: str, out: np.ndarray) -> np.ndarray:
    """out = u ⊙ f'(a), written from y = f(a) without temporaries: σ' = y (1 - y), tanh' = 1 - y²."""
    if f == "sigmoid":
        np.subtract(1, y, out=out)
        out *= y
    else:
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    out *= u
    return out


def _blend(new: np.ndarray, prev: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """out = prev + v (new - prev): the new state on valid rows (v = 1), the carried one on padded rows."""
    np.subtract(new, prev, out=out)
    out *= v
    out += prev


def step(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State | None) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache: ``x_t (B, D)``, ``state (h, c)`` or None -> ``(h_t, (h_t, c_t))``."""
    p = _check_params(p, cfg)
    x_t = check_float_array(x_t, "x_t", ndim=2, shape=(None, cfg.input_size), dtype=p["W_ih"].dtype)
    return advance(p, cfg, x_t, _check_state(state, x_t.shape[0], cfg, x_t.dtype, "state"))


def advance(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): the layer's ``step`` checks once, then calls this.

    ``p`` as ``init_params(cfg)`` gives it, ``x_t (B, D)`` finite in p's dtype, ``state (h (B, R), c (B, H))``.
    """
    y, state_t, _ = _run(p, cfg, x_t[None], state[0], state[1], None, None)
    return y[0], state_t


def forward(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, state0: State | None = None,
            lengths: np.ndarray | None = None, rec_mask: np.ndarray | None = None, *,
            check_finite: bool = True) -> tuple[np.ndarray, State, dict]:
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, R), (h_T, c_T), cache)``.

    ``rec_mask (B, R)`` (recurrent dropout, already scaled) multiplies h_{t-1} only inside the
    recurrent product ``(h_{t-1} ⊙ rec_mask) W_hh^T``. ``y`` is zero on padded steps and the state is
    each sequence's state at its last valid step.
    ``check_finite=False`` skips the NaN/Inf scan of ``x`` (as in ``scipy.linalg``: for callers that have
    scanned it, such as the layers; non-finite input then gives undefined results, not an error).
    """
    p = _check_params(p, cfg)
    x = check_sequence(x, cfg.input_size, p["W_ih"].dtype, finite=check_finite)
    T, B, _ = x.shape
    h0, c0 = _check_state(state0, B, cfg, x.dtype, "state0")
    if rec_mask is not None:
        rec_mask = check_float_array(rec_mask, "rec_mask", shape=(B, cfg.output_size), dtype=x.dtype)
    return _run(p, cfg, x, h0, c0, step_mask(lengths, T, B, x.dtype), rec_mask)


def _run(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
         v: np.ndarray | None, rec_mask: np.ndarray | None) -> tuple[np.ndarray, State, dict]:
    """The time loop of forward on checked inputs; ``v (T, B, 1)`` is the length mask or None.

    Inside, arrays are feature-major as in seed 001 (``a_t (4H, B)``, ``h_t (R, B)``, ``c_t (H, B)``),
    so each gate is one contiguous block: ``a_t = a_x[t] + W_hh h_{t-1}``, one (4H, R) @ (R, B) GEMM.
    """
    T, B, _ = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    b = p["b_ih"] + p["b_hh"]
    b[H:2 * H] += cfg.forget_bias  # TF1: a constant on the forget pre-activation
    gates = _input_projection(x, p["W_ih"], b)  # (T, 4H, B): pre-activations, then i, f, g, o in place
    v = None if v is None else v.transpose(0, 2, 1)  # (T, 1, B)
    hs = np.empty((T + 1, R, B), dtype)  # carried h_0 .. h_T
    cs = np.empty((T + 1, H, B), dtype)  # carried c_0 .. c_T
    hs[0], cs[0] = h0.T, c0.T
    h_new = hs[1:] if v is None else np.empty((T, R, B), dtype)  # the step's h_t, c_t before the length blend
    c_new = cs[1:] if v is None else np.empty((T, H, B), dtype)
    c_raw = c_new if cfg.cell_clip is None else np.empty((T, H, B), dtype)  # c_t before its clip
    m = h_new if P == 0 else np.empty((T, H, B), dtype)  # o_t ⊙ tanh(c_t)
    h_raw = h_new if cfg.proj_clip is None else np.empty((T, R, B), dtype)  # W_hr m_t before its clip
    tanh_c = np.empty((T, H, B), dtype)
    n = 3 if cfg.peepholes else 4  # gates activated at once; with peepholes o must wait for c_t
    scale = np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype), H)[: n * H, None]  # σ, σ, tanh, σ
    shift = np.repeat(np.array([0.5, 0.5, 0.0, 0.5], dtype), H)[: n * H, None]
    rec, tmp, h_in = np.empty((4 * H, B), dtype), np.empty((H, B), dtype), np.empty((R, B), dtype)
    rec_mask = None if rec_mask is None else rec_mask.T  # (R, B)
    if cfg.peepholes:
        w_ci, w_cf, w_co = (p[k][:, None] for k in ("w_ci", "w_cf", "w_co"))  # (H, 1)
    for t in range(T):
        a, c_prev = gates[t], cs[t]  # (4H, B), (H, B)
        i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        h_prev = hs[t] if rec_mask is None else np.multiply(hs[t], rec_mask, out=h_in)
        a += np.matmul(p["W_hh"], h_prev, out=rec)  # (4H, R) @ (R, B)
        if cfg.peepholes:  # a_i += w_ci ⊙ c_{t-1}, a_f += w_cf ⊙ c_{t-1}
            i += np.multiply(c_prev, w_ci, out=tmp)
            f += np.multiply(c_prev, w_cf, out=tmp)
        _activate(a[: n * H], scale, shift)  # i, f, g (and o without peepholes)
        np.multiply(f, c_prev, out=c_raw[t])  # c_t = f ⊙ c_{t-1} + i ⊙ g
        c_raw[t] += np.multiply(i, g, out=tmp)
        if cfg.cell_clip is not None:
            np.clip(c_raw[t], -cfg.cell_clip, cfg.cell_clip, out=c_new[t])
        if cfg.peepholes:  # o = σ(a_o + w_co ⊙ c_t)
            o += np.multiply(c_new[t], w_co, out=tmp)
            sigmoid(o, out=o)
        np.tanh(c_new[t], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=m[t])  # m_t = o ⊙ tanh(c_t)
        if P:
            np.matmul(p["W_hr"], m[t], out=h_raw[t])  # (P, H) @ (H, B)
            if cfg.proj_clip is not None:
                np.clip(h_raw[t], -cfg.proj_clip, cfg.proj_clip, out=h_new[t])
        if v is not None:
            _blend(h_new[t], hs[t], v[t], out=hs[t + 1])
            _blend(c_new[t], cs[t], v[t], out=cs[t + 1])
    y = h_new if v is None else np.multiply(h_new, v, out=h_new)  # y_t = v_t h_new
    cache = {"x": x, "gates": gates, "hs": hs, "cs": cs, "tanh_c": tanh_c, "v": v, "rec_mask": rec_mask,
             "m": m if P else None, "c_raw": c_raw if cfg.cell_clip is not None else None,
             "h_raw": h_raw if cfg.proj_clip is not None else None}
    return np.ascontiguousarray(y.transpose(0, 2, 1)), (hs[T].T.copy(), cs[T].T.copy()), cache


infer = inference_of(forward)


def backward(p: dict[str, np.ndarray], cfg: LSTMConfig, cache: dict, dy: np.ndarray | None = None,
             dstate: State | None = None, *, check_finite: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), (dh_0, dc_0))``.

    The local derivatives J of a step do not depend on the recurrence, so they are formed for all
    steps at once before the loop, in the buffer that then becomes da (v_t folded in, so padded rows
    pass dh, dc on unchanged)::

        dm_t = dh_t W_hr (through the clip mask)          da_o = dm_t ⊙ tanh(c_t) ⊙ σ'(a_o)
        dc_t += dm_t ⊙ o ⊙ tanh'(c_t) + da_o ⊙ w_co       dc_t ⊙= [|c_raw| <= cell_clip]
        da_i = dc_t ⊙ g ⊙ σ'(a_i)   da_f = dc_t ⊙ c_{t-1} ⊙ σ'(a_f)   da_g = dc_t ⊙ i ⊙ tanh'(a_g)
        dc_{t-1} = dc_t ⊙ f + da_i ⊙ w_ci + da_f ⊙ w_cf   dh_{t-1} = (da W_hh) ⊙ rec_mask
        dW_ih = Σ_t da_t^T x_t,  dW_hh = Σ_t da_t^T (h_{t-1} ⊙ rec_mask),  db_ih = db_hh = Σ_t da_t

    The loop runs feature-major like forward's (``dh (R, B)``, ``dc (H, B)``, ``da_t (4H, B)``).
    ``check_finite=False`` skips the NaN/Inf scan of ``dy`` (see ``forward``).
    """
    x, gates, hs, cs, tanh_c, v, rec_mask = (cache[k] for k in ("x", "gates", "hs", "cs", "tanh_c", "v", "rec_mask"))
    T, B, D = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    dy = None if dy is None else check_float_array(dy, "dy", shape=(T, B, R), dtype=dtype, allow_nonfinite=not check_finite)
    dh, dc = (s.T.copy() for s in _check_state(dstate, B, cfg, dtype, "dstate"))  # (R, B), (H, B)
    i, f, g, o = (gates.reshape(T, 4, H, B)[:, k] for k in range(4))
    da = np.empty((T, 4 * H, B), dtype)  # first the local derivatives J, then dL/da_t in place, step by step
    da4 = da.reshape(T, 4, H, B)
    J_i, J_f, J_g, J_o = (da4[:, k] for k in range(4))  # da_{i,f,g} = dc ⊙ J_{i,f,g},  da_o = dm ⊙ J_o
    _times_derivative(g, i, "sigmoid", out=J_i)  # g ⊙ σ'(a_i), through c = f c_prev + i g
    _times_derivative(cs[:-1], f, "sigmoid", out=J_f)  # c_{t-1} ⊙ σ'(a_f)
    _times_derivative(i, g, "tanh", out=J_g)  # i ⊙ tanh'(a_g)
    _times_derivative(tanh_c, o, "sigmoid", out=J_o)  # tanh(c) ⊙ σ'(a_o), through m = o tanh(c)
    K = _times_derivative(o, tanh_c, "tanh", out=np.empty_like(tanh_c))  # o ⊙ tanh'(c): dc += dm ⊙ K
    F = f  # dc_{t-1} = dc_t ⊙ F, through f ⊙ c_{t-1}
    c_pass = None if cfg.cell_clip is None else (np.abs(cache["c_raw"]) <= cfg.cell_clip).astype(dtype)
    h_pass = None if cfg.proj_clip is None else (np.abs(cache["h_raw"]) <= cfg.proj_clip).astype(dtype)
    keep = None
    if v is not None:  # padded steps: nothing enters the cell, dh and dc pass on unchanged
        keep = 1 - v
        da4 *= v[:, None]
        K *= v
        F = f * v + keep
        c_pass = None if c_pass is None else c_pass * v + keep
        h_pass = None if P == 0 else (v if h_pass is None else h_pass * v)

    tmp, dh_keep = np.empty((H, B), dtype), np.empty((R, B), dtype)
    if cfg.peepholes:
        w_ci, w_cf, w_co = (p[k][:, None] for k in ("w_ci", "w_cf", "w_co"))  # (H, 1)
    if P:
        dh_proj, dm, W_hrT = np.empty((T, P, B), dtype), np.empty((H, B), dtype), p["W_hr"].T  # dL/d(W_hr m_t)
    W_hhT = p["W_hh"].T  # (R, 4H)
    for t in reversed(range(T)):
        if keep is not None:
            np.multiply(dh, keep[t], out=dh_keep)  # padded rows carry dh_t to the step before
        if dy is not None:
            dh += dy[t].T  # y_t = h_t
        if P:
            if h_pass is None:
                dh_proj[t] = dh
            else:
                np.multiply(dh, h_pass[t], out=dh_proj[t])  # through clip(W_hr m) (and v_t)
            np.matmul(W_hrT, dh_proj[t], out=dm)  # through h = W_hr m: (H, P) @ (P, B)
        else:
            dm = dh
        da4[t, 3] *= dm  # through o = σ(a_o)
        dc += np.multiply(dm, K[t], out=tmp)  # through m = o tanh(c)
        if cfg.peepholes:
            dc += np.multiply(da4[t, 3], w_co, out=tmp)  # through a_o += w_co ⊙ c_t
        if c_pass is not None:
            dc *= c_pass[t]  # through clip(c)
        da4[t, :3] *= dc  # through i, f, g
        dc *= F[t]  # through f ⊙ c_{t-1}
        if cfg.peepholes:  # through a_i += w_ci ⊙ c_{t-1}, a_f += w_cf ⊙ c_{t-1}
            dc += np.multiply(da4[t, 0], w_ci, out=tmp)
            dc += np.multiply(da4[t, 1], w_cf, out=tmp)
        np.matmul(W_hhT, da[t], out=dh)  # through W_hh h_{t-1}: (R, 4H) @ (4H, B)
        if rec_mask is not None:
            dh *= rec_mask
        if keep is not None:
            dh += dh_keep

    # Sums over all steps and rows, each one GEMM over rows (t, b).
    da_rows = np.ascontiguousarray(da.transpose(0, 2, 1)).reshape(T * B, 4 * H)
    h_in = hs[:-1] if rec_mask is None else hs[:-1] * rec_mask  # (T, R, B): h_{t-1} ⊙ rec_mask
    db = da_rows.sum(axis=0)
    grads = {"W_ih": da_rows.T @ x.reshape(T * B, D),  # (4H, TB) @ (TB, D)
             "W_hh": da_rows.T @ h_in.transpose(0, 2, 1).reshape(T * B, R),  # (4H, TB) @ (TB, R)
             "b_ih": db, "b_hh": db.copy()}
    if cfg.peepholes:
        grads["w_ci"] = np.einsum("thb,thb->h", da4[:, 0], cs[:-1])
        grads["w_cf"] = np.einsum("thb,thb->h", da4[:, 1], cs[:-1])
        grads["w_co"] = np.einsum("thb,thb->h", da4[:, 3], cs[1:])  # c_t; padded rows have da = 0
    if P:
        grads["W_hr"] = np.tensordot(dh_proj, cache["m"], axes=([0, 2], [0, 2]))  # (P, H)
    dx = (da_rows @ p["W_ih"]).reshape(T, B, D)  # (TB, 4H) @ (4H, D)
    return grads, dx, (dh.T.copy(), dc.T.copy())
