"""C emitter: a lowered model + memory plan -> model.c and model_generated.h.

The output is deterministic (same .tflite in, same bytes out), so the firmware
cache can key on it. Constants are `static const` aligned arrays (flash), the
activations live in one static arena, every kernel parameter is a literal, and
int8 models get integer literals only.

Every constant array a kernel reads as constant data (weights, biases, per-channel
multipliers and shifts, lookup tables, packed weights, output stages) is qualified
with `TF_CONST_DATA` (the kernel library's tf_types.h): GCC's `__flash` on AVR, so
it stays in program memory and is read with LPM; nothing on Arm and RISC-V, whose
code is unchanged. A constant tensor that a kernel reads as an ordinary input (the
second operand of an ADD, say) is an SRAM array on AVR; one read both ways is
emitted twice (`tensorN` in flash, `tensorN_ram`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from farm.codegen.errors import CodegenError
from farm.codegen.ir import LoweredModel, Step
from farm.codegen.planner import MemoryPlan

ALIGN = "__attribute__((aligned(16)))"
#: the address space of constant data (tf_types.h: __flash on AVR, empty elsewhere)
CONST_DATA = "TF_CONST_DATA"
_C_TYPES = {"float32": "float", "int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t", "int16": "int16_t"}
_FLT_MAX = float(np.finfo(np.float32).max)


def c_type(dtype: str) -> str:
    try:
        return _C_TYPES[dtype]
    except KeyError:
        raise CodegenError(f"no C type for tensor dtype {dtype}") from None


def c_comment(text: str) -> str:
    """Text safe inside a /* */ comment."""
    return text.replace("*/", "* /").replace("/*", "/ *")


def c_string(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-+ ]*", text):
        raise CodegenError(f"{text!r} is not usable in a C string literal here "
                           "(letters, digits, _ . - + and spaces only)")
    return f'"{text}"'


def c_int(value: int) -> str:
    value = int(value)
    if not -(2**31) <= value < 2**31:
        raise CodegenError(f"integer literal {value} does not fit int32")
    return "(-2147483647 - 1)" if value == -(2**31) else str(value)


def c_float(value: float) -> str:
    """A float literal that round-trips the float32 value exactly."""
    v = float(np.float32(value))
    if not math.isfinite(v):
        raise CodegenError(f"non-finite float constant {v} cannot be emitted")
    if v == _FLT_MAX:
        return "FLT_MAX"
    if v == -_FLT_MAX:
        return "-FLT_MAX"
    text = f"{v:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def _array_body(values: Iterable[str], per_line: int) -> str:
    items = list(values)
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "\n".join(f"    {line}," for line in lines)


def c_array(name: str, ctype: str, literals: Sequence[str], comment: str = "", *, const_data: bool = True) -> str:
    """A `static const` aligned array; `const_data`: in the constant-data address space
    (TF_CONST_DATA, program memory on AVR), else an ordinary (SRAM on AVR) array."""
    if not literals:
        raise CodegenError(f"array {name} would be empty")
    per_line = 16 if ctype in ("int8_t", "uint8_t") else 8
    head = f"/* {c_comment(comment)} */\n" if comment else ""
    qualifier = f"{CONST_DATA} " if const_data else ""
    return (f"{head}static const {qualifier}{ctype} {name}[{len(literals)}] {ALIGN} = {{\n"
            f"{_array_body(literals, per_line)}\n}};\n")


def _literals(values: np.ndarray, dtype: str) -> list[str]:
    flat = np.asarray(values).reshape(-1)
    if dtype == "float32":
        return [c_float(v) for v in flat]
    return [c_int(v) for v in flat]


class Emitter:
    """Collects the declarations (constants, parameter structs) and the kernel calls
    of one model.c. A `Step` emits itself through these helpers (farm.codegen.ir.StepEmitter)."""

    def __init__(self, lowered: LoweredModel, plan: MemoryPlan, *, both: frozenset[int] = frozenset()) -> None:
        self.lowered = lowered
        self.plan = plan
        self.decls: list[str] = []
        self.calls: list[str] = []
        self.both = both  # constant tensors read both as constant data and as ordinary inputs
        self.const_data_reads: set[int] = set()  # constant tensors kernels read as constant data
        self.data_reads: set[int] = set()  # constant tensors kernels read as ordinary inputs

    def const_name(self, tensor: int, *, const_data: bool = True) -> str:
        return f"tensor{tensor}" if const_data or tensor not in self.both else f"tensor{tensor}_ram"

    def pointer(self, tensor: int, *, writable: bool, ctype: str | None = None) -> str:
        """The tensor as an ordinary kernel input or output (a constant one: an SRAM array on AVR)."""
        t = self.lowered.tensor(tensor)
        ctype = ctype or c_type(t.dtype)
        if t.is_constant:
            self.data_reads.add(tensor)
            name = self.const_name(tensor, const_data=False)
            return name if ctype == c_type(t.dtype) else f"(const {ctype} *){name}"
        qualifier = "" if writable else "const "
        return f"({qualifier}{ctype} *)(arena + {self.plan.offset(tensor)})"

    def const_data(self, tensor: int | None) -> str:
        """A constant tensor (weights, bias) where the kernel takes TF_CONST_DATA data; NULL for none."""
        if tensor is None:
            return "NULL"
        if not self.lowered.tensor(tensor).is_constant:
            raise CodegenError(f"tensor #{tensor} is read as constant data but is not a constant")
        self.const_data_reads.add(tensor)
        return self.const_name(tensor)

    def scratch(self) -> str:
        """The shared kernel scratch buffer (MODEL_SCRATCH_BYTES, sized for the hungriest step)."""
        return "scratch"

    def optional(self, tensor: int | None) -> str:
        return "NULL" if tensor is None else self.pointer(tensor, writable=False)

    def describe(self, tensor: int) -> str:
        t = self.lowered.tensor(tensor)
        where = "const" if t.is_constant else f"arena+{self.plan.offset(tensor)}"
        return f"#{tensor} {t.dtype}{list(t.shape)} ({where})"

    def header_comment(self, step: Step, extra: str = "") -> str:
        reads = ", ".join(self.describe(t) for t in step.reads)
        writes = ", ".join(self.describe(t) for t in step.writes)
        return f"/* operator #{step.op_index} {step.opcode}{extra}: {reads} -> {writes} */"

    def prefix(self, step: Step) -> str:
        return f"op{step.op_index}"

    def dims(self, name: str, dims: Sequence[int]) -> str:
        n, h, w, c = (int(d) for d in dims)
        return f"static const tf_dims {name} = {{{n}, {h}, {w}, {c}}};"

    def struct(self, ctype: str, name: str, fields: Sequence[tuple[str, str]]) -> str:
        body = "".join(f"    .{key} = {value},\n" for key, value in fields)
        return f"static const {ctype} {name} = {{\n{body}}};"

    def int_array(self, name: str, ctype: str, values: Iterable[int]) -> str:
        return c_array(name, ctype, [c_int(v) for v in values]).rstrip()

    def float_array(self, name: str, values: Iterable[float]) -> str:
        return c_array(name, "float", [c_float(v) for v in values]).rstrip()

    def declare(self, step: Step, *lines: str, extra: str = "") -> None:
        self.decls.append("\n".join([self.header_comment(step, extra), *lines]))

    def call(self, kernel: str, args: Sequence[str]) -> None:
        joined = (",\n" + " " * (len(kernel) + 12)).join(args)
        self.calls.append(f"  status = {kernel}({joined});\n"
                          f"  if (status != TF_OK) {{\n    return (int32_t)status;\n  }}")


def emit_source(lowered: LoweredModel, plan: MemoryPlan, *, name: str, variant: str, generator: str) -> str:
    # a first pass finds how the kernels read each constant tensor (as constant data, as an
    # ordinary input or both), the second emits with the names that follow from it
    probe = Emitter(lowered, plan)
    for step in lowered.steps:
        step.emit(probe)
    e = Emitter(lowered, plan, both=frozenset(probe.const_data_reads & probe.data_reads))
    for step in lowered.steps:
        step.emit(e)

    constants = []
    for index in lowered.constant_tensors():
        t = lowered.tensor(index)
        assert t.data is not None
        comment = f"tensor #{index} {t.name} {t.dtype}{list(t.shape)}"
        literals = _literals(t.data, t.dtype)
        if index in e.const_data_reads:
            constants.append(c_array(e.const_name(index), c_type(t.dtype), literals, comment=comment).rstrip())
        if index in e.data_reads or index not in e.const_data_reads:
            constants.append(c_array(e.const_name(index, const_data=False), c_type(t.dtype), literals,
                                     comment=comment, const_data=False).rstrip())
    uses_float = any(lowered.tensor(t).dtype == "float32"
                     for step in lowered.steps for t in step.reads + step.writes)

    plan_lines = [f" *   tensor #{t}: {lowered.tensor(t).nbytes} bytes at offset {plan.offset(t)}"
                  + (f" (shares the buffer of tensor #{plan.groups[t]})" if plan.groups.get(t, t) != t else "")
                  for t in sorted(plan.offsets)]
    parts = [
        f"/* {c_comment(name)} ({c_comment(variant)}), generated by {generator} from "
        f"{c_comment(lowered.label)}\n"
        f" * sha256 {lowered.model.sha256}. Do not edit.\n"
        f" *\n * Memory plan ({plan.arena_bytes} bytes of arena):\n" + "\n".join(plan_lines) + "\n */",
        ("#include <float.h>\n" if uses_float else "") + "#include <stddef.h>\n#include <stdint.h>\n\n"
        '#include "kernels.h"\n#include "model_generated.h"',
        f"static uint8_t arena[MODEL_ARENA_BYTES] {ALIGN};"
        + (f"\n/* kernel scratch (im2col), shared by the calls: they run one after the other */\n"
           f"static int8_t scratch[MODEL_SCRATCH_BYTES] {ALIGN};" if plan.scratch_bytes else ""),
        "\n\n".join(constants),
        "\n\n".join(e.decls),
        f"uint8_t *model_input(void) {{\n  return arena + {plan.offset(lowered.input)};\n}}\n\n"
        f"const uint8_t *model_output(void) {{\n  return arena + {plan.offset(lowered.output)};\n}}",
        "int32_t model_invoke(void) {\n  tf_status status;\n" + "\n".join(e.calls) + "\n  return 0;\n}",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def emit_header(lowered: LoweredModel, plan: MemoryPlan, *, name: str, variant: str, model_hash: str,
                generator: str) -> str:
    x, y = lowered.tensor(lowered.input), lowered.tensor(lowered.output)
    return (
        f"/* {c_comment(name)} ({c_comment(variant)}), generated by {generator}. Do not edit. */\n"
        "#ifndef MODEL_GENERATED_H\n#define MODEL_GENERATED_H\n\n#include <stdint.h>\n\n"
        f"#define MODEL_NAME {c_string(name)}\n"
        f"#define MODEL_VARIANT {c_string(variant)}\n"
        f"#define MODEL_HASH {c_string(model_hash)}\n"
        f"#define MODEL_INPUT_BYTES {x.nbytes}\n"
        f"#define MODEL_OUTPUT_BYTES {y.nbytes}\n"
        f"#define MODEL_ARENA_BYTES {plan.arena_bytes}\n"
        f"#define MODEL_SCRATCH_BYTES {plan.scratch_bytes}\n"
        f"#define MODEL_INPUT_DTYPE {c_string(x.dtype)}  /* {c_comment(str(list(x.shape)))} */\n"
        f"#define MODEL_OUTPUT_DTYPE {c_string(y.dtype)}  /* {c_comment(str(list(y.shape)))} */\n\n"
        "/* Run one inference on the input at model_input(); 0 = ok, else a tf_status. */\n"
        "int32_t model_invoke(void);\n"
        "/* Where the harness writes one input (in the arena: refill before every call). */\n"
        "uint8_t *model_input(void);\n"
        "/* One output, valid after model_invoke(). */\n"
        "const uint8_t *model_output(void);\n\n"
        "#endif /* MODEL_GENERATED_H */\n"
    )
