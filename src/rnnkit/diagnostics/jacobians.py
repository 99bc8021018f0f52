"""Step Jacobians ∂s_t/∂s_{t-1} of each cell family, written from the cell equations.

Backpropagation through time multiplies these matrices (seed 004)::

    ∂L_t/∂W = Σ_k ∂L_t/∂O_t ∂O_t/∂S_t (Π_{j=k+1..t} ∂S_j/∂S_{j-1}) ∂S_k/∂W

so their norms decide whether the error signal of step t still reaches step k (vanishing when the
product shrinks geometrically, exploding when it grows). The state ``s`` is ``h (H)`` for the RNN
and GRU and the pair ``[h (R); c (H)]`` for the LSTM, so an LSTM Jacobian is ``(R+H) x (R+H)``.

Each function reads step ``t`` of a cell ``forward`` cache (``rnnkit.cells.*``, evaluated without
recurrent dropout) and returns the Jacobian of every batch row, ``J (B, S, S)`` with
``J[b, i, j] = ∂s_t[b, i] / ∂s_{t-1}[b, j]``. On padded steps (``t >= lengths[b]``) the state is
carried, so ``J[b] = I``.
"""

from __future__ import annotations

import numpy as np

from ..cells import GRUConfig, LSTMConfig, RNNConfig
from ..errors import ConfigError
from ..ops import ACTIVATIONS

Params = dict[str, np.ndarray]


def rnn_jacobian(p: Params, cfg: RNNConfig, cache: dict, t: int) -> np.ndarray:
    """h_t = f(a_t), a_t = x_t W_ih^T + h_{t-1} W_hh^T + b:   ∂h_t/∂h_{t-1} = diag(f'(a_t)) W_hh."""
    _, f_grad = ACTIVATIONS[cfg.activation]
    f_prime = f_grad(cache["hs"][t + 1])  # (B, H), f' written from h_t = f(a_t)
    J = f_prime[:, :, None] * p["W_hh"]  # (B, H, H)
    return _carry_padded(J, cache["m"], t)


def gru_jacobian(p: Params, cfg: GRUConfig, cache: dict, t: int) -> np.ndarray:
    """∂h_t/∂h_{t-1} of h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}::

        ∂h_t/∂h_{t-1} = diag(z) + diag(h_{t-1} - n) ∂z + diag(1 - z) ∂n
        ∂z = diag(z (1 - z)) W_hz,   ∂r = diag(r (1 - r)) W_hr,   ∂n = diag(1 - n²) ∂a_n
        reset_after:   ∂a_n = diag(h_{t-1} W_hn^T + b_hn) ∂r + diag(r) W_hn
        reset_before:  ∂a_n = W_hn (diag(h_{t-1}) ∂r + diag(r))
    """
    H = cfg.hidden_size
    r, z, n = cache["gates"][t]  # (B, H) each
    h_prev = cache["hs"][t]  # (B, H)
    W_hr, W_hz, W_hn = p["W_hh"].reshape(3, H, H)
    dz = (z * (1 - z))[:, :, None] * W_hz  # (B, H, H)
    dr = (r * (1 - r))[:, :, None] * W_hr
    if cfg.reset_after:
        da_n = cache["hn"][t][:, :, None] * dr + r[:, :, None] * W_hn
    else:
        da_n = W_hn @ (h_prev[:, :, None] * dr) + W_hn * r[:, None, :]
    J = (h_prev - n)[:, :, None] * dz + ((1 - z) * (1 - n * n))[:, :, None] * da_n
    J[:, np.arange(H), np.arange(H)] += z
    return _carry_padded(J, cache["m"], t)


def lstm_jacobian(p: Params, cfg: LSTMConfig, cache: dict, t: int) -> np.ndarray:
    """∂[h_t; c_t]/∂[h_{t-1}; c_{t-1}] with every option (peepholes, projection, clips)::

        ∂a = [W_hh | peepholes]     (the gate pre-activations' direct dependence, (4H, R+H))
        ∂c_t = [|c_raw| <= cell_clip] (diag(c_{t-1} σ'_f) ∂a_f + diag(g σ'_i) ∂a_i + diag(i tanh'_g) ∂a_g
                                      + [0 | diag(f)])
        ∂a_o += diag(w_co) ∂c_t
        ∂m_t = diag(tanh(c_t) σ'_o) ∂a_o + diag(o (1 - tanh²(c_t))) ∂c_t
        ∂h_t = [|h_raw| <= proj_clip] W_hr ∂m_t   (projection),   ∂h_t = ∂m_t   (otherwise)
    """
    H, R = cfg.hidden_size, cfg.output_size
    i, f, g, o = (a.T for a in cache["gates"][t].reshape(4, H, -1))  # (B, H) each
    c_prev, tanh_c = cache["cs"][t].T, cache["tanh_c"][t].T  # (B, H)
    units = np.arange(H)
    da = np.zeros((4 * H, R + H), dtype=p["W_hh"].dtype)  # ∂a/∂[h_{t-1}; c_{t-1}], the same for every row
    da[:, :R] = p["W_hh"]
    if cfg.peepholes:
        da[units, R + units] = p["w_ci"]  # a_i += w_ci ⊙ c_{t-1}
        da[H + units, R + units] = p["w_cf"]  # a_f += w_cf ⊙ c_{t-1}
    da_i, da_f, da_g, da_o = da.reshape(4, H, R + H)
    dc = ((c_prev * f * (1 - f))[:, :, None] * da_f + (g * i * (1 - i))[:, :, None] * da_i
          + (i * (1 - g * g))[:, :, None] * da_g)  # (B, H, R+H)
    dc[:, units, R + units] += f
    if cfg.cell_clip is not None:
        dc *= (np.abs(cache["c_raw"][t].T) <= cfg.cell_clip)[:, :, None]
    da_o = da_o + p["w_co"][:, None] * dc if cfg.peepholes else da_o
    dm = (tanh_c * o * (1 - o))[:, :, None] * da_o + (o * (1 - tanh_c * tanh_c))[:, :, None] * dc
    if cfg.proj_size:
        dh = p["W_hr"] @ dm  # (P, H) @ (B, H, R+H)
        if cfg.proj_clip is not None:
            dh *= (np.abs(cache["h_raw"][t].T) <= cfg.proj_clip)[:, :, None]
    else:
        dh = dm
    J = np.concatenate([dh, dc], axis=1)  # (B, R+H, R+H)
    v = cache["v"]  # (T, 1, B) or None
    return _carry_padded(J, None if v is None else v.transpose(0, 2, 1), t)


def _carry_padded(J: np.ndarray, mask: np.ndarray | None, t: int) -> np.ndarray:
    """J[b] = I where step t is padding for row b (mask[t, b, 0] = 0): the state is carried unchanged."""
    if mask is not None:
        padded = mask[t, :, 0] == 0
        J[padded] = np.eye(J.shape[1], dtype=J.dtype)
    return J


JACOBIANS = {"rnn": rnn_jacobian, "gru": gru_jacobian, "lstm": lstm_jacobian}


def step_jacobian(cell: str, p: Params, cfg, cache: dict, t: int) -> np.ndarray:
    """``J (B, S, S)``, the Jacobian ∂s_t/∂s_{t-1} of every batch row at step ``t`` of a forward cache."""
    if cache.get("rec_mask") is not None:
        raise ConfigError("step Jacobians are defined for the inference forward; run forward with training=False "
                          "(no recurrent dropout)")
    return JACOBIANS[cell](p, cfg, cache, t)
