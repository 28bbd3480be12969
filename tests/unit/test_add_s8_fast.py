"""add_s8_fast (same-shape int8 ADD through the inputs' tables) against the
reference add_s8 (TFLM reference_integer_ops::Add), both built for the host:
on every pair of int8 inputs (all 65536), for params from real scales and at the
edges (input offsets -128..128, output offsets -128..127, every kind of shift,
clamps full / ReLU-like / narrow / a single value, both forms of the output
requantization), in place over either input or both, at odd sizes and
addresses; then the code generator's choice of kernel and the build for the Arm
cores (one SMMLAR per element only where the core has the DSP extension)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures_models import HOST_CFLAGS, KERNELS

INT32_MIN = -(2**31)


def _scales_case(rng: np.random.Generator) -> dict:
    """Params as the code generator computes them from random scales (elementwise.add_params_s8)."""
    from farm.codegen.ops.elementwise import add_params_s8

    s1, s2 = (float(np.float32(10 ** rng.uniform(-3, 0))) for _ in range(2))
    so = float(np.float32(max(s1, s2) * 10 ** rng.uniform(-1.3, 0.7)))
    r1, r2, ro = add_params_s8(None, None, s1, s2, so)
    return dict(off1=int(rng.integers(-127, 129)), off2=int(rng.integers(-127, 129)),
                out_off=int(rng.integers(-128, 128)), left=20, m1=r1.multiplier, sh1=r1.shift,
                m2=r2.multiplier, sh2=r2.shift, mo=ro.multiplier, sho=ro.shift)


def _edge_case(rng: np.random.Generator, i: int) -> dict:
    """Extreme multipliers, shifts and offsets (add_s8 accepts shifts -31..0, left shift 0..20)."""
    ms = [2**30, 2**30 + 1, 2**31 - 1, int(rng.integers(2**30, 2**31))]
    offs = [-128, -127, 0, 1, 127, 128, int(rng.integers(-128, 129))]
    return dict(off1=offs[i % 7], off2=offs[(3 * i + 2) % 7], out_off=[-128, 127, 0, -1, 5][i % 5],
                left=[20, 20, 20, 0, 7][i % 5], m1=ms[i % 4], sh1=[0, -1, -2, -31, -8][i % 5],
                m2=ms[(i + 1) % 4], sh2=[0, -3, -1, -20][i % 4],
                mo=ms[(i + 2) % 4], sho=[-18, -17, -1, 0, -31, -25, -10, -30, -21][i % 9])


_CLAMPS = [(-128, 127), (-128, 127), (-128, 127), (-100, 127), (-128, 90), (-20, 33), (7, 7), (-128, -128),
           (127, 127)]


def _cases() -> list[dict]:
    rng = np.random.default_rng(17)
    cases = [_scales_case(rng) for _ in range(36)] + [_edge_case(rng, i) for i in range(45)]
    for i, c in enumerate(cases):
        c["lo"], c["hi"] = _CLAMPS[i % len(_CLAMPS)]
    return cases


def _c_ints(values) -> str:
    return ", ".join(str(int(v)) if int(v) != INT32_MIN else "(-2147483647 - 1)" for v in values)


_MAIN = r"""
#define N 65536
static int8_t a[N], b[N], want[N], want_same[N], got[N], buf[N + 16];
static int fails = 0;

static int count(const int8_t *x, const int8_t *y, int32_t n) {
  int bad = 0;
  for (int32_t k = 0; k < n; ++k) bad += x[k] != y[k];
  return bad;
}

int main(void) {
  for (int32_t k = 0; k < N; ++k) { a[k] = (int8_t)(k & 255); b[k] = (int8_t)(k >> 8); } /* every pair */
  const tf_dims d = {1, 256, 16, 16};
  long checked = 0;
  int slow = 0;
  for (unsigned c = 0; c < sizeof params / sizeof params[0]; ++c) {
    const tf_add_params_s8 *p = &params[c];
    const tf_out_stage_s8 st = {&channels[c], p->output_offset, p->activation_min, p->activation_max};
    const int32_t *t = tables[c];
    slow += channels[c].shift < 0;
    int r = add_s8(p, &d, a, &d, b, &d, want);
    r |= add_s8(p, &d, a, &d, a, &d, want_same);
    r |= add_s8_fast(&st, t, &d, a, &d, b, &d, got);
    int bad = count(want, got, N);
    /* in place: over input 1, over input 2, over both (x + x) */
    __builtin_memcpy(buf, a, N);
    r |= add_s8_fast(&st, t, &d, buf, &d, b, &d, buf);
    bad += count(want, buf, N);
    __builtin_memcpy(buf, b, N);
    r |= add_s8_fast(&st, t, &d, a, &d, buf, &d, buf);
    bad += count(want, buf, N);
    __builtin_memcpy(buf, a, N);
    r |= add_s8_fast(&st, t, &d, buf, &d, buf, &d, buf);
    bad += count(want_same, buf, N);
    checked += 4L * N;
    /* odd sizes at odd addresses, nothing written past the end */
    for (int32_t n = 0; n <= 13; ++n) {
      const int32_t at = (int32_t)(c * 977u + (unsigned)n * 4099u) % (N - 16);
      const tf_dims dn = {1, 1, n > 0 ? 1 : 0, n > 0 ? n : 1};
      for (int k = 0; k < 16; ++k) buf[k] = (int8_t)(0x5A ^ k);
      r |= add_s8_fast(&st, t, &dn, a + at, &dn, b + at, &dn, buf + 1 + (n & 1));
      bad += count(want + at, buf + 1 + (n & 1), n);
      for (int k = 1 + (n & 1) + n; k < 16; ++k) bad += buf[k] != (int8_t)(0x5A ^ k);
      bad += (n & 1) == 1 && buf[1] != (int8_t)(0x5A ^ 1);
      bad += buf[0] != 0x5A;
      checked += n;
    }
    printf("case %u status %d mismatches %d\n", c, r, bad);
    fails += r != 0 || bad != 0;
  }
  { /* refusals: broadcasting, NULL, an empty or out-of-int8 clamp */
    const tf_dims row = {1, 256, 16, 1};
    const tf_out_stage_s8 st = {&channels[0], 0, -128, 127}, bad_clamp = {&channels[0], 0, 3, 2};
    const tf_out_stage_s8 wide = {&channels[0], 0, -129, 127}, no_channel = {NULL, 0, -128, 127};
    const int r1 = add_s8_fast(&st, tables[0], &row, a, &d, b, &d, got);
    const int r2 = add_s8_fast(&st, tables[0], &d, a, &row, b, &d, got);
    const int r3 = add_s8_fast(&st, NULL, &d, a, &d, b, &d, got);
    const int r4 = add_s8_fast(&no_channel, tables[0], &d, a, &d, b, &d, got);
    const int r5 = add_s8_fast(&bad_clamp, tables[0], &d, a, &d, b, &d, got);
    const int r6 = add_s8_fast(&wide, tables[0], &d, a, &d, b, &d, got);
    printf("refusals %d %d %d %d %d %d\n", r1, r2, r3, r4, r5, r6);
  }
  printf("slow %d checked %ld failed cases %d\n", slow, checked, fails);
  return fails != 0;
}
"""


@pytest.mark.parametrize("parts", [0, 1], ids=["int64", "mul-parts"])
def test_add_s8_fast_bit_exact_with_add_s8_on_every_input_pair(tmp_path: Path, parts: int):
    """The code generator's tables and output channel (elementwise.add_s8_table,
    optimized.channel_table) with add_s8_fast == add_s8 with the same params, on all
    65536 input pairs per case, in place, at odd sizes; both the int64 arithmetic (Arm,
    RISC-V) and TF_MUL_PARTS (what AVR builds). Both requantization forms occur."""
    from farm.codegen.ir import Requant
    from farm.codegen.ops.elementwise import add_s8_table
    from farm.codegen.ops.optimized import channel_table

    cases = _cases()
    params, channels, tables = [], [], []
    for c in cases:
        params.append("{" + _c_ints([c["off1"], c["off2"], c["out_off"], c["left"], c["m1"], c["sh1"], c["m2"],
                                     c["sh2"], c["mo"], c["sho"], c["lo"], c["hi"]]) + "}")
        b, m, sh, lo, hi = channel_table((0,), (c["mo"],), (c["sho"],), c["out_off"])[0]
        channels.append(f"{{{b}, {m}, {sh}, {lo}u, {hi}}}")
        table = (add_s8_table(c["off1"], c["left"], Requant(c["m1"], c["sh1"]))
                 + add_s8_table(c["off2"], c["left"], Requant(c["m2"], c["sh2"])))
        assert len(table) == 512 and max(abs(v) for v in table) <= 255 * 2**20
        tables.append("{" + _c_ints(table) + "}")
    source = tmp_path / "add_fast.c"
    source.write_text(
        "#include <stdio.h>\n#include \"kernels.h\"\n"
        f"static const tf_add_params_s8 params[] = {{{', '.join(params)}}};\n"
        f"static const tf_channel_s8 channels[] = {{{', '.join(channels)}}};\n"
        f"static const int32_t tables[][512] = {{{', '.join(tables)}}};\n" + _MAIN)
    exe = tmp_path / "add_fast"
    srcs = [str(KERNELS / "src" / f) for f in ("add_s8.c", "add_s8_fast.c")]
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-DTF_MUL_PARTS={parts}", f"-I{KERNELS / 'include'}",
                            str(source), *srcs, "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.stdout.count(" status 0 mismatches 0\n") == len(cases), run.stdout[-3000:]
    assert "refusals 2 2 1 1 3 3\n" in run.stdout, run.stdout[-500:]
    slow = int(re.search(r"slow (\d+) checked", run.stdout).group(1))
    assert 0 < slow < len(cases) // 2, run.stdout[-300:]  # both forms, mostly the fast one
    assert f"checked {len(cases) * (4 * 65536 + 91)} failed cases 0" in run.stdout, run.stdout[-300:]
    assert run.returncode == 0


def test_add_s8_table_is_tflm_rescaled_input_by_raw_byte():
    from farm.codegen.ir import Requant
    from farm.codegen.ops.elementwise import add_s8_table

    table = add_s8_table(128, 20, Requant(2**30, 0))  # x 0.5, no right shift
    assert table[0] == (0 + 128) << 19 and table[127] == (127 + 128) << 19
    assert table[128] == (-128 + 128) << 19 and table[255] == (-1 + 128) << 19  # raw byte 0x80 = -128
    table = add_s8_table(-3, 20, Requant(2**31 - 1, -20))  # ~ x 2^-20: (v - 3) rounded
    assert table[3] == 0 and table[4] == 1 and table[255] == -4 and table[128] == -131


# --------------------------------------------------------------------------- #
# the code generator's choice
# --------------------------------------------------------------------------- #

def _add_model(shape2: tuple[int, ...], *, constant2: bool = False):
    from farm.codegen.tflite_reader import QuantParams, Subgraph, Tensor, TfliteModel

    def q(scale: float, zp: int) -> QuantParams:
        return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64), 0)

    data2 = np.ones(shape2, np.int8) if constant2 else None
    tensors = (Tensor(0, "a", (1, 4, 4, 8), "int8", None, q(0.05, -3)),
               Tensor(1, "b", shape2, "int8", data2, q(0.02, 10)),
               Tensor(2, "y", (1, 4, 4, 8), "int8", None, q(0.06, -128)))
    from farm.codegen.tflite_reader import Operator

    op = Operator(0, "ADD", (0, 1), (2,), {"fused_activation": "RELU"})
    graph = Subgraph("main", tensors, (op,), (0,), (2,))
    return TfliteModel(None, 3, "", (graph,), "0" * 64, 0), op


@pytest.mark.parametrize(("shape2", "kernels", "constant2", "want"), [
    ((1, 4, 4, 8), "optimized", False, "add_s8_fast"),
    ((1, 4, 4, 8), "optimized", True, "add_s8_fast"),
    ((1, 4, 4, 8), "reference", False, "add_s8"),
    ((1, 1, 1, 8), "optimized", False, "add_s8"),  # broadcasting: the reference kernel
    ((1, 4, 1, 8), "optimized", False, "add_s8"),
])
def test_codegen_takes_add_s8_fast_for_same_shape_inputs_only(shape2, kernels, constant2, want):
    from farm.codegen.ir import LoweringContext
    from farm.codegen.ops.elementwise import AddFast, add_s8_table, lower_binary
    from farm.codegen.ops.optimized import channel_table

    model, op = _add_model(shape2, constant2=constant2)
    step = lower_binary(LoweringContext(model, kernels), op)
    assert step.kernel == want
    assert step.reads == (0, 1) and step.writes == (2,)
    if want == "add_s8_fast":
        assert isinstance(step, AddFast) and step.own_const_bytes == 512 * 4 + 20
        assert step.inplace == ((2, 0),) + (() if constant2 else ((2, 1),))
        ref = lower_binary(LoweringContext(model, "reference"), op)
        p = {k: int(v) for k, v in ref.params}
        assert step.tables == tuple(add_s8_table(p["input1_offset"], p["left_shift"], _rq(p, "input1"))
                                    + add_s8_table(p["input2_offset"], p["left_shift"], _rq(p, "input2")))
        assert step.channel == channel_table((0,), (p["output_multiplier"],), (p["output_shift"],),
                                             p["output_offset"])[0]
        assert int(step.channel[2]) >= 0  # the fast form
        assert (step.output_offset, step.act_min, step.act_max) == (p["output_offset"], p["activation_min"],
                                                                    p["activation_max"])


def _rq(p: dict, which: str):
    from farm.codegen.ir import Requant

    return Requant(p[f"{which}_multiplier"], p[f"{which}_shift"])


# --------------------------------------------------------------------------- #
# Arm builds: SMMLAR only with the DSP extension, SSAT where the core has it
# --------------------------------------------------------------------------- #

@pytest.mark.requires_tool("arm-none-eabi-gcc", "arm-none-eabi-objdump")  # missing: skip, or FAIL in CI
@pytest.mark.parametrize(("flags", "smmlar", "ssat"), [
    (["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"], True, True),
    (["-mcpu=cortex-m3", "-mthumb"], False, True),
    (["-mcpu=cortex-m0plus", "-mthumb"], False, False),
])
def test_add_s8_fast_arm_build(tmp_path: Path, flags: list[str], smmlar: bool, ssat: bool):
    gcc, objdump = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-objdump")
    obj = tmp_path / "add_s8_fast.o"
    build = subprocess.run([gcc, *HOST_CFLAGS, *flags, f"-I{KERNELS / 'include'}", "-c",
                            str(KERNELS / "src" / "add_s8_fast.c"), "-o", str(obj)], capture_output=True, text=True)
    assert build.returncode == 0 and not build.stderr, build.stderr
    disasm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, check=True).stdout
    found = set(re.findall(r"\b(smmlar|ssat|smlal|smlad|sxtb16)\b", disasm))
    assert ("smmlar" in found) == smmlar and ("ssat" in found) == ssat, found
    assert not found & {"smlad", "sxtb16"}
