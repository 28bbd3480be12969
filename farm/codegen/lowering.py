"""Lowering: a parsed .tflite graph -> the kernel calls the firmware will make.

This is TFLM's "Prepare", run on the host: every check that can fail, and all
the float math (effective scales -> Q0.31 multipliers and shifts, activation
clamps), happens here, so the emitted C is integers and kernel calls only.

Each supported opcode has one lowering function, registered in `LOWERINGS`.
A DEQUANTIZE of constant int8 weights that only FULLY_CONNECTED ops read as
weights is fused into those ops (kernel fully_connected_f32_w8: the weights stay
int8 in flash and are dequantized on the fly); any other DEQUANTIZE runs as a
kernel of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

import numpy as np

from farm.codegen.errors import UnsupportedModelError, UnsupportedOperatorError
from farm.codegen.quantize_multiplier import (
    activation_range_f32,
    activation_range_int8,
    fc_real_multiplier,
    quantize_multiplier,
)
from farm.tflite_reader import Operator, Subgraph, Tensor, TfliteModel

SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6")
IO_DTYPES = ("float32", "int8")


@dataclass(frozen=True)
class FcDims:
    batches: int
    accum_depth: int
    output_depth: int


@dataclass(frozen=True)
class Step:
    """One kernel call. `reads`/`writes` are tensor indices (constants included in reads)."""

    op_index: int
    opcode: str
    kernel: str  # the C function called

    @property
    def reads(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def writes(self) -> tuple[int, ...]:
        raise NotImplementedError


@dataclass(frozen=True)
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

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.input, self.weights) + ((self.bias,) if self.bias is not None else ())

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.output,)


@dataclass(frozen=True)
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

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.input, self.weights) + ((self.bias,) if self.bias is not None else ())

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.output,)


@dataclass(frozen=True)
class Quantize(Step):
    input: int
    output: int
    size: int
    scale: float
    zero_point: int

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.input,)

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.output,)


@dataclass(frozen=True)
class Dequantize(Step):
    input: int
    output: int
    size: int
    scale: float
    zero_point: int

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.input,)

    @property
    def writes(self) -> tuple[int, ...]:
        return (self.output,)


@dataclass(frozen=True)
class LoweredModel:
    model: TfliteModel
    graph: Subgraph
    steps: tuple[Step, ...]
    input: int
    output: int

    @property
    def label(self) -> str:
        return self.model.label

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def arena_tensors(self) -> dict[int, int]:
        """Non-constant tensors the steps touch (plus graph I/O) -> size in bytes."""
        indices = {self.input, self.output}
        for step in self.steps:
            indices.update(t for t in step.reads + step.writes if not self.tensor(t).is_constant)
        return {t: self.tensor(t).nbytes for t in sorted(indices)}

    def constant_tensors(self) -> list[int]:
        """Constant tensors the steps read, in first-use order."""
        seen: list[int] = []
        for step in self.steps:
            for t in step.reads:
                if self.tensor(t).is_constant and t not in seen:
                    seen.append(t)
        return seen


class _Context:
    def __init__(self, model: TfliteModel) -> None:
        self.model = model
        self.graph = model.main
        self.label = model.label
        self.fused_weights = _fusable_dequantize(self.graph)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def fail(self, op: Operator, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(op.opcode, self.label, op.index, detail, tuple(LOWERINGS))


def _fusable_dequantize(graph: Subgraph) -> dict[int, Operator]:
    """Float weight tensors made by DEQUANTIZE(const int8) and read only as FC weights."""
    fusable: dict[int, Operator] = {}
    for op in graph.operators:
        if op.opcode != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        src = graph.tensors[op.inputs[0]]
        out = op.outputs[0]
        if not src.is_constant or src.dtype != "int8" or src.quant is None or len(src.shape) != 2:
            continue
        if np.any(src.quant.zero_points != 0):
            continue
        if src.quant.per_channel and (src.quant.quantized_dimension != 0
                                      or src.quant.scales.size != src.shape[0]):
            continue
        consumers = graph.consumers(out)
        if out in graph.outputs or not consumers:
            continue
        if all(c.opcode == "FULLY_CONNECTED" and c.inputs[1] == out and list(c.inputs).count(out) == 1
               for c in consumers):
            fusable[out] = op
    return fusable


def _activation(ctx: _Context, op: Operator) -> str:
    activation = str(op.options.get("fused_activation", "NONE"))
    if activation not in SUPPORTED_ACTIVATIONS:
        raise ctx.fail(op, f"fused activation {activation} is not supported "
                           f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
    return activation


def _per_tensor(ctx: _Context, op: Operator, t: Tensor, role: str) -> tuple[float, int]:
    if t.quant is None or t.quant.per_channel:
        raise ctx.fail(op, f"{role} tensor #{t.index} {t.dtype} needs per-tensor quantization")
    if not t.quant.scale > 0:
        raise ctx.fail(op, f"{role} tensor #{t.index} has a non-positive scale {t.quant.scale}")
    return t.quant.scale, t.quant.zero_point


def _lower_fully_connected(ctx: _Context, op: Operator) -> Step:
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        raise ctx.fail(op, f"expects (input, weights[, bias]) -> output, got {len(op.inputs)} "
                           f"inputs and {len(op.outputs)} outputs")
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        raise ctx.fail(op, "shuffled weights format is not supported (supported: DEFAULT)")
    activation = _activation(ctx, op)
    x = ctx.tensor(op.inputs[0])
    w_index = op.inputs[1]
    w = ctx.tensor(w_index)
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

    if x.dtype == "float32":
        return _fc_float(ctx, op, x, w, bias, y, dims, activation)
    if x.dtype == "int8":
        return _fc_int8(ctx, op, x, w, bias, y, dims, activation)
    raise ctx.fail(op, f"{x.dtype} input is not supported (supported: float32, int8)")


def _fc_float(ctx: _Context, op: Operator, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
              dims: FcDims, activation: str) -> Step:
    if y.dtype != "float32":
        raise ctx.fail(op, f"float32 input with {y.dtype} output is not supported")
    if bias is not None and bias.dtype != "float32":
        raise ctx.fail(op, f"float32 FULLY_CONNECTED with a {bias.dtype} bias is not supported")
    act_min, act_max = activation_range_f32(activation)
    common: dict[str, Any] = dict(op_index=op.index, opcode=op.opcode, input=x.index,
                  bias=bias.index if bias is not None else None, output=y.index, dims=dims,
                  activation=activation, act_min=act_min, act_max=act_max)
    if w.is_constant and w.dtype == "float32":
        return FullyConnectedF32(kernel="fully_connected_f32", weights=w.index, **common)
    dequantize = ctx.fused_weights.get(w.index)
    if dequantize is not None:
        q = ctx.tensor(dequantize.inputs[0])
        assert q.quant is not None
        scales = q.quant.scales if q.quant.per_channel else np.repeat(q.quant.scales[:1], dims.output_depth)
        return FullyConnectedF32(kernel="fully_connected_f32_w8", weights=q.index,
                                 filter_scales=tuple(float(s) for s in scales), **common)
    if w.is_constant and w.dtype == "int8":
        raise ctx.fail(op, "hybrid FULLY_CONNECTED (float32 input, int8 weights) is not supported; "
                           "give it float weights made by a DEQUANTIZE of the int8 constant")
    if not w.is_constant:
        raise ctx.fail(op, f"weights tensor #{w.index} is not a constant (nor a DEQUANTIZE of int8 "
                           "weights that only FULLY_CONNECTED reads)")
    raise ctx.fail(op, f"float32 input with {w.dtype} weights is not supported")


def _fc_int8(ctx: _Context, op: Operator, x: Tensor, w: Tensor, bias: Tensor | None, y: Tensor,
             dims: FcDims, activation: str) -> Step:
    if y.dtype != "int8":
        raise ctx.fail(op, f"int8 input with {y.dtype} output is not supported")
    if not w.is_constant or w.dtype != "int8":
        raise ctx.fail(op, f"int8 input needs constant int8 weights, got {w.dtype}"
                           f"{'' if w.is_constant else ' (not constant)'}")
    if bias is not None and bias.dtype != "int32":
        raise ctx.fail(op, f"int8 FULLY_CONNECTED with a {bias.dtype} bias is not supported "
                           "(supported: int32)")
    in_scale, in_zp = _per_tensor(ctx, op, x, "input")
    out_scale, out_zp = _per_tensor(ctx, op, y, "output")
    if w.quant is None:
        raise ctx.fail(op, f"weights tensor #{w.index} has no quantization parameters")
    per_channel = w.quant.per_channel  # TFLM's test: more than one scale
    if per_channel:
        if w.quant.scales.size != dims.output_depth or w.quant.quantized_dimension != 0:
            raise ctx.fail(op, f"per-channel weights need {dims.output_depth} scales along dimension 0, "
                               f"got {w.quant.scales.size} along {w.quant.quantized_dimension}")
        if np.any(w.quant.zero_points != 0):
            raise ctx.fail(op, "per-channel weights must be symmetric (zero points 0)")
        scales = [float(s) for s in w.quant.scales]
        filter_offset = 0
    else:
        scales = [w.quant.scale]
        filter_offset = -w.quant.zero_point
    multipliers, shifts = [], []
    for scale in scales:
        real = fc_real_multiplier(in_scale, scale, out_scale)
        if real < 0:
            raise ctx.fail(op, f"negative effective scale {real}")
        multiplier, shift = quantize_multiplier(real)
        if not -31 <= shift <= 30:
            raise ctx.fail(op, f"effective scale {real} needs a shift of {shift} (supported: -31..30)")
        multipliers.append(multiplier)
        shifts.append(shift)
    act_min, act_max = activation_range_int8(activation, out_scale, out_zp)
    return FullyConnectedS8(
        op_index=op.index, opcode=op.opcode,
        kernel="fully_connected_per_channel_s8" if per_channel else "fully_connected_s8",
        input=x.index, weights=w.index, bias=bias.index if bias is not None else None, output=y.index,
        dims=dims, input_offset=-in_zp, filter_offset=filter_offset, output_offset=out_zp,
        activation=activation, act_min=act_min, act_max=act_max,
        multipliers=tuple(multipliers), shifts=tuple(shifts),
    )


def _unary_io(ctx: _Context, op: Operator) -> tuple[Tensor, Tensor]:
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise ctx.fail(op, f"expects one input and one output, got {len(op.inputs)} and {len(op.outputs)}")
    x, y = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if x.num_elements != y.num_elements:
        raise ctx.fail(op, f"input shape {list(x.shape)} and output shape {list(y.shape)} differ in size")
    return x, y


def _lower_quantize(ctx: _Context, op: Operator) -> Step:
    x, y = _unary_io(ctx, op)
    if x.dtype != "float32" or y.dtype != "int8":
        raise ctx.fail(op, f"{x.dtype} -> {y.dtype} is not supported (supported: float32 -> int8)")
    scale, zp = _per_tensor(ctx, op, y, "output")
    return Quantize(op_index=op.index, opcode=op.opcode, kernel="quantize_f32_s8", input=x.index,
                    output=y.index, size=x.num_elements, scale=scale, zero_point=zp)


def _lower_dequantize(ctx: _Context, op: Operator) -> Step | None:
    x, y = _unary_io(ctx, op)
    if y.index in ctx.fused_weights:
        return None  # folded into the FULLY_CONNECTED ops that read it
    if x.dtype != "int8" or y.dtype != "float32":
        raise ctx.fail(op, f"{x.dtype} -> {y.dtype} is not supported (supported: int8 -> float32)")
    if x.quant is not None and x.quant.per_channel:
        raise ctx.fail(op, "per-channel DEQUANTIZE is only supported for FULLY_CONNECTED weights")
    scale, zp = _per_tensor(ctx, op, x, "input")
    return Dequantize(op_index=op.index, opcode=op.opcode, kernel="dequantize_s8_f32", input=x.index,
                      output=y.index, size=x.num_elements, scale=scale, zero_point=zp)


#: opcode -> lowering (returns None when the op is folded into another)
LOWERINGS: dict[str, Callable[[_Context, Operator], Step | None]] = {
    "DEQUANTIZE": _lower_dequantize,
    "FULLY_CONNECTED": _lower_fully_connected,
    "QUANTIZE": _lower_quantize,
}


def lower(model: TfliteModel) -> LoweredModel:
    """Check `model` and lower it to kernel calls; raises CodegenError subclasses."""
    label = model.label
    if len(model.subgraphs) != 1:
        raise UnsupportedModelError(f"{label}: {len(model.subgraphs)} subgraphs; the code generator "
                                    "supports a single subgraph")
    ctx = _Context(model)
    graph = ctx.graph
    if not graph.operators:
        raise UnsupportedModelError(f"{label}: the subgraph has no operators")

    steps: list[Step] = []
    for op in graph.operators:
        lowering = LOWERINGS.get(op.opcode)
        if lowering is None:
            raise UnsupportedOperatorError(op.opcode, label, op.index, None, tuple(LOWERINGS))
        for t in op.outputs:
            if ctx.tensor(t).is_variable:
                raise ctx.fail(op, f"variable tensor #{t} is not supported")
        step = lowering(ctx, op)
        if step is not None:
            steps.append(step)

    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedModelError(
            f"{label}: {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; the code generator "
            "supports a single input and a single output")
    for role, index in (("input", graph.inputs[0]), ("output", graph.outputs[0])):
        t = ctx.tensor(index)
        if t.dtype not in IO_DTYPES:
            raise UnsupportedModelError(f"{label}: model {role} tensor #{index} is {t.dtype} "
                                        f"(supported: {', '.join(IO_DTYPES)})")
        if t.is_constant:
            raise UnsupportedModelError(f"{label}: model {role} tensor #{index} is a constant")
        if any(d <= 0 for d in t.shape):
            raise UnsupportedModelError(f"{label}: model {role} tensor #{index} has a dynamic or empty "
                                        f"shape {list(t.shape)}")
    return LoweredModel(model=model, graph=graph, steps=tuple(steps),
                        input=graph.inputs[0], output=graph.outputs[0])
