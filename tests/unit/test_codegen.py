"""The code generator: refusals before anything is built, the memory plan, and
generated C that compiles warning-free for the emulated cores (and, for int8,
without a single float instruction)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from farm.codegen import (
    UnsupportedModelError,
    UnsupportedOperatorError,
    check_supported,
    generate,
)
from farm.codegen.planner import Lifetime, lifetimes, plan_memory
from fixtures_models import KERNELS, model_cache_dir, sine_artifacts  # noqa: F401
from fixtures_tools import require_tool

ARM_GCC = shutil.which("arm-none-eabi-gcc")
ARM_TARGETS = {
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
}
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
# missing: skip, or FAIL in CI (tests/fixtures_tools.py)
requires_arm_gcc = pytest.mark.requires_tool("arm-none-eabi-gcc")


# --------------------------------------------------------------------------- #
# Refusals
# --------------------------------------------------------------------------- #

def _keras_tflite(tmp_path: Path, name: str, build) -> Path:
    import keras

    from farm.models.convert import to_float32

    keras.utils.set_random_seed(0)
    path = tmp_path / name
    path.write_bytes(to_float32(build(keras)))
    return path


def test_unsupported_op_refused_with_op_name_model_and_index(tmp_path):
    import keras as k

    path = _keras_tflite(tmp_path, "exp.tflite", lambda keras: keras.Sequential([
        keras.Input(shape=(4, 4, 2), batch_size=1), keras.layers.Conv2D(3, 3),
        keras.layers.Lambda(lambda t: k.ops.exp(t)), keras.layers.Flatten(), keras.layers.Dense(2)]))
    with pytest.raises(UnsupportedOperatorError) as info:
        check_supported(path)
    err = info.value
    assert (err.op, err.model, err.where) == ("EXP", "exp.tflite", 1)
    assert str(err).startswith("exp.tflite: operator #1 EXP is not supported by the code generator")
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX", "FULLY_CONNECTED", "MEAN"):
        assert op in str(err)  # says what is supported

    out_dir = tmp_path / "gen"
    with pytest.raises(UnsupportedOperatorError, match="EXP"):
        generate(path, out_dir, name="exp", variant="float32")
    assert not out_dir.exists()  # refused before anything was written


def test_unknown_op_refused_before_any_other_problem(tmp_path):
    """The first unsupported opcode is named, wherever it is, before op details are checked."""
    import keras as k

    path = _keras_tflite(tmp_path, "later.tflite", lambda keras: keras.Sequential([
        keras.Input(shape=(3,), batch_size=1), keras.layers.Dense(4),
        keras.layers.Lambda(lambda t: k.ops.square(t))]))
    with pytest.raises(UnsupportedOperatorError, match=r"operator #1 SQUARE is not supported"):
        check_supported(path)


def test_unsupported_configuration_refused_with_reason(sine_artifacts, tmp_path):
    """A supported op in a configuration the kernels do not have: named, with why."""
    from farm.models.convert import pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    fb = schema.ModelT.InitFromPackedBuf(bytearray(sine_artifacts["float32"].tflite_path.read_bytes()), 0)
    fb.subgraphs[0].operators[1].builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.TANH
    path = tmp_path / "tanh_fused.tflite"
    path.write_bytes(pack_model(fb))
    with pytest.raises(UnsupportedOperatorError,
                       match=r"operator #1 FULLY_CONNECTED: fused activation TANH is not supported"):
        check_supported(path)


def test_two_outputs_refused(tmp_path):
    def build(keras):
        x = keras.Input(shape=(3,), batch_size=1)
        return keras.Model(x, [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)])

    path = _keras_tflite(tmp_path, "two_heads.tflite", build)
    with pytest.raises(UnsupportedModelError, match="1 inputs and 2 outputs; .* single input and a single output"):
        check_supported(path)


def test_hybrid_fully_connected_lowered_to_the_hybrid_kernel(sine_artifacts, tmp_path):
    """Float input with int8 weights read directly (no DEQUANTIZE) is not Strategy A but a
    hybrid op (tests/unit/test_hybrid_ops_host.py checks its outputs)."""
    from farm.models.convert import pack_model
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    src = sine_artifacts["int8-weights"].tflite_path.read_bytes()
    fb = schema.ModelT.InitFromPackedBuf(bytearray(src), 0)
    sg = fb.subgraphs[0]
    dq_code = next(i for i, c in enumerate(fb.operatorCodes)
                   if max(c.deprecatedBuiltinCode, c.builtinCode) == schema.BuiltinOperator.DEQUANTIZE)
    dequantize = {op.outputs[0]: op.inputs[0] for op in sg.operators if op.opcodeIndex == dq_code}
    sg.operators = [op for op in sg.operators if op.opcodeIndex != dq_code]
    for op in sg.operators:
        op.inputs = [dequantize.get(int(i), int(i)) for i in op.inputs]
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(pack_model(fb))
    gen = generate(path, tmp_path / "gen", name="sine", variant="user")
    assert gen.ops == ("fully_connected_hybrid_f32_s8",) * 3, gen.ops


def test_bad_model_name_refused(sine_artifacts, tmp_path):
    from farm.codegen import CodegenError

    with pytest.raises(CodegenError, match="C string"):
        generate(sine_artifacts["int8"].tflite_path, tmp_path, name='sine"; evil', variant="int8")


# --------------------------------------------------------------------------- #
# Memory plan
# --------------------------------------------------------------------------- #

def test_planner_reuses_dead_buffers_and_never_overlaps_live_ones():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        buffers = []
        for t in range(n):
            first = int(rng.integers(0, 10))
            buffers.append(Lifetime(t, int(rng.integers(1, 300)), first, first + int(rng.integers(0, 4))))
        plan = plan_memory(buffers)
        for a in buffers:
            off_a = plan.offset(a.tensor)
            assert off_a % 16 == 0
            assert off_a + a.size <= plan.arena_bytes
            for b in buffers:
                if a.tensor < b.tensor and a.overlaps(b):
                    off_b = plan.offset(b.tensor)
                    assert off_a + a.size <= off_b or off_b + b.size <= off_a, (a, b, plan.offsets)
        peak = max(sum(b.size for b in buffers if b.first <= step <= b.last) for step in range(14))
        assert plan.arena_bytes >= peak


def test_lifetimes_follow_the_graph():
    # step 0: t0 -> t1; step 1: t1 -> t2; step 2: t2 -> t3 (graph output)
    steps = [((0, 10), (1,)), ((1, 11), (2,)), ((2, 12), (3,))]
    sizes = {0: 4, 1: 64, 2: 64, 3: 4}  # t10..t12 are constants: not in the arena
    lts = {lt.tensor: (lt.first, lt.last) for lt in lifetimes(steps, sizes, [0], [3])}
    assert lts == {0: (0, 0), 1: (0, 1), 2: (1, 2), 3: (2, 2)}
    plan = plan_memory([Lifetime(t, sizes[t], *lts[t]) for t in sizes])
    assert plan.offset(0) == plan.offset(2) or plan.offset(3) == plan.offset(1)  # reuse happened
    assert plan.arena_bytes == 128  # two 64-byte tensors live at once, nothing more


# --------------------------------------------------------------------------- #
# Generated sources
# --------------------------------------------------------------------------- #

VARIANT_KERNELS = {
    "float32": {"fully_connected_f32"},
    "int8-weights": {"fully_connected_f32_w8"},
    "int8": {"fully_connected_s8_fast"},  # optimized kernels (the default kernel set)
}


@pytest.mark.parametrize("variant", ["float32", "int8-weights", "int8"])
def test_generated_header_and_source(sine_artifacts, tmp_path, variant):
    art = sine_artifacts[variant]
    gen = generate(art.tflite_path, tmp_path, name="sine", variant=variant)
    header = gen.header.read_text()
    defines = dict(re.findall(r"^#define (MODEL_\w+) (\S+)", header, flags=re.M))
    assert defines["MODEL_NAME"] == '"sine"' and defines["MODEL_VARIANT"] == f'"{variant}"'
    assert defines["MODEL_HASH"] == f'"{art.sha256[:16]}"' == f'"{gen.model_hash}"'
    itemsize = 1 if variant == "int8" else 4
    assert int(defines["MODEL_INPUT_BYTES"]) == gen.input_bytes == itemsize
    assert int(defines["MODEL_OUTPUT_BYTES"]) == gen.output_bytes == itemsize
    assert int(defines["MODEL_ARENA_BYTES"]) == gen.arena_bytes
    for decl in ("int32_t model_invoke(void);", "uint8_t *model_input(void);", "const uint8_t *model_output(void);"):
        assert decl in header
    assert set(gen.ops) <= VARIANT_KERNELS[variant] and len(gen.ops) == 3
    # two 16-wide hidden layers never live together with more than one other 16-wide buffer
    assert gen.arena_bytes <= 2 * 16 * itemsize + 16

    source = gen.source.read_text()
    assert "static uint8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(16)));" in source
    assert "malloc" not in source
    if variant == "int8":
        assert not re.search(r"\bfloat\b|\bdouble\b|\d\.\d*f\b", source), "int8 model.c mentions floats"

    again = generate(art.tflite_path, tmp_path / "again", name="sine", variant=variant)
    assert again.source.read_text() == source  # deterministic: the firmware cache keys on it


def _compile(sources: list[Path], include_dirs: list[Path], flags: list[str], out_dir: Path) -> list[Path]:
    objects = []
    for src in sources:
        obj = out_dir / (src.stem + ".o")
        cmd = [ARM_GCC, *CFLAGS, *flags, *(f"-I{d}" for d in include_dirs), "-c", str(src), "-o", str(obj)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{src.name} ({' '.join(flags)}):\n{result.stderr}"
        objects.append(obj)
    return objects


@requires_arm_gcc
@pytest.mark.parametrize("target", list(ARM_TARGETS))
@pytest.mark.parametrize("variant", ["float32", "int8-weights", "int8"])
def test_generated_code_compiles_for_cortex_m(sine_artifacts, tmp_path, variant, target):
    gen = generate(sine_artifacts[variant].tflite_path, tmp_path, name="sine", variant=variant)
    _compile([gen.source], [KERNELS / "include", tmp_path], ARM_TARGETS[target], tmp_path)  # kernels: below


FLOAT_INSTRUCTION = re.compile(r"\bv(add|sub|mul|div|mla|mls|fma|fms|neg|abs|sqrt|cvt|cmp|cmpe|mov|ldr|str|ldm|stm"
                               r"|push|pop)\S*\s", re.I)


@requires_arm_gcc
def test_int8_model_and_kernels_have_no_float_code(sine_artifacts, tmp_path):
    """int8 model.c + the _s8 kernels, built for a hard-float M4: no VFP instruction,
    no soft-float helper call."""
    objdump = require_tool("arm-none-eabi-objdump")
    nm = require_tool("arm-none-eabi-nm")
    gen = generate(sine_artifacts["int8"].tflite_path, tmp_path, name="sine", variant="int8")
    s8 = [KERNELS / "src" / f"{k}.c" for k in sorted(set(gen.ops))]
    objects = _compile([gen.source, *s8], [KERNELS / "include", tmp_path], ARM_TARGETS["cortex-m4f"], tmp_path)
    for obj in objects:
        disasm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        body = "\n".join(line.split("\t", 2)[-1] for line in disasm.splitlines() if "\t" in line)
        assert not FLOAT_INSTRUCTION.search(body), f"{obj.name} has float instructions"
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
        assert not re.search(r"__aeabi_[fd]|__aeabi_[ui]?[fd]2|float|double", undefined), undefined


# --------------------------------------------------------------------------- #
# Memory plan: aliases, in-place kernels, the zoo against tflite-micro
# --------------------------------------------------------------------------- #

def test_reshape_is_an_alias_and_elementwise_ops_run_in_place():
    from farm.codegen.planner import group_buffers

    # t0 -conv-> t1 -reshape-> t2 -relu(in place)-> t3 -fc-> t4 ; t1..t3 share one buffer
    steps = [((0,), (1,)), ((1,), (2,)), ((2,), (3,)), ((3,), (4,))]
    sizes = {0: 100, 1: 64, 2: 64, 3: 64, 4: 8}
    buffers = lifetimes(steps, sizes, [0], [4])
    merged, groups = group_buffers(buffers, aliases={2: 1}, inplace=[(2, 3, 2)])
    assert groups[1] == groups[2] == groups[3] and len(merged) == 3
    plan = plan_memory(buffers, aliases={2: 1}, inplace=[(2, 3, 2)])
    assert plan.offset(1) == plan.offset(2) == plan.offset(3)
    assert plan.arena_bytes == 176  # t0 + t1 at step 0 (100 -> 112 aligned, + 64), nothing more
    # in place only where the input dies: here t2 is read again at the last step
    steps_live = [((0,), (1,)), ((1,), (2,)), ((2,), (3,)), ((3, 2), (4,))]
    _, groups = group_buffers(lifetimes(steps_live, sizes, [0], [4]), aliases={}, inplace=[(2, 3, 2)])
    assert groups[3] != groups[2]


def test_planner_never_overlaps_live_buffers_with_aliases_and_inplace():
    rng = np.random.default_rng(5)
    for _ in range(100):
        n = int(rng.integers(2, 10))
        steps = [((int(rng.integers(0, i + 1)),), (i + 1,)) for i in range(n)]
        sizes = {t: int(rng.integers(1, 200)) for t in range(n + 1)}
        buffers = lifetimes(steps, sizes, [0], [n])
        inplace = [(i, i + 1, steps[i][0][0]) for i in range(n) if rng.random() < 0.5]
        plan = plan_memory(buffers, inplace=inplace)
        for a in buffers:
            for b in buffers:
                if a.tensor < b.tensor and a.overlaps(b) and plan.groups[a.tensor] != plan.groups[b.tensor]:
                    oa, ob = plan.offset(a.tensor), plan.offset(b.tensor)
                    assert oa + a.size <= ob or ob + b.size <= oa
        # two tensors of one buffer are live together only at an in-place step, where
        # the input dies and the output is born
        pairs = {(out, inp): step for step, out, inp in inplace}
        for a in buffers:
            for b in buffers:
                if a.tensor != b.tensor and plan.groups[a.tensor] == plan.groups[b.tensor] and a.overlaps(b):
                    step = pairs.get((b.tensor, a.tensor))  # b written over a
                    assert step is not None or (a.tensor, b.tensor) in pairs, (a, b, inplace)
                    if step is not None:
                        assert a.last == step == b.first, (a, b, inplace)


@pytest.fixture(scope="module")
def zoo_int8(model_cache_dir):
    from farm.models import build_variant
    from farm.models.native_output import native_output_to

    with native_output_to(model_cache_dir.parent / "logs" / "tensorflow.log"):
        return {m: {v: build_variant(m, v, model_cache_dir) for v in ("int8", "float32")}
                for m in ("digits", "kws", "ad", "ic", "vww")}


def test_zoo_arena_against_tflite_micro_s(zoo_int8, tmp_path):
    """Our static arena is less than the arena the tflite-micro interpreter needs, and at
    most the part of it that holds tensors plus the output, which our plan keeps apart
    from the input (TFLM may put them in one place); never below what is live at once."""
    from farm.codegen.generator import plan_for
    from farm.codegen.lowering import lower
    from farm.codegen.planner import peak_live_bytes
    from farm.models.reference import tflm_arena
    from farm.codegen.tflite_reader import read_tflite

    smaller = []
    for model, variants in zoo_int8.items():
        for variant, art in variants.items():
            lowered = lower(read_tflite(art.tflite_path))
            plan = plan_for(lowered)
            tflm = tflm_arena(art.tflite_path.read_bytes())
            output = lowered.tensor(lowered.output).nbytes
            assert peak_live_bytes(plan.lifetimes) <= plan.arena_bytes < tflm.total, (model, variant)
            assert plan.arena_bytes <= tflm.head + output + plan.alignment, (model, variant)
            assert plan.offset(lowered.output) >= plan.offset(lowered.input) + lowered.tensor(lowered.input).nbytes \
                or plan.offset(lowered.output) + output <= plan.offset(lowered.input)
            if plan.arena_bytes < tflm.head:
                smaller.append((model, variant))
    assert ("vww", "int8") in smaller  # the in-place / ordering choices beat TFLM's greedy plan there


@pytest.mark.parametrize("model", ["kws", "ad", "ic", "vww"])
def test_zoo_int8_bit_exact_on_the_host(zoo_int8, model, tmp_path):
    """The MLPerf Tiny architectures, int8, compiled for the host: identical to tflite-micro."""
    from fixtures_models import compile_host_model, run_host_model

    art = zoo_int8[model]["int8"]
    exe = compile_host_model(art.tflite_path, tmp_path, name=model, variant="int8")
    out = run_host_model(exe, art.test_inputs, np.int8, art.ref_outputs.shape[1:])
    np.testing.assert_array_equal(out, art.ref_outputs)


INT8_KERNELS = sorted(p.stem for p in (KERNELS / "src").glob("*.c")
                      if (p.stem.endswith(("_s8", "_s8_fast")) and "f32" not in p.stem)
                      or p.stem in ("pad", "concatenation"))


@requires_arm_gcc
def test_every_int8_kernel_is_float_free(tmp_path):
    """Every kernel an int8 model can call, built for a hard-float M4: no VFP instruction,
    no soft-float helper call (the pipeline's static checker verifies whole ELFs too)."""
    objdump = require_tool("arm-none-eabi-objdump")
    nm = require_tool("arm-none-eabi-nm")
    assert {"conv2d_s8", "depthwise_conv2d_s8", "softmax_s8", "lut_s8", "mean_s8", "add_s8", "conv2d_s8_fast",
            "conv2d_1x1_s8_fast", "depthwise_conv2d_s8_fast", "fully_connected_s8_fast",
            "mat_mult_s8"} <= set(INT8_KERNELS)
    sources = [KERNELS / "src" / f"{k}.c" for k in INT8_KERNELS]
    for obj in _compile(sources, [KERNELS / "include"], ARM_TARGETS["cortex-m4f"], tmp_path):
        disasm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        body = "\n".join(line.split("\t", 2)[-1] for line in disasm.splitlines() if "\t" in line)
        assert not FLOAT_INSTRUCTION.search(body), f"{obj.name} has float instructions"
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
        assert not re.search(r"__aeabi_[fd]|__aeabi_[ui]?[fd]2|float|double|__.*sf", undefined), undefined


@requires_arm_gcc
@pytest.mark.parametrize("target", list(ARM_TARGETS))
def test_every_kernel_compiles_warning_free_for_cortex_m(tmp_path, target):
    _compile(sorted((KERNELS / "src").glob("*.c")), [KERNELS / "include"], ARM_TARGETS[target], tmp_path)


def test_generated_model_reports_macs(sine_artifacts, tmp_path):
    gen = generate(sine_artifacts["int8"].tflite_path, tmp_path, name="sine", variant="int8")
    assert gen.macs == 1 * 16 + 16 * 16 + 16 * 1
