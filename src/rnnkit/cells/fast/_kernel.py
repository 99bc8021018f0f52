"""A product kernel for weights that stay fixed over many calls: ``out = A W`` with W packed once.

A time loop multiplies the same weights T times by a thin block of rows (a step's ``h̃_{t-1} W_hh^T``
at 8-64 rows per thread). A BLAS call re-packs the weights on every call, which at these shapes
costs as much as the arithmetic: OpenBLAS reaches 70-130 GFLOP/s there on one core of this machine.
Packing W once per forward or backward and running a register-blocked kernel on it reaches
130-180 (measured: 32×256 @ 256×1024 104 → 179 GFLOP/s, 32×512 @ 512×2048 102 → 148).

Layout: ``pack(W)`` cuts W (K, N) into panels of NR columns (two SIMD vectors: 32 float32 or
16 float64), each stored K × NR contiguously, the last one zero-padded: ``P (ceil(N/NR), K, NR)``.

Kernel: a tile of MR rows × NR columns of ``out`` lives in 2·MR vector registers for the whole sum
over k; each k loads one panel row (two vectors) and, for each of the MR rows, broadcasts
``A[r, k]`` and does two fused multiply-adds; four k per pass of the loop, with the row addresses
of A found once per tile (fewer loop instructions per multiply-add: +5 % on 64×321 @ 321×1024, +7 %
on 32×577 @ 577×2048). LLVM gets this as explicit vector IR (``_tile``, a numba intrinsic), so the
accumulators stay in registers. Tiles of 8, 4, 2 and 1 rows cover any row
count; a last panel narrower than NR uses one-vector tiles when they cover it, and
loads and stores its last vector of C through a lane mask (AVX-512 masked moves), so its tiles write
C in place (before, through a scratch tile and a copy: a step's dx_t (64, 64) @ (64, 8) 1.12 → 0.77 µs,
(64, 64) @ (64, 24) 2.05 → 1.25 µs). ``fast.matmul`` uses the kernel
for products over many rows with narrow results too (up to ``_blas.PACKED_MAX_N`` columns).

``times_packed_pair`` multiplies two operands that lie apart in memory, [A1, A2] P, as one product: its
tiles sum over A1's rows for the panels' first rows and over A2's for the rest, in registers (a step's
x_t W_ih^T + h̃_{t-1} W_hh^T with [W_ih, W_hh]^T packed once: C stored once, no copy of [x_t, h̃_{t-1}];
(64, 8) and (64, 16) times 64 columns: 1.15-1.24 → 1.02 µs against two products, the second added on).
They are separate intrinsics (``pair=True``): a second, empty segment in every tile cost 5-10 % at K = 24.

The same tiles also run on operands used in place (``strided``): ``add_transposed_times`` adds
X^T G to an output, reading X as a transposed A and G's rows as panels without copying either,
which is how the backward loops sum a step's weight gradients (``_gradients``).

numba caches the compiled loops with this kernel inlined: after editing this file, delete
``cells/fast/__pycache__/*.nbi`` and ``*.nbc``.
"""

from __future__ import annotations

import itertools

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import jit

VECTOR_BYTES = 64  # one AVX-512 register; on narrower machines LLVM splits each vector op
TILE_ROWS = (8, 4, 2, 1)  # MR of the tiles, largest first
ROW_BLOCK = 128  # rows of A kept in the L2 cache while every panel passes over them
STREAMED_BYTES = 8 << 20  # packed weights beyond which the rows are taken STREAMED_ROW_BLOCK at a time instead
STREAMED_ROW_BLOCK = 32  # (weights read from beyond the caches: a step of (64, 100, 256, 1024) on one core, h_{t-1}
# (64, 1024) @ 16 MiB of W_hh^T: 100-115 GFLOP/s as one block of 64 rows, 127-131 as two of 32, although that
# reads the weights twice; at 8 MiB and below the larger block is as fast or 5 % faster)
K_UNROLL = 4  # steps of k per pass of a tile's loop: fewer loop instructions per fused multiply-add


def panel_width(dtype: np.dtype) -> int:
    """NR: columns per panel, two vectors (32 for float32, 16 for float64)."""
    return 2 * VECTOR_BYTES // np.dtype(dtype).itemsize


def _tile_intrinsic(MR: int, pair: bool = False):
    """``_tile(A, a0, lda, P, p0, C, c0, ldc, K, add, width, strided, a_ks, ldp)``: C[r, :n] (+)= Σ_k A[r, k]
    P[k, :n] for r < MR, with n = ``width`` of the panel's NR columns (1 <= width <= NR): the tile computes
    whole vectors (only the first when ``width`` fits in it, both otherwise) and loads and stores the
    columns of C past ``width`` through a lane mask, so a narrow last panel needs no scratch.

    Flat element offsets into the arrays' data: A[r, k] at ``a0 + r·lda + k``, panel row k at
    ``p0 + k·NR`` (K × NR contiguous: packed), C rows at ``c0 + r·ldc``; ``add``: add to C instead of
    overwriting it. ``strided``: A[r, k] at ``a0 + r·lda + k·a_ks`` and panel row k at ``p0 + k·ldp``
    instead (operands used in place, e.g. A a transposed view, the panel NR columns of a row-major
    matrix); a separate loop, so the packed one keeps its constant strides.

    ``pair``: the tile takes four more arguments, ``A2, a2_0, lda2, K1``, and the panel's rows from K1 on
    multiply a second A (A2[r, k - K1] at ``a2_0 + r·lda2 + k - K1``): C (+)= [A, A2] P with the sum in
    registers, for two operands that are not joined in memory (packed only). A tile without ``pair`` has no
    second loop: at K = 24 the empty second segment alone cost 5-10 %.
    """

    def codegen(context, builder, signature, args):
        A_v, a0_v, lda_v, P_v, p0_v, C_v, c0_v, ldc_v, K_v, add_v, width_v, strided_v, a_ks_v, ldp_v = args[:14]
        real = context.get_value_type(signature.args[5].dtype)
        lanes = VECTOR_BYTES // context.get_abi_sizeof(real)
        vec, i64 = ir.VectorType(real, lanes), ir.IntType(64)
        vec_ptr = vec.as_pointer()
        suffix = f"v{lanes}{'f32' if isinstance(real, ir.FloatType) else 'f64'}"
        module = builder.module

        def declared(name: str, returns: ir.Type, *arguments: ir.Type) -> ir.Function:
            return module.globals.get(name) or ir.Function(module, ir.FunctionType(returns, arguments), name=name)

        fma = declared(f"llvm.fma.{suffix}", vec, vec, vec, vec)
        i1_vec, i32 = ir.VectorType(ir.IntType(1), lanes), ir.IntType(32)
        masked_load = declared(f"llvm.masked.load.{suffix}.p0{suffix}", vec, vec_ptr, i32, i1_vec, vec)
        masked_store = declared(f"llvm.masked.store.{suffix}.p0{suffix}", ir.VoidType(), vec, vec_ptr, i32, i1_vec)

        def data(ary, aryty, offset):
            return builder.gep(context.make_array(aryty)(context, builder, ary).data, [offset])

        a, p, c = data(A_v, signature.args[0], a0_v), data(P_v, signature.args[3], p0_v), data(C_v, signature.args[5], c0_v)
        segments = [(a, lda_v, ir.Constant(ir.IntType(64), 0), K_v)]
        if pair:
            A2_v, a2_0_v, lda2_v, K1_v = args[14:]
            segments = [(a, lda_v, segments[0][2], K1_v), (data(A2_v, signature.args[14], a2_0_v), lda2_v, K1_v, K_v)]
        const = lambda n: ir.Constant(i64, n)
        zero, splat_mask = ir.Constant(vec, None), ir.Constant(ir.VectorType(ir.IntType(32), lanes), None)

        def emit(NV: int, a_ks, ldp) -> None:
            """The tile on the panel's first NV vectors, with A's k stride ``a_ks`` and the panel's row stride
            ``ldp``: the sum over k (K_UNROLL steps of k per pass, then one per pass for the rest), then the
            stores."""
            def fmas(k, acc, rows, k0):
                """acc[r][v] + A[r, k - k0] * P[k, v·lanes : (v+1)·lanes] for every r, v, A's rows at ``rows``."""
                panel_row = builder.gep(p, [builder.mul(k, ldp)])
                w = [builder.load(builder.bitcast(builder.gep(panel_row, [const(v * lanes)]), vec_ptr), align=4)
                     for v in range(NV)]
                a_k = builder.mul(builder.sub(k, k0), a_ks)
                new = []
                for r in range(MR):
                    a_rk = builder.load(builder.gep(rows[r], [a_k]))
                    a_vec = builder.shuffle_vector(builder.insert_element(ir.Constant(vec, ir.Undefined), a_rk,
                                                                          const(0)),
                                                   ir.Constant(vec, ir.Undefined), splat_mask)
                    new.append([builder.call(fma, [a_vec, w[v], acc[r][v]]) for v in range(NV)])
                return new

            def loop(k_start, acc_start, k_stop, unroll, rows, k0):
                """for k in range(k_start, k_stop, unroll): ``unroll`` steps of fmas; -> (k, acc) after it."""
                before = builder.block
                body, after = builder.append_basic_block("tile.loop"), builder.append_basic_block("tile.done")
                builder.cbranch(builder.icmp_signed("<", k_start, k_stop), body, after)
                builder.position_at_end(body)
                k = builder.phi(i64)
                acc = [[builder.phi(vec) for _ in range(NV)] for _ in range(MR)]
                new = acc
                for u in range(unroll):
                    new = fmas(builder.add(k, const(u)), new, rows, k0)
                k_next = builder.add(k, const(unroll))
                builder.cbranch(builder.icmp_signed("<", k_next, k_stop), body, after)
                k.add_incoming(k_start, before)
                k.add_incoming(k_next, body)
                builder.position_at_end(after)  # phi nodes first in the block
                k_end = builder.phi(i64)
                k_end.add_incoming(k_start, before)
                k_end.add_incoming(k_next, body)
                acc_end = [[builder.phi(vec) for _ in range(NV)] for _ in range(MR)]
                for r, v in itertools.product(range(MR), range(NV)):
                    acc[r][v].add_incoming(acc_start[r][v], before)
                    acc[r][v].add_incoming(new[r][v], body)
                    acc_end[r][v].add_incoming(acc_start[r][v], before)
                    acc_end[r][v].add_incoming(new[r][v], body)
                return k_end, acc_end

            acc = [[zero] * NV for _ in range(MR)]
            for base, ld, k_first, k_stop in segments:  # A's rows for k < K1, then A2's (pair tiles)
                rows = [builder.gep(base, [builder.mul(const(r), ld)]) for r in range(MR)]  # found once
                k, acc = loop(k_first, acc, builder.sub(k_stop, const(K_UNROLL - 1)), K_UNROLL, rows, k_first)
                _, acc = loop(k, acc, k_stop, 1, rows, k_first)
            wheres = [builder.bitcast(builder.gep(c, [builder.add(builder.mul(const(r), ldc_v), const(v * lanes))]),
                                      vec_ptr) for r, v in itertools.product(range(MR), range(NV))]
            totals = [acc[r][v] for r, v in itertools.product(range(MR), range(NV))]
            last = {(r + 1) * NV - 1 for r in range(MR)}  # each row's last vector in wheres

            def lanes_below_width():
                """The last vector's lanes below ``width`` (built only where the panel is narrow)."""
                valid = builder.trunc(builder.sub(width_v, const((NV - 1) * lanes)), i32)
                undefined = ir.Constant(ir.VectorType(i32, lanes), ir.Undefined)
                valid = builder.shuffle_vector(builder.insert_element(undefined, valid, const(0)), undefined, splat_mask)
                return builder.icmp_unsigned("<", ir.Constant(ir.VectorType(i32, lanes), list(range(lanes))), valid)

            def store(masked: bool, adding: bool) -> None:
                """The tile into C, its rows' last vectors through a lane mask if ``masked``, added to C if
                ``adding`` (C is read only then)."""
                mask = lanes_below_width() if masked else None
                for i, (where, total) in enumerate(zip(wheres, totals)):
                    partial = masked and i in last
                    if adding:
                        old = builder.call(masked_load, [where, ir.Constant(i32, 4), mask, zero]) if partial \
                            else builder.load(where, align=4)
                        total = builder.fadd(old, total)
                    if partial:
                        builder.call(masked_store, [total, where, ir.Constant(i32, 4), mask])
                    else:
                        builder.store(total, where, align=4)

            with builder.if_else(builder.icmp_signed("<", width_v, const(NV * lanes))) as (narrow, whole):
                for masked, width_branch in ((True, narrow), (False, whole)):
                    with width_branch, builder.if_else(add_v) as (to_add, to_overwrite):
                        for adding, add_branch in ((True, to_add), (False, to_overwrite)):
                            with add_branch:
                                store(masked, adding)

        one_vector = builder.icmp_signed("<=", width_v, const(lanes))  # the width fits in the first vector
        with builder.if_else(strided_v) as (in_place, packed):
            for branch, strides in ((in_place, (a_ks_v, ldp_v)), (packed, (const(1), const(2 * lanes)))):
                with branch, builder.if_else(one_vector) as (first_vector, whole_panel):
                    with first_vector:
                        emit(1, *strides)
                    with whole_panel:
                        emit(2, *strides)
        return context.get_dummy_value()

    common = (types.intp, types.intp)  # element offset and leading dimension

    if pair:
        @intrinsic
        def tile(typingctx, A, a0, lda, P, p0, C, c0, ldc, K, add, width, strided, a_ks, ldp, A2, a2_0, lda2, K1):
            return types.void(A, *common, P, types.intp, C, *common, types.intp, types.boolean, types.intp,
                              types.boolean, types.intp, types.intp, A2, *common, types.intp), codegen
    else:
        @intrinsic
        def tile(typingctx, A, a0, lda, P, p0, C, c0, ldc, K, add, width, strided, a_ks, ldp):
            return types.void(A, *common, P, types.intp, C, *common, types.intp, types.boolean, types.intp,
                              types.boolean, types.intp, types.intp), codegen

    return tile


_TILE_8, _TILE_4, _TILE_2, _TILE_1 = (_tile_intrinsic(MR) for MR in TILE_ROWS)
_PAIR_8, _PAIR_4, _PAIR_2, _PAIR_1 = (_tile_intrinsic(MR, pair=True) for MR in TILE_ROWS)


def no_panels(K: int, dtype: np.dtype) -> np.ndarray:
    """A packed matrix of inner dimension K without any panel: marks a product that a loop skips."""
    return np.empty((0, K, panel_width(dtype)), dtype)


@jit
def pack(W, trans, columns=None):
    """Panels ``P (ceil(N/NR), K, NR)`` of op(W) (K, N), op(W) = W.T if trans else W; zero past column N.

    ``columns`` (int64): of op(W)[:, columns] instead (N = len(columns)), without a copy of them first (one
    thread's units of the four gates, ``lstm._run_unit_parts``)."""
    K, N = (W.shape[1], W.shape[0]) if trans else W.shape
    if columns is not None:
        N = columns.shape[0]
    NR = 2 * VECTOR_BYTES // W.itemsize
    P = np.zeros(((N + NR - 1) // NR, K, NR), W.dtype)
    for q in range(P.shape[0]):
        for k in range(K):
            for j in range(min(NR, N - q * NR)):
                n = q * NR + j if columns is None else columns[q * NR + j]
                P[q, k, j] = W[n, k] if trans else W[k, n]
    return P


@jit
def _tiles(M, A, a0, lda, P, p0, C, c0, ldc, K, add, width, strided, a_ks, ldp):
    """M rows of C (+)= A P over one panel, its first ``width`` columns, in tiles of 8, 4, 2, 1 rows: row r of A
    starts at element a0 + r·lda of its data, of C at c0 + r·ldc (see ``_tile_intrinsic``)."""
    m = 0
    while m + 8 <= M:
        _TILE_8(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, strided, a_ks, ldp)
        m += 8
    if m + 4 <= M:
        _TILE_4(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, strided, a_ks, ldp)
        m += 4
    if m + 2 <= M:
        _TILE_2(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, strided, a_ks, ldp)
        m += 2
    if m < M:
        _TILE_1(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, strided, a_ks, ldp)


@jit
def _tiles_pair(M, A, a0, lda, A2, a2_0, lda2, K1, P, p0, C, c0, ldc, K, add, width):
    """``_tiles`` with pair tiles: M rows of C (+)= [A, A2] P over one packed panel, its rows k < K1 multiplying A
    and the others A2 (row r of A2 at a2_0 + r·lda2)."""
    m = 0
    while m + 8 <= M:
        _PAIR_8(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, False, 1, P.shape[2], A2,
                a2_0 + m * lda2, lda2, K1)
        m += 8
    if m + 4 <= M:
        _PAIR_4(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, False, 1, P.shape[2], A2,
                a2_0 + m * lda2, lda2, K1)
        m += 4
    if m + 2 <= M:
        _PAIR_2(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, False, 1, P.shape[2], A2,
                a2_0 + m * lda2, lda2, K1)
        m += 2
    if m < M:
        _PAIR_1(A, a0 + m * lda, lda, P, p0, C, c0 + m * ldc, ldc, K, add, width, False, 1, P.shape[2], A2,
                a2_0 + m * lda2, lda2, K1)


@jit
def _row_block(P):
    """Rows of A per pass over the panels P: ``ROW_BLOCK``, or ``STREAMED_ROW_BLOCK`` when P exceeds
    ``STREAMED_BYTES``."""
    return STREAMED_ROW_BLOCK if P.size * P.itemsize > STREAMED_BYTES else ROW_BLOCK


@jit
def times_packed_pair(b0, b1, A1, A2, P, out, beta):
    """Rows b0..b1: out (B, N) = [A1, A2] P + beta out, ``P = pack(W)`` of W (K1 + K2, N), with A1 (B, K1) and
    A2 (B, K2) not joined in memory: the pair tiles sum over A1 for the panels' first K1 rows, then over A2, in
    registers (a step's x_t W_ih^T + h̃_{t-1} W_hh^T: C stored once, no copy of [x_t, h̃_{t-1}]). As
    ``times_packed`` otherwise."""
    N, K, NR = out.shape[1], P.shape[1], P.shape[2]
    if A1.shape[1] + A2.shape[1] != K or (N + NR - 1) // NR != P.shape[0]:
        raise ValueError("times_packed_pair: A1, A2, P and out do not fit")
    ldc, add, K1 = out.strides[0] // out.itemsize, beta != 0, A1.shape[1]
    lda, lda2 = A1.strides[0] // A1.itemsize, A2.strides[0] // A2.itemsize
    rows = _row_block(P)
    for r0 in range(b0, b1, rows):
        r1 = min(r0 + rows, b1)
        for q in range(P.shape[0]):  # the last panel may be narrow: its width, below NR, masks its stores
            _tiles_pair(r1 - r0, A1, r0 * lda, lda, A2, r0 * lda2, lda2, K1, P, q * K * NR, out, r0 * ldc + q * NR, ldc,
                        K, add, min(NR, N - q * NR))


@jit
def times_packed(b0, b1, A, P, out, beta):
    """Rows b0..b1: out (B, N) = A (B, K) P + beta out, ``P = pack(W)`` of W (K, N); ``beta`` is 0 or 1.

    Rows of A and out must be contiguous (any row stride). Rows are taken ``_row_block(P)`` at a time
    (they stay in the L2 cache while every panel passes over them). A last panel narrower than NR
    uses only its first vector of columns when that covers it, and writes its columns through a lane mask.
    """
    N, K, NR = out.shape[1], P.shape[1], P.shape[2]
    if A.shape[1] != K or (N + NR - 1) // NR != P.shape[0]:
        raise ValueError("times_packed: A, P and out do not fit")
    full, ldc, add = N // NR, out.strides[0] // out.itemsize, beta != 0
    rest = N - full * NR  # columns of the last, narrow panel (0: none)
    lda, rows = A.strides[0] // A.itemsize, _row_block(P)
    for r0 in range(b0, b1, rows):
        r1 = min(r0 + rows, b1)
        for q in range(full):
            _tiles(r1 - r0, A, r0 * lda, lda, P, q * K * NR, out, r0 * ldc + q * NR, ldc, K, add, NR, False, 1, NR)
        if rest > 0:
            _tiles(r1 - r0, A, r0 * lda, lda, P, full * K * NR, out, r0 * ldc + full * NR, ldc, K, add, rest, False, 1,
                   NR)


@jit
def add_transposed_times(b0, b1, X, G, out):
    """out (M, N) += X[b0:b1]^T G[b0:b1], X (B, M), G (B, N): a sum over rows b0..b1 of x_b^T g_b, with neither
    operand copied (a weight gradient's part from one step, e.g. dW_hh^T += h̃_{t-1}^T da_t).

    The tiles read X as the transposed A (A[m, k] = X[b0 + k, m]) and G's rows as panels of NR columns
    in place (``strided``). A last panel of exactly one vector of columns is read in place too (its tile
    loads only that vector: a GRU's 3H = 48 at H = 16); a narrower or wider one is copied out, zero-padded
    (its rows end before the tile's vectors do), and its tile adds to ``out`` through a lane mask. Rows of X,
    G and out must be contiguous (any row stride).
    """
    M, N = out.shape
    if X.shape[1] != M or G.shape[1] != N or X.shape[0] != G.shape[0]:
        raise ValueError("add_transposed_times: X, G and out do not fit")
    K, NR = b1 - b0, 2 * VECTOR_BYTES // out.itemsize
    ldx, ldg, ldc = X.strides[0] // X.itemsize, G.strides[0] // G.itemsize, out.strides[0] // out.itemsize
    full = N // NR
    rest = N - full * NR  # columns of the last, narrow panel (0: none)
    for q in range(full):
        _tiles(M, X, b0 * ldx, 1, G, b0 * ldg + q * NR, out, q * NR, ldc, K, True, NR, True, ldx, ldg)
    if rest == NR // 2:  # one whole vector: no allocation inside a time loop
        _tiles(M, X, b0 * ldx, 1, G, b0 * ldg + full * NR, out, full * NR, ldc, K, True, rest, True, ldx, ldg)
    elif rest > 0:
        panel = np.zeros((K, NR), out.dtype)
        for k in range(K):
            for j in range(rest):
                panel[k, j] = G[b0 + k, full * NR + j]
        _tiles(M, X, b0 * ldx, 1, panel, 0, out, full * NR, ldc, K, True, rest, True, ldx, NR)
