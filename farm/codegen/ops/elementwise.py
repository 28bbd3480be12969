"""ADD and MUL, int8 and float32, with NumPy-style broadcasting over up to four
dims and fused activations.

int8 ADD is TFLM's scheme: each input keeps its own scale; both are brought to
twice the larger input scale at 2^20 resolution (left_shift = 20), summed, and
the sum requantized to the output. int8 MUL requantizes the product of the
offset inputs once, with s1 * s2 / s_out.

With the optimized kernels (the default kernel set), an int8 ADD of two
same-shape inputs calls add_s8_fast: each input's rescaled value depends on its
int8 value alone, so the host tabulates it (256 int32 per input, TFLM's
arithmetic exactly) and the kernel adds two table entries and requantizes the
sum with the optimized kernels' output stage (a tf_channel_s8 row of
farm.codegen.ops.optimized.channel_table). Broadcasting ADDs keep add_s8."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import CONST_DATA, c_float, c_int
from farm.codegen.ir import LoweringContext, Requant, Step, StepEmitter
from farm.codegen.ops.common import activation, dtypes, float_clamp, int8_clamp, io_count, per_tensor, requant, shape4
from farm.codegen.ops.optimized import channel_table
from farm.codegen.quantize_multiplier import multiply_by_quantized_multiplier, quantize_multiplier
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator

ADD_LEFT_SHIFT = 20  # TFLM: 20 for int8 (15 for int16)


@dataclass(frozen=True, kw_only=True)
class Binary(Step):
    input1: int
    input2: int
    output: int
    input1_dims: tuple[int, int, int, int]
    input2_dims: tuple[int, int, int, int]
    output_dims: tuple[int, int, int, int]
    activation: str
    params: tuple[tuple[str, str], ...]  # the C struct's fields, as literals

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        struct = {"add_s8": "tf_add_params_s8", "mul_s8": "tf_mul_params_s8"}.get(self.kernel,
                                                                                "tf_activation_params_f32")
        e.declare(self, e.struct(struct, f"{p}_params", self.params),
                  e.dims(f"{p}_input1_dims", self.input1_dims), e.dims(f"{p}_input2_dims", self.input2_dims),
                  e.dims(f"{p}_output_dims", self.output_dims), extra=f" ({self.activation})")
        e.call(self.kernel, [f"&{p}_params",
                             f"&{p}_input1_dims", e.pointer(self.input1, writable=False),
                             f"&{p}_input2_dims", e.pointer(self.input2, writable=False),
                             f"&{p}_output_dims", e.pointer(self.output, writable=True)])


@dataclass(frozen=True, kw_only=True)
class AddFast(Step):
    """add_s8_fast (kernels.h): same-shape int8 ADD through the inputs' tables."""

    input1: int
    input2: int
    output: int
    dims: tuple[int, int, int, int]
    activation: str
    tables: tuple[int, ...]  # 512: input 1's by raw byte, then input 2's (add_s8_tables)
    channel: tuple[str, str, str, int, str]  # the output requantization, a channel_table row
    output_offset: int
    act_min: int
    act_max: int

    @property
    def own_const_bytes(self) -> int:
        return 4 * len(self.tables) + 20  # the tables and the tf_channel_s8

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        b, m, sh, lo, hi = self.channel
        e.declare(self,
                  e.int_array(f"{p}_tables", "int32_t", self.tables),
                  f"static const {CONST_DATA} tf_channel_s8 {p}_channel[1] = {{  "
                  "/* bias (unused), multiplier, shift, rounding (lo, hi): tf_types.h */\n"
                  f"    {{{b}, {m}, {sh}, {lo}u, {hi}}},\n}};",
                  e.struct("tf_out_stage_s8", f"{p}_stage", [
                      ("channels", f"{p}_channel"), ("output_offset", c_int(self.output_offset)),
                      ("activation_min", c_int(self.act_min)), ("activation_max", c_int(self.act_max))]),
                  e.dims(f"{p}_dims", self.dims),
                  extra=f" ({self.activation}; the inputs' rescaled values tabulated by byte)")
        e.call(self.kernel, [f"&{p}_stage", f"{p}_tables",
                             f"&{p}_dims", e.pointer(self.input1, writable=False),
                             f"&{p}_dims", e.pointer(self.input2, writable=False),
                             f"&{p}_dims", e.pointer(self.output, writable=True)])


def add_s8_table(offset: int, left_shift: int, r: Requant) -> list[int]:
    """add_s8's rescaled input, TFLM's MultiplyByQuantizedMultiplier((v + offset) *
    2^left_shift, M, shift), for each raw byte 0..255 (the int8 value v it holds)."""
    values = [u - 256 if u >= 128 else u for u in range(256)]
    return [multiply_by_quantized_multiplier((v + offset) << left_shift, r.multiplier, r.shift) for v in values]


def _smaller_than_one(ctx: LoweringContext, op: Operator, real: float, what: str) -> Requant:
    """TFLM QuantizeMultiplierSmallerThanOneExp (checks 0 < real < 1, shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ctx.fail(op, f"{what}: multiplier {real} is outside (0, 1)")
    multiplier, shift = quantize_multiplier(real)
    if not -31 <= shift <= 0:
        raise ctx.fail(op, f"{what}: multiplier {real} needs a shift of {shift} (supported: -31..0)")
    return Requant(multiplier, shift, real)


def add_params_s8(ctx: LoweringContext, op: Operator, s1: float, s2: float, so: float) -> tuple[Requant, Requant, Requant]:
    """TFLM CalculateOpDataAdd for int8: (input1, input2, output) multipliers."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    twice_max_input_scale = 2.0 * f32(max(np.float32(s1), np.float32(s2)))
    real1 = f32(s1) / twice_max_input_scale
    real2 = f32(s2) / twice_max_input_scale
    real_out = twice_max_input_scale / (float(1 << ADD_LEFT_SHIFT) * f32(so))
    return (_smaller_than_one(ctx, op, real1, "input 1 rescale"),
            _smaller_than_one(ctx, op, real2, "input 2 rescale"),
            _smaller_than_one(ctx, op, real_out, "output rescale"))


@lowering("ADD", "MUL")
def lower_binary(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, 2)
    a, b, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    dtype = dtypes(ctx, op, [a, b, y])
    if a.is_constant and b.is_constant:
        raise ctx.fail(op, "both inputs are constants (fold them before converting)")
    out_dims = shape4(ctx, op, y, "output")
    dims = []
    for t, role in ((a, "input 1"), (b, "input 2")):
        d = shape4(ctx, op, t, role)
        if any(di != do and di != 1 for di, do in zip(d, out_dims)):
            raise ctx.fail(op, f"{role} shape {list(t.shape)} does not broadcast to the output shape {list(y.shape)}")
        dims.append(d)
    act = activation(ctx, op)
    kind = "add" if op.opcode == "ADD" else "mul"
    inplace = tuple((y.index, t.index) for t, d in ((a, dims[0]), (b, dims[1]))
                    if d == out_dims and not t.is_constant and t.dtype == y.dtype)
    step = dict(op_index=op.index, opcode=op.opcode, reads=(a.index, b.index), writes=(y.index,),
                input1=a.index, input2=b.index, output=y.index, activation=act, inplace=inplace)
    common = dict(step, input1_dims=dims[0], input2_dims=dims[1], output_dims=out_dims)
    if dtype == "float32":
        lo, hi = float_clamp(act)
        return Binary(kernel=f"{kind}_f32", params=(("activation_min", c_float(lo)), ("activation_max", c_float(hi))),
                      **common)
    s1, z1 = per_tensor(ctx, op, a, "input 1")
    s2, z2 = per_tensor(ctx, op, b, "input 2")
    so, zo = per_tensor(ctx, op, y, "output")
    lo, hi = int8_clamp(ctx, op, y, act)
    if kind == "add":
        r1, r2, ro = add_params_s8(ctx, op, s1, s2, so)
        if ctx.optimize and dims[0] == dims[1] == out_dims:
            tables = add_s8_table(-z1, ADD_LEFT_SHIFT, r1) + add_s8_table(-z2, ADD_LEFT_SHIFT, r2)
            return AddFast(kernel="add_s8_fast", dims=out_dims, tables=tuple(tables),
                           channel=channel_table((0,), (ro.multiplier,), (ro.shift,), zo)[0],
                           output_offset=zo, act_min=lo, act_max=hi, **step)
        params = (("input1_offset", -z1), ("input2_offset", -z2), ("output_offset", zo),
                  ("left_shift", ADD_LEFT_SHIFT), ("input1_multiplier", r1.multiplier), ("input1_shift", r1.shift),
                  ("input2_multiplier", r2.multiplier), ("input2_shift", r2.shift),
                  ("output_multiplier", ro.multiplier), ("output_shift", ro.shift),
                  ("activation_min", lo), ("activation_max", hi))
    else:
        real = float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(so))
        r = requant(ctx, op, real, "product rescale")
        params = (("input1_offset", -z1), ("input2_offset", -z2), ("output_offset", zo),
                  ("output_multiplier", r.multiplier), ("output_shift", r.shift),
                  ("activation_min", lo), ("activation_max", hi))
    return Binary(kernel=f"{kind}_s8", params=tuple((k, c_int(v)) for k, v in params), **common)
