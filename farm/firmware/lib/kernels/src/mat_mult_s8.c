/* Matrix-multiply cores of the optimized int8 kernels (see mat_mult_s8.h for
 * the packed weight layout). Three paths, chosen at compile time:
 *
 *  - DSP (TF_DSP, dsp_s8.h; Cortex-M4/M7/M33 with DSP): the two columns are
 *    sign-extended once per call into `ext`, as the int16 pairs
 *    (x0, x2), (x1, x3) of each chunk that SXTB16 / SXTB16 ROR #8 make of a
 *    weight word, so each weight word costs two SXTB16 for both columns and
 *    every SMLAD does two multiply-accumulates. The inner loop (2 rows x 2
 *    columns, two chunks per turn) is written in assembly so that its loads
 *    are one LDRD (two weight words) and one LDM (the four ext words of a
 *    chunk): 15 instructions per 16 multiply-accumulates (14.5 with the loop's
 *    four chunks a turn). The fully connected
 *    core (one column) loads the four rows' words with one LDM.
 *
 *  - wide (TF_MAT_MULT_WIDE: Thumb-2 cores without DSP such as Cortex-M3,
 *    which have SMLAL, and 64-bit hosts): both columns ride in one register,
 *    X = x0 + x1 * 2^23, and one 32 x 32 -> 64-bit multiply-accumulate
 *    w * X adds w * x0 to the low field and w * x1 to the high one: two
 *    products per instruction. The low field's sum stays within
 *    [-2^22, 2^22) for up to 255 products (|w * x| <= 2^14), so every
 *    TF_WIDE_SEGMENT bytes of depth the 64-bit sum is split exactly into its
 *    two 32-bit halves. Blocks of 4 rows x 2 columns: 11 instructions per
 *    8 multiply-accumulates on Cortex-M3.
 *
 *  - plain (Cortex-M0, RISC-V, AVR): one multiply-accumulate per product,
 *    4 rows x 2 columns, so that each loaded byte serves 2 or 4 products.
 *
 * All compute exactly sum w*x in int32 (wrapping like TFLM's accumulator), so
 * they are bit-exact with each other and with the reference kernels. The
 * output stage is tf_output_s8 (fixed_point.h), shared by the two columns of a
 * row. On cores with SSAT, tf_mat_mult_s8_g2 is compiled three times through an
 * always-inline body: for a clamp that is the whole int8 range (one SSAT), one
 * whose upper bound is 127 (SSAT and one compare), and any clamp. */
#include <stddef.h>

#include "dsp_s8.h"
#include "fixed_point.h"
#include "mat_mult_s8.h"

#define INLINE static inline __attribute__((always_inline))

#ifndef TF_MAT_MULT_WIDE
#if (defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 2) || defined(__x86_64__) || defined(__aarch64__)
#define TF_MAT_MULT_WIDE 1
#else
#define TF_MAT_MULT_WIDE 0
#endif
#endif

/* Depth per exact split of the wide path's 64-bit sums: at most 255 products
 * (see above), a multiple of 4 so that segments start on a chunk. */
#define TF_WIDE_SEGMENT 252

/* Wrapping int32 addition (the reference's accumulator wraps the same way). */
INLINE int32_t add_wrap(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* Thumb-2 cores with SSAT (Armv7-M: Cortex-M3, M4, ...): out_pair's fast form in assembly. */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 2
#define TF_OUT_ASM 1
#else
#define TF_OUT_ASM 0
#endif

/* The two columns' outputs of one row: one channel, its form tested once
 * (fast, the usual case, laid out as the straight path: fixed_point.h,
 * tf_requantize_offset_s8); both computed before either store (a store may
 * alias ch). */
INLINE void out_pair(int32_t a0, int32_t a1, const TF_CONST_DATA tf_channel_s8 *ch, int32_t offset, int32_t lo, int32_t hi,
                     int full, int8_t *o0, int8_t *o1) {
  const int32_t e = ch->shift, m = ch->multiplier;
  if (__builtin_expect(e >= 0, 1)) {
    const uint32_t k_lo = ch->round_lo;
    const int32_t k_hi = ch->round_hi;
#if TF_OUT_ASM
    { /* tf_requantize_high_s8, the shift and the clamp of both columns */
      int32_t h0 = k_hi, h1 = k_hi;
#if !TF_DSP
      uint32_t l0 = k_lo, l1 = k_lo; /* SMLAL: the 64-bit constant 2K, h0:l0 and h1:l1 */
#define TF_OUT_PAIR_ASM(SAT)                                                                                   \
  __asm__("smlal %[l0], %[h0], %[a0], %[m]\n\t"                                                               \
          "smlal %[l1], %[h1], %[a1], %[m]\n\t"                                                               \
          "add %[h0], %[h0], %[a0]\n\t"                                                                       \
          "add %[h1], %[h1], %[a1]\n\t"                                                                       \
          "add %[h0], %[h0], %[a0], asr #31\n\t"                                                              \
          "add %[h1], %[h1], %[a1], asr #31\n\t"                                                              \
          "asr %[h0], %[h0], %[e]\n\t"                                                                        \
          "asr %[h1], %[h1], %[e]\n\t" SAT                                                                    \
          : [l0] "+&r"(l0), [h0] "+&r"(h0), [l1] "+&r"(l1), [h1] "+&r"(h1)                                    \
          : [a0] "r"(a0), [a1] "r"(a1), [m] "r"(m), [e] "r"(e))
#else
      /* 2K's low word is 2^31 (fixed_point.h): SMMLAR's rounding constant, so
       * h = SMMLAR(x, Mn, round_hi) is the high word of 2K + x * Mn without
       * the 64-bit constant in registers. */
      (void)k_lo;
#define TF_OUT_PAIR_ASM(SAT)                                                                                   \
  __asm__("smmlar %[h0], %[a0], %[m], %[k]\n\t"                                                                \
          "smmlar %[h1], %[a1], %[m], %[k]\n\t"                                                                \
          "add %[h0], %[h0], %[a0]\n\t"                                                                       \
          "add %[h1], %[h1], %[a1]\n\t"                                                                       \
          "add %[h0], %[h0], %[a0], asr #31\n\t"                                                              \
          "add %[h1], %[h1], %[a1], asr #31\n\t"                                                              \
          "asr %[h0], %[h0], %[e]\n\t"                                                                        \
          "asr %[h1], %[h1], %[e]\n\t" SAT                                                                    \
          : [h0] "=&r"(h0), [h1] "=&r"(h1)                                                                     \
          : [a0] "r"(a0), [a1] "r"(a1), [m] "r"(m), [e] "r"(e), [k] "r"(k_hi))
#endif
      if (full != 0) { /* the whole int8 range, or [lo, 127]: SSAT, then the lower bound */
        TF_OUT_PAIR_ASM("ssat %[h0], #8, %[h0]\n\tssat %[h1], #8, %[h1]\n\t");
        if (full == 2) {
          h0 = h0 < lo ? lo : h0;
          h1 = h1 < lo ? lo : h1;
        }
      } else {
        TF_OUT_PAIR_ASM("");
        h0 = tf_clamp_s8(h0, lo, hi, 0);
        h1 = tf_clamp_s8(h1, lo, hi, 0);
      }
#undef TF_OUT_PAIR_ASM
      /* STRB of the register as it is (the compiler would sign-extend it first) */
      __asm__("strb %1, %0" : "=m"(*o0) : "r"(h0));
      __asm__("strb %1, %0" : "=m"(*o1) : "r"(h1));
      return;
    }
#endif
    const int32_t v0 = tf_clamp_s8(tf_requantize_high_s8(a0, m, k_lo, k_hi) >> e, lo, hi, full);
    const int32_t v1 = tf_clamp_s8(tf_requantize_high_s8(a1, m, k_lo, k_hi) >> e, lo, hi, full);
    *o0 = (int8_t)v0;
    *o1 = (int8_t)v1;
  } else {
    const int32_t shift = e + TF_CHANNEL_SLOW_BIAS;
    const int32_t v0 = tf_clamp_s8(tf_multiply_by_quantized_multiplier_fast(a0, m, shift) + offset, lo, hi, full);
    const int32_t v1 = tf_clamp_s8(tf_multiply_by_quantized_multiplier_fast(a1, m, shift) + offset, lo, hi, full);
    *o0 = (int8_t)v0;
    *o1 = (int8_t)v1;
  }
}

/* Where the chunk `c` of row `j` of a group of `g` rows starts. */
#define CHUNK_AT(w, g, c, j) ((w) + 4 * ((g) * (c) + (j)))

#if TF_DSP
/* ------------------------------------------------------------------------- */
/* DSP path                                                                   */
/* ------------------------------------------------------------------------- */

/* Both columns, sign-extended: per chunk (x0: v0 v2, v1 v3; x1: v0 v2, v1 v3),
 * the last chunk zero-padded, then a zero chunk if the count is odd. */
static void extend_columns(const int8_t *x0, const int8_t *x1, int32_t depth, uint32_t *ext) {
  int32_t k = 0;
  for (; k + 4 <= depth; k += 4) {
    const uint32_t v0 = tf_load_s8x4(x0 + k), v1 = tf_load_s8x4(x1 + k);
    ext[0] = tf_sxtb16(v0);
    ext[1] = tf_sxtb16_ror8(v0);
    ext[2] = tf_sxtb16(v1);
    ext[3] = tf_sxtb16_ror8(v1);
    ext += 4;
  }
  int32_t chunks = depth >> 2;
  if (k < depth) {
    uint32_t v0 = 0, v1 = 0;
    for (int32_t t = 0; k + t < depth; ++t) {
      v0 |= (uint32_t)(uint8_t)x0[k + t] << (8 * t);
      v1 |= (uint32_t)(uint8_t)x1[k + t] << (8 * t);
    }
    ext[0] = tf_sxtb16(v0);
    ext[1] = tf_sxtb16_ror8(v0);
    ext[2] = tf_sxtb16(v1);
    ext[3] = tf_sxtb16_ror8(v1);
    ext += 4;
    ++chunks;
  }
  if (chunks & 1) {
    ext[0] = ext[1] = ext[2] = ext[3] = 0;
  }
}

/* One chunk of 2 rows x 2 columns: the rows' words (LDRD, then the pointer
 * moves to the next chunk of the group), the chunk's ext words (LDM), and
 * 8 SMLAD. x0..x3 are pinned to ascending registers, as LDM needs. */
#define MM_CHUNK_2X2(STRIDE)                                                                                     \
  "ldrd %[w0], %[w1], [%[w]], #" #STRIDE "\n\t"                                                                  \
  "ldm %[q]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                                                  \
  "sxtb16 %[t], %[w0]\n\t"                                                                                       \
  "smlad %[a00], %[t], %[x0], %[a00]\n\t"                                                                        \
  "smlad %[a01], %[t], %[x2], %[a01]\n\t"                                                                        \
  "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                              \
  "smlad %[a00], %[w0], %[x1], %[a00]\n\t"                                                                       \
  "smlad %[a01], %[w0], %[x3], %[a01]\n\t"                                                                       \
  "sxtb16 %[t], %[w1]\n\t"                                                                                       \
  "smlad %[a10], %[t], %[x0], %[a10]\n\t"                                                                        \
  "smlad %[a11], %[t], %[x2], %[a11]\n\t"                                                                        \
  "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                              \
  "smlad %[a10], %[w1], %[x1], %[a10]\n\t"                                                                       \
  "smlad %[a11], %[w1], %[x3], %[a11]\n\t"

/* Four chunks a turn; when the (even) count is not a multiple of 4, t != 0
 * enters the first turn half-way. */
#define MM_LOOP_2X2(STRIDE)                                                                                      \
  __asm__ volatile("cmp %[t], #0\n\t"                                                                            \
                   "bne 2f\n\t"                                                                                  \
                   "1:\n\t" MM_CHUNK_2X2(STRIDE) MM_CHUNK_2X2(STRIDE)                                              \
                   "2:\n\t" MM_CHUNK_2X2(STRIDE) MM_CHUNK_2X2(STRIDE) "cmp %[q], %[end]\n\t"                     \
                   "bne 1b\n\t"                                                                                  \
                   : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [w] "+r"(w),            \
                     [q] "+r"(q), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "+r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1),   \
                     [x2] "=&r"(x2), [x3] "=&r"(x3)                                                              \
                   : [end] "r"(end)                                                                              \
                   : "cc", "memory")

/* Rows (r, r + 1) x both columns over all chunks (an even count, ext padded);
 * `stride` is the group's bytes per chunk (16 for 4 rows, 8 for 2). */
INLINE void block_2x2(const TF_CONST_DATA int8_t *w, int stride, const uint32_t *ext, const uint32_t *end, int32_t acc[4]) {
  register uint32_t x0 __asm__("r8"), x1 __asm__("r9"), x2 __asm__("r10"), x3 __asm__("r11");
  uint32_t w0, w1, t = (uint32_t)(end - ext) & 8u; /* 8 words = 2 chunks past a multiple of 4 */
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const uint32_t *q = ext;
  if (stride == 16) {
    MM_LOOP_2X2(16);
  } else {
    MM_LOOP_2X2(8);
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

/* One row x both columns (the odd last row: its words one after another). */
INLINE void block_1x2(const TF_CONST_DATA int8_t *w, const uint32_t *ext, const uint32_t *end, int32_t acc[2]) {
  register uint32_t x0 __asm__("r8"), x1 __asm__("r9"), x2 __asm__("r10"), x3 __asm__("r11");
  uint32_t w0, t;
  int32_t a0 = acc[0], a1 = acc[1];
  const uint32_t *q = ext;
  __asm__ volatile("1:\n\t"
                   "ldr %[w0], [%[w]], #4\n\t"
                   "ldm %[q]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
                   "sxtb16 %[t], %[w0]\n\t"
                   "smlad %[a0], %[t], %[x0], %[a0]\n\t"
                   "smlad %[a1], %[t], %[x2], %[a1]\n\t"
                   "sxtb16 %[w0], %[w0], ror #8\n\t"
                   "smlad %[a0], %[w0], %[x1], %[a0]\n\t"
                   "smlad %[a1], %[w0], %[x3], %[a1]\n\t"
                   "cmp %[q], %[end]\n\t"
                   "bne 1b\n\t"
                   : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [q] "+r"(q), [w0] "=&r"(w0), [t] "=&r"(t),
                     [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3)
                   : [end] "r"(end)
                   : "cc", "memory");
  acc[0] = a0;
  acc[1] = a1;
}

/* Rows (c, c + 1) of the stage x both columns: their block, then their four
 * outputs, o0[0..1] (column 0) and o0[d..d + 1] (column 1). */
INLINE void rows_2x2(const TF_CONST_DATA int8_t *w, int stride, const uint32_t *ext, const uint32_t *end, const TF_CONST_DATA tf_channel_s8 *c,
                     int32_t offset, int32_t lo, int32_t hi, int full, int8_t *o0, ptrdiff_t d) {
  int32_t acc[4] = {c[0].bias, c[0].bias, c[1].bias, c[1].bias};
  block_2x2(w, stride, ext, end, acc);
  out_pair(acc[0], acc[1], &c[0], offset, lo, hi, full, &o0[0], &o0[d]);
  out_pair(acc[2], acc[3], &c[1], offset, lo, hi, full, &o0[1], &o0[d + 1]);
}

INLINE void mat_mult_g2(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                        const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext, int full) {
  const int32_t chunks = (depth + 3) >> 2, padded = (chunks + 1) & ~1;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  extend_columns(x0, x1, depth, ext);
  const uint32_t *end = ext + 4 * padded;
  const ptrdiff_t d = out1 - out0;
  const TF_CONST_DATA tf_channel_s8 *c = stage->channels, *c_end = c + (rows & ~3);
  const TF_CONST_DATA int8_t *w = packed;
  int8_t *o = out0;
  for (; c != c_end; c += 4, o += 4) {
    rows_2x2(w, 16, ext, end, c, offset, lo, hi, full, o, d);
    rows_2x2(w + 8, 16, ext, end, c + 2, offset, lo, hi, full, o + 2, d);
    w += 16 * chunks;
  }
  if (rows & 2) {
    rows_2x2(w, 8, ext, end, c, offset, lo, hi, full, o, d);
    w += 8 * chunks;
    c += 2;
    o += 2;
  }
  if (rows & 1) {
    int32_t acc[2] = {c->bias, c->bias};
    block_1x2(w, ext, end, acc);
    out_pair(acc[0], acc[1], c, offset, lo, hi, full, &o[0], &o[d]);
  }
}

/* One chunk of 4 rows x 1 column: the column's word xa (sign-extended halves
 * xa, xb), the four rows' words (LDM, pinned ascending), 8 SXTB16, 8 SMLAD. */
#define MV_CHUNK_4X1                                                                                             \
  "ldm %[w]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"                                                                  \
  "sxtb16 %[xb], %[xa], ror #8\n\t"                                                                              \
  "sxtb16 %[xa], %[xa]\n\t"                                                                                      \
  "sxtb16 %[t], %[w0]\n\t"                                                                                       \
  "smlad %[a0], %[t], %[xa], %[a0]\n\t"                                                                          \
  "sxtb16 %[w0], %[w0], ror #8\n\t"                                                                              \
  "smlad %[a0], %[w0], %[xb], %[a0]\n\t"                                                                         \
  "sxtb16 %[t], %[w1]\n\t"                                                                                       \
  "smlad %[a1], %[t], %[xa], %[a1]\n\t"                                                                          \
  "sxtb16 %[w1], %[w1], ror #8\n\t"                                                                              \
  "smlad %[a1], %[w1], %[xb], %[a1]\n\t"                                                                         \
  "sxtb16 %[t], %[w2]\n\t"                                                                                       \
  "smlad %[a2], %[t], %[xa], %[a2]\n\t"                                                                          \
  "sxtb16 %[w2], %[w2], ror #8\n\t"                                                                              \
  "smlad %[a2], %[w2], %[xb], %[a2]\n\t"                                                                         \
  "sxtb16 %[t], %[w3]\n\t"                                                                                       \
  "smlad %[a3], %[t], %[xa], %[a3]\n\t"                                                                          \
  "sxtb16 %[w3], %[w3], ror #8\n\t"                                                                              \
  "smlad %[a3], %[w3], %[xb], %[a3]\n\t"

#define MV_OPERANDS                                                                                              \
  [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [xa] "+r"(xa), [xb] "=&r"(xb),       \
      [t] "=&r"(t), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3)

/* Four rows of a group of 4 x one column; w is the group, returned past it.
 * Two chunks per turn; an odd chunk first; the last chunk's column bytes
 * gathered (zero-padded, as the weights are), as x ends at depth. */
INLINE const TF_CONST_DATA int8_t *vec_4x1(const TF_CONST_DATA int8_t *w, const int8_t *x, int32_t depth, int32_t acc[4]) {
  register uint32_t w0 __asm__("r8"), w1 __asm__("r9"), w2 __asm__("r10"), w3 __asm__("r11");
  uint32_t xa = 0, xb, t;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const int8_t *x_end = x + (depth & ~3);
  if (depth & 4) {
    __asm__ volatile("ldr %[xa], [%[x]], #4\n\t" MV_CHUNK_4X1 : MV_OPERANDS, [x] "+r"(x) : : "memory");
  }
  if (x != x_end) {
    __asm__ volatile("1:\n\t"
                     "ldr %[xa], [%[x]], #4\n\t" MV_CHUNK_4X1 "ldr %[xa], [%[x]], #4\n\t" MV_CHUNK_4X1
                     "cmp %[x], %[end]\n\t"
                     "bne 1b\n\t"
                     : MV_OPERANDS, [x] "+r"(x)
                     : [end] "r"(x_end)
                     : "cc", "memory");
  }
  if (depth & 3) {
    uint32_t v = 0;
    for (int32_t k = 0; k < (depth & 3); ++k) {
      v |= (uint32_t)(uint8_t)x[k] << (8 * k);
    }
    xa = v;
    __asm__ volatile(MV_CHUNK_4X1 : MV_OPERANDS : : "memory");
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
  return w;
}

/* Rows of a group of `g` rows (2 or 1) x one column, in C. */
INLINE int32_t dot_chunks(const TF_CONST_DATA int8_t *w, int32_t g, int32_t j, const int8_t *x, int32_t depth, int32_t acc) {
  int32_t k = 0;
  for (; k + 4 <= depth; k += 4) {
    const uint32_t wv = tf_load_s8x4(CHUNK_AT(w, g, k >> 2, j)), xv = tf_load_s8x4(x + k);
    acc = tf_smlad(tf_sxtb16(wv), tf_sxtb16(xv), acc);
    acc = tf_smlad(tf_sxtb16_ror8(wv), tf_sxtb16_ror8(xv), acc);
  }
  for (const TF_CONST_DATA int8_t *wc = CHUNK_AT(w, g, k >> 2, j); k < depth; ++k, ++wc) {
    acc += (int32_t)*wc * (int32_t)x[k];
  }
  return acc;
}

/* Four outputs of four rows (the clamp's two forms share the loop: only
 * this part is compiled twice). */
INLINE void out_quad(const int32_t acc[4], const TF_CONST_DATA tf_channel_s8 *c, int32_t offset, int32_t lo, int32_t hi, int full,
                     int8_t *out) {
  const int8_t v0 = tf_output_s8(acc[0], &c[0], offset, lo, hi, full);
  const int8_t v1 = tf_output_s8(acc[1], &c[1], offset, lo, hi, full);
  const int8_t v2 = tf_output_s8(acc[2], &c[2], offset, lo, hi, full);
  const int8_t v3 = tf_output_s8(acc[3], &c[3], offset, lo, hi, full);
  out[0] = v0;
  out[1] = v1;
  out[2] = v2;
  out[3] = v3;
}

static void mat_vec(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x, const tf_out_stage_s8 *stage,
                    int8_t *out) {
  const int32_t chunks = (depth + 3) >> 2;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  const TF_CONST_DATA tf_channel_s8 *c = stage->channels, *c_end = c + (rows & ~3);
  const TF_CONST_DATA int8_t *w = packed;
  for (; c != c_end; c += 4, out += 4) {
    int32_t acc[4] = {c[0].bias, c[1].bias, c[2].bias, c[3].bias};
    w = vec_4x1(w, x, depth, acc);
    out_quad(acc, c, offset, lo, hi, 0, out); /* one clamp for all: few outputs, small code */
  }
  for (int32_t left = rows & 3; left > 0;) {
    const int32_t n = left >= 2 ? 2 : 1;
    for (int32_t j = 0; j < n; ++j) {
      out[j] = tf_output_s8(dot_chunks(w, n, j, x, depth, c[j].bias), &c[j], offset, lo, hi, 0);
    }
    w += 4 * n * chunks;
    c += n;
    out += n;
    left -= n;
  }
}

#else /* !TF_DSP */
/* ------------------------------------------------------------------------- */
/* wide and plain paths                                                       */
/* ------------------------------------------------------------------------- */

#if TF_MAT_MULT_WIDE && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 2
/* The wide path's 4 x 2 inner loop on Thumb-2 (GCC spills one of its 8
 * halves in C): per depth byte i, X = x0 + x1 << 23, then LDRSB + SMLAL per
 * row. Byte 0 goes last, so that its loads move the pointers (post-index);
 * row 0's weight last of all. 46 instructions per chunk of 4 x 4 x 2. */
#define WIDE_BYTE(I)                                                                                              \
  "ldrsb %[xx], [%[p0], #" #I "]\n\t"                                                                             \
  "ldrsb %[t], [%[p1], #" #I "]\n\t"                                                                              \
  "add %[xx], %[xx], %[t], lsl #23\n\t"                                                                           \
  "ldrsb %[t], [%[w], #(12 + " #I ")]\n\t"                                                                        \
  "smlal %[l3], %[h3], %[t], %[xx]\n\t"                                                                           \
  "ldrsb %[t], [%[w], #(8 + " #I ")]\n\t"                                                                         \
  "smlal %[l2], %[h2], %[t], %[xx]\n\t"                                                                           \
  "ldrsb %[t], [%[w], #(4 + " #I ")]\n\t"                                                                         \
  "smlal %[l1], %[h1], %[t], %[xx]\n\t"                                                                           \
  "ldrsb %[t], [%[w], #" #I "]\n\t"                                                                               \
  "smlal %[l0], %[h0], %[t], %[xx]\n\t"

INLINE void wide_4x2(const TF_CONST_DATA int8_t **wp, const int8_t **p0p, const int8_t **p1p, const int8_t *p_end,
                     int64_t s[4]) {
  uint32_t l0 = 0, h0 = 0, l1 = 0, h1 = 0, l2 = 0, h2 = 0, l3 = 0, h3 = 0, xx, t;
  const TF_CONST_DATA int8_t *w = *wp;
  const int8_t *p0 = *p0p, *p1 = *p1p;
  __asm__ volatile("1:\n\t" WIDE_BYTE(1) WIDE_BYTE(2) WIDE_BYTE(3)
                   "ldrsb %[xx], [%[p0]], #4\n\t"
                   "ldrsb %[t], [%[p1]], #4\n\t"
                   "add %[xx], %[xx], %[t], lsl #23\n\t"
                   "ldrsb %[t], [%[w], #12]\n\t"
                   "smlal %[l3], %[h3], %[t], %[xx]\n\t"
                   "ldrsb %[t], [%[w], #8]\n\t"
                   "smlal %[l2], %[h2], %[t], %[xx]\n\t"
                   "ldrsb %[t], [%[w], #4]\n\t"
                   "smlal %[l1], %[h1], %[t], %[xx]\n\t"
                   "ldrsb %[t], [%[w]], #16\n\t"
                   "smlal %[l0], %[h0], %[t], %[xx]\n\t"
                   "cmp %[p0], %[end]\n\t"
                   "bne 1b\n\t"
                   : [l0] "+r"(l0), [h0] "+r"(h0), [l1] "+r"(l1), [h1] "+r"(h1), [l2] "+r"(l2), [h2] "+r"(h2),
                     [l3] "+r"(l3), [h3] "+r"(h3), [w] "+r"(w), [p0] "+r"(p0), [p1] "+r"(p1), [xx] "=&r"(xx),
                     [t] "=&r"(t)
                   : [end] "r"(p_end)
                   : "cc", "memory");
  s[0] = (int64_t)(((uint64_t)h0 << 32) | l0);
  s[1] = (int64_t)(((uint64_t)h1 << 32) | l1);
  s[2] = (int64_t)(((uint64_t)h2 << 32) | l2);
  s[3] = (int64_t)(((uint64_t)h3 << 32) | l3);
  *wp = w;
  *p0p = p0;
  *p1p = p1;
}
#define TF_WIDE_ASM 1
#else
#define TF_WIDE_ASM 0
#endif

/* The low and high fields of a wide sum into row j's two accumulators. */
INLINE void split_add(int64_t sum, int32_t *acc0, int32_t *acc1) {
  const int32_t low = (int32_t)((uint32_t)sum << 9) >> 9; /* in [-2^22, 2^22): exact */
  *acc0 = add_wrap(*acc0, low);
  *acc1 = add_wrap(*acc1, (int32_t)((sum - low) >> 23));
}

/* `g` rows (g = 4, 2 or 1: a group of the layout) x both columns, starting at
 * depth 0. acc[2 * j + c] is row j, column c, and comes in holding the bias. */
INLINE void block_rows(const TF_CONST_DATA int8_t *w, int32_t g, const int8_t *x0, const int8_t *x1, int32_t depth,
                       int32_t *acc) {
  const int32_t full = depth & ~3;
#if TF_WIDE_ASM
  if (g == 4) { /* the whole chunks in segments through the assembly loop, then the tail in int32 */
    const int8_t *p0 = x0, *p1 = x1;
    const TF_CONST_DATA int8_t *wc = w;
    if (full != 0 && full <= TF_WIDE_SEGMENT) { /* one segment (most layers): no loop around it */
      int64_t s[4];
      wide_4x2(&wc, &p0, &p1, p0 + full, s);
      split_add(s[0], &acc[0], &acc[1]);
      split_add(s[1], &acc[2], &acc[3]);
      split_add(s[2], &acc[4], &acc[5]);
      split_add(s[3], &acc[6], &acc[7]);
    } else {
      for (int32_t k0 = 0; k0 < full; k0 += TF_WIDE_SEGMENT) {
        const int32_t n = full - k0 > TF_WIDE_SEGMENT ? TF_WIDE_SEGMENT : full - k0;
        int64_t s[4];
        wide_4x2(&wc, &p0, &p1, p0 + n, s);
        split_add(s[0], &acc[0], &acc[1]);
        split_add(s[1], &acc[2], &acc[3]);
        split_add(s[2], &acc[4], &acc[5]);
        split_add(s[3], &acc[6], &acc[7]);
      }
    }
    for (int32_t i = 0; i < depth - full; ++i) {
      const int32_t v0 = p0[i], v1 = p1[i];
#pragma GCC unroll 4
      for (int32_t j = 0; j < 4; ++j) {
        acc[2 * j] = add_wrap(acc[2 * j], wc[4 * j + i] * v0);
        acc[2 * j + 1] = add_wrap(acc[2 * j + 1], wc[4 * j + i] * v1);
      }
    }
    return;
  }
#endif
#if TF_MAT_MULT_WIDE
  const int8_t *p0 = x0, *p1 = x1;
  const TF_CONST_DATA int8_t *wc = w;
  for (int32_t k0 = 0; k0 < depth; k0 += TF_WIDE_SEGMENT) {
    const int32_t k1 = depth - k0 > TF_WIDE_SEGMENT ? k0 + TF_WIDE_SEGMENT : depth;
    const int32_t k1_full = k1 < full ? k1 : full;
    const int8_t *p_end = x0 + k1_full;
    int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    while (p0 != p_end) {
#pragma GCC unroll 4
      for (int32_t i = 0; i < 4; ++i) {
        const int64_t xx = (int32_t)p0[i] + (int32_t)p1[i] * 8388608; /* x0 + x1 * 2^23 */
        s0 += wc[i] * xx;
        if (g >= 2) {
          s1 += wc[4 + i] * xx;
        }
        if (g == 4) {
          s2 += wc[8 + i] * xx;
          s3 += wc[12 + i] * xx;
        }
      }
      p0 += 4;
      p1 += 4;
      wc += 4 * g;
    }
    for (int32_t i = 0; i < k1 - k1_full; ++i) { /* the tail of the last chunk */
      const int64_t xx = (int32_t)p0[i] + (int32_t)p1[i] * 8388608;
      s0 += wc[i] * xx;
      if (g >= 2) {
        s1 += wc[4 + i] * xx;
      }
      if (g == 4) {
        s2 += wc[8 + i] * xx;
        s3 += wc[12 + i] * xx;
      }
    }
    split_add(s0, &acc[0], &acc[1]);
    if (g >= 2) {
      split_add(s1, &acc[2], &acc[3]);
    }
    if (g == 4) {
      split_add(s2, &acc[4], &acc[5]);
      split_add(s3, &acc[6], &acc[7]);
    }
  }
#else
  int32_t a[8];
  for (int32_t j = 0; j < 2 * g; ++j) {
    a[j] = acc[j];
  }
  const int8_t *p0 = x0, *p1 = x1;
  const TF_CONST_DATA int8_t *wc = w;
  const int8_t *p_end = x0 + full;
  while (p0 != p_end) {
#if defined(__AVR__)
    /* AVR: the chunk's weights in storage order through one program-memory pointer
     * (LPM Z+, which has no displacement form), each int8 x int8 product a 16-bit MULS */
    for (int32_t j = 0; j < g; ++j) {
      for (int i = 0; i < 4; ++i) {
        const int8_t wv = *wc++;
        a[2 * j] += (int16_t)(wv * p0[i]);
        a[2 * j + 1] += (int16_t)(wv * p1[i]);
      }
    }
    p0 += 4;
    p1 += 4;
#else
#pragma GCC unroll 4
    for (int32_t i = 0; i < 4; ++i) {
      const int32_t v0 = p0[i], v1 = p1[i];
#pragma GCC unroll 4
      for (int32_t j = 0; j < g; ++j) {
        const int32_t wv = wc[4 * j + i];
        a[2 * j] += wv * v0;
        a[2 * j + 1] += wv * v1;
      }
    }
    p0 += 4;
    p1 += 4;
    wc += 4 * g;
#endif
  }
  for (int32_t i = 0; i < depth - full; ++i) {
    const int32_t v0 = p0[i], v1 = p1[i];
    for (int32_t j = 0; j < g; ++j) {
      const int32_t wv = wc[4 * j + i];
      a[2 * j] += wv * v0;
      a[2 * j + 1] += wv * v1;
    }
  }
  for (int32_t j = 0; j < 2 * g; ++j) {
    acc[j] = a[j];
  }
#endif
}

INLINE void mat_mult_g2(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                        const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext, int full) {
  (void)ext;
  const int32_t chunks = (depth + 3) >> 2;
  const TF_CONST_DATA tf_channel_s8 *ch = stage->channels;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  const TF_CONST_DATA int8_t *w = packed;
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    int32_t acc[8] = {ch[r].bias, ch[r].bias, ch[r + 1].bias, ch[r + 1].bias,
                      ch[r + 2].bias, ch[r + 2].bias, ch[r + 3].bias, ch[r + 3].bias};
    block_rows(w, 4, x0, x1, depth, acc);
    out_pair(acc[0], acc[1], &ch[r], offset, lo, hi, full, &out0[r], &out1[r]);
    out_pair(acc[2], acc[3], &ch[r + 1], offset, lo, hi, full, &out0[r + 1], &out1[r + 1]);
    out_pair(acc[4], acc[5], &ch[r + 2], offset, lo, hi, full, &out0[r + 2], &out1[r + 2]);
    out_pair(acc[6], acc[7], &ch[r + 3], offset, lo, hi, full, &out0[r + 3], &out1[r + 3]);
    w += 16 * chunks;
  }
  if (rows - r >= 2) {
    int32_t acc[4] = {ch[r].bias, ch[r].bias, ch[r + 1].bias, ch[r + 1].bias};
    block_rows(w, 2, x0, x1, depth, acc);
    out_pair(acc[0], acc[1], &ch[r], offset, lo, hi, full, &out0[r], &out1[r]);
    out_pair(acc[2], acc[3], &ch[r + 1], offset, lo, hi, full, &out0[r + 1], &out1[r + 1]);
    w += 8 * chunks;
    r += 2;
  }
  if (r < rows) {
    int32_t acc[2] = {ch[r].bias, ch[r].bias};
    block_rows(w, 1, x0, x1, depth, acc);
    out_pair(acc[0], acc[1], &ch[r], offset, lo, hi, full, &out0[r], &out1[r]);
  }
}

/* `n` rows (4, 2 or 1) of a group of `n` rows x one column, plain
 * multiply-accumulates (each weight is used once: nothing to share). */
INLINE void vec_rows(const TF_CONST_DATA int8_t *w, int32_t n, const int8_t *x, int32_t depth, int32_t *acc) {
  const int32_t full = depth & ~3;
  int32_t a[4];
  for (int32_t j = 0; j < n; ++j) {
    a[j] = acc[j];
  }
  const int8_t *p = x, *p_end = x + full;
  const TF_CONST_DATA int8_t *wc = w;
  while (p != p_end) {
#if defined(__AVR__)
    /* AVR: storage order through one program-memory pointer, 16-bit MULS (block_rows) */
    for (int32_t j = 0; j < n; ++j) {
      for (int i = 0; i < 4; ++i) {
        a[j] += (int16_t)(*wc++ * p[i]);
      }
    }
    p += 4;
#else
#pragma GCC unroll 4
    for (int32_t i = 0; i < 4; ++i) {
      const int32_t v = p[i];
#pragma GCC unroll 4
      for (int32_t j = 0; j < n; ++j) {
        a[j] += (int32_t)wc[4 * j + i] * v;
      }
    }
    p += 4;
    wc += 4 * n;
#endif
  }
  for (int32_t i = 0; i < depth - full; ++i) {
    for (int32_t j = 0; j < n; ++j) {
      a[j] += (int32_t)wc[4 * j + i] * (int32_t)p[i];
    }
  }
  for (int32_t j = 0; j < n; ++j) {
    acc[j] = a[j];
  }
}

static void mat_vec(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x, const tf_out_stage_s8 *stage,
                    int8_t *out) {
  const int32_t chunks = (depth + 3) >> 2;
  const TF_CONST_DATA tf_channel_s8 *ch = stage->channels;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  const TF_CONST_DATA int8_t *w = packed;
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    int32_t acc[4] = {ch[r].bias, ch[r + 1].bias, ch[r + 2].bias, ch[r + 3].bias};
    vec_rows(w, 4, x, depth, acc);
    for (int32_t j = 0; j < 4; ++j) {
      out[r + j] = tf_output_s8(acc[j], &ch[r + j], offset, lo, hi, 0);
    }
    w += 16 * chunks;
  }
  while (r < rows) {
    const int32_t n = rows - r >= 2 ? 2 : 1;
    int32_t acc[2] = {ch[r].bias, n == 2 ? ch[r + 1].bias : 0};
    if (n == 2) {
      vec_rows(w, 2, x, depth, acc);
    } else {
      vec_rows(w, 1, x, depth, acc);
    }
    for (int32_t j = 0; j < n; ++j) {
      out[r + j] = tf_output_s8(acc[j], &ch[r + j], offset, lo, hi, 0);
    }
    w += 4 * n * chunks;
    r += n;
  }
}

#endif /* TF_DSP */

/* One loop for both clamps (only the DSP path's output stage is compiled
 * twice): a fully connected layer has few outputs per weight read, and the
 * firmware stays small (the sine model's flash). */
void tf_mat_vec_s8_g4(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x,
                      const tf_out_stage_s8 *stage, int8_t *out) {
  mat_vec(packed, rows, depth, x, stage, out);
}

void tf_mat_mult_s8_g2(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                       const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext) {
  if (x1 == NULL) { /* one vector: compute it twice into the same place */
    x1 = x0;
    out1 = out0;
  }
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  /* the clamp (tf_clamp_s8): the whole int8 range, [lo, 127] or any */
  if (stage->activation_max == 127) {
    if (stage->activation_min == -128) {
      mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 1);
    } else {
      mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 2);
    }
  } else {
    mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 0);
  }
#else
  mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 0); /* no SSAT: one clamp for all */
#endif
}
