"""QUANTIZE (float32 -> int8, and int8 -> int8 requantization) and DEQUANTIZE
(int8 -> float32). A DEQUANTIZE of constant int8 weights that only weight ops
read is folded into them (see farm.codegen.ir.fusable_dequantize)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import c_float, c_int
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.activations import Unary, requantize_fields, unary_io
from farm.codegen.ops.common import per_tensor, requant
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@dataclass(frozen=True, kw_only=True)
class Affine(Step):
    """quantize_f32_s8 / dequantize_s8_f32: (affine params, size, input, output)."""

    input: int
    output: int
    size: int
    scale: float
    zero_point: int

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        e.declare(self, f"static const tf_affine_quant_params {p}_quant = "
                        f"{{{c_float(self.scale)}, {c_int(self.zero_point)}}};")
        e.call(self.kernel, [f"&{p}_quant", str(self.size), e.pointer(self.input, writable=False),
                             e.pointer(self.output, writable=True)])


@lowering("QUANTIZE")
def lower_quantize(ctx: LoweringContext, op: Operator) -> Step:
    x, y = unary_io(ctx, op)
    if y.dtype != "int8" or x.dtype not in ("float32", "int8"):
        raise ctx.fail(op, f"{x.dtype} -> {y.dtype} is not supported (supported: float32 -> int8, int8 -> int8)")
    out_scale, out_zp = per_tensor(ctx, op, y, "output")
    if x.dtype == "float32":
        return Affine(op_index=op.index, opcode=op.opcode, kernel="quantize_f32_s8", reads=(x.index,),
                      writes=(y.index,), input=x.index, output=y.index, size=x.num_elements,
                      scale=out_scale, zero_point=out_zp)
    in_scale, in_zp = per_tensor(ctx, op, x, "input")
    r = requant(ctx, op, float(np.float32(in_scale)) / float(np.float32(out_scale)), "input/output scale")
    return Unary(op_index=op.index, opcode=op.opcode, kernel="requantize_s8", reads=(x.index,), writes=(y.index,),
                 input=x.index, output=y.index, size=x.num_elements, struct="tf_requantize_params_s8",
                 params=requantize_fields(in_zp, out_zp, r.multiplier, r.shift, -128, 127),
                 inplace=((y.index, x.index),), note="requantize")


@lowering("DEQUANTIZE")
def lower_dequantize(ctx: LoweringContext, op: Operator) -> Step | None:
    if len(op.inputs) == 1 and len(op.outputs) == 1 and op.outputs[0] in ctx.fused_weights:
        return None  # folded into the ops that read it as weights
    if op.inputs and ctx.model.main.tensors[op.inputs[0]].dtype == "float16":
        raise ctx.fail(op, f"input tensor #{op.inputs[0]} is float16 (a file converted with float16 "
                           "quantization, target_spec.supported_types=[tf.float16]); supported are "
                           "float32, int8 weights behind DEQUANTIZE, dynamic-range and int8 files")
    x, y = unary_io(ctx, op)
    if x.dtype != "int8" or y.dtype != "float32":
        raise ctx.fail(op, f"{x.dtype} -> {y.dtype} is not supported (supported: int8 -> float32)")
    if x.quant is not None and x.quant.per_channel:
        raise ctx.fail(op, "per-channel DEQUANTIZE is only supported for the weights of FULLY_CONNECTED, "
                           "CONV_2D and DEPTHWISE_CONV_2D")
    scale, zp = per_tensor(ctx, op, x, "input")
    return Affine(op_index=op.index, opcode=op.opcode, kernel="dequantize_s8_f32", reads=(x.index,),
                  writes=(y.index,), input=x.index, output=y.index, size=x.num_elements, scale=scale, zero_point=zp)
