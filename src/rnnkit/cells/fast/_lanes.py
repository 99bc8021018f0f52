"""Cell math written on whole float32 vectors: σ, tanh and fused multiply-adds as explicit 16-lane vector IR.

For small hidden sizes LLVM's own vectorisation of the cell loops loses most of its time around the
work rather than in it: each short loop over a row's H units (one or two vectors) gets runtime alias
checks and a choice between a main vector loop, a vector epilogue and a scalar remainder, for every row.
At H = 16 the LSTM's forward cell math took 2.3 ns per unit that way against 1.5 when each row's
units are whole vectors in registers (the floor set by its five σ/tanh per unit: about 10 cycles of
multiply-adds and one division per vector of 16).

``Lanes`` builds that vector IR inside a numba intrinsic: ``load``/``store`` of 16 consecutive floats
at an element offset of an array, ``fma``, ``tanh`` and ``sigmoid`` with exactly the formulas of the
scalar ``_jit.tanh`` and ``_jit.sigmoid`` (clamped odd/even rational, σ(a) = ½ tanh(½a) + ½), so
results are bitwise those of the scalar loops. A cell module's intrinsic computes one row's 16 units
per call; its compiled loop calls it ``H / 16`` times per row. Only float32 and H a multiple of
``LANES`` use it (a masked last vector would stall on store forwarding between rows: 4.4-6.8 ns per
unit at H = 8 and 24).
"""

from __future__ import annotations

from llvmlite import ir

from ._jit import _ALPHA, _BETA, _TANH_CLAMP

LANES = 16  # float32 lanes of one AVX-512 vector


class Lanes:
    """Vector IR for one builder: 16-lane float32 values (``ir.VectorType(float, 16)``)."""

    def __init__(self, context, builder: ir.IRBuilder):
        self.context, self.builder = context, builder
        self.real = ir.FloatType()
        self.vector = ir.VectorType(self.real, LANES)
        module = builder.module

        def declared(name: str, arguments: int) -> ir.Function:
            return module.globals.get(name) or ir.Function(module, ir.FunctionType(self.vector, [self.vector] * arguments),
                                                           name=name)

        self._fma, self._fabs = declared(f"llvm.fma.v{LANES}f32", 3), declared(f"llvm.fabs.v{LANES}f32", 1)

    def constant(self, value: float) -> ir.Constant:
        return ir.Constant(self.vector, [ir.Constant(self.real, float(value))] * LANES)

    def splat(self, scalar: ir.Value) -> ir.Value:
        """A vector of 16 copies of a float32 scalar."""
        undefined = ir.Constant(self.vector, ir.Undefined)
        first = self.builder.insert_element(undefined, scalar, ir.Constant(ir.IntType(32), 0))
        return self.builder.shuffle_vector(first, undefined, ir.Constant(ir.VectorType(ir.IntType(32), LANES), None))

    def address(self, array_type, array: ir.Value, offset: ir.Value) -> ir.Value:
        """Pointer to 16 floats from element ``offset`` of a numba array's data."""
        data = self.context.make_array(array_type)(self.context, self.builder, array).data
        return self.builder.bitcast(self.builder.gep(data, [offset]), self.vector.as_pointer())

    def load(self, pointer: ir.Value) -> ir.Value:
        return self.builder.load(pointer, align=4)

    def store(self, value: ir.Value, pointer: ir.Value) -> None:
        self.builder.store(value, pointer, align=4)

    def fma(self, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
        """x · y + z, rounded once."""
        return self.builder.call(self._fma, [x, y, z])

    def add(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.builder.fadd(x, y)

    def sub(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.builder.fsub(x, y)

    def mul(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.builder.fmul(x, y)

    def abs(self, x: ir.Value) -> ir.Value:
        return self.builder.call(self._fabs, [x])

    def clip(self, x: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
        """min(max(x, low), high) as the scalar code compiles it."""
        x = self.builder.select(self.builder.fcmp_ordered("<", x, low), low, x)
        return self.builder.select(self.builder.fcmp_ordered(">", x, high), high, x)

    def tanh(self, x: ir.Value) -> ir.Value:
        """``_jit.tanh`` on 16 lanes: x clamped to ±7.905, then p(x) / q(x) (odd degree 13 over even degree 6)."""
        a1, a3, a5, a7, a9, a11, a13 = (self.constant(c) for c in _ALPHA)
        b0, b2, b4, b6 = (self.constant(c) for c in _BETA)
        x = self.clip(x, self.constant(-_TANH_CLAMP), self.constant(_TANH_CLAMP))
        x2 = self.mul(x, x)
        p = a13
        for a in (a11, a9, a7, a5, a3, a1):
            p = self.fma(p, x2, a)
        q = self.fma(self.fma(self.fma(b6, x2, b4), x2, b2), x2, b0)
        return self.builder.fdiv(self.mul(p, x), q)

    def sigmoid(self, x: ir.Value) -> ir.Value:
        """σ(x) = ½ tanh(½ x) + ½."""
        half = self.constant(0.5)
        return self.fma(half, self.tanh(self.mul(half, x)), half)
