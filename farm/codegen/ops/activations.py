"""Standalone activations: RELU, RELU6, LOGISTIC, TANH (int8 and float32).

int8, exactly as TFLM prepares them:
- RELU: requantize with input_scale / output_scale (a float division, then
  QuantizeMultiplier), clamp to [output zero point, 127] (kernel requantize_s8).
- RELU6: no requantization (TFLM's Relu6Quantized clamps the input to [zero
  point, round(6 / scale) + zero point]): requantize_s8 with the identity
  multiplier (2^30, shift 1), which is exact.
- LOGISTIC / TANH: TFLM's gemmlowp fixed-point functions after its input
  rescaling, tabulated on the host for all 256 inputs (kernel lut_s8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import c_float, c_int
from farm.codegen.fixed_point_math import logistic_lut, tanh_lut
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import dtypes, float_clamp, io_count, not_constant, per_tensor, requant
from farm.codegen.quantize_multiplier import round_half_away
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator, Tensor


@dataclass(frozen=True, kw_only=True)
class Unary(Step):
    """An element-wise kernel call: kernel(params_or_table, size, input, output)."""

    input: int
    output: int
    size: int
    struct: str = ""  # the params struct type ("" for no params)
    params: tuple[tuple[str, str], ...] = ()
    table: tuple[int, ...] = ()  # lut_s8: 256 entries
    note: str = ""

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines, args = [], []
        if self.table:
            lines.append(e.int_array(f"{p}_table", "int8_t", self.table))
            args.append(f"{p}_table")
        elif self.struct:
            lines.append(e.struct(self.struct, f"{p}_params", self.params))
            args.append(f"&{p}_params")
        e.declare(self, *lines, extra=f" ({self.note})" if self.note else "")
        e.call(self.kernel, args + [str(self.size), e.pointer(self.input, writable=False),
                                    e.pointer(self.output, writable=True)])


def unary_io(ctx: LoweringContext, op: Operator) -> tuple[Tensor, Tensor]:
    io_count(ctx, op, 1)
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    if x.num_elements != y.num_elements:
        raise ctx.fail(op, f"input shape {list(x.shape)} and output shape {list(y.shape)} differ in size")
    return x, y


def requantize_fields(in_zp: int, out_zp: int, multiplier: int, shift: int, lo: int, hi: int) -> tuple:
    return tuple((k, c_int(v)) for k, v in (("input_zero_point", in_zp), ("output_offset", out_zp),
                                            ("multiplier", multiplier), ("shift", shift),
                                            ("activation_min", lo), ("activation_max", hi)))


def _float_to_quantized(value: float, scale: float, zero_point: int) -> int:
    """TFLM FloatToQuantizedType<int8_t>: round(value / scale) + zero_point, in float, clamped."""
    ratio = float(np.float32(value) / np.float32(scale))
    return max(-128, min(127, round_half_away(ratio) + int(zero_point)))


@lowering("RELU", "RELU6")
def lower_relu(ctx: LoweringContext, op: Operator) -> Step:
    x, y = unary_io(ctx, op)
    dtype = dtypes(ctx, op, [x, y])
    common = dict(op_index=op.index, opcode=op.opcode, reads=(x.index,), writes=(y.index,), input=x.index,
                  output=y.index, size=x.num_elements, inplace=((y.index, x.index),))
    six = op.opcode == "RELU6"
    if dtype == "float32":
        lo, hi = float_clamp("RELU6" if six else "RELU")
        return Unary(kernel="clamp_f32", struct="tf_activation_params_f32",
                     params=(("activation_min", c_float(lo)), ("activation_max", c_float(hi))), **common)
    in_scale, in_zp = per_tensor(ctx, op, x, "input")
    out_scale, out_zp = per_tensor(ctx, op, y, "output")
    if six:
        upper = _float_to_quantized(6.0, in_scale, in_zp)
        fields = requantize_fields(in_zp, in_zp, 1 << 30, 1, in_zp, upper)
        return Unary(kernel="requantize_s8", struct="tf_requantize_params_s8", params=fields,
                     note=f"clamp to [{in_zp}, {upper}]", **common)
    real = float(np.float32(in_scale) / np.float32(out_scale))  # TFLM divides in float here
    r = requant(ctx, op, real, "input/output scale")
    lower = max(-128, out_zp + round_half_away(float(np.float32(0.0) / np.float32(out_scale))))
    fields = requantize_fields(in_zp, out_zp, r.multiplier, r.shift, lower, 127)
    return Unary(kernel="requantize_s8", struct="tf_requantize_params_s8", params=fields, **common)


@lowering("LOGISTIC", "TANH")
def lower_logistic_tanh(ctx: LoweringContext, op: Operator) -> Step:
    x, y = unary_io(ctx, op)
    dtype = dtypes(ctx, op, [x, y])
    common = dict(op_index=op.index, opcode=op.opcode, reads=(x.index,), writes=(y.index,), input=x.index,
                  output=y.index, size=x.num_elements, inplace=((y.index, x.index),))
    logistic = op.opcode == "LOGISTIC"
    if dtype == "float32":
        return Unary(kernel="logistic_f32" if logistic else "tanh_f32", **common)
    in_scale, in_zp = per_tensor(ctx, op, x, "input")
    _, out_zp = per_tensor(ctx, op, y, "output")
    expected_zp = -128 if logistic else 0
    if out_zp != expected_zp:
        raise ctx.fail(op, f"int8 output zero point {out_zp}: TFLM's kernel needs {expected_zp}")
    try:
        table = logistic_lut(in_scale, in_zp) if logistic else tanh_lut(in_scale, in_zp)
    except ValueError as exc:
        raise ctx.fail(op, str(exc)) from None
    return Unary(kernel="lut_s8", table=tuple(table), note="256-entry table of TFLM's int8 kernel", **common)
