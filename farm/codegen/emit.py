"""C emitter: a lowered model + memory plan -> model.c and model_generated.h.

The output is deterministic (same .tflite in, same bytes out), so the firmware
cache can key on it. Constants are `static const` aligned arrays (flash), the
activations live in one static arena, every kernel parameter is a literal, and
int8 models get integer literals only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from farm.codegen.errors import CodegenError
from farm.codegen.lowering import Dequantize, FcDims, FullyConnectedF32, FullyConnectedS8, LoweredModel, Quantize, Step
from farm.codegen.planner import MemoryPlan

ALIGN = "__attribute__((aligned(16)))"
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


def c_array(name: str, ctype: str, literals: Sequence[str], comment: str = "") -> str:
    if not literals:
        raise CodegenError(f"array {name} would be empty")
    per_line = 16 if ctype in ("int8_t", "uint8_t") else 8
    head = f"/* {c_comment(comment)} */\n" if comment else ""
    return (f"{head}static const {ctype} {name}[{len(literals)}] {ALIGN} = {{\n"
            f"{_array_body(literals, per_line)}\n}};\n")


def _literals(values: np.ndarray, dtype: str) -> list[str]:
    flat = np.asarray(values).reshape(-1)
    if dtype == "float32":
        return [c_float(v) for v in flat]
    return [c_int(v) for v in flat]


class _Emitter:
    def __init__(self, lowered: LoweredModel, plan: MemoryPlan) -> None:
        self.lowered = lowered
        self.plan = plan
        self.decls: list[str] = []
        self.calls: list[str] = []

    def const_name(self, tensor: int) -> str:
        return f"tensor{tensor}"

    def pointer(self, tensor: int, *, writable: bool) -> str:
        t = self.lowered.tensor(tensor)
        ctype = c_type(t.dtype)
        if t.is_constant:
            return self.const_name(tensor)
        qualifier = "" if writable else "const "
        return f"({qualifier}{ctype} *)(arena + {self.plan.offset(tensor)})"

    def optional(self, tensor: int | None) -> str:
        return "NULL" if tensor is None else self.pointer(tensor, writable=False)

    def describe(self, tensor: int) -> str:
        t = self.lowered.tensor(tensor)
        where = "const" if t.is_constant else f"arena+{self.plan.offset(tensor)}"
        return f"#{tensor} {t.dtype}{list(t.shape)} ({where})"

    def dims(self, prefix: str, dims: FcDims) -> list[str]:
        return [
            f"static const tf_dims {prefix}_input_dims = {{{dims.batches}, 1, 1, {dims.accum_depth}}};",
            f"static const tf_dims {prefix}_filter_dims = {{{dims.output_depth}, 1, 1, {dims.accum_depth}}};",
            f"static const tf_dims {prefix}_output_dims = {{{dims.batches}, 1, 1, {dims.output_depth}}};",
        ]

    def header_comment(self, step: Step, extra: str) -> str:
        reads = ", ".join(self.describe(t) for t in step.reads)
        writes = ", ".join(self.describe(t) for t in step.writes)
        return f"/* operator #{step.op_index} {step.opcode}{extra}: {reads} -> {writes} */"

    def call(self, kernel: str, args: Sequence[str]) -> None:
        joined = (",\n" + " " * (len(kernel) + 12)).join(args)
        self.calls.append(f"  status = {kernel}({joined});\n"
                          f"  if (status != TF_OK) {{\n    return (int32_t)status;\n  }}")


def _emit_fc_s8(e: _Emitter, step: FullyConnectedS8) -> None:
    p = f"op{step.op_index}"
    lines = [e.header_comment(step, f" ({step.activation})"),
             f"static const tf_fc_params_s8 {p}_params = {{\n"
             f"    .input_offset = {c_int(step.input_offset)},\n"
             f"    .filter_offset = {c_int(step.filter_offset)},\n"
             f"    .output_offset = {c_int(step.output_offset)},\n"
             f"    .activation_min = {c_int(step.act_min)},\n"
             f"    .activation_max = {c_int(step.act_max)},\n}};"]
    if step.per_channel:
        lines.append(c_array(f"{p}_multiplier", "int32_t", [c_int(m) for m in step.multipliers]).rstrip())
        lines.append(c_array(f"{p}_shift", "int32_t", [c_int(s) for s in step.shifts]).rstrip())
        lines.append(f"static const tf_per_channel_quant_params {p}_quant = {{{p}_multiplier, {p}_shift}};")
    else:
        lines.append(f"static const tf_per_tensor_quant_params {p}_quant = "
                     f"{{{c_int(step.multipliers[0])}, {c_int(step.shifts[0])}}};")
    lines += e.dims(p, step.dims)
    e.decls.append("\n".join(lines))
    e.call(step.kernel, [
        f"&{p}_params", f"&{p}_quant",
        f"&{p}_input_dims", e.pointer(step.input, writable=False),
        f"&{p}_filter_dims", e.pointer(step.weights, writable=False),
        e.optional(step.bias),
        f"&{p}_output_dims", e.pointer(step.output, writable=True),
    ])


def _emit_fc_f32(e: _Emitter, step: FullyConnectedF32) -> None:
    p = f"op{step.op_index}"
    lines = [e.header_comment(step, f" ({step.activation}{', int8 weights' if step.filter_scales else ''})"),
             f"static const tf_fc_params_f32 {p}_params = {{{c_float(step.act_min)}, {c_float(step.act_max)}}};"]
    if step.filter_scales is not None:
        lines.append(c_array(f"{p}_filter_scales", "float", [c_float(s) for s in step.filter_scales]).rstrip())
    lines += e.dims(p, step.dims)
    e.decls.append("\n".join(lines))
    args = [f"&{p}_params", f"&{p}_input_dims", e.pointer(step.input, writable=False),
            f"&{p}_filter_dims", e.pointer(step.weights, writable=False)]
    if step.filter_scales is not None:
        args.append(f"{p}_filter_scales")
    args += [e.optional(step.bias), f"&{p}_output_dims", e.pointer(step.output, writable=True)]
    e.call(step.kernel, args)


def _emit_affine(e: _Emitter, step: Quantize | Dequantize) -> None:
    p = f"op{step.op_index}"
    e.decls.append("\n".join([
        e.header_comment(step, ""),
        f"static const tf_affine_quant_params {p}_quant = {{{c_float(step.scale)}, {c_int(step.zero_point)}}};",
    ]))
    e.call(step.kernel, [f"&{p}_quant", str(step.size), e.pointer(step.input, writable=False),
                         e.pointer(step.output, writable=True)])


#: lowered step type -> emitter
EMITTERS: dict[type, Callable[[_Emitter, Step], None]] = {
    FullyConnectedS8: _emit_fc_s8,  # type: ignore[dict-item]
    FullyConnectedF32: _emit_fc_f32,  # type: ignore[dict-item]
    Quantize: _emit_affine,  # type: ignore[dict-item]
    Dequantize: _emit_affine,  # type: ignore[dict-item]
}


def emit_source(lowered: LoweredModel, plan: MemoryPlan, *, name: str, variant: str, generator: str) -> str:
    e = _Emitter(lowered, plan)
    for step in lowered.steps:
        EMITTERS[type(step)](e, step)

    constants = []
    for index in lowered.constant_tensors():
        t = lowered.tensor(index)
        assert t.data is not None
        constants.append(c_array(e.const_name(index), c_type(t.dtype), _literals(t.data, t.dtype),
                                 comment=f"tensor #{index} {t.name} {t.dtype}{list(t.shape)}").rstrip())
    uses_float = any(lowered.tensor(t).dtype == "float32"
                     for step in lowered.steps for t in step.reads + step.writes)

    plan_lines = [f" *   tensor #{lt.tensor}: {lt.size} bytes at offset {plan.offset(lt.tensor)}, "
                  f"live in steps {lt.first}..{lt.last}" for lt in plan.lifetimes]
    parts = [
        f"/* {c_comment(name)} ({c_comment(variant)}), generated by {generator} from "
        f"{c_comment(lowered.label)}\n"
        f" * sha256 {lowered.model.sha256}. Do not edit.\n"
        f" *\n * Memory plan ({plan.arena_bytes} bytes of arena):\n" + "\n".join(plan_lines) + "\n */",
        ("#include <float.h>\n" if uses_float else "") + "#include <stddef.h>\n#include <stdint.h>\n\n"
        '#include "kernels.h"\n#include "model_generated.h"',
        f"static uint8_t arena[MODEL_ARENA_BYTES] {ALIGN};",
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
