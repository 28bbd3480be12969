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


#: output offsets the requantization tests fold into the channels (None: every channel slow)
_OFFSETS = (-128, -127, -1, 0, 1, 5, 126, 127, None)


def _channel_rows(multipliers: list[int], offsets=_OFFSETS) -> tuple[list[str], list[tuple[int, int, int]], int]:
    """C initializers of tf_channel_s8 for every multiplier x shift in [-31, 30] x offset,
    the (M, shift, offset) each stands for, and how many took the fast form."""
    from farm.codegen.ops.optimized import channel_table

    rows, params, fast = [], [], 0
    for m in multipliers:
        for sh in range(-31, 31):
            for off in offsets:
                _, m_lit, sh_lit, lo, hi = channel_table((0,), (m,), (sh,), off)[0]
                rows.append(f"{{0, {m_lit}, {sh_lit}, {lo}u, {hi}}}")
                params.append((m, sh, 0 if off is None else off))
                fast += int(sh_lit) >= 0
    return rows, params, fast


def _params_arrays(params: list[tuple[int, int, int]]) -> str:
    return (f"static const int32_t ms[] = {{{', '.join(str(m) for m, _, _ in params)}}};\n"
            f"static const int32_t ss[] = {{{', '.join(str(s) for _, s, _ in params)}}};\n"
            f"static const int32_t offs[] = {{{', '.join(str(o) for _, _, o in params)}}};\n")


_REQUANT_MAIN = r"""
static uint32_t rng_state = 2463534242u;
static int32_t next_x(void) { /* xorshift32 */
  rng_state ^= rng_state << 13; rng_state ^= rng_state >> 17; rng_state ^= rng_state << 5;
  return (int32_t)rng_state;
}
static long cases = 0, bad = 0;
static void check(unsigned c, int32_t x) {
  const int32_t want = WANT(x, ms[c], ss[c]) + offs[c];
  const int32_t got = tf_requantize_offset_s8(x, &chs[c], offs[c]);
  ++cases;
  if (got != want && bad++ < 5)
    printf("x=%ld m=%ld shift=%ld offset=%ld (field %ld): want %ld got %ld\n", (long)x, (long)ms[c], (long)ss[c],
           (long)offs[c], (long)chs[c].shift, (long)want, (long)got);
}
int main(void) {
  for (unsigned c = 0; c < sizeof chs / sizeof chs[0]; ++c) {
    for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i) check(c, xs[i]);
    for (int i = 0; i < RANDOM_PER_CHANNEL; ++i) check(c, next_x());
    for (int i = 0; i < RANDOM_PER_CHANNEL; ++i) check(c, next_x() >> (i & 15)); /* accumulator-sized too */
    if (ms[c] == 1073741824 || ms[c] == 2147483647) /* every x near 0: every tie of the small shifts */
      for (int32_t x = -EXHAUSTIVE; x <= EXHAUSTIVE; ++x) check(c, x);
  }
  EXTRA
  printf("cases %ld mismatches %ld\n", cases, bad);
  return bad != 0;
}
"""

_RANDOM_PER_CHANNEL = 400
_EXHAUSTIVE = 4096


def _expected_requant_cases(xs: list[int], params: list[tuple[int, int, int]]) -> int:
    edge_m = sum(1 for m, _, _ in params if m in (2**30, 2**31 - 1))
    return len(params) * (len(xs) + 2 * _RANDOM_PER_CHANNEL) + edge_m * (2 * _EXHAUSTIVE + 1)


def test_requantize_channel_equals_reference_multiply_by_quantized_multiplier(tmp_path: Path):
    """Every shift in [-31, 30], output offsets -128..127 folded in (or not: the slow
    form), edge accumulators (INT32_MIN/MAX, 0, +-1, +-2^30), every x in [-4096, 4096]
    for M = 2^30 and 2^31 - 1 (every tie of the small shifts), M = 0, 2^30, 2^31 - 1 and
    random multipliers, and millions of random accumulators: the optimized kernels'
    requantization plus offset (tf_requantize_offset_s8, the channel table the code
    generator emits) equals the reference helper plus the offset. Both forms occur."""
    xs, multipliers = _requant_cases(np.random.default_rng(3))
    rows, params, fast = _channel_rows(multipliers)
    assert 0 < fast < len(rows)
    source = tmp_path / "requant.c"
    source.write_text(
        "#include <stdio.h>\n#include \"fixed_point.h\"\n"
        "#define WANT tf_multiply_by_quantized_multiplier\n"
        f"#define RANDOM_PER_CHANNEL {_RANDOM_PER_CHANNEL}\n#define EXHAUSTIVE {_EXHAUSTIVE}\n"
        f"static const int32_t xs[] = {{{', '.join(f'{x}' if x != INT32_MIN else '(-2147483647 - 1)' for x in xs)}}};\n"
        f"static const tf_channel_s8 chs[] = {{{', '.join(rows)}}};\n" + _params_arrays(params)
        + "#define EXTRA for (unsigned c = 0; c < sizeof chs / sizeof chs[0]; ++c) for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i) "
          "if (tf_multiply_by_quantized_multiplier_fast(xs[i], ms[c], ss[c]) != WANT(xs[i], ms[c], ss[c])) ++bad;\n"
        + _REQUANT_MAIN)
    exe = tmp_path / "requant"
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", str(source), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    expected_cases = _expected_requant_cases(xs, params)
    assert expected_cases > 5_000_000
    assert f"cases {expected_cases} mismatches 0" in run.stdout, run.stdout
    assert run.returncode == 0


def test_fast_channel_form_where_the_proof_applies():
    """The code generator takes the fast form for the usual channels (and folds the
    offset), and the slow one for M = 0, shift >= 0, and where the bounds fail."""
    from farm.codegen.ops.optimized import CHANNEL_SLOW_BIAS, channel_table, fast_channel

    assert fast_channel(2**30, -8, -128) == (2**31 - 2**32, 8, 2 * (2**30 + 2**38 - 128 * 2**39))
    assert fast_channel(0, -8, 0) is None
    assert fast_channel(2**30, 0, 0) is None and fast_channel(2**30, 3, 0) is None
    assert fast_channel(2**31 - 1, -31, 0) is None  # 2K leaves the bounds
    assert fast_channel(2**31 - 1, -20, -128) is None  # floor(... / 2^32) leaves int32 at INT32_MIN
    assert fast_channel(2**31 - 1, -20, 127) is None  # ... and at INT32_MAX
    assert fast_channel(2**31 - 2**20, -8, 127) is not None and fast_channel(2**31 - 2**20, -8, -128) is not None
    rows = channel_table((7, 8), (2**30, 2**30), (-8, 2), output_offset=3)
    assert rows[0][2] == "8" and rows[1][2] == str(2 - CHANNEL_SLOW_BIAS)
    assert all(int(r[2]) < 0 for r in channel_table((7,), (2**30,), (-8,)))  # no offset given: slow


_INT64_TRUTH = r"""
/* TFLM's MultiplyByQuantizedMultiplier in int64_t, written out here (not the
 * library's): the truth both forms of fixed_point.h are held to. */
static int32_t truth_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (INT64_C(1) - (INT64_C(1) << 30));
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}
static int32_t truth_divide_by_pot(int32_t x, int32_t e) {
  const int32_t mask = (int32_t)((UINT32_C(1) << e) - 1u), rem = x & mask;
  return (x >> e) + (rem > (mask >> 1) + (x < 0) ? 1 : 0);
}
static int32_t truth_mbqm(int32_t x, int32_t m, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return truth_divide_by_pot(truth_high_mul((int32_t)((uint32_t)x << left), m), right);
}
"""


@pytest.mark.parametrize("parts", [0, 1], ids=["int64", "mul-parts"])
def test_fixed_point_both_forms_equal_int64_truth(tmp_path: Path, parts: int):
    """fixed_point.h's two forms of the 32 x 32 -> 64-bit arithmetic: int64_t (Arm,
    RISC-V) and TF_MUL_PARTS (16 x 16 -> 32-bit products and 32-bit carries, what AVR
    builds): the exact product, the rounded high multiply, the reference and fast
    requantizations and the optimized kernels' channel requantization, on edge and
    random values and every shift, against TFLM's arithmetic in int64_t."""
    xs, multipliers = _requant_cases(np.random.default_rng(5))
    rng = np.random.default_rng(6)
    bs = sorted({*multipliers, INT32_MIN, INT32_MIN + 1, -(2**30), -65536, -65535, -32769, -1, 0, 1, 65535,
                 65536, INT32_MAX, *(int(v) for v in rng.integers(INT32_MIN, INT32_MAX, size=60, endpoint=True))})
    rows, params, fast = _channel_rows(multipliers, offsets=(-128, -1, 0, 127, None))
    assert 0 < fast < len(rows)

    def lit(v: int) -> str:
        return "(-2147483647 - 1)" if v == INT32_MIN else str(v)

    extra = (
        "  for (unsigned j = 0; j < sizeof bs / sizeof bs[0]; ++j)\n"
        "    for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i, ++cases) {\n"
        "      const int32_t a = xs[i], b = bs[j];\n"
        "      int bad_here = tf_saturating_rounding_doubling_high_mul(a, b) != truth_high_mul(a, b);\n"
        "#if TF_MUL_PARTS\n"
        "      const int64_t p = (int64_t)a * (int64_t)b;\n"
        "      const tf_s64_parts q = tf_mul_s32_parts(a, b);\n"
        "      bad_here |= q.lo != (uint32_t)p || q.hi != (int32_t)(p >> 32);\n"
        "#endif\n"
        "      if (bad_here && bad++ < 5) printf(\"a=%ld b=%ld\\n\", (long)a, (long)b);\n"
        "    }\n"
        "  for (unsigned c = 0; c < sizeof chs / sizeof chs[0]; ++c)\n"
        "    for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i, ++cases) {\n"
        "      const int32_t want = truth_mbqm(xs[i], ms[c], ss[c]);\n"
        "      if (tf_multiply_by_quantized_multiplier(xs[i], ms[c], ss[c]) != want ||\n"
        "          tf_multiply_by_quantized_multiplier_fast(xs[i], ms[c], ss[c]) != want) {\n"
        "        if (bad++ < 5) printf(\"x=%ld m=%ld shift=%ld\\n\", (long)xs[i], (long)ms[c], (long)ss[c]);\n"
        "      }\n    }\n")
    source = tmp_path / "fixed_point_forms.c"
    source.write_text(
        "#include <stdio.h>\n#include \"fixed_point.h\"\n" + _INT64_TRUTH +
        "#define WANT truth_mbqm\n"
        f"#define RANDOM_PER_CHANNEL {_RANDOM_PER_CHANNEL}\n#define EXHAUSTIVE {_EXHAUSTIVE}\n"
        f"static const int32_t xs[] = {{{', '.join(lit(x) for x in xs)}}};\n"
        f"static const int32_t bs[] = {{{', '.join(lit(b) for b in bs)}}};\n"
        f"static const tf_channel_s8 chs[] = {{{', '.join(rows)}}};\n" + _params_arrays(params)
        + "#define EXTRA extra_checks();\nstatic void extra_checks(void);\n"
        + _REQUANT_MAIN.replace('printf("cases', 'printf("parts %d cases').replace(
            'cases %ld mismatches %ld\\n", cases', 'cases %ld mismatches %ld\\n", TF_MUL_PARTS, cases')
        + "static void extra_checks(void) {\n" + extra + "}\n")
    exe = tmp_path / "fixed_point_forms"
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-DTF_MUL_PARTS={parts}", f"-I{KERNELS / 'include'}", str(source),
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    expected = _expected_requant_cases(xs, params) + len(xs) * len(bs) + len(xs) * len(rows)
    assert f"parts {parts} cases {expected} mismatches 0" in run.stdout, run.stdout
    assert run.returncode == 0


def test_channel_table_refuses_a_multiplier_outside_the_proven_range():
    from farm.codegen.ops.optimized import channel_table

    with pytest.raises(ValueError, match="multiplier"):
        channel_table((0,), (2**29,), (-3,))


# --------------------------------------------------------------------------- #
# packing
# --------------------------------------------------------------------------- #

def test_pack_rows_pads_rows_to_chunks_then_groups_of_4_then_2_then_1():
    from farm.codegen.packing import pack_rows

    w = np.arange(7 * 6, dtype=np.int8).reshape(7, 6)  # rows 0..6, depth 6 = two chunks, the second padded
    row = [np.concatenate([w[r], np.zeros(2, dtype=np.int8)]) for r in range(7)]

    def chunk(r: int, c: int) -> list[int]:
        return row[r][4 * c:4 * c + 4].tolist()

    expected = []
    for c in range(2):  # rows 0..3, chunk by chunk
        expected += chunk(0, c) + chunk(1, c) + chunk(2, c) + chunk(3, c)
    for c in range(2):  # rows 4, 5
        expected += chunk(4, c) + chunk(5, c)
    expected += row[6].tolist()  # the odd last row
    assert pack_rows(w, 4).tolist() == expected
    assert pack_rows(w, 4, read_ahead=True).tolist() == expected  # an even number of chunks: nothing after
    w3 = w[:, :5]  # two chunks still
    assert len(pack_rows(w3, 4, read_ahead=True)) == 7 * 8
    w9 = np.ones((3, 9), dtype=np.int8)  # three chunks: one zero chunk per row of a group follows
    assert pack_rows(w9, 4, read_ahead=True).tolist() == pack_rows(w9, 4).tolist() + [0] * 16
    with pytest.raises(ValueError, match="power of 2"):
        pack_rows(w, 3)


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
    assert len(sources) == 6
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


# --------------------------------------------------------------------------- #
# depthwise 3x3 stream (depthwise_conv2d_s8_fast): the host-proven requantization
# and the kernel against the reference kernel, case by case, on the host
# --------------------------------------------------------------------------- #

def _tflm_requant(acc: int, m: int, shift: int) -> int:
    """TFLM's MultiplyByQuantizedMultiplier in Python integers (int32 wrap of the left shift)."""
    left, right = max(shift, 0), max(-shift, 0)
    x = ((acc << left) + 2**31) % 2**32 - 2**31
    if x == m == INT32_MIN:
        high = INT32_MAX
    else:
        t = x * m + (2**30 if x * m >= 0 else 1 - 2**30)
        high = t // 2**31 if t >= 0 else -((-t) // 2**31)  # C division truncates toward zero
    mask = (1 << right) - 1
    rem, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if rem > threshold else 0)


def test_fast_depthwise_requant_equals_tflm_on_edge_accumulators():
    """Mode 1's floor((acc * 2^k * M + C) / 2^(31 + E)), clamped, equals TFLM's requantization plus
    the offset, clamped, for every accumulator at the proof's limits (the extreme sums the weights
    allow) and around every rounding boundary nearby, for shifts across [E - 8, E]."""
    from farm.codegen.packing import DW_SHIFT, fast_depthwise_requant

    rng = np.random.default_rng(8)
    checked = 0
    for trial in range(60):
        channels = 4
        w = rng.integers(-127, 128, size=(channels, 9))
        w[0, 0] = 127  # a channel at the int16 limit of its scaled weights
        if trial % 3 == 0:
            w[1] = 0  # all-zero weights
        shifts = rng.integers(DW_SHIFT - 8, DW_SHIFT + 1, size=channels) * -1
        mults = rng.integers(2**30, 2**31, size=channels)
        if trial % 5 == 0:
            mults[2] = 0
        bias = rng.integers(-(2**20), 2**20, size=channels)
        off = int(rng.integers(-128, 128))
        lo = int(rng.integers(off, 128)) if trial % 2 else max(off, -128)
        hi = int(rng.integers(lo, 128)) if trial % 4 == 1 else 127
        rows = fast_depthwise_requant(w, bias, mults, shifts, off, lo)
        assert rows is not None
        for c, (k, const, m) in enumerate(rows):
            bound = 128 * int(np.abs(w[c]).sum())
            accs = {0, 1, -1, bound, -bound, bound - 1, -bound + 1}
            accs |= {int(v) for v in rng.integers(-bound - 1, bound + 1, size=200)}
            if m:  # accumulators whose product lands next to a rounding boundary
                step = 2**(31 - int(shifts[c]))
                for q in rng.integers(-(bound * m) // step - 1, (bound * m) // step + 2, size=50):
                    a = int(q) * step // m
                    accs |= {a - 1, a, a + 1}
            for s in accs:
                if abs(s) > bound:
                    continue
                want = min(max(_tflm_requant(int(bias[c]) + s, int(mults[c]), int(shifts[c])) + off, lo), hi)
                got = min(max(((s << k) * m + const) >> (31 + DW_SHIFT), lo), hi)
                assert got == want, (trial, c, s)
                checked += 1
    assert checked > 10000


def test_python_requant_reference_matches_known_values():
    assert _tflm_requant(100, 2**30, 0) == 50  # x * 0.5
    assert _tflm_requant(-3, 2**30, 0) == -1  # -1.5 rounds half up in the high multiply
    assert _tflm_requant(3, 2**30, -1) == 1  # 1.5 -> 2 (high) -> 2 / 2 = 1
    assert _tflm_requant(-5, 2**30, -1) == -1  # -2.5 -> -2 (high), -2 / 2 = -1
    assert _tflm_requant(6, 2**30, -2) == 1  # 3 / 4 = 0.75 -> 1
    assert _tflm_requant(-6, 2**30, -2) == -1  # -0.75 -> -1
    assert _tflm_requant(-2, 2**30, -2) == 0  # -1 / 4 = -0.25 -> 0
    assert _tflm_requant(-6, 2**30, -3) == 0  # -3 / 8 -> 0
    assert _tflm_requant(-10, 2**30, -3) == -1  # -5 / 8 -> -1 (away from zero past the tie)
    assert _tflm_requant(-8, 2**30, -3) == -1  # -4 / 8 = -0.5: tie away from zero


def test_fast_depthwise_requant_refuses_what_it_cannot_prove():
    from farm.codegen.packing import DW_SHIFT, fast_depthwise_requant

    w = np.full((4, 9), 100)
    ok = dict(multipliers=[2**30] * 4, shifts=[-DW_SHIFT] * 4, output_offset=-128, act_min=-128)
    assert fast_depthwise_requant(w, np.zeros(4), **ok) is not None
    assert fast_depthwise_requant(w, np.zeros(4), **{**ok, "act_min": -129}) is None  # clamp below the offset
    assert fast_depthwise_requant(w, np.zeros(4), **{**ok, "shifts": [0, -8, -8, -8]}) is None  # no right shift
    assert fast_depthwise_requant(w, np.zeros(4), **{**ok, "shifts": [-DW_SHIFT - 1] * 4}) is None
    assert fast_depthwise_requant(w, np.zeros(4), **{**ok, "shifts": [-DW_SHIFT + 9] * 4}) is None  # k = 9
    assert fast_depthwise_requant(w, np.full(4, 2**31 - 1000), **ok) is None  # the accumulator could wrap


def test_pack_depthwise_3x3_layout():
    from farm.codegen.packing import depthwise_3x3_stream, pack_depthwise_3x3

    f = np.arange(9 * 8, dtype=np.int64).reshape(1, 3, 3, 8) % 100 - 50
    words = pack_depthwise_3x3(f.astype(np.int8), np.zeros(8), [0] * 8, [0] * 8, output_offset=0,
                               act_min=-128).view("<u4")
    assert words[0] == 0  # mode 0: act_min < output_offset
    w16 = words[1:].view("<i2")
    for g in range(2):
        block = w16[g * 36:(g + 1) * 36].reshape(9, 4)
        for t in range(9):
            ky, kx = divmod(t, 3)
            assert block[t].tolist() == [f[0, ky, kx, 4 * g + j] for j in (0, 2, 1, 3)]
    assert depthwise_3x3_stream((1, 3, 3, 8), 1) and not depthwise_3x3_stream((1, 3, 3, 6), 1)
    assert not depthwise_3x3_stream((1, 3, 3, 8), 2) and not depthwise_3x3_stream((1, 5, 5, 8), 1)


DW_HOST_CASES = [
    # (name, h, w, channels, multiplier, stride, dilation, padding, activation, shifts)
    ("c4-s1-same", 7, 6, 4, 1, 1, 1, "same", "full", "typical"),
    ("c8-s1-same-relu", 6, 5, 8, 1, 1, 1, "same", "relu", "typical"),
    ("c64-s1-same-kws", 9, 5, 64, 1, 1, 1, "same", "relu", "typical"),
    ("c64-s1-valid", 6, 7, 64, 1, 1, 1, "valid", "full", "typical"),
    ("c8-s2-same", 9, 8, 8, 1, 2, 1, "same", "relu", "typical"),
    ("c16-s2-valid-odd", 7, 9, 16, 1, 2, 1, "valid", "full", "typical"),
    ("c8-dilated", 9, 9, 8, 1, 1, 2, "same", "relu6", "typical"),
    ("c12-s3", 10, 10, 12, 1, 3, 1, "same", "full", "typical"),
    ("c6-not-by-4", 7, 5, 6, 1, 1, 1, "same", "relu", "typical"),
    ("c3", 6, 6, 3, 1, 1, 1, "same", "full", "typical"),
    ("c4-m2", 6, 5, 4, 2, 1, 1, "same", "relu6", "typical"),
    ("c8-relu6", 5, 6, 8, 1, 1, 1, "same", "relu6", "typical"),
    ("c8-shift0-large", 5, 5, 8, 1, 1, 1, "same", "full", "wild"),
    ("c8-shifts-mixed", 6, 6, 8, 1, 1, 1, "same", "relu", "mixed"),
    ("c4-tiny", 1, 1, 4, 1, 1, 1, "same", "full", "typical"),
    ("c4-one-row", 1, 7, 4, 1, 1, 1, "same", "relu", "typical"),
    ("c8-limits", 5, 4, 8, 1, 1, 1, "same", "full", "limits"),
]


def _dw_case(rng: np.random.Generator, case: tuple) -> dict:
    from farm.codegen.packing import DW_SHIFT

    name, h, w, ch, mult, stride, dil, padding, act, shifts_kind = case
    out_c = ch * mult
    span = 2 * dil + 1
    if padding == "same":
        out_h, out_w = -(-h // stride), -(-w // stride)
        pad_h = max((out_h - 1) * stride + span - h, 0) // 2
        pad_w = max((out_w - 1) * stride + span - w, 0) // 2
    else:
        out_h, out_w = (h - span) // stride + 1, (w - span) // stride + 1
        pad_h = pad_w = 0
    filt = rng.integers(-127, 128, size=(1, 3, 3, out_c))
    filt[0, 0, 0, 0] = 127
    in_zp = int(rng.integers(-128, 128))
    out_zp = -128 if act in ("relu", "relu6") and rng.random() < 0.5 else int(rng.integers(-100, 100))
    lo, hi = {"full": (-128, 127), "relu": (max(out_zp, -128), 127),
              "relu6": (max(out_zp, -128), min(out_zp + 60, 127))}[act]
    mults = rng.integers(2**30, 2**31, size=out_c)
    if shifts_kind == "typical":
        shifts = -rng.integers(DW_SHIFT - 6, DW_SHIFT, size=out_c)
    elif shifts_kind == "mixed":
        shifts = -rng.integers(DW_SHIFT - 10, DW_SHIFT + 4, size=out_c)  # some outside mode 1's window
    elif shifts_kind == "limits":
        shifts = -np.full(out_c, DW_SHIFT - 8)
        shifts[::2] = -DW_SHIFT
        filt[...] = np.where(rng.random(filt.shape) < 0.5, 127, -127)
    else:  # wild: shift 0, a left shift, large right shifts
        shifts = rng.choice([0, 1, 3, -1, -20, -31], size=out_c)
    mults[out_c - 1] = 0 if out_c > 1 else mults[0]
    bias = rng.integers(-(2**17), 2**17, size=out_c)
    if shifts_kind == "limits":
        bias = rng.integers(-(2**28), 2**28, size=out_c)
    n = 2 if name == "c64-s1-same-kws" else 1
    x = rng.integers(-128, 128, size=(n, h, w, ch))
    if shifts_kind == "limits":
        x = np.where(rng.random(x.shape) < 0.5, 127, -128)
    return dict(name=name, n=n, h=h, w=w, ch=ch, mult=mult, out_c=out_c, stride=stride, dil=dil, pad_h=pad_h,
                pad_w=pad_w, out_h=out_h, out_w=out_w, filt=filt, x=x, in_off=-in_zp, out_off=out_zp, lo=lo, hi=hi,
                mults=mults, shifts=shifts, bias=bias)


def _c_list(values) -> str:
    return ", ".join(str(int(v)) if int(v) != INT32_MIN else "(-2147483647 - 1)" for v in np.ravel(values))


def test_depthwise_fast_bit_exact_with_reference_kernel_on_host(tmp_path: Path):
    """depthwise_conv2d_s8_fast on the code generator's packing == depthwise_conv2d_s8, for 3x3
    filters with 3, 4, 6, 8, 12, 64 channels (the 3x3 stream when a multiple of 4, the
    channel-major layout otherwise), strides 1, 2, 3, padding same / valid, dilation, depth
    multiplier 2, full-range, relu and relu6 clamps, shifts inside and outside mode 1's window
    (0, left shifts, large right shifts, zero multipliers) and saturated inputs and weights at
    the proof's limits. Both modes of the stream occur (asserted)."""
    from farm.codegen.ops.optimized import channel_table
    from farm.codegen.packing import depthwise_3x3_stream, effective_bias, pack_depthwise, pack_depthwise_3x3

    rng = np.random.default_rng(15)
    blocks, calls, modes = [], [], set()
    for i, case in enumerate(DW_HOST_CASES):
        d = _dw_case(rng, case)
        filt8 = d["filt"].astype(np.int8)
        eff = effective_bias(d["bias"], pack_depthwise(filt8).reshape(d["out_c"], 9), d["in_off"])
        if depthwise_3x3_stream((1, 3, 3, d["out_c"]), d["mult"]):
            packed = pack_depthwise_3x3(filt8, eff, d["mults"], d["shifts"], output_offset=d["out_off"],
                                        act_min=d["lo"])
            modes.add(int(packed[:4].view("<u4")[0]))
        else:
            packed = pack_depthwise(filt8)
        rows = channel_table(tuple(int(v) for v in eff), tuple(int(v) for v in d["mults"]),
                             tuple(int(v) for v in d["shifts"]), None if i % 3 == 2 else int(d["out_off"]))
        out_size = d["n"] * d["out_h"] * d["out_w"] * d["out_c"]
        blocks.append(
            f"static const int8_t x{i}[] = {{{_c_list(d['x'])}}};\n"
            f"static const int8_t f{i}[] = {{{_c_list(d['filt'])}}};\n"
            f"static const int8_t p{i}[] __attribute__((aligned(16))) = {{{_c_list(packed)}}};\n"
            f"static const int32_t b{i}[] = {{{_c_list(d['bias'])}}};\n"
            f"static const int32_t m{i}[] = {{{_c_list(d['mults'])}}};\n"
            f"static const int32_t s{i}[] = {{{_c_list(d['shifts'])}}};\n"
            f"static const tf_channel_s8 ch{i}[] = {{{', '.join(f'{{{b}, {m}, {sh}, {lo}u, {hi}}}' for b, m, sh, lo, hi in rows)}}};\n"
            f"static int8_t want{i}[{out_size}], got{i}[{out_size}];\n"
            f"static int8_t scratch{i}[{d['ch']}];\n")
        calls.append(
            f"  {{ const tf_depthwise_params_s8 pr = {{{{{d['stride']}, {d['stride']}, {d['dil']}, {d['dil']}, "
            f"{d['pad_h']}, {d['pad_w']}}}, {d['mult']}, {d['in_off']}, {d['out_off']}, {d['lo']}, {d['hi']}}};\n"
            f"    const tf_per_channel_quant_params qp = {{m{i}, s{i}}};\n"
            f"    const tf_out_stage_s8 st = {{ch{i}, {d['out_off']}, {d['lo']}, {d['hi']}}};\n"
            f"    const tf_dims id = {{{d['n']}, {d['h']}, {d['w']}, {d['ch']}}}, fd = {{1, 3, 3, {d['out_c']}}};\n"
            f"    const tf_dims od = {{{d['n']}, {d['out_h']}, {d['out_w']}, {d['out_c']}}};\n"
            f"    int r1 = depthwise_conv2d_s8(&pr, &qp, &id, x{i}, &fd, f{i}, b{i}, &od, want{i});\n"
            f"    int r2 = depthwise_conv2d_s8_fast(&pr, &st, &id, x{i}, &fd, p{i}, &od, got{i}, scratch{i});\n"
            f"    int bad = 0;\n"
            f"    for (int k = 0; k < {out_size}; ++k) bad += want{i}[k] != got{i}[k];\n"
            f"    printf(\"{d['name']} status %d %d mismatches %d of {out_size}\\n\", r1, r2, bad);\n"
            f"    fails += r1 != 0 || r2 != 0 || bad != 0; }}\n")
    assert modes == {0, 1}, modes
    source = tmp_path / "dw.c"
    source.write_text("#include <stdio.h>\n#include \"kernels.h\"\n" + "".join(blocks)
                      + "int main(void) {\n  int fails = 0;\n" + "".join(calls)
                      + "  printf(\"failed cases %d\\n\", fails);\n  return fails != 0;\n}\n")
    exe = tmp_path / "dw"
    srcs = [str(KERNELS / "src" / f) for f in ("depthwise_conv2d_s8.c", "depthwise_conv2d_s8_fast.c")]
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-I{KERNELS / 'include'}", str(source), *srcs, "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert "failed cases 0" in run.stdout, run.stdout
    assert run.stdout.count("mismatches 0 of") == len(DW_HOST_CASES), run.stdout
