"""The int8 matrix-multiply cores (mat_mult_s8.c) on every path against a plain
C reference (bias + sum w * x in wrapping int32, TFLM's
MultiplyByQuantizedMultiplier, output offset, clamp), on shapes that reach
every branch: depth not a multiple of 4 or 8, depth past the wide path's
segment (252), rows not a multiple of 4 (the groups of 2 and the single row),
one and two columns, the full int8 clamp and narrower ones (relu, relu6),
positive shifts, extreme values (every product -128 * -128), and wrapping
accumulators. The weights are packed by farm.codegen.packing.pack_rows, so the
host's layout and the kernels' are tested together.

Paths: on the host, the wide one (64-bit multiply-accumulates on two fields)
and the plain one (-DTF_MAT_MULT_WIDE=0); on QEMU (semihosting, no harness),
the DSP one (Cortex-M4) and the wide one as Cortex-M3 runs it (SMLAL).
Canaries after the outputs and after `ext` check that nothing is written out
of bounds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures_models import HOST_CFLAGS, KERNELS
from fixtures_tools import require_tool

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# (rows, depth, kind, clamp, extreme): kind "g2" two columns, "g2-1" x1 == NULL, "fc" the vector core
SHAPES = [
    (4, 4, "g2", "full", False), (1, 1, "g2", "full", False), (2, 3, "g2", "relu", False),
    (3, 5, "g2", "relu6", False), (5, 7, "g2", "full", False), (6, 8, "g2-1", "full", False),
    (7, 9, "g2", "relu6", False), (8, 12, "g2", "full", False), (9, 15, "g2", "relu", False),
    (13, 16, "g2", "full", False), (10, 17, "g2-1", "relu6", False), (11, 27, "g2", "full", False),
    (64, 40, "g2", "full", False), (16, 64, "g2", "relu", False), (12, 100, "g2", "full", False),
    (5, 252, "g2", "full", True), (6, 253, "g2", "full", True), (3, 255, "g2", "relu", True),
    (4, 256, "g2", "full", True), (7, 300, "g2", "full", True), (2, 509, "g2", "full", True),
    (5, 600, "g2", "relu6", True), (9, 1001, "g2", "full", False), (4, 2, "g2-1", "full", False),
    (1, 13, "g2", "relu", True), (3, 64, "g2", "full", True),
    (4, 4, "fc", "full", False), (1, 1, "fc", "relu", False), (2, 3, "fc", "full", False),
    (3, 6, "fc", "relu6", False), (5, 7, "fc", "full", False), (6, 37, "fc", "full", False),
    (7, 64, "fc", "relu", False), (12, 640, "fc", "full", True), (10, 129, "fc", "full", False),
    (8, 8, "fc", "full", True), (9, 5, "fc", "relu6", False),
]


def _case_source(rng: np.random.Generator) -> str:
    from farm.codegen.ops.optimized import channel_table
    from farm.codegen.packing import pack_rows

    lines = ["#include <stddef.h>\n#include <stdint.h>\n#include \"fixed_point.h\"\n#include \"mat_mult_s8.h\"\n",
             "typedef struct { int32_t rows, depth, kind, offset, lo, hi; const int8_t *w, *packed, *x;"
             " const tf_channel_s8 *ch; const int32_t *mult, *shift; } mm_case;\n"]
    entries = []
    for i, (rows, depth, kind, clamp, extreme) in enumerate(SHAPES):
        if extreme:  # every product at its largest: the wide path's field bound, and sums near int32's
            w = np.full((rows, depth), -128, dtype=np.int8)
            x = np.full(2 * depth, -128, dtype=np.int8)
            w[0, ::3] = 127
            x[depth + 1::5] = 127
        else:
            w = rng.integers(-128, 128, size=(rows, depth), dtype=np.int8)
            x = rng.integers(-128, 128, size=2 * depth, dtype=np.int8)
        bias = [int(v) for v in rng.integers(-(2**20), 2**20, size=rows)]
        if i % 5 == 4:
            bias[0] = INT32_MAX - 5  # the accumulator wraps
        mult = [int(v) for v in rng.integers(2**30, 2**31, size=rows)]
        shifts = [int(v) for v in rng.integers(-14, -4, size=rows)]
        if i % 3 == 0:
            shifts[-1] = int(rng.integers(0, 3))  # a left shift (or none)
            mult[0] = 0
        offset = int(rng.integers(-128, 128))
        lo, hi = {"full": (-128, 127), "relu": (max(offset, -128), 127), "relu6": (max(offset, -128), 80)}[clamp]
        # the output offset folded into the fast channels, or (every fourth case) all channels slow
        table = channel_table(tuple(bias), tuple(mult), tuple(shifts), None if i % 4 == 3 else offset)
        packed = pack_rows(w, 4, read_ahead=kind != "fc")

        def arr(name: str, values) -> str:
            return f"static const int8_t {name}[] = {{{', '.join(str(int(v)) for v in values)}}};\n"

        lines += [arr(f"w{i}", w.reshape(-1)), arr(f"p{i}", packed), arr(f"x{i}", x),
                  f"static const tf_channel_s8 ch{i}[] = {{"
                  + ", ".join(f"{{{b}, {m}, {s}, {rl}u, {rh}}}" for b, m, s, rl, rh in table) + "};\n",
                  f"static const int32_t m{i}[] = {{{', '.join(str(v) for v in mult)}}};\n",
                  f"static const int32_t s{i}[] = {{{', '.join(str(v) for v in shifts)}}};\n"]
        entries.append(f"{{{rows}, {depth}, {('g2', 'g2-1', 'fc').index(kind)}, {offset}, {lo}, {hi}, "
                       f"w{i}, p{i}, x{i}, ch{i}, m{i}, s{i}}}")
    lines.append(f"static const mm_case cases[] = {{\n  {(',' + chr(10) + '  ').join(entries)}\n}};\n")
    lines.append(r"""
#define MAX_ROWS 64
#define MAX_DEPTH 1008
#define CANARY 0x5A
static uint32_t ext[8 * ((MAX_DEPTH + 7) / 8) + 4];
static int8_t out[2][MAX_ROWS + 8];
void report(const char *text);

static void put_num(char **p, long v) {
  char tmp[16];
  int n = 0;
  unsigned long u = v < 0 ? (unsigned long)(-v) : (unsigned long)v;
  if (v < 0) *(*p)++ = '-';
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  while (n) *(*p)++ = tmp[--n];
}

static int8_t expected(const mm_case *c, int32_t r, const int8_t *x) {
  uint32_t acc = (uint32_t)c->ch[r].bias;
  for (int32_t k = 0; k < c->depth; ++k) {
    acc += (uint32_t)((int32_t)c->w[r * c->depth + k] * (int32_t)x[k]);
  }
  int32_t v = tf_multiply_by_quantized_multiplier((int32_t)acc, c->mult[r], c->shift[r]) + c->offset;
  v = v < c->lo ? c->lo : v;
  v = v > c->hi ? c->hi : v;
  return (int8_t)v;
}

int run_cases(void) {
  long bad = 0, checked = 0;
  char line[96];
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    const mm_case *c = &cases[i];
    const tf_out_stage_s8 stage = {c->ch, c->offset, c->lo, c->hi};
    for (int j = 0; j < 2; ++j) for (int r = 0; r < MAX_ROWS + 8; ++r) out[j][r] = CANARY;
    const uint32_t ext_words = TF_MAT_MULT_EXT_WORDS(c->depth);
    for (unsigned k = 0; k < sizeof ext / sizeof ext[0]; ++k) ext[k] = 0xA5A5A5A5u;
    int cols = 2;
    if (c->kind == 2) {
      tf_mat_vec_s8_g4(c->packed, c->rows, c->depth, c->x, &stage, out[0]);
      cols = 1;
    } else if (c->kind == 1) {
      tf_mat_mult_s8_g2(c->packed, c->rows, c->depth, c->x, NULL, &stage, out[0], NULL, ext);
      cols = 1;
    } else {
      tf_mat_mult_s8_g2(c->packed, c->rows, c->depth, c->x, c->x + c->depth, &stage, out[0], out[1], ext);
    }
    long case_bad = 0;
    for (int j = 0; j < 2; ++j) {
      for (int32_t r = 0; r < MAX_ROWS + 8; ++r, ++checked) {
        const int8_t want = (j < cols && r < c->rows) ? expected(c, r, c->x + j * c->depth) : (int8_t)CANARY;
        if (out[j][r] != want) ++case_bad;
      }
    }
    for (unsigned k = ext_words; k < sizeof ext / sizeof ext[0]; ++k) {
      if (ext[k] != 0xA5A5A5A5u) ++case_bad;
    }
    if (case_bad) {
      char *p = line;
      const char *s = "case ";
      while (*s) *p++ = *s++;
      put_num(&p, (long)i);
      *p++ = ' ';
      put_num(&p, case_bad);
      *p++ = '\n';
      *p = 0;
      report(line);
    }
    bad += case_bad;
  }
  char *p = line;
  const char *s = "checked ";
  while (*s) *p++ = *s++;
  put_num(&p, checked);
  s = " mismatches ";
  while (*s) *p++ = *s++;
  put_num(&p, bad);
  *p++ = '\n';
  *p = 0;
  report(line);
  return bad != 0;
}
""")
    return "".join(lines)


HOST_MAIN = """#include <stdio.h>
int run_cases(void);
void report(const char *text) { fputs(text, stdout); }
int main(void) { return run_cases(); }
"""

# Bare-metal start for QEMU's MPS2 boards: vector table, .data/.bss, semihosting output and exit.
ARM_START = r"""#include <stdint.h>
#include <string.h>
int run_cases(void);
extern uint32_t __data_start__, __data_end__, __data_load__, __bss_start__, __bss_end__, __stack_top__;
static void semihost(uint32_t op, const void *arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}
void report(const char *text) { semihost(0x04, text); }
void Reset_Handler(void) {
  memcpy(&__data_start__, &__data_load__, (size_t)((uintptr_t)&__data_end__ - (uintptr_t)&__data_start__));
  memset(&__bss_start__, 0, (size_t)((uintptr_t)&__bss_end__ - (uintptr_t)&__bss_start__));
  const int failed = run_cases();
  semihost(0x18, (const void *)(uintptr_t)(failed ? 0x20023u : 0x20026u));
  for (;;) {}
}
void Fault_Handler(void) { report("fault\n"); semihost(0x18, (const void *)0x20023u); for (;;) {} }
__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
  (void (*)(void))(&__stack_top__), Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
  Fault_Handler, Fault_Handler};
"""

LDSCRIPTS = KERNELS.parent.parent / "platform" / "ldscripts"


def _write_cases(tmp_path: Path) -> Path:
    cases = tmp_path / "cases.c"
    cases.write_text(_case_source(np.random.default_rng(2024)))
    return cases


@pytest.mark.parametrize("wide", [1, 0], ids=["wide", "plain"])
def test_mat_mult_cores_on_the_host(tmp_path: Path, wide: int):
    require_tool("gcc")
    cases = _write_cases(tmp_path)
    main = tmp_path / "main.c"
    main.write_text(HOST_MAIN)
    exe = tmp_path / "mm"
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-DTF_MAT_MULT_WIDE={wide}", f"-I{KERNELS / 'include'}",
                            str(cases), str(main), str(KERNELS / "src" / "mat_mult_s8.c"), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert "mismatches 0" in run.stdout and run.returncode == 0, run.stdout


@pytest.mark.requires_tool("arm-none-eabi-gcc", "qemu-system-arm")
@pytest.mark.parametrize(("cpu", "machine"), [("cortex-m4", "mps2-an386"), ("cortex-m3", "mps2-an385")],
                         ids=["dsp-m4", "wide-m3"])
def test_mat_mult_cores_on_emulated_cores(tmp_path: Path, cpu: str, machine: str):
    cases = _write_cases(tmp_path)
    start = tmp_path / "start.c"
    start.write_text(ARM_START)
    elf = tmp_path / "mm.elf"
    build = subprocess.run(["arm-none-eabi-gcc", *HOST_CFLAGS, f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft",
                            "-ffreestanding", "-ffunction-sections", "-fdata-sections", "-nostartfiles",
                            "--specs=nano.specs", f"-I{KERNELS / 'include'}", f"-L{LDSCRIPTS}", "-T", "mps2.ld",
                            "-Wl,--gc-sections", str(cases), str(start), str(KERNELS / "src" / "mat_mult_s8.c"),
                            "-o", str(elf)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-display", "none", "-serial", "null", "-monitor",
                          "none", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=120)
    text = run.stdout + run.stderr  # semihosting writes to QEMU's stderr
    assert "mismatches 0" in text and run.returncode == 0, text
