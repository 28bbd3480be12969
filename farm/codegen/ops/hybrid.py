"""Hybrid (dynamic-range) FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D: float32
input and output with constant int8 weights, what ``Optimize.DEFAULT`` without a
representative dataset makes (kernels ``*_hybrid_f32_s8``).

TensorFlow Lite quantizes each batch of the input at run time, multiplies
int8 x int8 into int32 and rescales in float; which of its kernels runs, and so
how the input is quantized and in which order the scales multiply, depends on
the op (the kernels document the arithmetic):

- FULLY_CONNECTED: the op's ``asymmetric_quantize_inputs`` picks asymmetric or
  symmetric input quantization; weights per tensor or per output channel.
- CONV_2D: per-channel weights (scales not all equal) run TensorFlow Lite's
  per-channel kernel, asymmetric; per-tensor weights its per-tensor kernel,
  symmetric. A grouped convolution always runs the per-channel kernel, which
  reads one scale per output channel, so it needs per-channel weights.
- DEPTHWISE_CONV_2D: one kernel, per-channel and asymmetric; it reads one scale
  per output channel, so per-tensor weights (one scale for several channels)
  are refused: TensorFlow Lite itself reads past the scale there.

The host does the constant work: one scale per output channel (a per-tensor
scale repeated) and, for the asymmetric FULLY_CONNECTED, each channel's weight
sum (the zero-point correction). The quantized input lives in the shared kernel
scratch buffer (one batch of the input). These modules are called by the
FULLY_CONNECTED and convolution lowerings when they see a hybrid op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import c_float
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import Window, window_literal
from farm.codegen.tflite_reader import Operator, Tensor


def _reads(x: int, w: int, bias: int | None) -> tuple[int, ...]:
    return (x, w) + ((bias,) if bias is not None else ())


@dataclass(frozen=True, kw_only=True)
class HybridFullyConnected(Step):
    """A fully_connected_hybrid_f32_s8 call."""

    input: int
    weights: int
    bias: int | None
    output: int
    batches: int
    accum_depth: int
    output_depth: int
    activation: str
    act_min: float
    act_max: float
    asymmetric: bool
    per_channel: bool
    filter_scales: tuple[float, ...]  # one per output channel
    row_sums: tuple[int, ...] | None  # asymmetric: the sum of each channel's weights

    @property
    def own_const_bytes(self) -> int:
        return 4 * len(self.row_sums or ())

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines = [e.struct("tf_fc_params_hybrid", f"{p}_params", [
                     ("activation_min", c_float(self.act_min)), ("activation_max", c_float(self.act_max)),
                     ("asymmetric", "1" if self.asymmetric else "0")]),
                 e.float_array(f"{p}_filter_scales", self.filter_scales)]
        if self.row_sums is not None:
            lines.append(e.int_array(f"{p}_row_sums", "int32_t", self.row_sums))
        lines += [e.dims(f"{p}_input_dims", (self.batches, 1, 1, self.accum_depth)),
                  e.dims(f"{p}_filter_dims", (self.output_depth, 1, 1, self.accum_depth)),
                  e.dims(f"{p}_output_dims", (self.batches, 1, 1, self.output_depth))]
        e.declare(self, *lines, extra=f" ({self.activation}, hybrid: {_describe(self.per_channel, self.asymmetric)})")
        e.call(self.kernel, [
            f"&{p}_params", f"&{p}_input_dims", e.pointer(self.input, writable=False),
            f"&{p}_filter_dims", e.const_data(self.weights), f"{p}_filter_scales",
            f"{p}_row_sums" if self.row_sums is not None else "NULL", e.const_data(self.bias),
            f"&{p}_output_dims", e.pointer(self.output, writable=True), e.scratch(),
        ])


@dataclass(frozen=True, kw_only=True)
class HybridConv(Step):
    """A conv2d_hybrid_f32_s8 or depthwise_conv2d_hybrid_f32_s8 call."""

    depthwise: bool
    input: int
    weights: int
    bias: int | None
    output: int
    input_dims: tuple[int, int, int, int]
    filter_dims: tuple[int, int, int, int]
    output_dims: tuple[int, int, int, int]
    window: Window
    depth_multiplier: int
    activation: str
    act_min: float
    act_max: float
    asymmetric: bool
    per_channel: bool
    filter_scales: tuple[float, ...]  # one per output channel

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        fields = [("window", window_literal(self.window))]
        if self.depthwise:
            fields.append(("depth_multiplier", str(self.depth_multiplier)))
        fields += [("activation_min", c_float(self.act_min)), ("activation_max", c_float(self.act_max))]
        if not self.depthwise:
            fields.append(("asymmetric", "1" if self.asymmetric else "0"))
        kind = "depthwise" if self.depthwise else "conv"
        w = self.window
        e.declare(self, e.struct(f"tf_{kind}_params_hybrid", f"{p}_params", fields),
                  e.float_array(f"{p}_filter_scales", self.filter_scales),
                  e.dims(f"{p}_input_dims", self.input_dims), e.dims(f"{p}_filter_dims", self.filter_dims),
                  e.dims(f"{p}_output_dims", self.output_dims),
                  extra=f" ({self.activation}, stride {w.stride_h}x{w.stride_w}, dilation {w.dilation_h}x"
                        f"{w.dilation_w}, pad {w.pad_h},{w.pad_w}, hybrid: "
                        f"{_describe(self.per_channel, self.asymmetric)})")
        e.call(self.kernel, [
            f"&{p}_params", f"&{p}_input_dims", e.pointer(self.input, writable=False),
            f"&{p}_filter_dims", e.const_data(self.weights), f"{p}_filter_scales",
            e.const_data(self.bias), f"&{p}_output_dims", e.pointer(self.output, writable=True), e.scratch(),
        ])


def _describe(per_channel: bool, asymmetric: bool) -> str:
    return (f"int8 weights per {'channel' if per_channel else 'tensor'}, "
            f"{'asymmetric' if asymmetric else 'symmetric'} input quantization")


def is_hybrid(x: Tensor, w: Tensor) -> bool:
    """A float32 input with constant int8 weights: the op is hybrid."""
    return x.dtype == "float32" and w.is_constant and w.dtype == "int8"


def weight_scales(ctx: LoweringContext, op: Operator, w: Tensor, channels: int,
                  channel_axis: int) -> tuple[tuple[float, ...], bool]:
    """(one scale per output channel, whether the file gives one per channel) of
    hybrid int8 weights, which must be symmetric with positive finite scales."""
    q = w.quant
    if q is None:
        raise ctx.fail(op, f"hybrid {op.opcode}: int8 weights #{w.index} have no quantization parameters")
    if np.any(q.zero_points != 0):
        raise ctx.fail(op, f"hybrid {op.opcode}: int8 weights #{w.index} must be symmetric (zero points 0), "
                           "as TensorFlow Lite's hybrid kernels assume")
    scales = np.asarray(q.scales, dtype=np.float32)
    if not np.all(np.isfinite(scales)) or not np.all(scales > 0):
        raise ctx.fail(op, f"hybrid {op.opcode}: int8 weights #{w.index} need positive finite scales, "
                           f"got {scales.tolist()[:8]}")
    if q.per_channel:
        if scales.size != channels or q.quantized_dimension != channel_axis:
            raise ctx.fail(op, f"hybrid {op.opcode}: per-channel int8 weights #{w.index} need {channels} scales "
                               f"along dimension {channel_axis}, got {scales.size} along {q.quantized_dimension}")
        return tuple(float(s) for s in scales), True
    return tuple(float(scales[0]) for _ in range(channels)), False


def fully_connected_hybrid(ctx: LoweringContext, op: Operator, *, x: Tensor, w: Tensor, bias: Tensor | None,
                           y: Tensor, batches: int, accum_depth: int, output_depth: int, activation: str,
                           act_min: float, act_max: float, macs: int) -> Step:
    """The step of a hybrid FULLY_CONNECTED (float32 input and bias already checked)."""
    if y.dtype != "float32":
        raise ctx.fail(op, f"hybrid FULLY_CONNECTED: output tensor #{y.index} is {y.dtype} (supported: float32)")
    scales, per_channel = weight_scales(ctx, op, w, output_depth, 0)
    asymmetric = bool(op.options.get("asymmetric_quantize_inputs", False))
    row_sums = None
    if asymmetric:
        assert w.data is not None
        rows = np.asarray(w.data, dtype=np.int64).reshape(output_depth, accum_depth)
        row_sums = tuple(int(s) for s in rows.sum(axis=1))
    bias_index = bias.index if bias is not None else None
    return HybridFullyConnected(
        op_index=op.index, opcode=op.opcode, kernel="fully_connected_hybrid_f32_s8",
        reads=_reads(x.index, w.index, bias_index), writes=(y.index,), macs=macs, scratch_bytes=accum_depth,
        input=x.index, weights=w.index, bias=bias_index, output=y.index, batches=batches,
        accum_depth=accum_depth, output_depth=output_depth, activation=activation, act_min=act_min,
        act_max=act_max, asymmetric=asymmetric, per_channel=per_channel, filter_scales=scales, row_sums=row_sums)


def conv_hybrid(ctx: LoweringContext, op: Operator, *, depthwise: bool, x: Tensor, w: Tensor, bias: Tensor | None,
                y: Tensor, input_dims: tuple[int, int, int, int], filter_dims: tuple[int, int, int, int],
                output_dims: tuple[int, int, int, int], window: Window, depth_multiplier: int, activation: str,
                act_min: float, act_max: float, macs: int) -> Step:
    """The step of a hybrid CONV_2D / DEPTHWISE_CONV_2D (shapes, window, float32
    output and bias already checked)."""
    out_c = output_dims[3]
    scales, per_channel = weight_scales(ctx, op, w, out_c, 3 if depthwise else 0)
    distinct = len(set(scales)) > 1
    if depthwise:
        if not per_channel and out_c > 1:
            raise ctx.fail(op, f"hybrid DEPTHWISE_CONV_2D with per-tensor int8 weights #{w.index} (one scale for "
                               f"{out_c} channels) is not supported: TensorFlow Lite's only hybrid depthwise "
                               "kernel reads one scale per output channel; convert with per-channel weights")
        asymmetric = True
    else:
        grouped = filter_dims[3] != input_dims[3]
        if grouped and not per_channel:
            raise ctx.fail(op, f"hybrid grouped CONV_2D with per-tensor int8 weights #{w.index} is not supported: "
                               "TensorFlow Lite runs grouped hybrid convolutions with its per-channel kernel, "
                               "which reads one scale per output channel; convert with per-channel weights")
        asymmetric = distinct or grouped  # TensorFlow Lite's per-channel kernel
    bias_index = bias.index if bias is not None else None
    batch_bytes = input_dims[1] * input_dims[2] * input_dims[3]
    return HybridConv(
        op_index=op.index, opcode=op.opcode,
        kernel="depthwise_conv2d_hybrid_f32_s8" if depthwise else "conv2d_hybrid_f32_s8",
        reads=_reads(x.index, w.index, bias_index), writes=(y.index,), macs=macs, scratch_bytes=batch_bytes,
        depthwise=depthwise, input=x.index, weights=w.index, bias=bias_index, output=y.index,
        input_dims=input_dims, filter_dims=filter_dims, output_dims=output_dims, window=window,
        depth_multiplier=depth_multiplier, activation=activation, act_min=act_min, act_max=act_max,
        asymmetric=asymmetric, per_channel=per_channel, filter_scales=scales)
