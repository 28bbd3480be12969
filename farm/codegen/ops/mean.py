"""MEAN (global average pooling and other reductions over contiguous axes),
int8 and float32.

int8 follows TFLM's MEAN kernel for int8 (reference_ops::QuantizedMeanOrSum):
the multiplier of input_scale / output_scale (QuantizeMultiplier in double) is
divided by the element count on the host the way TFLM does it — shift =
floor(log2(count)) capped at 32 and at 31 + output_shift; multiplier =
(multiplier << shift) / count (int64, truncating); output_shift -= shift — and
the device sums, subtracts zero_point * count, requantizes and clamps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import c_int
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import dtypes, io_count, not_constant, per_tensor, requant
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@dataclass(frozen=True, kw_only=True)
class Mean(Step):
    input: int
    output: int
    outer: int
    reduced: int
    inner: int
    # int8
    input_sum_offset: int = 0
    output_offset: int = 0
    multiplier: int = 0
    shift: int = 0

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines = [f"static const tf_reduce_shape {p}_shape = {{{self.outer}, {self.reduced}, {self.inner}}};"]
        args = [f"&{p}_shape", e.pointer(self.input, writable=False), e.pointer(self.output, writable=True)]
        if self.kernel == "mean_s8":
            lines.insert(0, e.struct("tf_mean_params_s8", f"{p}_params", [
                ("input_sum_offset", c_int(self.input_sum_offset)), ("output_offset", c_int(self.output_offset)),
                ("multiplier", c_int(self.multiplier)), ("shift", c_int(self.shift))]))
            args.insert(0, f"&{p}_params")
        e.declare(self, *lines, extra=f" (over {self.reduced} elements)")
        e.call(self.kernel, args)


def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum's 1/count folding of (multiplier, shift)."""
    bits = 63 - (64 - int(count).bit_length())  # 63 - CountLeadingZeros(uint64 count)
    bits = min(bits, 32, 31 + shift)
    folded = (int(multiplier) << bits) // int(count)  # int64 division, both positive
    folded = (folded + 2**31) % 2**32 - 2**31  # static_cast<int32_t>
    return folded, shift - bits


@lowering("MEAN")
def lower_mean(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, 2)
    x, axis_t, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    dtype = dtypes(ctx, op, [x, y])
    if not axis_t.is_constant or axis_t.dtype != "int32":
        raise ctx.fail(op, f"axis tensor #{axis_t.index} must be an int32 constant")
    rank = len(x.shape)
    axes = sorted({int(a) % rank if rank else 0 for a in np.asarray(axis_t.data).reshape(-1)})
    if not axes or any(not 0 <= a < rank for a in axes):
        raise ctx.fail(op, f"axes {np.asarray(axis_t.data).tolist()} out of range for a {rank}-D input")
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise ctx.fail(op, f"reducing over the non-contiguous axes {axes} is not supported "
                           "(supported: contiguous axes, e.g. [1, 2] of NHWC = global average pooling)")
    shape = [int(d) for d in x.shape]
    outer = int(np.prod(shape[:axes[0]], dtype=np.int64))
    reduced = int(np.prod(shape[axes[0]:axes[-1] + 1], dtype=np.int64))
    inner = int(np.prod(shape[axes[-1] + 1:], dtype=np.int64))
    if y.num_elements != outer * inner:
        raise ctx.fail(op, f"output shape {list(y.shape)} does not match reducing {list(x.shape)} over {axes}")
    common = dict(op_index=op.index, opcode=op.opcode, reads=(x.index,), writes=(y.index,),
                  input=x.index, output=y.index, outer=outer, reduced=reduced, inner=inner)
    if dtype == "float32":
        return Mean(kernel="mean_f32", **common)
    in_scale, in_zp = per_tensor(ctx, op, x, "input")
    out_scale, out_zp = per_tensor(ctx, op, y, "output")
    base = requant(ctx, op, float(np.float32(in_scale)) / float(np.float32(out_scale)), "input/output scale")
    multiplier, shift = mean_multiplier(base.multiplier, base.shift, reduced)
    if not -31 <= shift <= 30:
        raise ctx.fail(op, f"the mean's requantization needs a shift of {shift} (supported: -31..30)")
    return Mean(kernel="mean_s8", input_sum_offset=-in_zp * reduced, output_offset=out_zp,
                multiplier=multiplier, shift=shift, **common)
