"""The lowered IR: what the lowerings produce and the planner and emitter consume.

A `LoweredModel` is the model's kernel calls in order: one `Step` per call (an
`Alias` for a RESHAPE, which is no call), each with the tensors it reads and
writes and the integer parameters the host computed (`Requant`: a real scale as
TFLM's Q0.31 multiplier and shift). A lowering function gets a
`LoweringContext` (the graph, the kernel set, the way to refuse an op).

A `Step` emits its own kernel call through a `StepEmitter` (implemented by
`farm.codegen.emit.Emitter`); this module imports neither the emitter nor any op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from farm.codegen.errors import UnsupportedOperatorError
from farm.codegen.tflite_reader import Operator, Subgraph, Tensor, TfliteModel

IO_DTYPES = ("float32", "int8")

#: ops whose weights (input 1) may be a DEQUANTIZE of an int8 constant (Strategy A)
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")

#: kernel sets of the code generator: the optimized int8 kernels where an op's shape
#: allows (default), or the plain reference kernels everywhere (the truth they are tested against)
KERNEL_SETS = ("optimized", "reference")


class StepEmitter(Protocol):
    """What a `Step` writes its declarations and its kernel call into (farm.codegen.emit.Emitter)."""

    decls: list[str]

    def pointer(self, tensor: int, *, writable: bool, ctype: str | None = None) -> str: ...

    def scratch(self) -> str: ...

    def optional(self, tensor: int | None) -> str: ...

    def const_data(self, tensor: int | None) -> str: ...

    def header_comment(self, step: Step, extra: str = "") -> str: ...

    def prefix(self, step: Step) -> str: ...

    def dims(self, name: str, dims: Sequence[int]) -> str: ...

    def struct(self, ctype: str, name: str, fields: Sequence[tuple[str, str]]) -> str: ...

    def int_array(self, name: str, ctype: str, values: Iterable[int]) -> str: ...

    def float_array(self, name: str, values: Iterable[float]) -> str: ...

    def declare(self, step: Step, *lines: str, extra: str = "") -> None: ...

    def call(self, kernel: str, args: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class InPlace:
    """The kernel may write `output` over `input` when `input` dies at its step.

    `shift` is where the output may start relative to the input, in bytes
    (output offset - input offset; 0: the same first byte; < 0: below the input,
    e.g. for a 3x3 window that still reads the row above). The planner uses it
    rounded down to its alignment (16 bytes by default), so a kernel must be
    correct there too (0 is used as is). `scratch_bytes`
    is the extra kernel scratch the call needs when it does run in place (on
    top of the step's `scratch_bytes`). farm.codegen.inplace computes shifts
    from a kernel's access order.
    """

    output: int
    input: int
    shift: int = 0
    scratch_bytes: int = 0


@dataclass(frozen=True, kw_only=True)
class Step:
    """One kernel call. `reads`/`writes` are tensor indices (constants included in reads).

    `inplace` lists (output, input) pairs whose bytes the kernel may share: it
    reads every element of that input before it writes the output element at the
    same position, so the planner may put the output over an input that dies here.
    `in_place` is the general form (`InPlace`: a shift, extra scratch), for
    kernels whose output may overlap their input only at some distance.
    """

    op_index: int
    opcode: str
    kernel: str  # the C function called ("" when nothing is called)
    reads: tuple[int, ...]
    writes: tuple[int, ...]
    macs: int = 0  # multiply-accumulates of one inference
    inplace: tuple[tuple[int, int], ...] = ()
    scratch_bytes: int = 0  # bytes of the shared kernel scratch buffer the call needs (im2col)
    in_place: tuple[InPlace, ...] = ()

    @property
    def in_place_candidates(self) -> tuple[InPlace, ...]:
        """`inplace` (as shift 0, no extra scratch) and `in_place` together."""
        return tuple(InPlace(out, inp) for out, inp in self.inplace) + self.in_place

    @property
    def own_const_bytes(self) -> int:
        """Weights and biases the step emits itself (pre-arranged), besides the model's constant tensors."""
        return 0

    def emit(self, e: StepEmitter) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot be emitted")


@dataclass(frozen=True, kw_only=True)
class Alias(Step):
    """A RESHAPE: the output is the input's bytes under another shape (no kernel)."""

    source: int
    target: int

    def emit(self, e: StepEmitter) -> None:
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
        """The kernel scratch buffer (shared by the steps, which run one after the other),
        steps in place not counted: their extra is in farm.codegen.generator.plan_for's plan."""
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


@dataclass(frozen=True)
class Requant:
    """A real multiplier as TFLM's Q0.31 multiplier and shift."""

    multiplier: int
    shift: int
    real: float = field(default=0.0, compare=False)


class LoweringContext:
    """What a lowering function gets besides its operator: the graph and helpers.

    `supported` is the list of supported opcodes that a refusal names (farm.codegen.lowering
    passes the registry's)."""

    def __init__(self, model: TfliteModel, kernels: str = "optimized", *, supported: tuple[str, ...] = ()) -> None:
        if kernels not in KERNEL_SETS:
            raise ValueError(f"unknown kernel set {kernels!r} (choose from {', '.join(KERNEL_SETS)})")
        self.optimize = kernels == "optimized"
        self.model = model
        self.graph = model.main
        self.label = model.label
        self.supported = supported
        self.fused_weights = fusable_dequantize(self.graph)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def fail(self, op: Operator, detail: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(op.opcode, self.label, op.index, detail, self.supported)


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
