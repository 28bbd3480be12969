"""SOFTMAX over the innermost dimension, int8 and float32.

int8 is TFLM's gemmlowp path (reference_ops::Softmax for int8 in and out): the
host does PreprocessSoftmaxScaling (beta * input_scale -> multiplier and left
shift, diff_min) and tabulates exp_on_negative_values of every possible
difference max - x (0..255); the device sums, takes gemmlowp's fixed-point
reciprocal and scales. Output scale 1/256, zero point -128, as TFLM requires."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import c_float
from farm.codegen.fixed_point_math import softmax_exp_lut
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import dtypes, io_count, not_constant, per_tensor
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@dataclass(frozen=True, kw_only=True)
class Softmax(Step):
    input: int
    output: int
    rows: int
    depth: int
    beta: float
    exp_lut: tuple[int, ...] = ()

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        dims = e.dims(f"{p}_dims", (self.rows, 1, 1, self.depth))
        if self.kernel == "softmax_s8":
            lines = [e.int_array(f"{p}_exp_lut", "int32_t", self.exp_lut),
                     f"static const tf_softmax_params_s8 {p}_params = {{{p}_exp_lut}};", dims]
        else:
            lines = [f"static const tf_softmax_params_f32 {p}_params = {{{c_float(self.beta)}}};", dims]
        e.declare(self, *lines, extra=f" (beta {self.beta:g})")
        e.call(self.kernel, [f"&{p}_params", f"&{p}_dims", e.pointer(self.input, writable=False),
                             e.pointer(self.output, writable=True)])


@lowering("SOFTMAX")
def lower_softmax(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, 1)
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    dtype = dtypes(ctx, op, [x, y])
    if not x.shape or x.shape != y.shape:
        raise ctx.fail(op, f"input shape {list(x.shape)} and output shape {list(y.shape)} must be equal, rank >= 1")
    depth = int(x.shape[-1])
    rows = x.num_elements // depth
    beta = float(op.options.get("beta", 1.0))
    common = dict(op_index=op.index, opcode=op.opcode, reads=(x.index,), writes=(y.index,), input=x.index,
                  output=y.index, rows=rows, depth=depth, beta=beta, inplace=((y.index, x.index),))
    if dtype == "float32":
        return Softmax(kernel="softmax_f32", **common)
    in_scale, _ = per_tensor(ctx, op, x, "input")
    out_scale, out_zp = per_tensor(ctx, op, y, "output")
    if out_zp != -128 or np.float32(out_scale) != np.float32(1.0 / 256):
        raise ctx.fail(op, f"int8 output scale {out_scale} and zero point {out_zp}: TFLM's kernel needs 1/256 and -128")
    try:
        lut = softmax_exp_lut(in_scale, beta)
    except ValueError as exc:
        raise ctx.fail(op, str(exc)) from None
    return Softmax(kernel="softmax_s8", exp_lut=tuple(lut), **common)
