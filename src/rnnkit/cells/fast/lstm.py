"""LSTM cell, fast engine: the math of ``rnnkit.cells.lstm`` (the readable reference), compiled.

Same functions, signatures, checks and results (to rounding) as the reference. Arrays are
batch-major like the reference's inputs and outputs (``a_t (B, 4H)``, ``h_t (B, R)``, ``c_t (B, H)``),
so nothing is transposed. The whole time loop is one compiled function; its per-step products
multiply by weights packed once per call (``_kernel.pack``, ``_kernel.times_packed``)::

    forward:  a_t = x_t W_ih^T + h̃_{t-1} W_hh^T -> _cell_forward: i, f, g, o, c_t, tanh(c_t), m_t
              [h_raw = m_t W_hr^T] -> _emit: clip, length blend, y_t
    backward: _dh_new: dL/dh_raw -> [dm = dh_raw W_hr] -> _cell_backward: da_t, dc_{t-1}
              -> rec = da_t W_hh [-> add_step_gradients: dx_t, dW_ih, dW_hh, db]

Rows of a batch never meet inside the loop, so ``_blas.run_split`` runs one loop per block of rows,
one block per BLAS thread, in parallel. The input projection x_t W_ih^T is a product per step inside the
loop, with few features one product on [x_t, h̃_{t-1}] whose two parts stay apart in memory
(``_kernel.times_packed_pair``); in training a W_ih larger than ``STEPWISE_PROJECTION_MAX_BYTES``, which a
step's product would read again every step, gets one GEMM over all T·B rows before the loop. When the weight
gradients fit in the cache, the backward loop computes ``dx_t`` and adds each step's x_t^T da_t, h̃_{t-1}^T da_t
and Σ_b da_t to dW_ih, dW_hh and db while ``da_t`` is in the cache (``_gradients``): no (T, B, 4H) array ``da``
is written or read back (a training step at (B, T, D, H) = (512, 50, 1, 64): 27.5 → 24.4 ms on one core,
(64, 200, 8, 16): 3.28 → 2.76). Larger weights get them as single GEMMs over all T·B rows after the loop
(``_blas.matmul``). ``infer`` keeps one step of the gates and two of the state (alternating)
instead of all of them. On two threads or more, a forward with weights beyond ``UNIT_SPLIT_MIN_BYTES`` splits the
units instead of the rows (``_run_unit_parts``): each thread computes every row of its share of the units and reads
only their weights, and the threads wait for each other's part of h_{t-1} once per step.

Each kernel loop writes one array (LLVM then vectorises it along the units). For float32 with H (and
R, for ``_dh_new``) a multiple of 16 up to ``LANES_MAX_H``, on blocks of ``LANES_MIN_ROWS`` rows or more,
the time loops replace ``_cell_forward``, ``_cell_backward`` and ``_dh_new`` by versions that run each
row's units as whole 16-lane vectors written out as vector IR (``_cell_forward_lanes`` etc., with
``_forward_lanes``, ``_backward_lanes``, ``_dh_new_lanes`` and ``_lanes.Lanes``): at such small H,
LLVM's per-row loop set-up cost more than the math (a training step at (64, 200, 8, 16) on one core
3.05 → 2.46 ms; forward cell 2.34 → 1.58 ns per unit, backward cell 2.8 → 1.1). Options that are off
become neutral values (peepholes 0, clips ±inf, rec_mask 1, lengths T), so each kernel is compiled
once per dtype. The equations are in ``rnnkit.cells.lstm``.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ..._validation import check_float_array
from ...errors import ShapeError
from .._common import check_sequence
from ..lstm import (
    LSTMConfig,
    State,
    _check_params,
    _check_state,
    init_params,
    param_shapes,
    zero_state,
)
from ._blas import blas_threads, matmul, run_split, run_together, split_rows
from ._gradients import add_step_gradients, after_loop, in_loop, parts, totals
from ._jit import (
    aligned_copy,
    aligned_empty,
    aligned_full,
    dy_steps,
    jit,
    lengths_or_full,
    masked_state,
    output_sequence,
    publish_steps,
    rows_contiguous,
    same_memory,
    sigmoid,
    step_counters,
    tanh,
    wait_for_steps,
    weights_times_rows,
    wide_vectors,
)
from ._kernel import no_panels, pack, times_packed, times_packed_pair
from ._lanes import LANES, Lanes

__all__ = ["LSTMConfig", "State", "advance", "backward", "forward", "infer", "init_params", "param_shapes", "step", "zero_state"]


LANES_MAX_H = 48  # hidden sizes (multiples of LANES) up to which float32 cell math runs on whole vectors (``_lanes``);
# from 64 on LLVM's own loops are as fast (measured per unit of the forward: H = 16 2.34 -> 1.58 ns, 32 1.97 -> 1.59,
# 48 1.68 -> 1.63, 64 1.53 -> 1.58, 256 1.52 -> 1.69)
LANES_MIN_ROWS = 8  # rows per block from which it does: the time loops call it as a function, which at a row or two
# costs more than it saves (inference loop at (B, T, D, H) = (1, 50, 1, 16): 17.8 µs without, 22.8 with)


@intrinsic
def _forward_lanes(typingctx, a, a0, H, bias, c_prev, c0, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m, j, valid):
    """Units j..j+15 of one row of ``_cell_forward`` (float32): the row's pre-activations at ``a0 + gH + j`` of a's data
    (gate g of [i, f, g, o]), its (B, H) rows at ``c0 + j``; ``valid``: t < length (else c_t = c_{t-1})."""
    sig = types.void(a, types.intp, types.intp, bias, c_prev, types.intp, w_ci, w_cf, w_co, types.float32, c_raw, c_out,
                     tanh_c, m, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        a_, a0_, H_, bias_, c_prev_, c0_, w_ci_, w_cf_, w_co_, clip_, c_raw_, c_out_, tanh_c_, m_, j_, valid_ = args
        kinds = dict(zip(("a", "bias", "c_prev", "w_ci", "w_cf", "w_co", "c_raw", "c_out", "tanh_c", "m"),
                         (signature.args[k] for k in (0, 3, 4, 6, 7, 8, 10, 11, 12, 13))))
        v = Lanes(context, builder)
        unit = builder.add(c0_, j_)  # the row's unit j in the (B, H) arrays

        def at(name, array, offset):
            return v.address(kinds[name], array, offset)

        gate = [at("a", a_, builder.add(a0_, builder.add(builder.mul(ir.Constant(ir.IntType(64), n), H_), j_)))
                for n in range(4)]
        bias_at = [at("bias", bias_, builder.add(builder.mul(ir.Constant(ir.IntType(64), n), H_), j_)) for n in range(4)]
        a_i, a_f, a_g, a_o = (v.add(v.load(gate[n]), v.load(bias_at[n])) for n in range(4))
        c_prev_j = v.load(at("c_prev", c_prev_, unit))
        i = v.sigmoid(v.fma(v.load(at("w_ci", w_ci_, j_)), c_prev_j, a_i))
        f = v.sigmoid(v.fma(v.load(at("w_cf", w_cf_, j_)), c_prev_j, a_f))
        g = v.tanh(a_g)
        c_raw_j = v.fma(f, c_prev_j, v.mul(i, g))  # c_t = f ⊙ c_{t-1} + i ⊙ g
        clip = v.splat(clip_)
        c = v.clip(c_raw_j, v.sub(v.constant(0), clip), clip)
        tanh_c_j = v.tanh(c)
        o = v.sigmoid(v.fma(v.load(at("w_co", w_co_, j_)), c, a_o))
        for value, where in ((i, gate[0]), (f, gate[1]), (g, gate[2]), (o, gate[3]), (c_raw_j, at("c_raw", c_raw_, unit)),
                             (builder.select(valid_, c, c_prev_j), at("c_out", c_out_, unit)),
                             (tanh_c_j, at("tanh_c", tanh_c_, unit)), (v.mul(o, tanh_c_j), at("m", m_, unit))):
            v.store(value, where)
        return context.get_dummy_value()

    return sig, codegen


@jit
def _unit_strides(a, c, w_ci, w_cf, w_co):
    """Whether the last axis of each array is contiguous (the vector loads and stores assume it)."""
    item = a.itemsize
    return a.strides[-1] == item and c.strides[-1] == item and w_ci.strides[0] == item and w_cf.strides[0] == item \
        and w_co.strides[0] == item


def _cell_forward_lanes(b0, b1, t, lengths, a, bias, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m):
    """Rows b0..b1 of ``_cell_forward`` on whole vectors, if a is float32, H a multiple of ``LANES`` up to
    ``LANES_MAX_H`` and the block has ``LANES_MIN_ROWS`` rows or more; returns whether it ran (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(_cell_forward_lanes, inline="never")
def _cell_forward_lanes_overload(b0, b1, t, lengths, a, bias, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c,
                                 m):
    if a.dtype != types.float32:
        return lambda b0, b1, t, lengths, a, bias, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m: False

    def rows(b0, b1, t, lengths, a, bias, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m):
        H = c_prev.shape[1]
        if b1 - b0 < LANES_MIN_ROWS or H % LANES or H > LANES_MAX_H or bias.strides[0] != a.itemsize \
                or not _unit_strides(a, c_prev, w_ci, w_cf, w_co) \
                or not c_raw.strides == c_out.strides == tanh_c.strides == m.strides == c_prev.strides:
            return False
        lda, ldc = a.strides[0] // a.itemsize, c_prev.strides[0] // c_prev.itemsize
        for b in range(b0, b1):
            for j in range(0, H, LANES):
                _forward_lanes(a, b * lda, H, bias, c_prev, b * ldc, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c,
                               m, j, t < lengths[b])
        return True

    return rows


@jit
def _cell_forward(b0, b1, t, lengths, a, bias, alpha, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m):
    """Rows b0..b1 of step t: a = x_t W_ih^T + h̃_{t-1} W_hh^T, plus bias, (B, 4H) becomes [i, f, g, o] in place;
    c_raw, carried c, tanh(c), m (B, H).

    ``alpha`` (4H,) or empty: when given (no peepholes, small H), the four gates are one loop over the
    row's 4H columns, σ(a) = ½ tanh(½a) + ½ and tanh(a) both as α tanh(α a) + 1 - α with α = ½ or 1
    per column (``_joint_alpha``): one loop of 4H instead of four of H, which at H = 16 runs the gate
    math in 1.8-2.0 ns per unit instead of 2.8-2.9 (at H = 8: 2.8 instead of 6.0).
    """
    wide_vectors()
    H = c_prev.shape[1]
    joint, one = alpha.shape[0] > 0, a.dtype.type(1)
    for b in range(b0, b1):
        if joint:
            for n in range(4 * H):
                a[b, n] = alpha[n] * tanh(alpha[n] * (a[b, n] + bias[n])) + (one - alpha[n])
        else:
            for j in range(H):
                a[b, j] = sigmoid(a[b, j] + bias[j] + w_ci[j] * c_prev[b, j])
            for j in range(H):
                a[b, H + j] = sigmoid(a[b, H + j] + bias[H + j] + w_cf[j] * c_prev[b, j])
            for j in range(H):
                a[b, 2 * H + j] = tanh(a[b, 2 * H + j] + bias[2 * H + j])
        for j in range(H):  # c_t = f ⊙ c_{t-1} + i ⊙ g
            c_raw[b, j] = a[b, H + j] * c_prev[b, j] + a[b, j] * a[b, 2 * H + j]
        if t < lengths[b]:
            for j in range(H):
                c_out[b, j] = min(max(c_raw[b, j], -cell_clip), cell_clip)
        else:
            for j in range(H):
                c_out[b, j] = c_prev[b, j]
        for j in range(H):
            tanh_c[b, j] = tanh(min(max(c_raw[b, j], -cell_clip), cell_clip))
        if not joint:
            for j in range(H):  # o = σ(a_o + w_co ⊙ c_t)
                c = min(max(c_raw[b, j], -cell_clip), cell_clip)
                a[b, 3 * H + j] = sigmoid(a[b, 3 * H + j] + bias[3 * H + j] + w_co[j] * c)
        for j in range(H):
            m[b, j] = a[b, 3 * H + j] * tanh_c[b, j]  # m_t = o ⊙ tanh(c_t)


@jit
def _cell_forward_step(b0, b1, t, lengths, a, bias, alpha, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m):
    """``_cell_forward`` of rows b0..b1, on whole vectors (``_cell_forward_lanes``) where they fit: the time loops'
    cell math."""
    if b1 - b0 < LANES_MIN_ROWS or not _cell_forward_lanes(b0, b1, t, lengths, a, bias, c_prev, w_ci, w_cf, w_co,
                                                             cell_clip, c_raw, c_out, tanh_c, m):
        _cell_forward(b0, b1, t, lengths, a, bias, alpha, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_out, tanh_c, m)


JOINT_GATES_MAX_H = 64  # hidden sizes up to which the gate math is one loop of 4H per row (measured per unit:
# H = 64 1.70 -> 1.57 ns, 128 1.53 -> 1.51, 256 1.44 -> 1.58: longer rows do better with a loop per gate)


def _joint_alpha(cfg: LSTMConfig, dtype: np.dtype) -> np.ndarray:
    """α per gate column for ``_cell_forward``'s one loop over [i, f, g, o]: ½ (σ) or 1 (tanh on g), (4H,); empty
    (a loop per gate) with peepholes, whose terms need c_t before o, or above ``JOINT_GATES_MAX_H``."""
    H = cfg.hidden_size
    if cfg.peepholes or H > JOINT_GATES_MAX_H:
        return np.empty(0, dtype)
    alpha = np.full(4 * H, 0.5, dtype)
    alpha[2 * H:3 * H] = 1.0
    return alpha


@jit
def _emit(b0, b1, t, lengths, h_raw, proj_clip, h_prev, h_out, y_t):
    """Rows b0..b1: y_t = v_t clip(h_raw) (B, R); carried h_t = y_t on valid rows, h_{t-1} on padded ones."""
    wide_vectors()
    R = h_prev.shape[1]
    zero = h_raw.dtype.type(0)
    distinct = not same_memory(y_t, h_out)  # y_t is h_t itself: a training forward of full sequences
    for b in range(b0, b1):
        if t < lengths[b]:
            for j in range(R):
                y_t[b, j] = min(max(h_raw[b, j], -proj_clip), proj_clip)
            if distinct:
                for j in range(R):
                    h_out[b, j] = y_t[b, j]
        else:
            for j in range(R):
                y_t[b, j] = zero
            for j in range(R):
                h_out[b, j] = h_prev[b, j]


@intrinsic
def _dh_new_lanes(typingctx, r0, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out, valid):
    """Units r0..r0+15 (element offsets, row included) of ``_dh_new`` on one row (float32)."""
    sig = types.void(types.intp, rec, rec_mask, dh, dy_t, h_raw, types.float32, out, types.boolean)

    def codegen(context, builder, signature, args):
        r0_, rec_, rec_mask_, dh_, dy_, h_raw_, clip_, out_, valid_ = args
        v = Lanes(context, builder)
        rec_at, mask_at, dh_at, dy_at, h_raw_at, out_at = (
            v.address(signature.args[k], array, r0_) for k, array in ((1, rec_), (2, rec_mask_), (3, dh_), (4, dy_),
                                                                    (5, h_raw_), (7, out_)))
        zero = v.constant(0)
        dh_t = v.fma(v.load(rec_at), v.load(mask_at), v.load(dh_at))
        inside = builder.fcmp_ordered("<=", v.abs(v.load(h_raw_at)), v.splat(clip_))
        v.store(builder.select(valid_, builder.select(inside, v.add(dh_t, v.load(dy_at)), zero), zero), out_at)
        v.store(builder.select(valid_, zero, dh_t), dh_at)
        return context.get_dummy_value()

    return sig, codegen


def _dh_new_rows_lanes(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out):
    """Rows b0..b1 of ``_dh_new`` on whole vectors, if float32 with R a multiple of ``LANES`` up to ``LANES_MAX_H``;
    returns whether it ran (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(_dh_new_rows_lanes, inline="never")
def _dh_new_rows_lanes_overload(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out):
    if dh.dtype != types.float32:
        return lambda b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out: False

    def rows(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out):
        R = dh.shape[1]
        if b1 - b0 < LANES_MIN_ROWS or R % LANES or R > LANES_MAX_H or dh.strides[1] != dh.itemsize \
                or not rec.strides == rec_mask.strides == dh.strides == dy_t.strides == h_raw.strides == out.strides:
            return False
        ld = dh.strides[0] // dh.itemsize
        for b in range(b0, b1):
            for j in range(0, R, LANES):
                _dh_new_lanes(b * ld + j, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out, t < lengths[b])
        return True

    return rows


@jit
def _dh_new(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw, proj_clip, out):
    """Rows b0..b1: dh_t = rec ⊙ rec_mask + dh, then out = dL/dh_raw = v (dh_t + dy_t) [|h_raw| <= proj_clip] (B, R).

    ``dh`` enters holding the part of dh_t that the step after carried back, and leaves holding
    the part this step carries back, (1 - v_t) dh_t.
    """
    wide_vectors()
    R = dh.shape[1]
    zero = dh.dtype.type(0)
    for b in range(b0, b1):
        for j in range(R):
            dh[b, j] += rec[b, j] * rec_mask[b, j]  # through h̃_{t-1} W_hh^T, h̃ = h ⊙ rec_mask
        if t < lengths[b]:  # through y_t = v h_new, h_t = h_{t-1} + v (h_new - h_{t-1}), clip(W_hr m)
            for j in range(R):
                out[b, j] = dh[b, j] + dy_t[b, j] if abs(h_raw[b, j]) <= proj_clip else zero
            for j in range(R):
                dh[b, j] = zero
        else:
            for j in range(R):
                out[b, j] = zero


@intrinsic
def _backward_lanes(typingctx, gates, g0, H, dm, c0, dc, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, da, j, valid):
    """Units j..j+15 of one row of ``_cell_backward`` (float32): the row's gates and da at ``g0 + gH + j`` of their
    data, its (B, H) rows at ``c0 + j``; a row past its length (not ``valid``) gets da = 0 and keeps dc."""
    sig = types.void(gates, types.intp, types.intp, dm, types.intp, dc, c_prev, c_t, c_raw, w_ci, w_cf, w_co,
                     types.float32, da, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        gates_, g0_, H_, dm_, c0_, dc_, c_prev_, c_t_, c_raw_, w_ci_, w_cf_, w_co_, clip_, da_, j_, valid_ = args
        kinds = dict(zip(("gates", "dm", "dc", "c_prev", "c_t", "c_raw", "w_ci", "w_cf", "w_co", "da"),
                         (signature.args[k] for k in (0, 3, 5, 6, 7, 8, 9, 10, 11, 13))))
        v = Lanes(context, builder)
        unit = builder.add(c0_, j_)

        def at(name, array, offset):
            return v.address(kinds[name], array, offset)

        def gate(name, array, n):
            return at(name, array, builder.add(g0_, builder.add(builder.mul(ir.Constant(ir.IntType(64), n), H_), j_)))

        i, f, g, o = (v.load(gate("gates", gates_, n)) for n in range(4))
        dm_j, dc_at = v.load(at("dm", dm_, unit)), at("dc", dc_, unit)
        dc_j = v.load(dc_at)
        one, zero = v.constant(1), v.constant(0)
        th = v.tanh(v.load(at("c_t", c_t_, unit)))
        da_o = v.mul(v.mul(v.mul(dm_j, th), o), v.sub(one, o))  # through m = o tanh(c), o = σ(a_o)
        d = v.fma(da_o, v.load(at("w_co", w_co_, j_)), v.fma(v.mul(dm_j, o), v.sub(one, v.mul(th, th)), dc_j))
        inside = builder.fcmp_ordered("<=", v.abs(v.load(at("c_raw", c_raw_, unit))), v.splat(clip_))
        d = builder.select(inside, d, zero)  # dL/dc_t: zero where the clip bound
        da_i = v.mul(v.mul(v.mul(d, g), i), v.sub(one, i))
        da_f = v.mul(v.mul(v.mul(d, v.load(at("c_prev", c_prev_, unit))), f), v.sub(one, f))
        da_g = v.mul(v.mul(d, i), v.sub(one, v.mul(g, g)))
        dc_prev = v.fma(da_f, v.load(at("w_cf", w_cf_, j_)), v.fma(da_i, v.load(at("w_ci", w_ci_, j_)), v.mul(d, f)))
        for n, value in enumerate((da_i, da_f, da_g, da_o)):
            v.store(builder.select(valid_, value, zero), gate("da", da_, n))
        v.store(builder.select(valid_, dc_prev, dc_j), dc_at)
        return context.get_dummy_value()

    return sig, codegen


def _cell_backward_lanes(b0, b1, t, lengths, dm, dc, gates, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, da):
    """Rows b0..b1 of ``_cell_backward`` on whole vectors, under the conditions of ``_cell_forward_lanes``; returns
    whether it ran (compiled only)."""
    raise NotImplementedError("compiled only")


@overload(_cell_backward_lanes, inline="never")
def _cell_backward_lanes_overload(b0, b1, t, lengths, dm, dc, gates, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip,
                                  da):
    if gates.dtype != types.float32:
        return lambda b0, b1, t, lengths, dm, dc, gates, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, da: False

    def rows(b0, b1, t, lengths, dm, dc, gates, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, da):
        H = dc.shape[1]
        if b1 - b0 < LANES_MIN_ROWS or H % LANES or H > LANES_MAX_H or not _unit_strides(gates, dc, w_ci, w_cf, w_co) \
                or gates.strides != da.strides or not dm.strides == c_prev.strides == c_t.strides == c_raw.strides == dc.strides:
            return False
        ldg, ldc = gates.strides[0] // gates.itemsize, dc.strides[0] // dc.itemsize
        for b in range(b0, b1):
            for j in range(0, H, LANES):
                _backward_lanes(gates, b * ldg, H, dm, b * ldc, dc, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, da,
                                j, t < lengths[b])
        return True

    return rows


@jit
def _cell_backward(b0, b1, t, lengths, dm, dc, gates, c_prev, c_t, c_raw, w_ci, w_cf, w_co, cell_clip, tanh_c, da):
    """Rows b0..b1, through m = o tanh(c), the clip, c = f c_{t-1} + i g and the gates: dm, dc_t (B, H) -> da_t (B, 4H), dc_{t-1}.

    tanh(c_t) is computed again here (into the scratch ``tanh_c`` (H,)) rather than kept from the
    forward: one tanh per unit costs less than a (T, B, H) array. Padded rows (t >= lengths[b]) get
    da = 0 and pass dc on unchanged.
    """
    wide_vectors()
    H = dc.shape[1]
    one, zero = dc.dtype.type(1), dc.dtype.type(0)
    for b in range(b0, b1):
        if not t < lengths[b]:
            for n in range(4 * H):
                da[b, n] = zero
            continue
        for j in range(H):
            tanh_c[j] = tanh(c_t[b, j])
        for j in range(H):  # through m = o tanh(c), o = σ(a_o)
            o = gates[b, 3 * H + j]
            da[b, 3 * H + j] = dm[b, j] * tanh_c[j] * o * (one - o)
        for j in range(H):  # dL/dc_t: through m = o tanh(c), a_o += w_co ⊙ c_t, clip(c)
            o, th = gates[b, 3 * H + j], tanh_c[j]
            d = dc[b, j] + dm[b, j] * o * (one - th * th) + da[b, 3 * H + j] * w_co[j]
            dc[b, j] = d if abs(c_raw[b, j]) <= cell_clip else zero
        for j in range(H):  # through c = f c_{t-1} + i g, i = σ(a_i)
            i = gates[b, j]
            da[b, j] = dc[b, j] * gates[b, 2 * H + j] * i * (one - i)
        for j in range(H):  # through f = σ(a_f)
            f = gates[b, H + j]
            da[b, H + j] = dc[b, j] * c_prev[b, j] * f * (one - f)
        for j in range(H):  # through g = tanh(a_g)
            g = gates[b, 2 * H + j]
            da[b, 2 * H + j] = dc[b, j] * gates[b, j] * (one - g * g)
        for j in range(H):  # dc_{t-1}: through f ⊙ c_{t-1} and the peepholes on c_{t-1}
            dc[b, j] = dc[b, j] * gates[b, H + j] + da[b, j] * w_ci[j] + da[b, H + j] * w_cf[j]


STEPWISE_PROJECTION_MAX_D = 16  # input sizes up to which a step's products are one, [x_t, h̃_{t-1}] [W_ih, W_hh]^T
# (times_packed_pair); above it two products per step, the second added on (one product on [x_t, h̃_{t-1}] there:
# (32, 65) and (32, 128) times 512 columns 29.5-31.2 -> 32.3-33.4 µs)
STEPWISE_PROJECTION_MAX_BYTES = 1 << 20  # sizes of W_ih up to which a training forward computes x_t W_ih^T as a
# product per step; above it as one GEMM over all T·B rows before the loop, into the (T, B, 4H) gates that
# training keeps anyway (a step's product reads W_ih again every step). Measured, old and new code alternated:
# 133, 266 and 532 KB ((32, 100, 65, 128), (64, 100, 65, 256), (32, 100, 65, 512), one core) per step, 18.9
# against 19.9 ms, 123 against 129, 203 against 208; 4 MB ((64, 100, 256, 1024)) one GEMM, 1.78-1.88 against
# 1.88-1.95 s on one core and 862 against 896 ms on two. Inference always projects step by step: its memory
# stays independent of T (one GEMM first measured 7-9 % faster on one core at 4 MB, 5 % slower on two, and
# costs T·B·4H floats: 105 MB there)


@jit
def _forward_rows(b0, b1, x, P_xh, P_ih, bias, alpha, P_hh, P_hr, rec_mask, masked, lengths, w_ci, w_cf, w_co,
                  cell_clip, proj_clip, gates, hs, cs, c_raw, h_raw, tanh_c, m, y, xh):
    """The forward time loop over rows b0..b1 (see the module docstring).

    A step's pre-activations x_t W_ih^T + h̃_{t-1} W_hh^T come from one of three sources, by the packed
    weights that have panels (the others have none):

    - ``P_xh``, [W_ih, W_hh]^T packed (few input features): one product on [x_t, h̃_{t-1}], the two not
      joined in memory (``times_packed_pair``);
    - ``P_ih`` and ``P_hh``, W_ih^T and W_hh^T packed (more input features): two products, the second added
      on;
    - ``P_hh`` alone (training with a large W_ih): ``gates`` already hold x_t W_ih^T for every step (one GEMM
      before the loop), and h̃_{t-1} W_hh^T is added on.

    h̃_{t-1} is h_{t-1} itself, or h_{t-1} ⊙ rec_mask in the scratch ``xh (B, R)``.

    ``gates`` hold step t at ``gates[t % len(gates)]``, and so do ``hs``, ``cs`` (h_t, c_t), ``c_raw``,
    ``h_raw`` and ``m``: a training forward keeps every step for the backward (T, or T + 1 states), an
    inference forward one step (two states, alternating), and ``c_raw``, ``h_raw`` have one step unless
    a clip needs them kept. The cell adds ``bias`` (``alpha``: see ``_cell_forward``). ``P_hr``, W_hr^T packed, has no panel without
    projection (and ``m`` is ``h_raw`` itself).
    """
    T = y.shape[0]
    for t in range(T):
        a, h, c = gates[t % len(gates)], hs[t % len(hs)], cs[t % len(cs)]
        if P_xh.shape[0] > 0:
            times_packed_pair(b0, b1, x[t], masked_state(b0, b1, h, masked, rec_mask, xh), P_xh, a, 0.0)
        else:
            if P_ih.shape[0] > 0:
                times_packed(b0, b1, x[t], P_ih, a, 0.0)
            times_packed(b0, b1, masked_state(b0, b1, h, masked, rec_mask, xh), P_hh, a, 1.0)  # + h̃_{t-1} W_hh^T
        h_raw_t, c_raw_t, m_t = h_raw[t % len(h_raw)], c_raw[t % len(c_raw)], m[t % len(m)]
        c_t = cs[(t + 1) % len(cs)]
        _cell_forward_step(b0, b1, t, lengths, a, bias, alpha, c, w_ci, w_cf, w_co, cell_clip, c_raw_t, c_t, tanh_c[0], m_t)
        if P_hr.shape[0] > 0:
            times_packed(b0, b1, m_t, P_hr, h_raw_t, 0.0)
        _emit(b0, b1, t, lengths, h_raw_t, proj_clip, h, hs[(t + 1) % len(hs)], y[t])


@jit
def _backward_rows(b0, b1, lengths, gates, cs, c_raw, h_raw, P_hh, P_hr, rec_mask, w_ci, w_cf, w_co,
                   cell_clip, proj_clip, dy, dh, dc, dh_raw, dm, rec, da, x, hs, masked, h_in, P_ih, dx, starts,
                   dW_ih_parts, dW_hh_parts, db_parts):
    """The backward time loop over rows b0..b1; ``P_hh``, ``P_hr``: W_hh and W_hr packed (``P_hr`` has no
    panel, and ``dm`` is unused, without projection).

    ``dh``, ``dc`` enter as the gradient of the final state and leave as that of the initial one. When
    ``P_ih`` (W_ih packed) has panels, each step's ``dx[t]`` and its parts of the sums for dW_ih, dW_hh and db
    are computed as soon as ``da_t`` is (``_gradients.add_step_gradients``, h̃_{t-1} into the scratch
    ``h_in``), and ``da`` may hold a single step (``da[t % len(da)]``); otherwise they are left to GEMMs on
    all of ``da`` after the loop.
    """
    T = gates.shape[0]
    projected = P_hr.shape[0] > 0
    tanh_c = np.empty(dc.shape[1], dc.dtype)
    for t in range(T - 1, -1, -1):
        dh_raw_t = dh_raw[min(t, len(dh_raw) - 1)]
        dy_t, h_raw_t = dy[min(t, len(dy) - 1)], h_raw[min(t, len(h_raw) - 1)]
        if b1 - b0 < LANES_MIN_ROWS or not _dh_new_rows_lanes(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw_t,
                                                              proj_clip, dh_raw_t):
            _dh_new(b0, b1, t, lengths, rec, rec_mask, dh, dy_t, h_raw_t, proj_clip, dh_raw_t)
        if projected:
            times_packed(b0, b1, dh_raw_t, P_hr, dm, 0.0)  # through h_raw = m W_hr^T
        da_t = da[t % len(da)]
        dm_t, c_raw_t = dm if projected else dh_raw_t, c_raw[min(t, len(c_raw) - 1)]
        if b1 - b0 < LANES_MIN_ROWS or not _cell_backward_lanes(b0, b1, t, lengths, dm_t, dc, gates[t], cs[t], cs[t + 1],
                                                                c_raw_t, w_ci, w_cf, w_co, cell_clip, da_t):
            _cell_backward(b0, b1, t, lengths, dm_t, dc, gates[t], cs[t], cs[t + 1], c_raw_t, w_ci, w_cf, w_co, cell_clip,
                           tanh_c, da_t)
        times_packed(b0, b1, da_t, P_hh, rec, 0.0)  # through a_t += h̃_{t-1} W_hh^T
        if P_ih.shape[0] > 0:  # the weight gradients' parts and dx_t, while da_t is in the cache
            add_step_gradients(b0, b1, starts, da_t, x[t], masked_state(b0, b1, hs[t], masked, rec_mask, h_in), P_ih,
                               dx[t], dW_ih_parts, dW_hh_parts, db_parts)
    for b in range(b0, b1):
        for j in range(dh.shape[1]):
            dh[b, j] += rec[b, j] * rec_mask[b, j]  # dh_0


@numba.njit(parallel=True, nogil=True, cache=True)
def _forward_blocks(edges, *args):
    """``_forward_rows`` on the row blocks [edges[k], edges[k + 1]) in parallel threads (``_blas.run_split``)."""
    for k in numba.prange(len(edges) - 1):
        _forward_rows(edges[k], edges[k + 1], *args)


@numba.njit(parallel=True, nogil=True, cache=True)
def _backward_blocks(edges, *args):
    """``_backward_rows`` on the row blocks [edges[k], edges[k + 1]) in parallel threads (``_blas.run_split``)."""
    for k in numba.prange(len(edges) - 1):
        _backward_rows(edges[k], edges[k + 1], *args)


def _packed_projection(p: dict[str, np.ndarray], cfg: LSTMConfig, trans: bool) -> np.ndarray:
    """W_hr^T (forward, ``trans``) or W_hr packed; no panel without projection."""
    if cfg.proj_size:
        return pack(p["W_hr"], trans)
    return no_panels(0, p["W_hh"].dtype)


def _options(p: dict[str, np.ndarray], cfg: LSTMConfig) -> tuple:
    """(w_ci, w_cf, w_co, cell_clip, proj_clip) with neutral values for what is off."""
    dtype, H = p["W_ih"].dtype, cfg.hidden_size
    peep = tuple(p[k] for k in ("w_ci", "w_cf", "w_co")) if cfg.peepholes else (np.zeros(H, dtype),) * 3
    clip = tuple(dtype.type(np.inf if c is None else c) for c in (cfg.cell_clip, cfg.proj_clip))
    return peep + clip


@jit
def _step(x_t, h_prev, c_prev, W_ih, W_hh, W_hr, b_ih, b_hh, forget_bias, w_ci, w_cf, w_co, cell_clip, proj_clip, c, h):
    """One step, compiled whole: a = b + x_t W_ih^T + h_{t-1} W_hh^T (B, 4H), then the cell; h (B, R) = clip(m W_hr^T) or m.

    ``b = b_ih + b_hh`` plus ``forget_bias`` on the f block. Dot products along the weights' rows: at
    batch 1 a BLAS call costs more than these products.
    """
    B, H = c_prev.shape
    a = np.zeros((B, 4 * H), c.dtype)  # the gates' pre-activations, then i, f, g, o
    c_raw, tanh_c, m = np.empty_like(c), np.empty_like(c), np.empty_like(c)
    bias = b_ih + b_hh
    bias[H:2 * H] += forget_bias
    weights_times_rows(W_ih, x_t, a.T)
    weights_times_rows(W_hh, h_prev, a.T)
    always = np.ones(B, np.int64)  # t = 0 < 1: every row is valid
    gate_loops = np.empty(0, c.dtype)  # a loop per gate (no α): B is small here
    _cell_forward(0, B, 0, always, a, bias, gate_loops, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c, tanh_c, m)
    h_raw = m
    if W_hr.shape[0] > 0:  # the projection
        h_raw = np.zeros(h.shape, h.dtype)
        weights_times_rows(W_hr, m, h_raw.T)
    _emit(0, B, 0, always, h_raw, proj_clip, h, h, h)  # every row valid: h_t = y_t = clip(h_raw), no h_{t-1} needed


def step(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State | None) -> tuple[np.ndarray, State]:
    """One step for streaming, no cache: ``x_t (B, D)``, ``state (h, c)`` or None -> ``(h_t, (h_t, c_t))``.

    One compiled call (a BLAS call costs more than these products at batch 1).
    """
    p = _check_params(p, cfg)
    x_t = check_float_array(x_t, "x_t", ndim=2, shape=(None, cfg.input_size), dtype=p["W_ih"].dtype)
    if x_t.shape[0] == 0:
        raise ShapeError(f"x_t must hold at least one sequence (shape (B, {cfg.input_size})), got {x_t.shape}")
    return advance(p, cfg, x_t, _check_state(state, x_t.shape[0], cfg, x_t.dtype, "state"))


def advance(p: dict[str, np.ndarray], cfg: LSTMConfig, x_t: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """``step`` on inputs already checked (no validation): one compiled call."""
    (h0, c0), B, H, R, dtype = state, x_t.shape[0], cfg.hidden_size, cfg.output_size, x_t.dtype
    W_hr = p["W_hr"] if cfg.proj_size else np.empty((0, H), dtype)
    c, h = np.empty((B, H), dtype), np.empty((B, R), dtype)
    x_t, h0, c0 = np.ascontiguousarray(x_t), np.ascontiguousarray(h0), np.ascontiguousarray(c0)
    _step(x_t, h0, c0, p["W_ih"], p["W_hh"], W_hr, p["b_ih"], p["b_hh"], dtype.type(cfg.forget_bias),
          *_options(p, cfg), c, h)  # contiguous inputs: one compiled version serves x[:, t] slices too
    return h, (h, c)


def forward(
    p: dict[str, np.ndarray],
    cfg: LSTMConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    rec_mask: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> tuple[np.ndarray, State, dict]:
    """Run the cell over ``x (T, B, D)``; return ``(y (T, B, R), (h_T, c_T), cache)`` (see the reference)."""
    return _checked_run(p, cfg, x, state0, lengths, rec_mask, keep=True, finite=check_finite)


def infer(
    p: dict[str, np.ndarray],
    cfg: LSTMConfig,
    x: np.ndarray,
    state0: State | None = None,
    lengths: np.ndarray | None = None,
    *,
    check_finite: bool = True,
) -> tuple[np.ndarray, State]:
    """``forward`` keeping nothing for a backward: ``(y (T, B, R), (h_T, c_T))`` (see the reference).

    The time loop keeps one step of gates and two of the state instead of all T, and projects the
    input step by step: its arrays stay in the cache, and nothing (T, B, 4H) is written.
    """
    y, state, _ = _checked_run(p, cfg, x, state0, lengths, None, keep=False, finite=check_finite)
    return y, state


def _checked_run(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, state0: State | None,
                 lengths: np.ndarray | None, rec_mask: np.ndarray | None, keep: bool,
                 finite: bool) -> tuple[np.ndarray, State, dict]:
    """``_run`` after the reference's checks of every argument (x's NaN/Inf scan only if ``finite``)."""
    p = _check_params(p, cfg)
    x = check_sequence(x, cfg.input_size, p["W_ih"].dtype, finite=finite)
    T, B, _ = x.shape
    h0, c0 = _check_state(state0, B, cfg, x.dtype, "state0")
    if rec_mask is not None:
        rec_mask = check_float_array(rec_mask, "rec_mask", shape=(B, cfg.output_size), dtype=x.dtype)
    return _run(p, cfg, rows_contiguous(x), h0, c0, lengths_or_full(lengths, B, T), rec_mask, keep)


def _run(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
         lengths: np.ndarray, rec_mask: np.ndarray | None, keep: bool) -> tuple[np.ndarray, State, dict]:
    """The forward of checked inputs: the time loops over row blocks, or over parts of the units
    (``_unit_parts``); ``keep``: keep every step for the backward (the cache), else one step (the cache is None)."""
    T, B, D = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    b = p["b_ih"] + p["b_hh"]
    b[H:2 * H] += cfg.forget_bias  # TF1: a constant on the forget pre-activation
    steps = T if keep else 1  # steps of the per-step arrays held at once
    hs, cs = aligned_empty((steps + 1, B, R), dtype), aligned_empty((steps + 1, B, H), dtype)  # carried h_0..T, c_0..T
    hs[0], cs[0] = h0, c0
    # c_t before its clip and the step's h before its clip: kept for every step only when a clip needs them
    c_raw = aligned_empty((steps if cfg.cell_clip is not None else 1, B, H), dtype)
    h_raw = aligned_empty((steps if cfg.proj_clip is not None else 1, B, R), dtype)
    tanh_c = aligned_empty((1, B, H), dtype)  # tanh(c_t): the backward computes it again
    y, y_out = output_sequence(hs, T, lengths, keep)
    m = aligned_empty((steps, B, H), dtype) if P else h_raw  # o ⊙ tanh(c), the projection's input
    mask = aligned_full((B, R), 1, dtype) if rec_mask is None else np.ascontiguousarray(rec_mask)
    parts = [] if rec_mask is not None else _unit_parts(cfg, x.shape, keep, dtype)
    if parts:
        gates = aligned_empty((T if keep else 0, B, 4 * H), dtype)
        _run_unit_parts(p, cfg, x, lengths, b, parts, gates, hs, cs, c_raw, y)
    else:
        gates = _run_row_blocks(p, cfg, x, lengths, rec_mask, keep, b, mask, hs, cs, c_raw, h_raw, tanh_c, m, y)
    state = (hs[T % len(hs)].copy(), cs[T % len(cs)].copy())
    if not keep:
        return y_out, state, None
    cache = {"x": x, "gates": gates, "hs": hs, "cs": cs, "m": m if P else None, "lengths": lengths,
             "mask": mask, "masked": rec_mask is not None,
             "c_raw": c_raw if cfg.cell_clip is not None else cs[1:],  # without a clip any c passes
             "h_raw": h_raw if cfg.proj_clip is not None else hs[1:]}
    return y_out, state, cache


def _run_row_blocks(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, lengths: np.ndarray,
                    rec_mask: np.ndarray | None, keep: bool, b: np.ndarray, mask: np.ndarray, hs: np.ndarray,
                    cs: np.ndarray, c_raw: np.ndarray, h_raw: np.ndarray, tanh_c: np.ndarray, m: np.ndarray,
                    y: np.ndarray) -> np.ndarray:
    """``_forward_rows`` on row blocks in parallel threads (``run_split``), after the input projection's choice
    (one product per step on [x_t, h̃_{t-1}], two, or one GEMM before the loop); returns the gates."""
    T, B, D = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    steps = T if keep else 1
    W_ih, W_hh = p["W_ih"], p["W_hh"]
    P_xh, P_ih = no_panels(D + R, dtype), no_panels(D, dtype)
    if D <= STEPWISE_PROJECTION_MAX_D:  # one product per step on [x_t, h̃_{t-1}]
        P_xh, P_hh = pack(np.concatenate([W_ih, W_hh], axis=1), True), no_panels(R, dtype)
    elif W_ih.nbytes <= STEPWISE_PROJECTION_MAX_BYTES or not keep:  # two products per step
        P_ih, P_hh = pack(W_ih, True), pack(W_hh, True)
    else:  # (T, B, 4H): x_t W_ih^T from one GEMM, then the recurrent product added on and i, f, g, o in place
        P_hh = pack(W_hh, True)
    if P_ih.shape[0] or P_xh.shape[0]:
        gates = aligned_empty((steps, B, 4 * H), dtype)
    else:
        gates = matmul(x.reshape(T * B, D), W_ih, trans_b=True).reshape(T, B, 4 * H)
    xh = aligned_empty((B, R), dtype)
    macs = T * B * (4 * H * (R + D * (len(P_ih) + len(P_xh) > 0)) + P * H)  # the products of the time loop
    run_split(_forward_rows, B, x, P_xh, P_ih, b, _joint_alpha(cfg, dtype), P_hh, _packed_projection(p, cfg, True), mask,
              rec_mask is not None, lengths, *_options(p, cfg), gates, hs, cs, c_raw, h_raw, tanh_c, m, y, xh, macs=macs,
              parallel=_forward_blocks)
    return gates


UNIT_SPLIT_MIN_BYTES = 1 << 20  # weights [W_ih, W_hh] beyond which the forward on two threads or more splits the
# units instead of the rows (``_run_unit_parts``). Measured at two threads, layer inference: (32, 100, 65, 512), 4.7
# MB, 35.5-37.8 -> 30.9-32.9 ms; (64, 100, 256, 1024), 21 MB, 271-288 -> 253-267; (64, 100, 65, 256), 1.3 MB,
# 19.1-22.1 -> 17.7-18.1; (32, 100, 65, 128), 0.4 MB, 3.0-3.3 -> 3.7-3.9 (each thread's part of a step too small)
UNIT_SPLIT_MIN_MACS = 1 << 28  # less work (multiply-adds in all) keeps the row split: starting a thread per part
# costs about 0.1 ms a call
UNIT_SPLIT_TRAINING_MIN_INNER = 1024  # input features + units (D + H) from which a training forward splits the units
# too: each part then copies its i, f, g, o of a step into the cache's (T, B, 4H) gates, stores that miss the caches
# (about 2.4 GB/s here), against D + H multiply-adds per value. Measured at two threads, the training forward:
# (64, 100, 256, 1024) 342-377 -> 275-302 ms; (32, 100, 65, 512) 37.9-41.0 -> 36.6-37.1; (64, 100, 65, 256)
# 19.8-20.7 -> 25.1-26.7 (without the copy: 19.2-19.4)


def _unit_parts(cfg: LSTMConfig, shape: tuple[int, int, int], keep: bool, dtype: np.dtype) -> list[tuple[int, int]]:
    """Each thread's units [u0, u1) (multiples of ``LANES`` apart) when ``_run`` splits a forward of ``x (T, B, D)``
    by units; [] to split it by rows: with a projection (whose product needs every unit of m_t), on one thread,
    with fewer than 2·``LANES`` units, below ``UNIT_SPLIT_MIN_MACS``, with weights up to ``UNIT_SPLIT_MIN_BYTES``, or
    for a training forward (``keep``) with D + H below ``UNIT_SPLIT_TRAINING_MIN_INNER``."""
    T, B, D = shape
    H = cfg.hidden_size
    n = min(blas_threads(), H // LANES)
    weights = (D + H) * 4 * H * np.dtype(dtype).itemsize
    if cfg.proj_size or n < 2 or T * B * 4 * H * (D + H) < UNIT_SPLIT_MIN_MACS or weights <= UNIT_SPLIT_MIN_BYTES \
            or (keep and D + H < UNIT_SPLIT_TRAINING_MIN_INNER):
        return []
    edges = [H * k // n // LANES * LANES for k in range(n)] + [H]
    return list(zip(edges[:-1], edges[1:]))


@jit
def _to_columns(src, s0, dst, d0, n):
    """dst[:, d0:d0 + n] = src[:, s0:s0 + n], both C-contiguous (B, ·): a part's units into an array of all units
    (a column slice of src would be a strided array, whose copy LLVM does not vectorise)."""
    for b in range(src.shape[0]):
        for j in range(n):
            dst[b, d0 + j] = src[b, s0 + j]


@jit
def _forward_units(k, x, W_ih, W_hh, units, bias, alpha, lengths, w_ci, w_cf, w_co, cell_clip, proj_clip, a, c, c_raw,
                   tanh_c, m, gates, hs, cs, c_raws, y, counters):
    """Part k of a forward split by units (``_run_unit_parts``): every row, its ``units`` of the four gates (their
    rows of W_ih and W_hh, packed here on its own thread). Its cell math runs on arrays of its own, contiguous
    (``a (B, 4 Hk)``, ``c (2, B, Hk)`` alternating, ``c_raw``, ``tanh_c``, ``m (B, Hk)``); it writes its columns
    u0..u1 of the shared h_t and y_t (``hs``, ``y``, as ``_forward_rows`` indexes them) and c_t (``cs``), and in a
    training forward i, f, g, o into ``gates (T, B, 4H)`` and, with a cell clip, c_raw into ``c_raws`` (both
    empty otherwise).

    A step's recurrent product waits until every part has published h_{t-1}. In inference (two slots of h,
    alternating) the slot this part writes next may hold h_{t-2}, which the others read only before they
    published h_{t-1}."""
    T, B, Hk, H = y.shape[0], y.shape[1], c.shape[2], hs.shape[2]
    u0 = units[0]
    P_ih, P_hh = pack(W_ih, True, units), pack(W_hh, True, units)
    for t in range(T):
        times_packed(0, B, x[t], P_ih, a, 0.0)
        if not wait_for_steps(counters, t):
            return
        times_packed(0, B, hs[t % len(hs)], P_hh, a, 1.0)  # + h_{t-1} W_hh^T
        c_prev, c_t = c[t % 2], c[(t + 1) % 2]
        _cell_forward_step(0, B, t, lengths, a, bias, alpha, c_prev, w_ci, w_cf, w_co, cell_clip, c_raw, c_t, tanh_c, m)
        _to_columns(c_t, 0, cs[(t + 1) % len(cs)], u0, Hk)
        if len(c_raws) > 0:
            _to_columns(c_raw, 0, c_raws[t], u0, Hk)
        if len(gates) > 0:
            for g in range(4):
                _to_columns(a, g * Hk, gates[t], g * H + u0, Hk)
        _emit(0, B, t, lengths, m, proj_clip, hs[t % len(hs)][:, u0:u0 + Hk], hs[(t + 1) % len(hs)][:, u0:u0 + Hk],
              y[t][:, u0:u0 + Hk])
        publish_steps(counters, k, t + 1)


def _run_unit_parts(p: dict[str, np.ndarray], cfg: LSTMConfig, x: np.ndarray, lengths: np.ndarray, b: np.ndarray,
                    parts: list[tuple[int, int]], gates: np.ndarray, hs: np.ndarray, cs: np.ndarray,
                    c_raw: np.ndarray, y: np.ndarray) -> None:
    """The forward (no projection) split by units over threads instead of by rows: thread k computes every row of
    its units [u0, u1) of i, f, g and o, so it reads only their rows of W_ih and W_hh, and the threads wait for
    each other's part of h_{t-1} before each step's recurrent product (``_jit.wait_for_steps``;
    ``_blas.run_together``). The arrays are ``_run``'s.

    Split by rows, every thread reads all the weights on every step, from L3 once they exceed the core's L2
    cache. Measured at two threads, the per-step products alone: (32, 577) @ (577, 2048) 219 → 202-266 GFLOP/s,
    (64, 1280) @ (1280, 4096) 169-172 → 222-226. The results are those of the row split bitwise: each output of a
    product is the same sum over k in the same order (with up to ``STEPWISE_PROJECTION_MAX_D`` input features the
    row split's one product on [x_t, h̃_{t-1}] rounds the sum of its two parts once less, and in training with
    W_ih beyond ``STEPWISE_PROJECTION_MAX_BYTES`` it computes x W_ih^T as one GEMM).
    """
    B, H, dtype = x.shape[1], cfg.hidden_size, x.dtype
    alpha = _joint_alpha(cfg, dtype)
    w_ci, w_cf, w_co, cell_clip, proj_clip = _options(p, cfg)  # proj_clip: ±inf (no projection)
    c_raws = c_raw if len(gates) > 0 and cfg.cell_clip is not None else c_raw[:0]  # kept for a training backward
    counters = step_counters(len(parts))
    arguments = []
    for k, (u0, u1) in enumerate(parts):
        units = np.concatenate([np.arange(g * H + u0, g * H + u1) for g in range(4)])
        Hk = u1 - u0
        c = aligned_empty((2, B, Hk), dtype)
        c[0] = cs[0][:, u0:u1]
        arguments.append((k, x, p["W_ih"], p["W_hh"], units, b[units], alpha[units] if alpha.size else alpha, lengths,
                          w_ci[u0:u1], w_cf[u0:u1], w_co[u0:u1], cell_clip, proj_clip, aligned_empty((B, 4 * Hk), dtype),
                          c, *(aligned_empty((B, Hk), dtype) for _ in range(3)), gates, hs, cs, c_raws, y, counters))
    run_together(_forward_units, arguments, counters)


def backward(
    p: dict[str, np.ndarray],
    cfg: LSTMConfig,
    cache: dict,
    dy: np.ndarray | None = None,
    dstate: State | None = None,
    *,
    check_finite: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, State]:
    """Backprop through time; return ``(grads like p, dx (T, B, D), (dh_0, dc_0))`` (see the reference)."""
    x, gates, hs, cs, lengths, mask = (cache[k] for k in ("x", "gates", "hs", "cs", "lengths", "mask"))
    T, B, D = x.shape
    H, P, R, dtype = cfg.hidden_size, cfg.proj_size, cfg.output_size, x.dtype
    if dy is not None:
        dy = check_float_array(dy, "dy", shape=(T, B, R), dtype=dtype, allow_nonfinite=not check_finite)
    dy = dy_steps(dy, B, R, dtype)
    dh, dc = (aligned_copy(s) for s in _check_state(dstate, B, cfg, dtype, "dstate"))  # (B, R), (B, H): updated in place
    dh_raw = aligned_empty((T if P else 1, B, R), dtype)  # dL/dh_raw_t, kept for every step for dW_hr
    macs = T * B * (4 * H * R + P * H)
    blocks = split_rows(B, macs=macs)
    summed = in_loop(blocks, D, R, 4 * H, dtype)  # dx, dW_ih, dW_hh, db inside the loop
    da = aligned_empty((1 if summed and not cfg.peepholes else T, B, 4 * H), dtype)  # dL/da_t for [i, f, g, o]
    P_ih, dx, starts, *sums = parts(blocks, p["W_ih"], T, B, R, summed)
    run_split(_backward_rows, B, lengths, gates, cs, cache["c_raw"], cache["h_raw"], pack(p["W_hh"], False),
              _packed_projection(p, cfg, False), mask, *_options(p, cfg), dy, dh, dc, dh_raw,
              aligned_empty((B, H), dtype), aligned_full((B, R), 0, dtype), da, x, hs, cache["masked"],
              aligned_empty((B, R), dtype), P_ih, dx, starts, *sums, blocks=blocks, macs=macs, parallel=_backward_blocks)
    grads = {}
    if cfg.peepholes:  # padded rows have da = 0
        grads["w_ci"] = np.einsum("tbh,tbh->h", da[:, :, :H], cs[:-1])
        grads["w_cf"] = np.einsum("tbh,tbh->h", da[:, :, H:2 * H], cs[:-1])
        grads["w_co"] = np.einsum("tbh,tbh->h", da[:, :, 3 * H:], cs[1:])  # c_t
    if summed:
        dW_ih, dW_hh, db = totals(*sums)
    else:
        h_in = hs[:-1] * mask if cache["masked"] else hs[:-1]  # (T, B, R): h̃_{t-1}
        dW_ih, dW_hh, db, dx = after_loop(da, x, h_in, p["W_ih"])
    grads.update({"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db, "b_hh": db.copy()})
    if P:
        grads["W_hr"] = matmul(dh_raw.reshape(T * B, R), cache["m"].reshape(T * B, H), trans_a=True)  # (P, TB) @ (TB, H)
    return grads, dx, (dh, dc)
