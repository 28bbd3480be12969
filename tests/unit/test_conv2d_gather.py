"""conv2d_s8_fast's im2col gather against the reference conv2d_s8, kernel to kernel.

Shapes: the zoo's first convolutions (IC's 3x3x3, VWW's stride 2 with the padding
after only, KWS's 10x4 over one channel), 1x1 with stride 2, kernel rows that
follow each other in the input (one run per pixel), dilation along y, x and both,
padding before and after in any amount (pixels whose taps all miss the input),
strides 1-3, batches with an odd number of pixels, 1-3 and many channels, and
random shapes. Each case runs with the input at the 4 byte offsets from an
aligned address (the word-aligned and unaligned paths), with scratch full of
garbage and canaries after the output, after the scratch the code generator sizes
(scratch_bytes) and around the input, and once in place: the output over its own
input at the tightest distance farm/codegen/inplace.py allows for the order
conv2d_s8_fast declares (RASTER_KERNELS).

Builds: the host's portable path, the host with the unaligned-word path forced
(-DTF_UNALIGNED_WORDS=1, what Armv7-M compiles), and on QEMU the Cortex-M4
(DSP matrix multiply) and Cortex-M3 builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fixtures_models import HOST_CFLAGS, KERNELS
from fixtures_tools import require_tool
from test_mat_mult_s8 import ARM_START, HOST_MAIN, LDSCRIPTS

INT32_MIN = -(2**31)

# name: (n, h, w, c), (out_c, k_h, k_w), stride (h, w), dilation (h, w), pad (top, left), pad (bottom, right)
FIXED = {
    "ic-first": ((1, 12, 12, 3), (16, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    "vww-first": ((1, 15, 14, 3), (8, 3, 3), (2, 2), (1, 1), (0, 0), (1, 0)),
    "kws-first": ((1, 49, 10, 1), (12, 10, 4), (2, 2), (1, 1), (4, 1), (5, 2)),
    "c16-same": ((1, 7, 6, 16), (9, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    "c32-s2-valid": ((1, 9, 8, 32), (5, 3, 3), (2, 2), (1, 1), (0, 0), (0, 0)),
    "c64-same": ((1, 4, 4, 64), (4, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    "1x1-s2": ((1, 7, 6, 16), (6, 1, 1), (2, 2), (1, 1), (0, 0), (0, 0)),
    "rows-contiguous": ((2, 11, 1, 8), (5, 5, 1), (1, 1), (1, 1), (2, 0), (2, 0)),
    "rows-contiguous-c3": ((1, 6, 3, 3), (3, 3, 3), (1, 1), (1, 1), (0, 0), (0, 0)),
    "dilated": ((1, 10, 9, 4), (6, 3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),
    "dilated-y": ((1, 9, 7, 5), (3, 3, 2), (1, 1), (2, 1), (2, 0), (2, 1)),
    "dilated-x": ((1, 6, 9, 2), (4, 2, 3), (1, 2), (1, 3), (1, 3), (0, 3)),
    "taps-all-outside": ((1, 1, 1, 4), (3, 2, 2), (1, 1), (2, 2), (1, 1), (1, 1)),
    "pad-wide": ((1, 3, 2, 5), (7, 5, 5), (1, 1), (1, 1), (4, 4), (4, 4)),
    "batch-odd": ((3, 3, 5, 7), (5, 3, 3), (2, 1), (1, 1), (1, 1), (1, 1)),
    "one-pixel": ((1, 1, 1, 9), (3, 1, 1), (1, 1), (1, 1), (0, 0), (0, 0)),
    "c1-k5": ((1, 8, 8, 1), (2, 5, 5), (3, 3), (1, 1), (2, 2), (2, 2)),
}
RANDOM_CASES = 48
CANARY = 8


def _random_shape(rng: np.random.Generator):
    while True:
        n = int(rng.choice([1, 1, 2, 3]))
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 16, 20, 32]))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dil = (int(rng.choice([1, 1, 1, 2, 3])), int(rng.choice([1, 1, 1, 2, 3])))
        span = [(k[i] - 1) * dil[i] + 1 for i in range(2)]
        before = tuple(int(rng.integers(0, s)) for s in span)
        after = tuple(int(rng.integers(0, s)) for s in span)
        out = [(size + before[i] + after[i] - span[i]) // stride[i] + 1 for i, size in enumerate((h, w))]
        if min(out) >= 1:
            return (n, h, w, c), (int(rng.integers(1, 10)), *k), stride, dil, before, after


def _out_hw(case) -> tuple[int, int]:
    (_, h, w, _), (_, k_h, k_w), stride, dil, before, after = case
    spans = ((k_h - 1) * dil[0] + 1, (k_w - 1) * dil[1] + 1)
    return tuple((size + before[i] + after[i] - spans[i]) // stride[i] + 1 for i, size in enumerate((h, w)))


def _c_list(values) -> str:
    return ", ".join(str(int(v)) if int(v) != INT32_MIN else "(-2147483647 - 1)" for v in np.ravel(values))


HARNESS = r"""
#include <stdint.h>
#include <string.h>
#include "kernels.h"

typedef struct {
  const char *name;
  tf_conv_params_s8 params;
  tf_dims in, filt, out;
  const int8_t *x, *w, *packed;
  const int32_t *bias, *mult, *shift;
  const tf_channel_s8 *channels;
  int32_t scratch_bytes, in_place_shift;
} gather_case;

void report(const char *text);

static void put_num(char **p, long v) {
  char digits[24];
  int n = 0;
  unsigned long u = v < 0 ? (unsigned long)(-v) : (unsigned long)v;
  if (v < 0) *(*p)++ = '-';
  do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  while (n) *(*p)++ = digits[--n];
}

static void say(const char *a, long x, const char *b, long y, const char *c, long z) {
  char line[160], *p = line;
  while (*a) *p++ = *a++;
  put_num(&p, x);
  while (*b) *p++ = *b++;
  put_num(&p, y);
  while (*c) *p++ = *c++;
  put_num(&p, z);
  *p++ = '\n';
  *p = 0;
  report(line);
}

static int8_t want[MAX_OUT];
static int8_t got[MAX_OUT + CANARY];
static int8_t in_buf[MAX_IN + 2 * CANARY] __attribute__((aligned(16)));
static int8_t scratch[MAX_SCRATCH + CANARY] __attribute__((aligned(16)));
static int8_t mem[MAX_MEM] __attribute__((aligned(16)));

static long runs, bad, inside;

static void check_bytes(const char *what, long i, const int8_t *a, int8_t v, int32_t n) {
  for (int32_t k = 0; k < n; ++k) {
    if (a[k] != v) {
      ++bad;
      say(what, i, " at ", k, " value ", a[k]);
      return;
    }
  }
}

static void compare(long i, int which, const int8_t *out, int32_t n) {
  ++runs;
  for (int32_t k = 0; k < n; ++k) {
    if (out[k] != want[k]) {
      ++bad;
      say("case ", i, " run ", which, " first mismatch at ", k);
      return;
    }
  }
}

static void run_case(long i, const gather_case *c) {
  const tf_per_channel_quant_params qp = {c->mult, c->shift};
  const tf_out_stage_s8 stage = {c->channels, c->params.output_offset, c->params.activation_min,
                                 c->params.activation_max};
  const int32_t in_n = c->in.n * c->in.h * c->in.w * c->in.c, out_n = c->out.n * c->out.h * c->out.w * c->out.c;
  tf_status st = conv2d_s8(&c->params, &qp, &c->in, c->x, &c->filt, c->w, c->bias, &c->out, want);
  if (st != TF_OK) {
    ++bad;
    say("case ", i, " reference status ", st, "", 0);
    return;
  }
  for (int32_t k = 0; k < out_n; ++k) {
    inside += want[k] > c->params.activation_min && want[k] < c->params.activation_max;
  }
  for (int mis = 0; mis < 4; ++mis) { /* the input at each byte offset from a word */
    memset(in_buf, 0x6d, sizeof in_buf);
    memcpy(in_buf + CANARY + mis, c->x, (size_t)in_n);
    memset(scratch, (int)(0x3c ^ (i * 7 + mis)), (size_t)c->scratch_bytes); /* garbage: all of it is rewritten */
    memset(scratch + c->scratch_bytes, 0x5a, CANARY);
    memset(got, 0x4b, sizeof got);
    st = conv2d_s8_fast(&c->params, &stage, &c->in, in_buf + CANARY + mis, &c->filt, c->packed, &c->out, got,
                        scratch);
    if (st != TF_OK) {
      ++bad;
      say("case ", i, " fast status ", st, " offset ", mis);
      continue;
    }
    compare(i, mis, got, out_n);
    check_bytes("output canary, case ", i, got + out_n, 0x4b, CANARY);
    check_bytes("scratch canary, case ", i, scratch + c->scratch_bytes, 0x5a, CANARY);
    check_bytes("input changed, case ", i, in_buf, 0x6d, CANARY + mis);
    check_bytes("input changed, case ", i, in_buf + CANARY + mis + in_n, 0x6d, CANARY - mis);
    if (memcmp(in_buf + CANARY + mis, c->x, (size_t)in_n) != 0) {
      ++bad;
      say("input changed, case ", i, " offset ", mis, "", 0);
    }
  }
  /* in place: the output at in_place_shift (<= 0) bytes from its own input */
  const int32_t in_at = (-c->in_place_shift + 15) / 16 * 16 + 16 + (int32_t)(i % 4), out_at = in_at + c->in_place_shift;
  memset(mem, 0x6d, sizeof mem);
  memcpy(mem + in_at, c->x, (size_t)in_n);
  memset(scratch, 0x29, (size_t)c->scratch_bytes);
  st = conv2d_s8_fast(&c->params, &stage, &c->in, mem + in_at, &c->filt, c->packed, &c->out, mem + out_at, scratch);
  if (st != TF_OK) {
    ++bad;
    say("case ", i, " in-place status ", st, "", 0);
    return;
  }
  compare(i, 4, mem + out_at, out_n);
}
"""


def _case_source(rng: np.random.Generator, cases: list[tuple[str, tuple]]) -> tuple[str, int]:
    """C of every case and run_cases(); and how many runs it checks."""
    from farm.codegen.inplace import RASTER_KERNELS, window_shift
    from farm.codegen.ops.optimized import channel_table, scratch_bytes
    from farm.codegen.packing import effective_bias, pack_rows

    blocks, table = [], []
    max_in = max_out = max_scratch = max_mem = 1
    for i, (name, case) in enumerate(cases):
        (n, h, w, c), (oc, k_h, k_w), stride, dil, before, after = case
        oh, ow = _out_hw(case)
        depth = k_h * k_w * c
        x = rng.integers(-128, 128, size=(n, h, w, c))
        filt = rng.integers(-127, 128, size=(oc, k_h, k_w, c))
        in_zp = int(rng.integers(-128, 128))
        out_zp = int(rng.integers(-100, 100))
        act = i % 3  # full range, relu-like (from the zero point), relu6-like
        lo, hi = [(-128, 127), (out_zp, 127), (out_zp, min(out_zp + 70, 127))][act]
        bias = rng.integers(-(2**14), 2**14, size=oc)
        mult = rng.integers(2**30, 2**31, size=oc)
        spread = 0.75 * np.sqrt(depth) * 74 * 74  # the accumulator's size, about
        shift = np.full(oc, int(np.clip(np.round(np.log2(45 / spread)), -31, -1)))
        rows = filt.reshape(oc, depth).astype(np.int8)
        eff = effective_bias(bias, rows, -in_zp)
        packed = pack_rows(rows, 4, read_ahead=True)
        channels = channel_table(tuple(int(v) for v in eff), tuple(int(v) for v in mult),
                                 tuple(int(v) for v in shift), None if i % 4 == 3 else out_zp)
        in_dims, out_dims = (n, h, w, c), (n, oh, ow, oc)
        in_place = window_shift(in_dims, out_dims, kernel_hw=(k_h, k_w), stride=stride, dilation=dil, pad=before,
                                order=RASTER_KERNELS["conv2d_s8_fast"])
        sb = scratch_bytes("conv2d_s8_fast", depth)
        in_n, out_n = x.size, n * oh * ow * oc
        max_in, max_out, max_scratch = max(max_in, in_n), max(max_out, out_n), max(max_scratch, sb)
        in_at = (-in_place + 15) // 16 * 16 + 16 + i % 4
        max_mem = max(max_mem, in_at + in_n, in_at + in_place + out_n)
        blocks.append(
            f"/* {name} */\n"
            f"static const int8_t x{i}[] = {{{_c_list(x)}}};\n"
            f"static const int8_t w{i}[] = {{{_c_list(filt)}}};\n"
            f"static const int8_t p{i}[] __attribute__((aligned(16))) = {{{_c_list(packed)}}};\n"
            f"static const int32_t b{i}[] = {{{_c_list(bias)}}};\n"
            f"static const int32_t m{i}[] = {{{_c_list(mult)}}};\n"
            f"static const int32_t s{i}[] = {{{_c_list(shift)}}};\n"
            f"static const tf_channel_s8 ch{i}[] = {{"
            + ", ".join(f"{{{b}, {m}, {sh}, {rlo}u, {rhi}}}" for b, m, sh, rlo, rhi in channels) + "};\n")
        table.append(
            f"  {{\"{name}\", {{{{{stride[0]}, {stride[1]}, {dil[0]}, {dil[1]}, {before[0]}, {before[1]}}}, "
            f"{-in_zp}, {out_zp}, {lo}, {hi}}}, {{{n}, {h}, {w}, {c}}}, {{{oc}, {k_h}, {k_w}, {c}}}, "
            f"{{{n}, {oh}, {ow}, {oc}}}, x{i}, w{i}, p{i}, b{i}, m{i}, s{i}, ch{i}, {sb}, {in_place}}},\n")
    head = (f"#define MAX_IN {max_in}\n#define MAX_OUT {max_out}\n#define MAX_SCRATCH {max_scratch}\n"
            f"#define MAX_MEM {max_mem + 16}\n#define CANARY {CANARY}\n")
    tail = ("static const gather_case cases[] = {\n" + "".join(table) + "};\n"
            "int run_cases(void) {\n"
            "  for (long i = 0; i < (long)(sizeof cases / sizeof cases[0]); ++i) run_case(i, &cases[i]);\n"
            "  say(\"runs \", runs, \" mismatches \", bad, \" inside \", inside);\n"
            "  return bad != 0;\n}\n")
    return head + HARNESS + "".join(blocks) + tail, 5 * len(cases)


def _cases() -> list[tuple[str, tuple]]:
    rng = np.random.default_rng(77)
    return list(FIXED.items()) + [(f"random-{i}", _random_shape(rng)) for i in range(RANDOM_CASES)]


def _write(tmp_path: Path) -> tuple[Path, int, int]:
    cases = _cases()
    source, runs = _case_source(np.random.default_rng(78), cases)
    path = tmp_path / "cases.c"
    path.write_text(source)
    outputs = sum(n * oh * ow * oc for (_, ((n, _, _, _), (oc, *_), *_)), (oh, ow)
                  in ((c, _out_hw(c[1])) for c in cases))
    return path, runs, outputs


def _check(text: str, runs: int, outputs: int) -> None:
    assert f"runs {runs} mismatches 0 " in text, text[-3000:]
    inside = int(text.rsplit(" inside ", 1)[1].split()[0])
    assert inside > outputs // 2, (inside, outputs)  # most outputs inside the clamp: the test sees the arithmetic


def test_cases_cover_the_gather_paths():
    """The shapes reach what the gather distinguishes: word-aligned kernel rows
    (channels a multiple of 4), rows of a length not a multiple of 4, kernel rows
    contiguous in the input, dilation along x alone, padding on each side, pixels
    whose taps all miss the input, stride 2 and 3, batches of an odd pixel count."""
    cases = [c for _, c in _cases()]
    assert any(c[0][3] % 4 == 0 and c[1][2] * c[0][3] >= 16 for c in cases)
    assert any((c[1][2] * c[0][3]) % 4 for c in cases)
    assert any(c[0][2] * c[0][3] * c[3][0] == c[1][2] * c[0][3] and c[1][1] > 1 for c in cases)
    assert any(c[3] == (1, 2) or c[3] == (1, 3) for c in cases)
    assert all(any(c[4][a] > 0 for c in cases) and any(c[5][a] > 0 for c in cases) for a in (0, 1))
    assert any(c[2][0] == 3 for c in cases) and any(c[2][1] == 2 for c in cases)
    assert any((c[0][0] * _out_hw(c)[0] * _out_hw(c)[1]) % 2 and c[0][0] > 1 for c in cases)
    assert any(c[0][3] in (1, 2, 3) for c in cases) and any(c[0][3] >= 32 for c in cases)


@pytest.mark.parametrize("unaligned", [0, 1], ids=["portable", "unaligned-words"])
def test_gather_bit_exact_with_reference_on_the_host(tmp_path: Path, unaligned: int):
    require_tool("gcc")
    cases, runs, outputs = _write(tmp_path)
    main = tmp_path / "main.c"
    main.write_text(HOST_MAIN)
    exe = tmp_path / "gather"
    srcs = [str(KERNELS / "src" / f) for f in ("conv2d_s8.c", "conv2d_s8_fast.c", "mat_mult_s8.c")]
    build = subprocess.run(["gcc", *HOST_CFLAGS, f"-DTF_UNALIGNED_WORDS={unaligned}", f"-I{KERNELS / 'include'}",
                            str(cases), str(main), *srcs, "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    _check(run.stdout, runs, outputs)
    assert run.returncode == 0


@pytest.mark.requires_tool("arm-none-eabi-gcc", "qemu-system-arm")
@pytest.mark.parametrize(("cpu", "machine"), [("cortex-m4", "mps2-an386"), ("cortex-m3", "mps2-an385")],
                         ids=["m4", "m3"])
def test_gather_bit_exact_with_reference_on_emulated_cores(tmp_path: Path, cpu: str, machine: str):
    cases, runs, outputs = _write(tmp_path)
    start = tmp_path / "start.c"
    start.write_text(ARM_START)
    elf = tmp_path / "gather.elf"
    srcs = [str(KERNELS / "src" / f) for f in ("conv2d_s8.c", "conv2d_s8_fast.c", "mat_mult_s8.c")]
    build = subprocess.run(["arm-none-eabi-gcc", *HOST_CFLAGS, f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft",
                            "-ffreestanding", "-ffunction-sections", "-fdata-sections", "-nostartfiles",
                            "--specs=nano.specs", f"-I{KERNELS / 'include'}", f"-L{LDSCRIPTS}", "-T", "mps2.ld",
                            "-Wl,--gc-sections", str(cases), str(start), *srcs, "-o", str(elf)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-display", "none", "-serial", "null", "-monitor",
                          "none", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=120)
    text = run.stdout + run.stderr  # semihosting writes to QEMU's stderr
    _check(text, runs, outputs)
    assert run.returncode == 0, text[-3000:]
