"""The code generator's entry points: check a .tflite, generate its C sources."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import farm
from farm.codegen.emit import c_string, emit_header, emit_source
from farm.codegen.errors import CodegenError
from farm.codegen.inplace import raster_in_place
from farm.codegen.ir import LoweredModel
from farm.codegen.lowering import lower
from farm.codegen.planner import MemoryPlan, lifetimes, plan_memory
from farm.codegen.tflite_reader import read_tflite

GENERATOR = f"farm.codegen (tinyfarm {farm.__version__})"


@dataclass(frozen=True)
class GeneratedModel:
    source: Path  # model.c
    header: Path  # model_generated.h
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    input_dtype: str
    output_dtype: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    ops: tuple[str, ...]  # kernel functions called, in order
    model_hash: str  # first 16 hex chars of the .tflite sha256
    tflite_ops: tuple[str, ...] = ()  # the model's opcodes, in order (fused ones included)
    const_bytes: int = 0  # bytes of the model's constant tensors emitted (weights, biases)
    macs: int = 0  # multiply-accumulates of one inference (convolutions and fully connected)


def check_supported(tflite_path: Path) -> None:
    """Raise UnsupportedOperatorError / UnsupportedModelError if `tflite_path` cannot be generated."""
    lower(read_tflite(Path(tflite_path)), "reference")


def plan_for(lowered: LoweredModel) -> MemoryPlan:
    """The model's memory plan, with the kernel scratch its steps need (the extra
    scratch of the steps placed over their input included)."""
    sizes = lowered.arena_tensors()
    steps = [(step.reads, step.writes) for step in lowered.steps]
    inplace: list[tuple[int, ...]] = [(i, out, inp) for i, step in enumerate(lowered.steps)
                                      for out, inp in step.inplace]
    offered = [step.in_place + raster_in_place(step) for step in lowered.steps]
    inplace += [(i, c.output, c.input, c.shift) for i, cs in enumerate(offered) for c in cs]
    inplace.sort(key=lambda c: c[0])
    # the output never shares bytes with the input: the harness writes the next input
    # (and refills it around its timed loops) while the output is still to be read
    plan = plan_memory(lifetimes(steps, sizes, [lowered.input], [lowered.output]),
                       aliases=lowered.aliases(), inplace=inplace, apart=[(lowered.input, lowered.output)])
    taken = set(plan.in_place)
    scratch = max((step.scratch_bytes + max((c.scratch_bytes for c in offered[i]
                                             if (i, c.output, c.input) in taken), default=0)
                   for i, step in enumerate(lowered.steps)), default=0)
    return replace(plan, scratch_bytes=scratch)


def generate(tflite_path: Path, out_dir: Path, *, name: str, variant: str,
             kernels: str = "optimized") -> GeneratedModel:
    """Write out_dir/model.c and out_dir/model_generated.h for the model at `tflite_path`.

    `kernels` ("optimized" or "reference", farm.codegen.ir.KERNEL_SETS): the
    optimized int8 kernels where an op allows, or the plain reference kernels only.

    Everything is checked (and raises CodegenError subclasses) before a file is written.
    """
    tflite_path = Path(tflite_path)
    for label, value in (("name", name), ("variant", variant)):
        if not value:
            raise CodegenError(f"{tflite_path.name}: the model {label} must not be empty")
        c_string(value)  # raises if it cannot go into a C string literal
    model = read_tflite(tflite_path)
    lowered = lower(model, kernels)
    plan = plan_for(lowered)
    model_hash = model.sha256[:16]
    source = emit_source(lowered, plan, name=name, variant=variant, generator=GENERATOR)
    header = emit_header(lowered, plan, name=name, variant=variant, model_hash=model_hash, generator=GENERATOR)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source_path = out_dir / "model.c"
    header_path = out_dir / "model_generated.h"
    source_path.write_text(source)
    header_path.write_text(header)

    x, y = lowered.tensor(lowered.input), lowered.tensor(lowered.output)
    return GeneratedModel(
        source=source_path,
        header=header_path,
        arena_bytes=plan.arena_bytes,
        input_bytes=x.nbytes,
        output_bytes=y.nbytes,
        input_dtype=x.dtype,
        output_dtype=y.dtype,
        input_shape=x.shape,
        output_shape=y.shape,
        ops=tuple(step.kernel for step in lowered.kernel_steps),
        model_hash=model_hash,
        tflite_ops=tuple(op.opcode for op in model.main.operators),
        const_bytes=lowered.const_bytes,
        macs=lowered.macs,
    )
