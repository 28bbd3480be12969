"""CONV_2D and DEPTHWISE_CONV_2D: int8 (per-channel or per-tensor weights,
always requantized per output channel, like TFLM), float32, and float32 with
int8 weights behind a DEQUANTIZE (kernels ``*_f32_w8``), and hybrid: float32 input
with constant int8 weights (farm.codegen.ops.hybrid). SAME / VALID padding,
strides, dilations, any depth multiplier, grouped convolutions."""

from __future__ import annotations

from dataclasses import dataclass

from farm.codegen.emit import c_float
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops import hybrid, optimized
from farm.codegen.ops.common import (
    Window,
    activation,
    float_clamp,
    int8_clamp,
    int8_conv_params,
    per_tensor,
    shape4,
    window,
    window_literal,
)
from farm.codegen.ops.fully_connected import fused_weight_scales, int8_weight_multipliers, weight_step_reads
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@dataclass(frozen=True, kw_only=True)
class Conv(Step):
    """A CONV_2D or DEPTHWISE_CONV_2D kernel call."""

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
    # int8
    input_offset: int = 0
    output_offset: int = 0
    act_min_q: int = -128
    act_max_q: int = 127
    multipliers: tuple[int, ...] = ()
    shifts: tuple[int, ...] = ()
    # float
    act_min_f: float = 0.0
    act_max_f: float = 0.0
    filter_scales: tuple[float, ...] | None = None

    @property
    def int8(self) -> bool:
        return self.kernel.endswith("_s8")

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        lines = []
        if self.int8:
            lines += [int8_conv_params(e, f"{p}_params", depthwise=self.depthwise, window=self.window,
                                       depth_multiplier=self.depth_multiplier, input_offset=self.input_offset,
                                       output_offset=self.output_offset, act_min=self.act_min_q,
                                       act_max=self.act_max_q),
                      e.int_array(f"{p}_multiplier", "int32_t", self.multipliers),
                      e.int_array(f"{p}_shift", "int32_t", self.shifts),
                      f"static const tf_per_channel_quant_params {p}_quant = {{{p}_multiplier, {p}_shift}};"]
        else:
            fields = [("window", window_literal(self.window))]
            if self.depthwise:
                fields.append(("depth_multiplier", str(self.depth_multiplier)))
            fields += [("activation_min", c_float(self.act_min_f)), ("activation_max", c_float(self.act_max_f))]
            kind = "depthwise" if self.depthwise else "conv"
            lines.append(e.struct(f"tf_{kind}_params_f32", f"{p}_params", fields))
            if self.filter_scales is not None:
                lines.append(e.float_array(f"{p}_filter_scales", self.filter_scales))
        lines += [e.dims(f"{p}_input_dims", self.input_dims), e.dims(f"{p}_filter_dims", self.filter_dims),
                  e.dims(f"{p}_output_dims", self.output_dims)]
        w = self.window
        e.declare(self, *lines, extra=f" ({self.activation}, stride {w.stride_h}x{w.stride_w}, dilation "
                                      f"{w.dilation_h}x{w.dilation_w}, pad {w.pad_h},{w.pad_w}"
                                      f"{', int8 weights' if self.filter_scales else ''})")
        args = [f"&{p}_params"] + ([f"&{p}_quant"] if self.int8 else [])
        args += [f"&{p}_input_dims", e.pointer(self.input, writable=False),
                 f"&{p}_filter_dims", e.const_data(self.weights)]
        if self.filter_scales is not None:
            args.append(f"{p}_filter_scales")
        args += [e.const_data(self.bias), f"&{p}_output_dims", e.pointer(self.output, writable=True)]
        e.call(self.kernel, args)


@lowering("CONV_2D", "DEPTHWISE_CONV_2D")
def lower_conv(ctx: LoweringContext, op: Operator) -> Step:
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    if len(op.inputs) < 2 or len(op.inputs) > 3 or len(op.outputs) != 1:
        raise ctx.fail(op, f"expects (input, filter[, bias]) -> output, got {len(op.inputs)} inputs "
                           f"and {len(op.outputs)} outputs")
    act = activation(ctx, op)
    x = ctx.tensor(op.inputs[0])
    w = ctx.tensor(op.inputs[1])
    bias_index = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    bias = ctx.tensor(bias_index) if bias_index is not None else None
    y = ctx.tensor(op.outputs[0])
    for t, role in ((x, "input"), (y, "output"), (w, "filter")):
        if len(t.shape) != 4:
            raise ctx.fail(op, f"{role} tensor #{t.index} must be 4-D, got shape {list(t.shape)}")
    in_dims = shape4(ctx, op, x, "input")
    f_dims = shape4(ctx, op, w, "filter")
    out_dims = shape4(ctx, op, y, "output")
    batches, in_h, in_w, in_c = in_dims
    if out_dims[0] != batches:
        raise ctx.fail(op, f"output batch {out_dims[0]} != input batch {batches}")

    if depthwise:
        _, k_h, k_w, out_c = f_dims
        if f_dims[0] != 1 or out_c % in_c or out_dims[3] != out_c:
            raise ctx.fail(op, f"filter shape {list(w.shape)} does not fit input {list(x.shape)} and output "
                               f"{list(y.shape)} (expected [1, kh, kw, {in_c} x depth multiplier])")
        multiplier = out_c // in_c
        declared = int(op.options.get("depth_multiplier", 0) or 0)
        if declared not in (0, multiplier):
            raise ctx.fail(op, f"depth_multiplier option {declared} does not match the shapes "
                               f"({out_c} output channels / {in_c} input channels)")
        macs = out_dims[1] * out_dims[2] * out_c * k_h * k_w * batches
        channel_axis = 3
    else:
        out_c, k_h, k_w, group_c = f_dims
        if out_dims[3] != out_c or group_c <= 0 or in_c % group_c or out_c % (in_c // group_c):
            raise ctx.fail(op, f"filter shape {list(w.shape)} does not fit input {list(x.shape)} and output "
                               f"{list(y.shape)}")
        multiplier = 1
        macs = out_dims[1] * out_dims[2] * out_c * k_h * k_w * group_c * batches
        channel_axis = 0
    win = window(ctx, op, in_hw=(in_h, in_w), filter_hw=(k_h, k_w), out_hw=(out_dims[1], out_dims[2]),
                 dilated=True)
    if bias is not None:
        if not bias.is_constant:
            raise ctx.fail(op, f"bias tensor #{bias.index} must be a constant")
        if bias.num_elements != out_c:
            raise ctx.fail(op, f"bias has {bias.num_elements} elements for {out_c} output channels")

    name = "depthwise_conv2d" if depthwise else "conv2d"
    common = dict(op_index=op.index, opcode=op.opcode, depthwise=depthwise, input=x.index, bias=bias_index,
                  output=y.index, input_dims=in_dims, filter_dims=f_dims, output_dims=out_dims, window=win,
                  depth_multiplier=multiplier, activation=act, writes=(y.index,), macs=macs)
    if x.dtype == "int8":
        if y.dtype != "int8":
            raise ctx.fail(op, f"int8 input with {y.dtype} output is not supported")
        if not w.is_constant or w.dtype != "int8":
            raise ctx.fail(op, f"int8 input needs constant int8 weights, got {w.dtype}"
                               f"{'' if w.is_constant else ' (not constant)'}")
        if w.quant is None or any(int(z) != 0 for z in w.quant.zero_points):
            raise ctx.fail(op, "int8 weights must be symmetric (zero points 0), as TFLM's kernel assumes")
        if bias is not None and bias.dtype != "int32":
            raise ctx.fail(op, f"int8 {op.opcode} with a {bias.dtype} bias is not supported (supported: int32)")
        multipliers, shifts, per_channel = int8_weight_multipliers(ctx, op, x, w, y, out_c, channel_axis)
        if not per_channel:  # TFLM broadcasts the per-tensor scale along the output channels
            multipliers, shifts = multipliers * out_c, shifts * out_c
        _, in_zp = per_tensor(ctx, op, x, "input")
        _, out_zp = per_tensor(ctx, op, y, "output")
        act_min, act_max = int8_clamp(ctx, op, y, act)
        if ctx.optimize:
            fast = optimized.conv_s8(
                op_index=op.index, opcode=op.opcode, depthwise=depthwise, x=x, w=w, bias=bias, y=y,
                input_dims=in_dims, filter_dims=f_dims, output_dims=out_dims, window=win,
                depth_multiplier=multiplier, activation=act, input_offset=-in_zp, output_offset=out_zp,
                act_min=act_min, act_max=act_max, multipliers=tuple(multipliers), shifts=tuple(shifts), macs=macs)
            if fast is not None:
                return fast
        return Conv(kernel=f"{name}_s8", weights=w.index, reads=weight_step_reads(x.index, w.index, bias_index),
                    input_offset=-in_zp, output_offset=out_zp, act_min_q=act_min, act_max_q=act_max,
                    multipliers=tuple(multipliers), shifts=tuple(shifts), **common)
    if x.dtype != "float32":
        raise ctx.fail(op, f"{x.dtype} input is not supported (supported: float32, int8)")
    if y.dtype != "float32":
        raise ctx.fail(op, f"float32 input with {y.dtype} output is not supported")
    if bias is not None and bias.dtype != "float32":
        raise ctx.fail(op, f"float32 {op.opcode} with a {bias.dtype} bias is not supported")
    act_min_f, act_max_f = float_clamp(act)
    if w.is_constant and w.dtype == "float32":
        return Conv(kernel=f"{name}_f32", weights=w.index, reads=weight_step_reads(x.index, w.index, bias_index),
                    act_min_f=act_min_f, act_max_f=act_max_f, **common)
    fused = fused_weight_scales(ctx, op, w, out_c, channel_axis)
    if fused is not None:
        q, scales = fused
        return Conv(kernel=f"{name}_f32_w8", weights=q.index, reads=weight_step_reads(x.index, q.index, bias_index),
                    act_min_f=act_min_f, act_max_f=act_max_f, filter_scales=scales, **common)
    if hybrid.is_hybrid(x, w):
        return hybrid.conv_hybrid(ctx, op, depthwise=depthwise, x=x, w=w, bias=bias, y=y, input_dims=in_dims,
                                  filter_dims=f_dims, output_dims=out_dims, window=win, depth_multiplier=multiplier,
                                  activation=act, act_min=act_min_f, act_max=act_max_f, macs=macs)
    raise ctx.fail(op, f"float32 input needs constant float32 or int8 weights (or a DEQUANTIZE of int8 weights), "
                       f"got {w.dtype}{'' if w.is_constant else ' (not constant)'}")
