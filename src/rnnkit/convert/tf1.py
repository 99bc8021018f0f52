"""TF1 ``tf.compat.v1.nn.rnn_cell.LSTMCell`` variables <-> an rnnkit LSTM layer (TensorFlow only to read checkpoints).

Under its scope (``rnn/lstm_cell`` when run by ``dynamic_rnn``) an LSTMCell stores::

    kernel (D+R, 4H)      rows [x ; h_prev], gate columns i, j, f, o (j is rnnkit's g)
    bias (4H,)
    w_i_diag, w_f_diag, w_o_diag (H,)        with use_peepholes=True
    projection/kernel (H, P)                 with num_proj=P  (R = P, else R = H)

and one step is (``LSTMCell.call``; rnnkit's equations in docs/conventions.md are the same)::

    [i, j, f, o] = [x, h_prev] @ kernel + bias
    c = σ(f + forget_bias + w_f_diag ⊙ c_prev) ⊙ c_prev + σ(i + w_i_diag ⊙ c_prev) ⊙ tanh(j)
    c = clip(c, -cell_clip, cell_clip)
    h = σ(o + w_o_diag ⊙ c) ⊙ tanh(c) @ projection/kernel,  clipped to ±proj_clip

So ``W_ih, W_hh = split_xh_kernel(kernel, D)`` with gates reordered i, j, f, o -> i, f, g, o;
``b_ih = bias`` and ``b_hh = 0`` (TF1 has one bias; only the sum enters the equations, and export
writes ``b_ih + b_hh``); ``w_ci, w_cf, w_co = w_i_diag, w_f_diag, w_o_diag``; ``W_hr = projection/kernel.T``.
``forget_bias``, ``cell_clip`` and ``proj_clip`` are not stored in TF1 either: they are options of
the cell, given here as arguments. Mind the defaults: TF1 ``forget_bias=1.0``, rnnkit's 0.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ConversionError, ModelFileError, ShapeError
from ..layers.recurrent import LSTM, Recurrent
from .layouts import (
    LAYOUTS,
    assign_params,
    biases_from,
    biases_to,
    from_canonical,
    merge_xh_kernel,
    split_xh_kernel,
    to_canonical,
    transpose,
)

DEFAULT_SCOPE = "rnn/lstm_cell"  # dynamic_rnn's variable scope for one LSTMCell
PEEPHOLES = dict(zip(LAYOUTS["tf1"].peepholes, LAYOUTS["rnnkit"].peepholes))  # w_i_diag -> w_ci, ...
PROJECTION = "projection/kernel"


def _find_scope(names: list[str]) -> str:
    """The one scope holding a ``kernel`` (not a projection kernel); ConversionError if there are none or several."""
    scopes = sorted({n[: -len("kernel")].rstrip("/") for n in names
                     if (n == "kernel" or n.endswith("/kernel")) and not n.endswith(PROJECTION)})
    if len(scopes) != 1:
        raise ConversionError(f"found {len(scopes)} LSTMCell scopes with a 'kernel' ({scopes}); "
                              "pass scope= to pick one (e.g. scope='rnn/lstm_cell')")
    return scopes[0]


def from_tf1_lstm(
    variables: Mapping[str, np.ndarray],
    *,
    forget_bias: float = 1.0,
    cell_clip: float | None = None,
    proj_clip: float | None = None,
    scope: str | None = None,
) -> LSTM:
    """An rnnkit :class:`LSTM` layer (one layer, forward) from a TF1 LSTMCell's variables.

    ``variables``: ``{TF name: array}`` (a ``:0`` suffix is ignored), e.g. from :func:`load_tf1_checkpoint`
    or ``{v.name: v.numpy() for v in cell.variables}``; names outside ``scope`` and optimizer slots are
    ignored. ``scope`` defaults to the only one holding a ``kernel``. ``forget_bias`` (TF1 default 1.0),
    ``cell_clip`` and ``proj_clip`` are the cell's options, which TF1 does not store: pass the ones the
    cell was built with. Peepholes and the projection are read when present.
    """
    variables = {name.removesuffix(":0"): np.asarray(value) for name, value in variables.items()}
    scope = _find_scope(list(variables)) if scope is None else scope.strip("/")
    prefix = f"{scope}/" if scope else ""
    own = {name[len(prefix):]: value for name, value in variables.items() if name.startswith(prefix)}
    where = f"TF1 LSTMCell {scope!r}"
    if "kernel" not in own or "bias" not in own:
        raise ConversionError(f"{where}: needs '{prefix}kernel' and '{prefix}bias'; found {sorted(own) or 'nothing'} "
                              f"under the scope (names: {sorted(variables)[:8]}...)")
    kernel, bias = own["kernel"], own["bias"]
    diags = [name for name in PEEPHOLES if name in own]
    if diags and len(diags) != len(PEEPHOLES):
        raise ConversionError(f"{where}: peepholes need all of {list(PEEPHOLES)}, found only {diags}")
    if kernel.ndim != 2 or bias.ndim != 1 or bias.shape[0] % 4 or kernel.shape[1] != bias.shape[0]:
        raise ShapeError(f"{where}: kernel must be (D+R, 4H) and bias (4H,) with the same 4H, got {kernel.shape} and {bias.shape}")
    H = bias.shape[0] // 4
    P = own[PROJECTION].shape[1] if PROJECTION in own else 0
    D = kernel.shape[0] - (P or H)
    if D < 1 or (P and own[PROJECTION].shape != (H, P)):
        raise ShapeError(f"{where}: kernel {kernel.shape} must have D + {P or H} rows (R = {'P' if P else 'H'}) and "
                         f"projection/kernel shape (H={H}, P); got projection {own.get(PROJECTION, np.empty(0)).shape}")
    layer = LSTM(D, H, proj_size=P, peepholes=bool(diags), forget_bias=forget_bias, cell_clip=cell_clip,
                 proj_clip=proj_clip, dtype=kernel.dtype, seed=0)
    W_ih, W_hh = split_xh_kernel(kernel, D)
    b_ih, b_hh = biases_from("single", bias, 4 * H)
    params = {name: to_canonical(value, "tf1", "lstm") for name, value in
              [("W_ih", W_ih), ("W_hh", W_hh), ("b_ih", b_ih), ("b_hh", b_hh)]}
    params.update({PEEPHOLES[name]: own[name] for name in diags})
    if P:
        params["W_hr"] = transpose(own[PROJECTION])
    assign_params(layer.params, {f"l0.{name}": value for name, value in params.items()}, where)
    return layer


def to_tf1_lstm(layer: LSTM, *, scope: str = DEFAULT_SCOPE) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A one-layer, forward rnnkit LSTM -> ``(variables, options)`` for a TF1 LSTMCell.

    ``variables``: ``{f"{scope}/kernel": ..., f"{scope}/bias": ..., ...}`` (bias = ``b_ih + b_hh``);
    ``options``: the ``LSTMCell`` keyword arguments that reproduce the layer (``num_units``,
    ``use_peepholes``, ``forget_bias``, ``cell_clip``, ``num_proj``, ``proj_clip``). Build
    ``LSTMCell(**options)``, run it once to create its variables, then assign these by name.
    """
    if not isinstance(layer, Recurrent) or layer.cell != "lstm":
        raise ConversionError(f"to_tf1_lstm takes an rnnkit LSTM layer, got {type(layer).__name__}")
    if layer.num_layers != 1 or layer.bidirectional:
        raise ConversionError(f"to_tf1_lstm exports one TF1 LSTMCell: the layer has num_layers={layer.num_layers}, "
                              f"bidirectional={layer.bidirectional}; split it into one-layer forward LSTMs")
    config = layer.get_config()
    p = {name.removeprefix("l0."): value for name, value in layer.params.items()}
    tf1_order = {name: from_canonical(p[name], "tf1", "lstm") for name in ("W_ih", "W_hh", "b_ih", "b_hh")}
    variables = {"kernel": merge_xh_kernel(tf1_order["W_ih"], tf1_order["W_hh"]),
                 "bias": biases_to("single", tf1_order["b_ih"], tf1_order["b_hh"])}
    if config["peepholes"]:
        variables.update({tf_name: p[name].copy() for tf_name, name in PEEPHOLES.items()})
    if config["proj_size"]:
        variables[PROJECTION] = transpose(p["W_hr"])
    options = {"num_units": layer.hidden_size, "use_peepholes": config["peepholes"], "forget_bias": config["forget_bias"],
               "cell_clip": config["cell_clip"], "num_proj": config["proj_size"] or None, "proj_clip": config["proj_clip"]}
    return {f"{scope.strip('/')}/{name}": value for name, value in variables.items()}, options


def load_tf1_checkpoint(path_prefix: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint (``Saver.save`` prefix, e.g. ``"model.ckpt-1000"``) as ``{name: array}``.

    Uses ``tf.train.load_checkpoint``; TensorFlow is imported here, and only here.
    """
    try:
        import tensorflow as tf
    except ImportError:
        raise ConfigError("reading TF checkpoints needs TensorFlow: pip install rnnkit[tf]") from None
    try:
        reader = tf.train.load_checkpoint(str(path_prefix))
    except (ValueError, tf.errors.OpError) as err:
        raise ModelFileError(f"{path_prefix}: not a readable TF checkpoint prefix ({type(err).__name__}: {err}); "
                             "pass the prefix Saver.save returned, without .index/.data suffixes") from err
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
