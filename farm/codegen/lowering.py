"""Lowering: a parsed .tflite graph -> the kernel calls the firmware will make.

This is TFLM's "Prepare", run on the host: every check that can fail, and all
the float math (effective scales -> Q0.31 multipliers and shifts, activation
clamps, the int8 tables of LOGISTIC / TANH / SOFTMAX), happens here, so the
emitted C is integers and kernel calls only.

Each supported opcode has one lowering function, registered by decorator
(``@lowering("CONV_2D")``, farm.codegen.registry) in a module of
``farm.codegen.ops``, which this module imports; adding an op is a new function
there, not an edit of a dispatcher. A lowering returns a `Step`
(farm.codegen.ir: one kernel call, which knows how to emit itself), or None when
the op is folded into another (a DEQUANTIZE of constant int8 weights that only
FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D ops read as weights runs inside
their ``_f32_w8`` kernel; a RESHAPE is an alias of its input in the memory plan).
"""

from __future__ import annotations

from farm.codegen import ops  # noqa: F401  (each op module registers its lowerings)
from farm.codegen.errors import UnsupportedModelError, UnsupportedOperatorError
from farm.codegen.ir import IO_DTYPES, KERNEL_SETS, LoweredModel, LoweringContext, Step
from farm.codegen.registry import LOWERINGS, registered_opcodes
from farm.codegen.tflite_reader import TfliteModel

__all__ = ["KERNEL_SETS", "lower", "supported_ops"]


def supported_ops() -> tuple[str, ...]:
    """The opcodes the code generator lowers, sorted."""
    return registered_opcodes()


def lower(model: TfliteModel, kernels: str = "optimized") -> LoweredModel:
    """Check `model` and lower it to kernel calls (`kernels`: one of KERNEL_SETS);
    raises CodegenError subclasses."""
    label = model.label
    if len(model.subgraphs) != 1:
        raise UnsupportedModelError(f"{label}: {len(model.subgraphs)} subgraphs; the code generator "
                                    "supports a single subgraph")
    ctx = LoweringContext(model, kernels, supported=supported_ops())
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
