"""Data movement: RESHAPE (an alias in the memory plan, no code), PAD (int8 pads
with the output zero point, float32 with 0.0) and CONCATENATION (int8 inputs
share the output's quantization, as TFLM requires). Bytes are copied, never
rescaled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.codegen.emit import CONST_DATA
from farm.codegen.ir import Alias, LoweringContext, Step, StepEmitter
from farm.codegen.ops.common import dtypes, io_count, not_constant, per_tensor, shape4
from farm.codegen.registry import lowering
from farm.codegen.tflite_reader import Operator


@lowering("RESHAPE")
def lower_reshape(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, (1, 2))
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    dtypes(ctx, op, [x, y])
    if x.num_elements != y.num_elements or any(d <= 0 for d in y.shape):
        raise ctx.fail(op, f"input shape {list(x.shape)} and output shape {list(y.shape)} differ in size")
    return Alias(op_index=op.index, opcode=op.opcode, kernel="", reads=(x.index,), writes=(y.index,),
                 source=x.index, target=y.index)


@dataclass(frozen=True, kw_only=True)
class Pad(Step):
    input: int
    output: int
    input_dims: tuple[int, int, int, int]
    output_dims: tuple[int, int, int, int]
    before: tuple[int, int, int, int]
    element_bytes: int
    pad_value: int  # little-endian bit pattern

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        before = ", ".join(str(b) for b in self.before)
        e.declare(self, e.struct("tf_pad_params", f"{p}_params", [
            ("before", f"{{{before}}}"), ("element_bytes", str(self.element_bytes)),
            ("pad_value", f"{self.pad_value}u")]),
            e.dims(f"{p}_input_dims", self.input_dims), e.dims(f"{p}_output_dims", self.output_dims))
        e.call(self.kernel, [f"&{p}_params", f"&{p}_input_dims", e.pointer(self.input, writable=False, ctype="uint8_t"),
                             f"&{p}_output_dims", e.pointer(self.output, writable=True, ctype="uint8_t")])


@lowering("PAD")
def lower_pad(ctx: LoweringContext, op: Operator) -> Step:
    io_count(ctx, op, 2)
    x, paddings, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    not_constant(ctx, op, x, "input")
    dtype = dtypes(ctx, op, [x, y])
    if not paddings.is_constant or paddings.dtype not in ("int32", "int64"):
        raise ctx.fail(op, f"paddings tensor #{paddings.index} must be an int32 constant")
    rank = len(x.shape)
    pads = np.asarray(paddings.data).reshape(-1, 2) if paddings.data is not None else np.zeros((0, 2))
    if pads.shape[0] != rank or rank > 4 or np.any(pads < 0):
        raise ctx.fail(op, f"paddings {pads.tolist()} do not fit a {rank}-D input (up to 4-D, non-negative)")
    expected = [int(d) + int(a) + int(b) for d, (a, b) in zip(x.shape, pads)]
    if list(y.shape) != expected:
        raise ctx.fail(op, f"output shape {list(y.shape)} != padded input shape {expected}")
    before = (0,) * (4 - rank) + tuple(int(a) for a, _ in pads)
    if dtype == "int8":
        _, zp = per_tensor(ctx, op, y, "output")
        value, size = int(zp) & 0xFF, 1
    else:
        value, size = 0, 4  # 0.0f
    return Pad(op_index=op.index, opcode=op.opcode, kernel="pad", reads=(x.index,), writes=(y.index,),
               input=x.index, output=y.index, input_dims=shape4(ctx, op, x, "input"),
               output_dims=shape4(ctx, op, y, "output"), before=before, element_bytes=size, pad_value=value)


@dataclass(frozen=True, kw_only=True)
class Concatenation(Step):
    inputs: tuple[int, ...]
    output: int
    outer: int
    row_bytes: tuple[int, ...]
    axis: int

    def emit(self, e: StepEmitter) -> None:
        p = e.prefix(self)
        pointers = ", ".join(e.pointer(t, writable=False, ctype="uint8_t") for t in self.inputs)
        e.declare(self,
                  e.int_array(f"{p}_row_bytes", "int32_t", self.row_bytes),
                  f"static const uint8_t *const {CONST_DATA} {p}_inputs[{len(self.inputs)}] = {{{pointers}}};",
                  f"static const tf_concat_params {p}_params = {{{self.outer}, {len(self.inputs)}, {p}_row_bytes}};",
                  extra=f" (axis {self.axis})")
        e.call(self.kernel, [f"&{p}_params", f"{p}_inputs", e.pointer(self.output, writable=True, ctype="uint8_t")])


@lowering("CONCATENATION")
def lower_concatenation(ctx: LoweringContext, op: Operator) -> Step:
    if not op.inputs or len(op.outputs) != 1:
        raise ctx.fail(op, f"expects inputs -> one output, got {len(op.inputs)} and {len(op.outputs)}")
    inputs = [ctx.tensor(i) for i in op.inputs]
    y = ctx.tensor(op.outputs[0])
    dtype = dtypes(ctx, op, inputs + [y])
    if str(op.options.get("fused_activation", "NONE")) != "NONE":
        raise ctx.fail(op, f"fused activation {op.options.get('fused_activation')} is not supported "
                           "(TFLM requires NONE)")
    rank = len(y.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ctx.fail(op, f"axis {op.options.get('axis')} out of range for a {rank}-D output")
    for t in inputs:
        if len(t.shape) != rank or any(int(t.shape[d]) != int(y.shape[d]) for d in range(rank) if d != axis):
            raise ctx.fail(op, f"input #{t.index} shape {list(t.shape)} does not concatenate into "
                               f"{list(y.shape)} along axis {axis}")
    if sum(int(t.shape[axis]) for t in inputs) != int(y.shape[axis]):
        raise ctx.fail(op, f"inputs add up to {sum(int(t.shape[axis]) for t in inputs)} along axis {axis}, "
                           f"the output has {y.shape[axis]}")
    if dtype == "int8":
        out_q = per_tensor(ctx, op, y, "output")
        for t in inputs:
            q = per_tensor(ctx, op, t, f"input #{t.index}")
            if np.float32(q[0]) != np.float32(out_q[0]) or q[1] != out_q[1]:
                raise ctx.fail(op, f"int8 input #{t.index} (scale {q[0]}, zero point {q[1]}) must share the "
                                   f"output's quantization (scale {out_q[0]}, zero point {out_q[1]}), as TFLM requires")
    itemsize = y.itemsize
    outer = int(np.prod([int(d) for d in y.shape[:axis]], dtype=np.int64))
    inner = int(np.prod([int(d) for d in y.shape[axis + 1:]], dtype=np.int64))
    return Concatenation(op_index=op.index, opcode=op.opcode, kernel="concatenation",
                         reads=tuple(t.index for t in inputs), writes=(y.index,), inputs=tuple(t.index for t in inputs),
                         output=y.index, outer=outer, axis=axis,
                         row_bytes=tuple(int(t.shape[axis]) * inner * itemsize for t in inputs))
