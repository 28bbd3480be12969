"""Lowering: a parsed .tflite graph -> the kernel calls the firmware will make.

This is TFLM's "Prepare", run on the host: every check that can fail, and all
the float math (effective scales -> Q0.31 multipliers and shifts, activation
clamps, the int8 tables of LOGISTIC / TANH / SOFTMAX), happens here, so the
emitted C is integers and kernel calls only.

Each supported opcode has one lowering function, registered by decorator
(``@lowering("CONV_2D")``) in a module of ``farm.codegen.ops``; adding an op is
a new function there, not an edit of a dispatcher. A lowering returns a `Step`
(one kernel call, which knows how to emit itself), or None when the op is folded
into another (a DEQUANTIZE of constant int8 weights that only FULLY_CONNECTED /
CONV_2D / DEPTHWISE_CONV_2D ops read as weights runs inside their ``_f32_w8``
kernel; a RESHAPE is an alias of its input in the memory plan).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from farm.codegen.errors import UnsupportedModelError, UnsupportedOperatorError
from farm.codegen.tflite_reader import Operator, Subgraph, Tensor, TfliteModel

if TYPE_CHECKING:
    from farm.codegen.emit import Emitter

IO_DTYPES = ("float32", "int8")

#: ops whose weights (input 1) may be a DEQUANTIZE of an int8 constant (Strategy A)
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True, kw_only=True)
class Step:
    """One kernel call. `reads`/`writes` are tensor indices (constants included in reads).

    `inplace` lists (output, input) pairs whose bytes the kernel may share: it
    reads every element of that input before it writes the output element at the
    same position, so the planner may put the output over an input that dies here.
    """

    op_index: int
    opcode: str
    kernel: str  # the C function called ("" when nothing is called)
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    macs: int = 0  # multiply-accumulates of one inference
    inplace: tuple[tuple[int, int], ...] = ()
    scratch_bytes: int = 0  # bytes of the shared kernel scratch buffer the call needs (im2col)

    @property
    def own_const_bytes(self) -> int:
        """Weights and biases the step emits itself (pre-arranged), besides the model's constant tensors."""
        return 0

    def emit(self, e: Emitter) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be emitted")


@dataclass(frozen=True, kw_only=True)
class Alias(Step):
    """A RESHAPE: the output is the input's bytes under another shape (no kernel)."""

    source: int
    target: int

    def emit(self, e: Emitter) -> None:
        e.decls.append(e.header_comment(self, " (alias of its input: no code)"))


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

    @property
    def macs(self) -> int:
        return sum(step.macs for step in self.steps)

    @property
    def scratch_bytes(self) -> int:
        """The kernel scratch buffer (shared by the steps, which run one after the other)."""
        return max((step.scratch_bytes for step in self.steps), default=0)

    @property
    def kernel_steps(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.kernel)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def arena_tensors(self) -> dict[int, int]:
        """Non-constant tensors the steps touch (plus graph I/O) -> size in bytes."""
        indices = {self.input, self.output}
        for step in self.steps:
            indices.update(t for t in step.reads + step.writes if not self.tensor(t).is_constant)
        return {t: self.tensor(t).nbytes for t in sorted(indices)}

    @property
    def const_bytes(self) -> int:
        """Bytes of weights and biases emitted: constant tensors plus pre-arranged copies."""
        return (sum(self.tensor(t).nbytes for t in self.constant_tensors())
                + sum(step.own_const_bytes for step in self.steps))

    def constant_tensors(self) -> list[int]:
        """Constant tensors the steps read, in first-use order."""
        seen: list[int] = []
        for step in self.steps:
            for t in step.reads:
                if self.tensor(t).is_constant and t not in seen:
                    seen.append(t)
        return seen

    def aliases(self) -> dict[int, int]:
        """RESHAPE outputs -> the tensor whose bytes they are."""
        return {step.target: step.source for step in self.steps if isinstance(step, Alias)}


#: kernel sets of the code generator: the optimized int8 kernels where an op's shape
#: allows (default), or the plain reference kernels everywhere (the truth they are tested against)
KERNEL_SETS = ("optimized", "reference")


class LoweringContext:
    """What a lowering function gets besides its operator: the graph and helpers."""

    def __init__(self, model: TfliteModel, kernels: str = "optimized") -> None:
        if kernels not in KERNEL_SETS:
            raise ValueError(f"unknown kernel set {kernels!r} (choose from {', '.join(KERNEL_SETS)})")
        self.optimize = kernels == "optimized"
        self.model = model
        self.graph = model.main
        self.label = model.label
        self.fused_weights = fusable_dequantize(self.graph)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def fail(self, op: Operator, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(op.opcode, self.label, op.index, detail, supported_ops())


LoweringFn = Callable[[LoweringContext, Operator], "Step | None"]

#: opcode -> lowering (returns None when the op is folded into another)
LOWERINGS: dict[str, LoweringFn] = {}


def lowering(*opcodes: str) -> Callable[[LoweringFn], LoweringFn]:
    """Register the decorated function as the lowering of `opcodes`."""

    def register(fn: LoweringFn) -> LoweringFn:
        for opcode in opcodes:
            if opcode in LOWERINGS and LOWERINGS[opcode] is not fn:
                raise ValueError(f"two lowerings registered for {opcode}")
            LOWERINGS[opcode] = fn
        return fn

    return register


def _register_all() -> None:
    from farm.codegen import ops  # noqa: F401  (each module registers its lowerings)


def supported_ops() -> tuple[str, ...]:
    _register_all()
    return tuple(sorted(LOWERINGS))


def fusable_dequantize(graph: Subgraph) -> dict[int, Operator]:
    """Float weight tensors made by DEQUANTIZE(const int8, zero points 0) and read
    only as the weights (input 1) of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D.

    Per-channel scales are accepted along the output-channel axis of the weights
    (checked by the consuming op): TFLite runs them right, TFLM's DEQUANTIZE
    (per-tensor only) would not, so the zoo's int8-weights models are per-tensor."""
    fusable: dict[int, Operator] = {}
    for op in graph.operators:
        if op.opcode != "DEQUANTIZE" or len(op.inputs) != 1 or len(op.outputs) != 1:
            continue
        src = graph.tensors[op.inputs[0]]
        out = op.outputs[0]
        if not src.is_constant or src.dtype != "int8" or src.quant is None:
            continue
        if np.any(src.quant.zero_points != 0):
            continue
        consumers = graph.consumers(out)
        if out in graph.outputs or not consumers:
            continue
        if all(c.opcode in WEIGHT_OPS and len(c.inputs) > 1 and c.inputs[1] == out
               and list(c.inputs).count(out) == 1 for c in consumers):
            fusable[out] = op
    return fusable


def lower(model: TfliteModel, kernels: str = "optimized") -> LoweredModel:
    """Check `model` and lower it to kernel calls (`kernels`: one of KERNEL_SETS);
    raises CodegenError subclasses."""
    _register_all()
    label = model.label
    if len(model.subgraphs) != 1:
        raise UnsupportedModelError(f"{label}: {len(model.subgraphs)} subgraphs; the code generator "
                                    "supports a single subgraph")
    ctx = LoweringContext(model, kernels)
    graph = ctx.graph
    if not graph.operators:
        raise UnsupportedModelError(f"{label}: the subgraph has no operators")

    # Refuse unknown opcodes first, naming the first one, before looking at details.
    for op in graph.operators:
        if op.opcode not in LOWERINGS:
            raise UnsupportedOperatorError(op.opcode, label, op.index, None, supported_ops())

    steps: list[Step] = []
    for op in graph.operators:
        for t in op.outputs:
            if ctx.tensor(t).is_variable:
                raise ctx.fail(op, f"variable tensor #{t} is not supported")
        step = LOWERINGS[op.opcode](ctx, op)
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


# --------------------------------------------------------------------------- #
# Helpers shared by the lowerings
# --------------------------------------------------------------------------- #

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
        raise ctx.fail(op, f"{role} tensor #{t.index} is a constant (not supported as a {role} of "
                           f"{op.opcode})")


@dataclass(frozen=True)
class Requant:
    """A real multiplier as TFLM's Q0.31 multiplier and shift."""

    multiplier: int
    shift: int
    real: float = field(default=0.0, compare=False)
