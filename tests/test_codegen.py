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
from fixtures_models import KERNELS, conv_tflite, model_cache_dir, sine_artifacts  # noqa: F401

ARM_GCC = shutil.which("arm-none-eabi-gcc")
ARM_TARGETS = {
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
}
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
requires_arm_gcc = pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")


# --------------------------------------------------------------------------- #
# Refusals
# --------------------------------------------------------------------------- #

def test_conv2d_refused_with_op_name_model_and_index(conv_tflite, tmp_path):
    with pytest.raises(UnsupportedOperatorError) as info:
        check_supported(conv_tflite)
    err = info.value
    assert (err.op, err.model, err.where) == ("CONV_2D", "tiny_conv.tflite", 0)
    assert str(err).startswith("tiny_conv.tflite: operator #0 CONV_2D is not supported by the code generator")
    assert "FULLY_CONNECTED" in str(err)  # says what is supported

    out_dir = tmp_path / "gen"
    with pytest.raises(UnsupportedOperatorError, match="CONV_2D"):
        generate(conv_tflite, out_dir, name="conv", variant="float32")
    assert not out_dir.exists()  # refused before anything was written


def _keras_tflite(tmp_path: Path, name: str, build) -> Path:
    import keras

    from farm.models.convert import to_float32

    keras.utils.set_random_seed(0)
    path = tmp_path / name
    path.write_bytes(to_float32(build(keras)))
    return path


def test_unfused_activation_op_refused_at_its_index(tmp_path):
    path = _keras_tflite(tmp_path, "tanh.tflite", lambda keras: keras.Sequential(
        [keras.Input(shape=(3,), batch_size=1), keras.layers.Dense(4, activation="tanh")]))
    with pytest.raises(UnsupportedOperatorError, match=r"^tanh\.tflite: operator #1 TANH is not supported"):
        check_supported(path)


def test_two_outputs_refused(tmp_path):
    def build(keras):
        x = keras.Input(shape=(3,), batch_size=1)
        return keras.Model(x, [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)])

    path = _keras_tflite(tmp_path, "two_heads.tflite", build)
    with pytest.raises(UnsupportedModelError, match="1 inputs and 2 outputs; .* single input and a single output"):
        check_supported(path)


def test_hybrid_fully_connected_refused(sine_artifacts, tmp_path):
    """Float input with int8 weights read directly (no DEQUANTIZE) is not Strategy A."""
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
    with pytest.raises(UnsupportedOperatorError, match=r"operator #0 FULLY_CONNECTED: hybrid"):
        check_supported(path)


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
    "int8": {"fully_connected_s8", "fully_connected_per_channel_s8"},
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
    kernel_sources = sorted((KERNELS / "src").glob("*.c"))
    _compile([gen.source, *kernel_sources], [KERNELS / "include", tmp_path], ARM_TARGETS[target], tmp_path)


FLOAT_INSTRUCTION = re.compile(r"\bv(add|sub|mul|div|mla|mls|fma|fms|neg|abs|sqrt|cvt|cmp|cmpe|mov|ldr|str|ldm|stm"
                               r"|push|pop)\S*\s", re.I)


@requires_arm_gcc
def test_int8_model_and_kernels_have_no_float_code(sine_artifacts, tmp_path):
    """int8 model.c + the _s8 kernels, built for a hard-float M4: no VFP instruction,
    no soft-float helper call."""
    objdump = shutil.which("arm-none-eabi-objdump")
    nm = shutil.which("arm-none-eabi-nm")
    if objdump is None or nm is None:
        pytest.skip("arm-none-eabi binutils not installed")
    gen = generate(sine_artifacts["int8"].tflite_path, tmp_path, name="sine", variant="int8")
    s8 = [KERNELS / "src" / f"{k}.c" for k in sorted(set(gen.ops))]
    objects = _compile([gen.source, *s8], [KERNELS / "include", tmp_path], ARM_TARGETS["cortex-m4f"], tmp_path)
    for obj in objects:
        disasm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        body = "\n".join(line.split("\t", 2)[-1] for line in disasm.splitlines() if "\t" in line)
        assert not FLOAT_INSTRUCTION.search(body), f"{obj.name} has float instructions"
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
        assert not re.search(r"__aeabi_[fd]|__aeabi_[ui]?[fd]2|float|double", undefined), undefined
