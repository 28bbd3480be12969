/* Matrix-multiply cores of the optimized int8 kernels (see mat_mult_s8.h for
 * the packed weight layout). Two paths, chosen at compile time:
 *  - DSP (TF_DSP, dsp_s8.h): words of four int8 values, SXTB16 + SMLAD, two
 *    multiply-accumulates per instruction; the input vectors are sign-extended
 *    once per call into `ext` and reused by every pair of rows;
 *  - portable (Cortex-M0/M3, RISC-V, the host): byte loads and one
 *    multiply-accumulate per product, blocked so that every loaded value is
 *    used by two (or four) accumulators.
 * Both compute exactly sum w*x in int32 (no saturation, like TFLM), so they are
 * bit-exact with each other and with the reference kernels. The convolution
 * driver is compiled twice through an always-inline body: once for a clamp
 * that is the whole int8 range (one SSAT), once for any clamp. */
#include <stddef.h>

#include "dsp_s8.h"
#include "fixed_point.h"
#include "mat_mult_s8.h"

#define INLINE static inline __attribute__((always_inline))

/* One unpacked row times one vector. */
INLINE int32_t dot_row(const int8_t *w, const int8_t *x, int32_t depth, int32_t acc) {
  int32_t k = 0;
#if TF_DSP
  for (; k + 4 <= depth; k += 4) {
    const uint32_t wv = tf_load_s8x4(w + k), xv = tf_load_s8x4(x + k);
    acc = tf_smlad(tf_sxtb16(wv), tf_sxtb16(xv), acc);
    acc = tf_smlad(tf_sxtb16_ror8(wv), tf_sxtb16_ror8(xv), acc);
  }
#endif
  for (; k < depth; ++k) {
    acc += (int32_t)w[k] * (int32_t)x[k];
  }
  return acc;
}

INLINE void mat_vec_g4(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x,
                       const tf_out_stage_s8 *stage, int8_t *out, int full) {
  const int32_t chunks = depth >> 2, tail = depth & 3;
  const tf_channel_s8 *ch = stage->channels;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  const int8_t *w = packed;
  int32_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    int32_t a0 = ch[r].bias, a1 = ch[r + 1].bias, a2 = ch[r + 2].bias, a3 = ch[r + 3].bias;
    const int8_t *xp = x;
    for (int32_t i = 0; i < chunks; ++i) {
#if TF_DSP
      const uint32_t xv = tf_load_s8x4(xp);
      const uint32_t xa = tf_sxtb16(xv), xb = tf_sxtb16_ror8(xv);
      uint32_t wv = tf_load_s8x4(w);
      a0 = tf_smlad(tf_sxtb16(wv), xa, a0);
      a0 = tf_smlad(tf_sxtb16_ror8(wv), xb, a0);
      wv = tf_load_s8x4(w + 4);
      a1 = tf_smlad(tf_sxtb16(wv), xa, a1);
      a1 = tf_smlad(tf_sxtb16_ror8(wv), xb, a1);
      wv = tf_load_s8x4(w + 8);
      a2 = tf_smlad(tf_sxtb16(wv), xa, a2);
      a2 = tf_smlad(tf_sxtb16_ror8(wv), xb, a2);
      wv = tf_load_s8x4(w + 12);
      a3 = tf_smlad(tf_sxtb16(wv), xa, a3);
      a3 = tf_smlad(tf_sxtb16_ror8(wv), xb, a3);
#else
      const int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
      a0 += w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3;
      a1 += w[4] * x0 + w[5] * x1 + w[6] * x2 + w[7] * x3;
      a2 += w[8] * x0 + w[9] * x1 + w[10] * x2 + w[11] * x3;
      a3 += w[12] * x0 + w[13] * x1 + w[14] * x2 + w[15] * x3;
#endif
      xp += 4;
      w += 16;
    }
    for (int32_t t = 0; t < tail; ++t) {
      const int32_t xt = xp[t];
      a0 += w[t] * xt;
      a1 += w[tail + t] * xt;
      a2 += w[2 * tail + t] * xt;
      a3 += w[3 * tail + t] * xt;
    }
    w += 4 * tail;
    out[r] = tf_output_s8(a0, &ch[r], offset, lo, hi, full);
    out[r + 1] = tf_output_s8(a1, &ch[r + 1], offset, lo, hi, full);
    out[r + 2] = tf_output_s8(a2, &ch[r + 2], offset, lo, hi, full);
    out[r + 3] = tf_output_s8(a3, &ch[r + 3], offset, lo, hi, full);
  }
  for (; r < rows; ++r) {
    out[r] = tf_output_s8(dot_row(w, x, depth, ch[r].bias), &ch[r], offset, lo, hi, full);
    w += depth;
  }
}

/* One specialization only: a fully connected layer has few outputs per weight
 * read, and the firmware stays small (the sine model's flash budget). */
void tf_mat_vec_s8_g4(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x,
                      const tf_out_stage_s8 *stage, int8_t *out) {
  mat_vec_g4(packed, rows, depth, x, stage, out, 0);
}

INLINE void mat_mult_g2(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                        const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext, int full) {
  const int32_t chunks = depth >> 2, tail = depth & 3;
  const tf_channel_s8 *ch = stage->channels;
  const int32_t offset = stage->output_offset, lo = stage->activation_min, hi = stage->activation_max;
  const int8_t *w = packed;
#if TF_DSP
  /* Both vectors sign-extended once, interleaved per chunk as
   * (x0: v0 v2, v1 v3; x1: v0 v2, v1 v3), the pairs SMLAD takes. */
  for (int32_t i = 0; i < chunks; ++i) {
    const uint32_t v0 = tf_load_s8x4(x0 + 4 * i), v1 = tf_load_s8x4(x1 + 4 * i);
    ext[4 * i] = tf_sxtb16(v0);
    ext[4 * i + 1] = tf_sxtb16_ror8(v0);
    ext[4 * i + 2] = tf_sxtb16(v1);
    ext[4 * i + 3] = tf_sxtb16_ror8(v1);
  }
#else
  (void)ext;
#endif
  const int8_t *p0 = x0 + 4 * chunks, *p1 = x1 + 4 * chunks; /* the tails */
  int32_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    int32_t a00 = ch[r].bias, a10 = ch[r + 1].bias; /* a<row><vector> */
    int32_t a01 = a00, a11 = a10;
    const int8_t *w_end = w + 8 * chunks;
#if TF_DSP
    const uint32_t *q = ext;
    while (w != w_end) {
      const uint32_t w0 = tf_load_s8x4(w), w1 = tf_load_s8x4(w + 4);
      const uint32_t w0a = tf_sxtb16(w0), w0b = tf_sxtb16_ror8(w0);
      const uint32_t w1a = tf_sxtb16(w1), w1b = tf_sxtb16_ror8(w1);
      a00 = tf_smlad(w0a, q[0], a00);
      a00 = tf_smlad(w0b, q[1], a00);
      a10 = tf_smlad(w1a, q[0], a10);
      a10 = tf_smlad(w1b, q[1], a10);
      a01 = tf_smlad(w0a, q[2], a01);
      a01 = tf_smlad(w0b, q[3], a01);
      a11 = tf_smlad(w1a, q[2], a11);
      a11 = tf_smlad(w1b, q[3], a11);
      q += 4;
      w += 8;
    }
#else
    const int8_t *c0 = x0, *c1 = x1;
    while (w != w_end) {
#pragma GCC unroll 4
      for (int32_t j = 0; j < 4; ++j) { /* 4 loads, 4 multiply-accumulates */
        const int32_t wa = w[j], wb = w[4 + j], xa = c0[j], xb = c1[j];
        a00 += wa * xa;
        a10 += wb * xa;
        a01 += wa * xb;
        a11 += wb * xb;
      }
      c0 += 4;
      c1 += 4;
      w += 8;
    }
#endif
    for (int32_t t = 0; t < tail; ++t) {
      const int32_t wa = w[t], wb = w[tail + t];
      a00 += wa * p0[t];
      a10 += wb * p0[t];
      a01 += wa * p1[t];
      a11 += wb * p1[t];
    }
    w += 2 * tail;
    out0[r] = tf_output_s8(a00, &ch[r], offset, lo, hi, full);
    out0[r + 1] = tf_output_s8(a10, &ch[r + 1], offset, lo, hi, full);
    out1[r] = tf_output_s8(a01, &ch[r], offset, lo, hi, full);
    out1[r + 1] = tf_output_s8(a11, &ch[r + 1], offset, lo, hi, full);
  }
  if (r < rows) {
    out0[r] = tf_output_s8(dot_row(w, x0, depth, ch[r].bias), &ch[r], offset, lo, hi, full);
    out1[r] = tf_output_s8(dot_row(w, x1, depth, ch[r].bias), &ch[r], offset, lo, hi, full);
  }
}

void tf_mat_mult_s8_g2(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                       const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext) {
  if (x1 == NULL) { /* one vector: compute it twice into the same place */
    x1 = x0;
    out1 = out0;
  }
  if (stage->activation_min == -128 && stage->activation_max == 127) {
    mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 1);
  } else {
    mat_mult_g2(packed, rows, depth, x0, x1, stage, out0, out1, ext, 0);
  }
}
