"""FULLY_CONNECTED: int8 (per-tensor or per-channel weights), float32,
float32 with int8 weights behind a DEQUANTIZE (kernel fully_connected_f32_w8),
and hybrid: float32 input with constant int8 weights (farm.codegen.ops.hybrid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from farm.codegen.emit import c_float, c_int
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops import hybrid, optimized
from farm.codegen.ops.common import activation, float_clamp, int8_clamp, per_tensor, requant
from farm.codegen.quantize_multiplier import fc_real_multiplier
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator, Tensor


@dataclass(frozen=True)
class FcDims:
    batches: int
    accum_depth: int
    output_depth: int


def _dims(e: StepEmitter, prefix: str, dims: FcDims) -> list[str]:
    return [
        e.dims(f"{prefix}_input_dims", (dims.batches, 1, 1, dims.accum_depth)),
        e.dims(f"{prefix}_filter_dims", (dims.output_depth, 1, 1, dims.accum_depth)),
        e.dims(f"{prefix}_output_dims", (dims.batches, 1, 1, dims.output_depth)),
    ]


@dataclass(frozen=True, kw_only=True)
class FullyConnectedS8(Step):
    input: int
    weights: int
    bias: int | None
    output: int
    dims: FcDims
    input_offset: int
    filter_offset: int
    output_offset: int
    activation: str
    act_min: int
    act_max: int
    multipliers: tuple[int, ...]  # one (per-tensor) or one per output channel
    shifts: tuple[int, ...]

    @property
    def per_channel(self) -> bool:
        return len(self.multipliers) > 1

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines = [e.struct("tf_fc_params_s8", f"{p}_params", [
            ("input_offset", c_int(self.input_offset)), ("filter_offset", c_int(self.filter_offset)),
            ("output_offset", c_int(self.output_offset)), ("activation_min", c_int(self.act_min)),
            ("activation_max", c_int(self.act_max))])]
        if self.per_channel:
            lines += [e.int_array(f"{p}_multiplier", "int32_t", self.multipliers),
                      e.int_array(f"{p}_shift", "int32_t", self.shifts),
                      f"static const tf_per_channel_quant_params {p}_quant = {{{p}_multiplier, {p}_shift}};"]
        else:
            lines.append(f"static const tf_per_tensor_quant_params {p}_quant = "
                         f"{{{c_int(self.multipliers[0])}, {c_int(self.shifts[0])}}};")
        e.declare(self, *lines, *_dims(e, p, self.dims), extra=f" ({self.activation})")
        e.call(self.kernel, [
            f"&{p}_params", f"&{p}_quant",
            f"&{p}_input_dims", e.pointer(self.input, writable=False),
            f"&{p}_filter_dims", e.const_data(self.weights),
            e.const_data(self.bias),
            f"&{p}_output_dims", e.pointer(self.output, writable=True),
        ])


@dataclass(frozen=True, kw_only=True)
class FullyConnectedF32(Step):
    input: int
    weights: int  # float32 constant, or int8 constant when filter_scales is set
    bias: int | None
    output: int
    dims: FcDims
    activation: str
    act_min: float
    act_max: float
    filter_scales: tuple[float, ...] | None = None  # int8 weights: one scale per output channel

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines = [f"static const tf_fc_params_f32 {p}_params = {{{c_float(self.act_min)}, {c_float(self.act_max)}}};"]
        if self.filter_scales is not None:
            lines.append(e.float_array(f"{p}_filter_scales", self.filter_scales))
        e.declare(self, *lines, *_dims(e, p, self.dims),
                  extra=f" ({self.activation}{', int8 weights' if self.filter_scales else ''})")
        args = [f"&{p}_params", f"&{p}_input_dims", e.pointer(self.input, writable=False),
                f"&{p}_filter_dims", e.const_data(self.weights)]
        if self.filter_scales is not None:
            args.append(f"{p}_filter_scales")
        args += [e.const_data(self.bias), f"&{p}_output_dims", e.pointer(self.output, writable=True)]
        e.call(self.kernel, args)


def fused_weight_scales(ctx: LoweringContext, op: Operator, w: Tensor, channels: int,
                        channel_axis: int) -> tuple[Tensor, tuple[float, ...]] | None:
    """(int8 source, one scale per output channel) when `w` is a fused DEQUANTIZE of int8 weights."""
    dequantize = ctx.fused_weights.get(w.index)
    if dequantize is None:
        return None
    q = ctx.tensor(dequantize.inputs[0])
    assert q.quant is not None
    if q.quant.per_channel:
        if q.quant.quantized_dimension != channel_axis or q.quant.scales.size != channels:
            raise ctx.fail(op, f"per-channel int8 weights #{q.index} need {channels} scales along dimension "
                               f"{channel_axis}, got {q.quant.scales.size} along {q.quant.quantized_dimension}")
        scales = q.quant.scales
    else:
        scales = np.repeat(q.quant.scales[:1], channels)
    return q, tuple(float(s) for s in scales)


def weight_step_reads(x: int, w: int, bias: int | None) -> tuple[int, ...]:
    return (x, w) + ((bias,) if bias is not None else ())


@lowering("FULLY_CONNECTED")
def lower_fully_connected(ctx: LoweringContext, op: Operator) -> Step:
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        raise ctx.fail(op, f"expects (input, weights[, bias]) -> output, got {len(op.inputs)} "
                           f"inputs and {len(op.outputs)} outputs")
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise ctx.fail(op, "shuffled weights format is not supported (supported: DEFAULT)")
    act = activation(ctx, op)
    x = ctx.tensor(op.inputs[0])
    w = ctx.tensor(op.inputs[1])
    bias_index = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    bias = ctx.tensor(bias_index) if bias_index is not None else None
    y = ctx.tensor(op.outputs[0])

    if len(w.shape) != 2:
        raise ctx.fail(op, f"weights must be 2-D [output_depth, accum_depth], got shape {list(w.shape)}")
    output_depth, accum_depth = w.shape
    if accum_depth <= 0 or x.num_elements % accum_depth:
        raise ctx.fail(op, f"input shape {list(x.shape)} does not divide into rows of {accum_depth}")
    batches = x.num_elements // accum_depth
    if y.num_elements != batches * output_depth:
        raise ctx.fail(op, f"output shape {list(y.shape)} != {batches} x {output_depth}")
    dims = FcDims(batches, accum_depth, output_depth)
    if bias is not None:
        if not bias.is_constant:
            raise ctx.fail(op, f"bias tensor #{bias.index} must be a constant")
        if bias.num_elements != output_depth:
            raise ctx.fail(op, f"bias has {bias.num_elements} elements for {output_depth} outputs")
    macs = batches * accum_depth * output_depth
    if x.dtype == "float32":
        return _fc_float(ctx, op, x, w, bias, y, dims, act, macs)
    if x.dtype == "int8":
        return _fc_int8(ctx, op, x, w, bias, y, dims, act, macs)
    raise ctx.fail(op, f"{x.dtype} input is not supported (supported: float32, int8)")


def _fc_float(ctx: LoweringContext, op: Operator, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
              dims: FcDims, act: str, macs: int) -> Step:
    if y.dtype != "float32":
        raise ctx.fail(op, f"float32 input with {y.dtype} output is not supported")
    if bias is not None and bias.dtype != "float32":
        raise ctx.fail(op, f"float32 FULLY_CONNECTED with a {bias.dtype} bias is not supported")
    act_min, act_max = float_clamp(act)
    bias_index = bias.index if bias is not None else None
    common: dict[str, Any] = dict(op_index=op.index, opcode=op.opcode, input=x.index, bias=bias_index,
                                  output=y.index, dims=dims, activation=act, act_min=act_min, act_max=act_max,
                                  writes=(y.index,), macs=macs)
    if w.is_constant and w.dtype == "float32":
        return FullyConnectedF32(kernel="fully_connected_f32", weights=w.index,
                                 reads=weight_step_reads(x.index, w.index, bias_index), **common)
    fused = fused_weight_scales(ctx, op, w, dims.output_depth, 0)
    if fused is not None:
        q, scales = fused
        return FullyConnectedF32(kernel="fully_connected_f32_w8", weights=q.index, filter_scales=scales,
                                 reads=weight_step_reads(x.index, q.index, bias_index), **common)
    if hybrid.is_hybrid(x, w):
        return hybrid.fully_connected_hybrid(ctx, op, x=x, w=w, bias=bias, y=y, batches=dims.batches,
                                             accum_depth=dims.accum_depth, output_depth=dims.output_depth,
                                             activation=act, act_min=act_min, act_max=act_max, macs=macs)
    if not w.is_constant:
        raise ctx.fail(op, f"weights tensor #{w.index} is not a constant (nor a per-tensor DEQUANTIZE of int8 "
                           "weights that only weight-reading ops read)")
    raise ctx.fail(op, f"float32 input with {w.dtype} weights is not supported")


def int8_weight_multipliers(ctx: LoweringContext, op: Operator, x: Tensor, w: Tensor, y: Tensor,
                            channels: int, quantized_dimension: int) -> tuple[list[int], list[int], bool]:
    """TFLM's per-channel (or per-tensor) effective scales of a weight op -> multipliers and shifts."""
    in_scale, _ = per_tensor(ctx, op, x, "input")
    out_scale, _ = per_tensor(ctx, op, y, "output")
    if w.quant is None:
        raise ctx.fail(op, f"weights tensor #{w.index} has no quantization parameters")
    per_channel = w.quant.per_channel  # TFLM's test: more than one scale
    if per_channel:
        if w.quant.scales.size != channels or w.quant.quantized_dimension != quantized_dimension:
            raise ctx.fail(op, f"per-channel weights need {channels} scales along dimension {quantized_dimension}, "
                               f"got {w.quant.scales.size} along {w.quant.quantized_dimension}")
        if np.any(w.quant.zero_points != 0):
            raise ctx.fail(op, "per-channel weights must be symmetric (zero points 0)")
        scales = [float(s) for s in w.quant.scales]
    else:
        scales = [w.quant.scale]
    multipliers, shifts = [], []
    for scale in scales:
        r = requant(ctx, op, fc_real_multiplier(in_scale, scale, out_scale), "weights")
        multipliers.append(r.multiplier)
        shifts.append(r.shift)
    return multipliers, shifts, per_channel


def _fc_int8(ctx: LoweringContext, op: Operator, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
             dims: FcDims, act: str, macs: int) -> Step:
    if y.dtype != "int8":
        raise ctx.fail(op, f"int8 input with {y.dtype} output is not supported")
    if not w.is_constant or w.dtype != "int8":
        raise ctx.fail(op, f"int8 input needs constant int8 weights, got {w.dtype}"
                           f"{'' if w.is_constant else ' (not constant)'}")
    if bias is not None and bias.dtype != "int32":
        raise ctx.fail(op, f"int8 FULLY_CONNECTED with a {bias.dtype} bias is not supported "
                           "(supported: int32)")
    multipliers, shifts, per_channel = int8_weight_multipliers(ctx, op, x, w, y, dims.output_depth, 0)
    assert w.quant is not None
    _, in_zp = per_tensor(ctx, op, x, "input")
    _, out_zp = per_tensor(ctx, op, y, "output")
    act_min, act_max = int8_clamp(ctx, op, y, act)
    bias_index = bias.index if bias is not None else None
    filter_offset = 0 if per_channel else -w.quant.zero_point
    if ctx.optimize:
        fast = optimized.fully_connected_s8(
            op_index=op.index, opcode=op.opcode, x=x, w=w, bias=bias, y=y, batches=dims.batches,
            accum_depth=dims.accum_depth, output_depth=dims.output_depth, activation=act, input_offset=-in_zp,
            filter_offset=filter_offset, output_offset=out_zp, act_min=act_min, act_max=act_max,
            multipliers=tuple(multipliers), shifts=tuple(shifts), macs=macs)
        if fast is not None:
            return fast
    return FullyConnectedS8(
        op_index=op.index, opcode=op.opcode,
        kernel="fully_connected_per_channel_s8" if per_channel else "fully_connected_s8",
        reads=weight_step_reads(x.index, w.index, bias_index), writes=(y.index,), macs=macs,
        input=x.index, weights=w.index, bias=bias_index, output=y.index,
        dims=dims, input_offset=-in_zp, filter_offset=filter_offset,
        output_offset=out_zp, activation=act, act_min=act_min, act_max=act_max,
        multipliers=tuple(multipliers), shifts=tuple(shifts),
    )
