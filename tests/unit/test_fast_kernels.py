"""The optimized int8 kernels (*_s8_fast) against the truth: the plain reference
kernels and tflite-micro, op by op, plus the pieces they rest on (the exact
one-multiply requantization, the host's weight packing) and the compile-time
choice of the SIMD path."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures_models import HOST_CFLAGS, KERNELS, compile_host_model, run_host_model

ARM_GCC = shutil.which("arm-none-eabi-gcc")
ARM_OBJDUMP = shutil.which("arm-none-eabi-objdump")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------- #
# requantization: tf_requantize_channel_s8 == TFLM's MultiplyByQuantizedMultiplier
# --------------------------------------------------------------------------- #

def _requant_cases(rng: np.random.Generator) -> tuple[list[int], list[int]]:
    xs = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -65537, -32768, -3, -2, -1, 0, 1, 2, 3, 32767,
          2**30, 2**30 + 1, INT32_MAX - 1, INT32_MAX]
    xs += [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, size=300, endpoint=True)]
    xs += [int(v) for v in rng.integers(-(2**20), 2**20, size=300)]  # accumulator-sized
    multipliers = [0, 2**30, 2**30 + 1, 1518500250, 2**31 - 2, 2**31 - 1]
    multipliers += [int(v) for v in rng.integers(2**30, 2**31, size=10)]
    return xs, multipliers


def test_requantize_channel_equals_reference_multiply_by_quantized_multiplier(tmp_path: Path):
    """Every shift in [-31, 30], edge and random accumulators and multipliers: the
    optimized kernels' requantization (one 64-bit multiply-add and a shift, with the
    rounding constant the code generator computes) equals the reference helper."""
    from farm.codegen.ops.optimized import channel_table

    xs, multipliers = _requant_cases(np.random.default_rng(3))
    shifts = list(range(-31, 31))
    rows = []
    for m in multipliers:
        for sh in shifts:
            _, m_lit, sh_lit, lo, hi = channel_table((0,), (m,), (sh,))[0]
            rows.append(f"{{0, {m_lit}, {sh_lit}, {lo}u, {hi}}}")
    source = tmp_path / "requant.c"
    source.write_text(
        "#include <stdio.h>\n#include \"fixed_point.h\"\n"
        f"static const int32_t xs[] = {{{', '.join(f'{x}' if x != INT32_MIN else '(-2147483647 - 1)' for x in xs)}}};\n"
        f"static const tf_channel_s8 chs[] = {{{', '.join(rows)}}};\n"
        "int main(void) {\n  long cases = 0, bad = 0;\n"
        "  for (unsigned c = 0; c < sizeof chs / sizeof chs[0]; ++c)\n"
        "    for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i, ++cases) {\n"
        "      const int32_t want = tf_multiply_by_quantized_multiplier(xs[i], chs[c].multiplier, chs[c].shift);\n"
        "      const int32_t fast = tf_multiply_by_quantized_multiplier_fast(xs[i], chs[c].multiplier, chs[c].shift);\n"
        "      const int32_t got = tf_requantize_channel_s8(xs[i], &chs[c]);\n"
        "      if (got != want || fast != want) {\n"
        "        if (bad++ < 5) printf(\"x=%ld m=%ld shift=%ld: want %ld got %ld fast %ld\\n\", (long)xs[i],\n"
        "                              (long)chs[c].multiplier, (long)chs[c].shift, (long)want, (long)got, (long)fast);\n"
        "      }\n    }\n"
        "  printf(\"cases %ld mismatches %ld\\n\", cases, bad);\n  return bad != 0;\n}\n")
    exe = tmp_path / "requant"
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", str(source), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    expected_cases = len(xs) * len(multipliers) * len(shifts)
    assert f"cases {expected_cases} mismatches 0" in run.stdout, run.stdout
    assert run.returncode == 0


def test_channel_table_refuses_a_multiplier_outside_the_proven_range():
    from farm.codegen.ops.optimized import channel_table

    with pytest.raises(ValueError, match="multiplier"):
        channel_table((0,), (2**29,), (-3,))


# --------------------------------------------------------------------------- #
# packing
# --------------------------------------------------------------------------- #

def test_pack_rows_groups_chunks_then_tails_then_leftover_rows():
    from farm.codegen.packing import pack_rows

    w = np.arange(5 * 6, dtype=np.int8).reshape(5, 6)  # rows 0..4, depth 6 = one chunk + tail 2
    got = pack_rows(w, 2).tolist()
    expected = (w[0, :4].tolist() + w[1, :4].tolist() + w[0, 4:].tolist() + w[1, 4:].tolist()
                + w[2, :4].tolist() + w[3, :4].tolist() + w[2, 4:].tolist() + w[3, 4:].tolist()
                + w[4].tolist())
    assert got == expected
    assert sorted(pack_rows(w, 4).tolist()) == sorted(w.reshape(-1).tolist())  # a permutation


def test_pack_depthwise_is_channel_major_and_effective_bias_wraps():
    from farm.codegen.packing import effective_bias, pack_depthwise, wrap_int32

    f = np.arange(2 * 3 * 4, dtype=np.int8).reshape(1, 2, 3, 4)  # 2x3 taps, 4 channels
    packed = pack_depthwise(f).reshape(4, 6)
    assert packed[1].tolist() == f[0, :, :, 1].reshape(-1).tolist()
    bias = effective_bias(np.array([10, -5]), np.array([[1, 2], [-3, 4]]), input_offset=128)
    assert bias.tolist() == [10 + 128 * 3, -5 + 128 * 1]
    assert wrap_int32(np.array([2**31, -(2**31) - 1])).tolist() == [INT32_MIN, INT32_MAX]


# --------------------------------------------------------------------------- #
# op by op: optimized == reference == tflite-micro
# --------------------------------------------------------------------------- #

def _layers(case: str):
    import keras

    layers = keras.layers
    bias = keras.initializers.RandomNormal(stddev=0.5)
    cases = {
        # name: (input shape, layer or layers, the optimized kernel expected)
        "conv1x1": ((6, 5, 12), [layers.Conv2D(10, 1, activation="relu", bias_initializer=bias)],
                    "conv2d_1x1_s8_fast"),
        "conv1x1-odd": ((5, 3, 7), [layers.Conv2D(9, 1, bias_initializer=bias)], "conv2d_1x1_s8_fast"),
        "conv3x3-s2-same": ((9, 7, 3), [layers.Conv2D(7, 3, strides=2, padding="same", bias_initializer=bias)],
                            "conv2d_s8_fast"),
        "conv-dilated": ((10, 9, 4), [layers.Conv2D(6, 3, dilation_rate=2, padding="same", activation="relu6",
                                                    bias_initializer=bias)], "conv2d_s8_fast"),
        "conv-kws-first": ((49, 10, 1), [layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu",
                                                       bias_initializer=bias)], "conv2d_s8_fast"),
        "conv-grouped": ((6, 6, 8), [layers.Conv2D(8, 3, groups=2, padding="same", bias_initializer=bias)],
                         "conv2d_s8"),  # grouped: stays on the reference kernel
        "dw3x3": ((7, 5, 8), [layers.DepthwiseConv2D(3, padding="same", activation="relu",
                                                     bias_initializer=bias)], "depthwise_conv2d_s8_fast"),
        "dw3x3-m2-s2": ((8, 7, 3), [layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same",
                                                           bias_initializer=bias)], "depthwise_conv2d_s8_fast"),
        "dw5x5-valid": ((9, 8, 5), [layers.DepthwiseConv2D(5, padding="valid", bias_initializer=bias)],
                        "depthwise_conv2d_s8_fast"),
        "dw3x3-dilated": ((9, 9, 4), [layers.DepthwiseConv2D(3, dilation_rate=2, padding="same",
                                                             bias_initializer=bias)], "depthwise_conv2d_s8_fast"),
        "dense-tail": ((37,), [layers.Dense(13, activation="relu", bias_initializer=bias)],
                       "fully_connected_s8_fast"),
        "dense-batched": ((4, 20), [layers.Dense(6, bias_initializer=bias)], "fully_connected_s8_fast"),
    }
    return cases[case]


FAST_CASES = ["conv1x1", "conv1x1-odd", "conv3x3-s2-same", "conv-dilated", "conv-kws-first", "conv-grouped",
              "dw3x3", "dw3x3-m2-s2", "dw5x5-valid", "dw3x3-dilated", "dense-tail", "dense-batched"]


@pytest.mark.parametrize("case", FAST_CASES)
def test_optimized_op_bit_exact_with_reference_and_tflite_micro(case: str, tmp_path: Path):
    import keras

    from farm.models.convert import to_int8
    from farm.models.quantization import quantize
    from farm.models.reference import run_tflm
    from farm.codegen.tflite_reader import parse_tflite

    keras.utils.set_random_seed(11)
    shape, layers, kernel = _layers(case)
    inputs = keras.Input(shape, batch_size=1)
    x = inputs
    for layer in layers:
        x = layer(x)
    rng = np.random.default_rng(5)
    tflite = to_int8(keras.Model(inputs, x), rng.normal(0, 1.0, size=(32, *shape)).astype(np.float32))
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(tflite)
    graph = parse_tflite(tflite).main
    q = graph.tensors[graph.inputs[0]].quant
    samples = quantize(rng.normal(0, 1.5, size=(6, *shape)).astype(np.float32), q.scale, q.zero_point)
    out_shape = tuple(graph.tensors[graph.outputs[0]].shape[1:])

    from farm.codegen import generate

    outputs = {}
    for kernels in ("optimized", "reference"):
        gen = generate(path, tmp_path / f"gen-{kernels}", name=case, variant="int8", kernels=kernels)
        if kernels == "optimized":
            assert kernel in gen.ops, gen.ops
        else:
            assert not any(op.endswith("_fast") for op in gen.ops), gen.ops
        exe = compile_host_model(path, tmp_path / f"host-{kernels}", name=case, variant="int8", kernels=kernels)
        outputs[kernels] = run_host_model(exe, samples, np.int8, out_shape)
    expected = run_tflm(tflite, samples).reshape(outputs["reference"].shape)
    np.testing.assert_array_equal(outputs["reference"], expected)
    np.testing.assert_array_equal(outputs["optimized"], expected)


# --------------------------------------------------------------------------- #
# the SIMD path is chosen by the compiler's feature macros
# --------------------------------------------------------------------------- #

SIMD = re.compile(r"\b(smlad|sxtb16|pkhbt|pkhtb|smlabb|smlatt)\b")


@pytest.mark.requires_tool("arm-none-eabi-gcc", "arm-none-eabi-objdump")  # missing: skip, or FAIL in CI
@pytest.mark.parametrize(("flags", "simd"), [
    (["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"], True),
    (["-mcpu=cortex-m3", "-mthumb"], False),
    (["-mcpu=cortex-m0plus", "-mthumb"], False),
])
def test_dsp_path_only_where_the_core_has_it(tmp_path: Path, flags: list[str], simd: bool):
    sources = [p for p in (KERNELS / "src").glob("*.c") if p.stem.endswith("_s8_fast") or p.stem == "mat_mult_s8"]
    assert len(sources) == 5
    found = set()
    for src in sources:
        obj = tmp_path / f"{src.stem}.o"
        build = subprocess.run([ARM_GCC, *HOST_CFLAGS, *flags, f"-I{KERNELS / 'include'}", "-c", str(src),
                                "-o", str(obj)], capture_output=True, text=True)
        assert build.returncode == 0, build.stderr
        disasm = subprocess.run([ARM_OBJDUMP, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        found |= set(SIMD.findall(disasm))
    if simd:
        assert {"smlad", "sxtb16"} <= found
    else:
        assert not found, f"SIMD instructions in a build for {flags[0]}: {sorted(found)}"
