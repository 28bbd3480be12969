"""The registry of lowerings: opcode -> the function that lowers it.

An op module registers its lowering by decorator (``@lowering("CONV_2D")``);
this module imports no op (farm.codegen.lowering imports the ops package, so
that every lowering is registered before a model is lowered).
"""

from __future__ import annotations

from collections.abc import Callable

from farm.codegen.ir import LoweringContext, Step
from farm.codegen.tflite_reader import Operator

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


def registered_opcodes() -> tuple[str, ...]:
    """The opcodes registered so far, sorted."""
    return tuple(sorted(LOWERINGS))
