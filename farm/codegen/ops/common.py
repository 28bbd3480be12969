"""Helpers shared by the op lowerings: operand checks (counts, shapes, dtypes,
quantization), fused activations, windows and padding, requantization multipliers."""

from __future__ import annotations

from dataclasses import dataclass

from farm.codegen.emit import c_int
from farm.codegen.ir import IO_DTYPES, LoweringContext, Requant, StepEmitter
from farm.codegen.quantize_multiplier import (
    activation_range_f32,
    activation_range_int8,
    quantize_multiplier,
)
from farm.codegen.tflite_reader import Operator, Tensor

SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def io_count(ctx: LoweringContext, op: Operator, inputs: int | tuple[int, int], outputs: int = 1) -> None:
    lo, hi = (inputs, inputs) if isinstance(inputs, int) else inputs
    present = [i for i in op.inputs if i >= 0]
    if not lo <= len(op.inputs) <= hi or len(op.outputs) != outputs or len(present) < lo:
        expected = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ctx.fail(op, f"expects {expected} inputs and {outputs} output(s), got {len(op.inputs)} "
                           f"and {len(op.outputs)}")


def shape4(ctx: LoweringContext, op: Operator, t: Tensor, role: str) -> tuple[int, int, int, int]:
    """The tensor's shape as NHWC, padded with leading 1s (TFLM's ExtendedShape)."""
    if len(t.shape) > 4:
        raise ctx.fail(op, f"{role} tensor #{t.index} has {len(t.shape)} dimensions (supported: up to 4)")
    if any(d <= 0 for d in t.shape):
        raise ctx.fail(op, f"{role} tensor #{t.index} has a dynamic or empty shape {list(t.shape)}")
    dims = (1,) * (4 - len(t.shape)) + tuple(int(d) for d in t.shape)
    return dims  # type: ignore[return-value]


def per_tensor(ctx: LoweringContext, op: Operator, t: Tensor, role: str) -> tuple[float, int]:
    if t.quant is None or t.quant.per_channel:
        raise ctx.fail(op, f"{role} tensor #{t.index} {t.dtype} needs per-tensor quantization")
    if not t.quant.scale > 0:
        raise ctx.fail(op, f"{role} tensor #{t.index} has a non-positive scale {t.quant.scale}")
    return t.quant.scale, t.quant.zero_point


def dtypes(ctx: LoweringContext, op: Operator, tensors: list[Tensor], allowed: tuple[str, ...] = IO_DTYPES) -> str:
    """The one dtype all `tensors` share (float32 or int8), else refuse."""
    kinds = {t.dtype for t in tensors}
    if len(kinds) != 1 or next(iter(kinds)) not in allowed:
        described = ", ".join(f"#{t.index} {t.dtype}" for t in tensors)
        raise ctx.fail(op, f"tensors {described}: supported are all {' or all '.join(allowed)}")
    return kinds.pop()


def not_constant(ctx: LoweringContext, op: Operator, t: Tensor, role: str) -> None:
    if t.is_constant:
        raise ctx.fail(op, f"{role} tensor #{t.index} is a constant (not supported as the {role} of "
                           f"{op.opcode})")


def activation(ctx: LoweringContext, op: Operator) -> str:
    name = str(op.options.get("fused_activation", "NONE"))
    if name not in SUPPORTED_ACTIVATIONS:
        raise ctx.fail(op, f"fused activation {name} is not supported "
                           f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
    return name


def int8_clamp(ctx: LoweringContext, op: Operator, y: Tensor, act: str) -> tuple[int, int]:
    assert y.quant is not None
    return activation_range_int8(act, y.quant.scale, y.quant.zero_point)


def float_clamp(act: str) -> tuple[float, float]:
    return activation_range_f32(act)


def requant(ctx: LoweringContext, op: Operator, real: float, what: str, *, max_shift: int = 30) -> Requant:
    """TFLM QuantizeMultiplier(real), refused when the kernel's shift range cannot hold it."""
    if not real >= 0:
        raise ctx.fail(op, f"{what}: negative or NaN effective scale {real}")
    multiplier, shift = quantize_multiplier(real)
    if not -31 <= shift <= max_shift:
        raise ctx.fail(op, f"{what}: effective scale {real} needs a shift of {shift} "
                           f"(supported: -31..{max_shift})")
    return Requant(multiplier, shift, real)


@dataclass(frozen=True)
class Window:
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int
    pad_w: int


def _out_size(padding: str, size: int, filt: int, stride: int, dilation: int) -> int:
    effective = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride  # VALID


def _pad(stride: int, dilation: int, size: int, filt: int, out: int) -> int:
    effective = (filt - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2  # TFLM: the extra odd row/column goes after


def window(ctx: LoweringContext, op: Operator, *, in_hw: tuple[int, int], filter_hw: tuple[int, int],
           out_hw: tuple[int, int], dilated: bool) -> Window:
    """The window of a CONV_2D / DEPTHWISE_CONV_2D / pooling op, checked against its output shape."""
    padding = str(op.options.get("padding", "SAME"))
    if padding not in ("SAME", "VALID"):
        raise ctx.fail(op, f"padding {padding} is not supported (supported: SAME, VALID)")
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    dil_h = int(op.options.get("dilation_h_factor", 1)) if dilated else 1
    dil_w = int(op.options.get("dilation_w_factor", 1)) if dilated else 1
    if min(stride_h, stride_w, dil_h, dil_w) <= 0:
        raise ctx.fail(op, f"strides ({stride_h}, {stride_w}) and dilations ({dil_h}, {dil_w}) must be positive")
    expected = (_out_size(padding, in_hw[0], filter_hw[0], stride_h, dil_h),
                _out_size(padding, in_hw[1], filter_hw[1], stride_w, dil_w))
    if tuple(out_hw) != expected:
        raise ctx.fail(op, f"output height x width {out_hw[0]}x{out_hw[1]} does not match {padding} padding "
                           f"of {in_hw[0]}x{in_hw[1]} by {filter_hw[0]}x{filter_hw[1]} with strides "
                           f"({stride_h}, {stride_w}), dilations ({dil_h}, {dil_w}): expected "
                           f"{expected[0]}x{expected[1]}")
    return Window(stride_h, stride_w, dil_h, dil_w,
                  _pad(stride_h, dil_h, in_hw[0], filter_hw[0], out_hw[0]),
                  _pad(stride_w, dil_w, in_hw[1], filter_hw[1], out_hw[1]))


def window_literal(w: Window) -> str:
    return (f"{{.stride_h = {w.stride_h}, .stride_w = {w.stride_w}, .dilation_h = {w.dilation_h}, "
            f".dilation_w = {w.dilation_w}, .pad_h = {w.pad_h}, .pad_w = {w.pad_w}}}")


def int8_conv_params(e: StepEmitter, name: str, *, depthwise: bool, window: Window, depth_multiplier: int,
                     input_offset: int, output_offset: int, act_min: int, act_max: int) -> str:
    """The tf_conv_params_s8 / tf_depthwise_params_s8 of an int8 convolution (reference and optimized)."""
    fields = [("window", window_literal(window))]
    if depthwise:
        fields.append(("depth_multiplier", str(depth_multiplier)))
    fields += [("input_offset", c_int(input_offset)), ("output_offset", c_int(output_offset)),
               ("activation_min", c_int(act_min)), ("activation_max", c_int(act_max))]
    return e.struct(f"tf_{'depthwise' if depthwise else 'conv'}_params_s8", name, fields)
