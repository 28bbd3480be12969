"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32: SAME / VALID padding,
strides, fused activations. int8 input and output share scale and zero point
(TFLM refuses them otherwise, and so does the code generator)."""

from __future__ import annotations

from dataclasses import dataclass

from farm.codegen.emit import c_float, c_int
from farm.codegen.ir import LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import (
    Window,
    activation,
    dtypes,
    float_clamp,
    int8_clamp,
    io_count,
    not_constant,
    per_tensor,
    shape4,
    window,
    window_literal,
)
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@dataclass(frozen=True, kw_only=True)
class Pool(Step):
    input: int
    output: int
    input_dims: tuple[int, int, int, int]
    filter_hw: tuple[int, int]
    output_dims: tuple[int, int, int, int]
    window: Window
    activation: str
    act_min: float | int
    act_max: float | int

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        int8 = self.kernel.endswith("_s8")
        lit = c_int if int8 else c_float
        e.declare(self,
                  e.struct(f"tf_pool_params_{'s8' if int8 else 'f32'}", f"{p}_params", [
                      ("window", window_literal(self.window)),
                      ("activation_min", lit(self.act_min)), ("activation_max", lit(self.act_max))]),
                  e.dims(f"{p}_input_dims", self.input_dims),
                  e.dims(f"{p}_filter_dims", (1, self.filter_hw[0], self.filter_hw[1], 1)),
                  e.dims(f"{p}_output_dims", self.output_dims),
                  extra=f" ({self.filter_hw[0]}x{self.filter_hw[1]}, stride {self.window.stride_h}x"
                        f"{self.window.stride_w}, pad {self.window.pad_h},{self.window.pad_w}, {self.activation})")
        e.call(self.kernel, [f"&{p}_params", f"&{p}_input_dims", e.pointer(self.input, writable=False),
                             f"&{p}_filter_dims", f"&{p}_output_dims", e.pointer(self.output, writable=True)])


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, 1)
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    dtype = dtypes(ctx, op, [x, y])
    for t, role in ((x, "input"), (y, "output")):
        if len(t.shape) != 4:
            raise ctx.fail(op, f"{role} tensor #{t.index} must be 4-D, got shape {list(t.shape)}")
    in_dims, out_dims = shape4(ctx, op, x, "input"), shape4(ctx, op, y, "output")
    if in_dims[0] != out_dims[0] or in_dims[3] != out_dims[3]:
        raise ctx.fail(op, f"input shape {list(x.shape)} and output shape {list(y.shape)} differ in batch or depth")
    filter_hw = (int(op.options.get("filter_height", 0)), int(op.options.get("filter_width", 0)))
    if min(filter_hw) <= 0:
        raise ctx.fail(op, f"window {filter_hw[0]}x{filter_hw[1]} must be positive")
    act = activation(ctx, op)
    win = window(ctx, op, in_hw=in_dims[1:3], filter_hw=filter_hw, out_hw=out_dims[1:3], dilated=False)
    kind = "avg_pool2d" if op.opcode == "AVERAGE_POOL_2D" else "max_pool2d"
    if dtype == "int8":
        in_scale, in_zp = per_tensor(ctx, op, x, "input")
        out_scale, out_zp = per_tensor(ctx, op, y, "output")
        if abs(in_scale - out_scale) > 1e-6 or in_zp != out_zp:
            raise ctx.fail(op, f"int8 input (scale {in_scale}, zero point {in_zp}) and output (scale {out_scale}, "
                               f"zero point {out_zp}) must share their quantization (TFLM requires it)")
        act_min, act_max = int8_clamp(ctx, op, y, act)
    else:
        act_min, act_max = float_clamp(act)
    return Pool(op_index=op.index, opcode=op.opcode, kernel=f"{kind}_{'s8' if dtype == 'int8' else 'f32'}",
                reads=(x.index,), writes=(y.index,), input=x.index, output=y.index, input_dims=in_dims,
                filter_hw=filter_hw, output_dims=out_dims, window=win, activation=act,
                act_min=act_min, act_max=act_max)
