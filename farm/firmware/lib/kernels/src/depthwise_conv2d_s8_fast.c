/* int8 depthwise convolution, optimized (CMSIS-NN arm_depthwise_conv_s8_opt /
 * _3x3 style). The host folds the input offset into the effective bias and
 * pre-arranges the filter (farm/codegen/packing.py) in one of two layouts:
 *
 * 1. 3x3, depth multiplier 1, channels a multiple of 4 (`pack_depthwise_3x3`):
 *    a stream of 32-bit words. Word 0 is the requantization mode (below).
 *    Then per group of 4 channels c..c+3: for each tap t (ky * 3 + kx) two
 *    words of int16 pairs, (w[t][c], w[t][c+2]) and (w[t][c+1], w[t][c+3]),
 *    the order SXTB16 and SXTB16 ROR #8 give a word of 4 input channels; in
 *    mode 1 the 18 words are followed by 3 words per channel: the 64-bit
 *    requantization constant (low, high word) and the multiplier.
 *    Output pixels go in pairs along x, or along y when that leaves fewer
 *    single pixels (stride 1: the pair shares 4 input columns per row;
 *    stride 2: 5), each input word feeding both pixels; on the DSP path the
 *    MACs (SXTB16, SMLABB / SMLATT) and the requantization are inline
 *    assembly. Every pixel, border or not, reads its taps through a table of
 *    3 x 6 pointers built once per pixel pair; taps outside the input point
 *    at a row of the input zero point in `scratch` (input_channels bytes),
 *    whose products cancel their share of the folded offset, as the
 *    reference skips them.
 *    Mode 1, the fast requantization (the host proves it applies): the
 *    result is floor((acc * M + C) / 2^(31 + E)) with E = TF_DW_SHIFT, one
 *    SMLAL and one SSAT with its ASR. It is tf_requantize_channel_s8 plus the
 *    output offset, where the host scaled the channel's weights by 2^k
 *    (k = E - e for its right shift e, so every channel shifts by E) and
 *    folded the bias, the rounding and the output offset into C:
 *    C = 2^k (bias * M + 2^30 + 2^(30+e)) + output_offset * 2^(31+E). The
 *    [acc < 0] correction of tf_requantize_channel_s8 is left out: it only
 *    matters when acc < 0, where both forms give a value <= output_offset,
 *    which the clamp (activation_min >= output_offset, a condition of mode 1)
 *    sends to activation_min. The host also proves that no sum overflows.
 *    Mode 0: the weights unscaled, tf_output_s8 on the effective bias.
 * 2. Anything else (`pack_depthwise`): packed[oc][kernel_h * kernel_w], the
 *    code below the 3x3 stream path: an unrolled 3x3 loop, or a generic one.
 *
 * Bit-exact with depthwise_conv2d_s8. */
#include <stddef.h>

#include "dsp_s8.h"
#include "fixed_point.h"
#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

typedef struct {
  const TF_CONST_DATA tf_channel_s8 *ch;
  int32_t offset, lo, hi;
} stage_regs;

/* One output pixel of a 3x3 filter, depth multiplier 1, window inside the
 * input: three row pointers and two column offsets reach the nine taps. */
INLINE void pixel_3x3_m1(const int8_t *base, int32_t channels, int32_t col_step, int32_t row_step,
                         const TF_CONST_DATA int8_t *w, stage_regs st, int8_t *out, int full) {
  const int32_t c2 = 2 * col_step;
  const int8_t *p0 = base, *p1 = base + row_step, *p2 = base + 2 * row_step;
  for (int32_t c = 0; c < channels; ++c, w += 9) {
    int32_t acc = st.ch[c].bias;
    acc += w[0] * p0[c];
    acc += w[1] * p0[c + col_step];
    acc += w[2] * p0[c + c2];
    acc += w[3] * p1[c];
    acc += w[4] * p1[c + col_step];
    acc += w[5] * p1[c + c2];
    acc += w[6] * p2[c];
    acc += w[7] * p2[c + col_step];
    acc += w[8] * p2[c + c2];
    out[c] = tf_output_s8(acc, &st.ch[c], st.offset, st.lo, st.hi, full);
  }
}

/* One output pixel of a 3x3 filter, depth multiplier 1, its nine taps given as
 * pointers (each at input channel 0 of its tap, or at the zero-point row). */
INLINE void pixel_3x3_taps_m1(const int8_t *const tap[9], int32_t channels, const TF_CONST_DATA int8_t *w, stage_regs st,
                              int8_t *out, int full) {
  for (int32_t c = 0; c < channels; ++c, w += 9) {
    int32_t acc = st.ch[c].bias;
    acc += w[0] * tap[0][c];
    acc += w[1] * tap[1][c];
    acc += w[2] * tap[2][c];
    acc += w[3] * tap[3][c];
    acc += w[4] * tap[4][c];
    acc += w[5] * tap[5][c];
    acc += w[6] * tap[6][c];
    acc += w[7] * tap[7][c];
    acc += w[8] * tap[8][c];
    out[c] = tf_output_s8(acc, &st.ch[c], st.offset, st.lo, st.hi, full);
  }
}

/* One output pixel of a 3x3 filter, its nine taps given as pointers (each at
 * input channel 0 of its tap, or at the zero-point row). Any multiplier. */
INLINE void pixel_3x3_taps(const int8_t *const tap[9], int32_t in_c, int32_t multiplier, const TF_CONST_DATA int8_t *w,
                           stage_regs st, int8_t *out, int full) {
  int32_t oc = 0;
  for (int32_t ic = 0; ic < in_c; ++ic) {
    const int32_t x0 = tap[0][ic], x1 = tap[1][ic], x2 = tap[2][ic];
    const int32_t x3 = tap[3][ic], x4 = tap[4][ic], x5 = tap[5][ic];
    const int32_t x6 = tap[6][ic], x7 = tap[7][ic], x8 = tap[8][ic];
    for (int32_t m = 0; m < multiplier; ++m, ++oc, w += 9) {
      int32_t acc = st.ch[oc].bias;
      acc += w[0] * x0 + w[1] * x1 + w[2] * x2;
      acc += w[3] * x3 + w[4] * x4 + w[5] * x5;
      acc += w[6] * x6 + w[7] * x7 + w[8] * x8;
      out[oc] = tf_output_s8(acc, &st.ch[oc], st.offset, st.lo, st.hi, full);
    }
  }
}

/* Any filter size and output pixel: taps outside the input count as the zero point `pad`. */
static void pixel_any(const int8_t *in, const tf_dims *input_dims, const tf_dims *filter_dims,
                      const tf_window *win, int32_t multiplier, int32_t iy0, int32_t ix0, int8_t pad,
                      const TF_CONST_DATA int8_t *packed, stage_regs st, int8_t *out) {
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, taps = k_h * k_w;
  const TF_CONST_DATA int8_t *w = packed;
  int32_t oc = 0;
  for (int32_t ic = 0; ic < in_c; ++ic) {
    for (int32_t m = 0; m < multiplier; ++m, ++oc, w += taps) {
      int32_t acc = st.ch[oc].bias;
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const int32_t iy = iy0 + ky * win->dilation_h;
        const TF_CONST_DATA int8_t *wk = w + ky * k_w;
        if (iy < 0 || iy >= in_h) {
          for (int32_t kx = 0; kx < k_w; ++kx) {
            acc += wk[kx] * pad;
          }
          continue;
        }
        const int8_t *row = in + iy * in_w * in_c + ic;
        for (int32_t kx = 0; kx < k_w; ++kx) {
          const int32_t ix = ix0 + kx * win->dilation_w;
          acc += wk[kx] * (ix < 0 || ix >= in_w ? pad : row[ix * in_c]);
        }
      }
      out[oc] = tf_output_s8(acc, &st.ch[oc], st.offset, st.lo, st.hi, 0);
    }
  }
}

INLINE void depthwise(const tf_depthwise_params_s8 *params, stage_regs st, const tf_dims *input_dims,
                      const int8_t *input, const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed,
                      const tf_dims *output_dims, int8_t *output, const int8_t *pad_row, int full) {
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, out_c = filter_dims->c;
  const int32_t multiplier = params->depth_multiplier;
  const int8_t pad = (int8_t)(-params->input_offset);
  const int32_t span_h = (k_h - 1) * win->dilation_h, span_w = (k_w - 1) * win->dilation_w;
  const int32_t col_step = win->dilation_w * in_c, row_step = win->dilation_h * in_w * in_c;
  const int is_3x3 = k_h == 3 && k_w == 3;
  int8_t *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const int8_t *in = input + b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t iy0 = oy * win->stride_h - win->pad_h;
      const int rows_inside = iy0 >= 0 && iy0 + span_h < in_h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox, out += out_c) {
        const int32_t ix0 = ox * win->stride_w - win->pad_w;
        if (!is_3x3) {
          pixel_any(in, input_dims, filter_dims, win, multiplier, iy0, ix0, pad, packed, st, out);
        } else if (multiplier == 1 && rows_inside && ix0 >= 0 && ix0 + span_w < in_w) {
          pixel_3x3_m1(in + (iy0 * in_w + ix0) * in_c, in_c, col_step, row_step, packed, st, out, full);
        } else {
          const int8_t *tap[9];
          for (int32_t ky = 0; ky < 3; ++ky) {
            const int32_t iy = iy0 + ky * win->dilation_h;
            for (int32_t kx = 0; kx < 3; ++kx) {
              const int32_t ix = ix0 + kx * win->dilation_w;
              tap[ky * 3 + kx] = iy < 0 || iy >= in_h || ix < 0 || ix >= in_w ? pad_row
                                                                                : in + (iy * in_w + ix) * in_c;
            }
          }
          if (multiplier == 1) {
            pixel_3x3_taps_m1(tap, in_c, packed, st, out, full);
          } else {
            pixel_3x3_taps(tap, in_c, multiplier, packed, st, out, full);
          }
        }
      }
    }
  }
}

/* ---- 3x3, depth multiplier 1, channels % 4 == 0: the word stream ---------- */

#define TF_DW_SHIFT 12 /* E: the common right shift of mode 1 (packing.py DW_SHIFT) */
_Static_assert(TF_DW_SHIFT == 12, "the DSP requantization below shifts by ASR #11 = TF_DW_SHIFT - 1");
#define DW_COLS 6      /* pointer-table columns per row: a pixel pair's, at most */

enum { RQ_FAST_FULL, RQ_FAST_CLAMP, RQ_GENERAL };

typedef struct {
  const TF_CONST_DATA tf_channel_s8 *ch; /* mode 0 */
  int32_t offset, lo, hi;
} dw_stage;

/* The stream's words, 4-byte aligned (the code generator aligns it to 16). On
 * AVR the stream is in program memory (TF_CONST_DATA) and alignment means
 * nothing to an 8-bit core: a plain cast in the same address space. */
#if defined(__AVR__)
#define TF_DW_WORDS(type, p) ((type)(p))
#else
#define TF_DW_WORDS(type, p) ((type)__builtin_assume_aligned((p), 4))
#endif

static inline const TF_CONST_DATA uint32_t *words_at(const TF_CONST_DATA int8_t *p) {
  return TF_DW_WORDS(const TF_CONST_DATA uint32_t *, p);
}

/* Mode 1's output stage: the high word of C + acc * M, shifted right by E - 1
 * and clamped (q: C low, C high, M). */
INLINE int8_t rq_fast(int32_t acc, const TF_CONST_DATA uint32_t *q, int rq, int32_t lo, int32_t hi) {
#if TF_MUL_PARTS /* fixed_point.h: no int64_t on AVR */
  const int32_t v = tf_mul_add_parts(acc, (int32_t)q[2], q[0], (int32_t)q[1]).hi;
#else
  int64_t t = (int64_t)(((uint64_t)q[1] << 32) | q[0]); /* C, low word first */
  t += (int64_t)acc * (int32_t)q[2];
  const int32_t v = (int32_t)((uint64_t)t >> 32);
#endif
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  if (rq == RQ_FAST_FULL) {
    int32_t r;
    __asm__("ssat %0, #8, %1, asr %2" : "=r"(r) : "r"(v), "I"(TF_DW_SHIFT - 1));
    return (int8_t)r;
  }
#else
  (void)rq;
#endif
  int32_t y = v >> (TF_DW_SHIFT - 1);
  y = y < lo ? lo : y;
  y = y > hi ? hi : y;
  return (int8_t)y;
}

/* The output stage of channel c (its accumulator acc, its words q in mode 1). */
INLINE int8_t rq_out(int32_t acc, const TF_CONST_DATA uint32_t *q, int32_t c, dw_stage st, int rq) {
  if (rq == RQ_GENERAL) {
    const TF_CONST_DATA tf_channel_s8 *ch = &st.ch[c];
    return tf_output_s8(acc + ch->bias, ch, st.offset, st.lo, st.hi, st.lo == -128 && st.hi == 127);
  }
  return rq_fast(acc, q, rq, st.lo, st.hi);
}

#if TF_DSP
/* The MACs of one group of 4 channels, in inline assembly: with 8 accumulators
 * the compiler's scheduler would spill; here every input word is loaded once
 * (through the pointer table on the stack, at offset c), split by SXTB16 and
 * SXTB16 ROR #8, and fed to both pixels while the weights of its tap are in
 * registers. a0..a3 / b0..b3: channels c..c+3 of pixel 0 / 1. */
#define DW_COL(k) "ldr %[x], %[t" #k "]\n\tldr %[x], [%[x], %[c]]\n\tsxtb16 %[xe], %[x]\n\tsxtb16 %[x], %[x], ror #8\n\t"
#define DW_W(off) "ldrd %[we], %[wo], [%[w], #" #off "]\n\t"
/* the group's first load: w steps from the previous group to this one */
#define DW_WB(off) "ldrd %[we], %[wo], [%[w], %[gs]]!\n\t"
#define DW_MUL(p)                                                                                        \
  "smulbb %[" #p "0], %[xe], %[we]\n\tsmultt %[" #p "2], %[xe], %[we]\n\t"                               \
  "smulbb %[" #p "1], %[x], %[wo]\n\tsmultt %[" #p "3], %[x], %[wo]\n\t"
#define DW_MLA(p)                                                                                        \
  "smlabb %[" #p "0], %[xe], %[we], %[" #p "0]\n\tsmlatt %[" #p "2], %[xe], %[we], %[" #p "2]\n\t"       \
  "smlabb %[" #p "1], %[x], %[wo], %[" #p "1]\n\tsmlatt %[" #p "3], %[x], %[wo], %[" #p "3]\n\t"
#define DW_T(k) [t##k] "m"(tp[k])
/* Requantize channel k of both pixels (fast mode, full range): C at w + off,
 * M after it; %[a0] / %[b0] point at pixel 0's / pixel 1's output channel c. */
#define DW_RQ2(a, b, off, k)                                                                              \
  "ldrd %[lo], %[hi], [%[w], #" #off "]\n\t"                                                             \
  "ldr %[m], [%[w], #" #off "+8]\n\t"                                                                    \
  "smlal %[lo], %[hi], %[" #a "], %[m]\n\t"                                                              \
  "ssat %[hi], #8, %[hi], asr #11\n\t"                                                                   \
  "strb %[hi], [%[a0], #" #k "]\n\t"                                                                     \
  "ldrd %[lo], %[hi], [%[w], #" #off "]\n\t"                                                             \
  "smlal %[lo], %[hi], %[" #b "], %[m]\n\t"                                                              \
  "ssat %[hi], #8, %[hi], asr #11\n\t"                                                                   \
  "strb %[hi], [%[b0], #" #k "]\n\t"

/* stride 1: pixel 1 reads columns 1..3 */
#define DW_ROW_S1(k0, k1, k2, k3, w0, w1, w2, MACA, MACB, W0) \
  DW_COL(k0) W0(w0) MACA(a) DW_COL(k1) MACB(b) DW_W(w1) DW_MLA(a) DW_COL(k2) DW_MLA(b) DW_W(w2) DW_MLA(a) \
  DW_COL(k3) DW_MLA(b)
/* stride 2: pixel 1 reads columns 2..4 */
#define DW_ROW_S2(k0, k1, k2, k3, k4, w0, w1, w2, MACA, MACB, W0) \
  DW_COL(k0) W0(w0) MACA(a) DW_COL(k1) DW_W(w1) DW_MLA(a) DW_COL(k2) DW_W(w0) MACB(b) DW_W(w2) DW_MLA(a) \
  DW_COL(k3) DW_W(w1) DW_MLA(b) DW_COL(k4) DW_W(w2) DW_MLA(b)
#define DW_ROW_1(k0, k1, k2, w0, w1, w2, MACA, W0) \
  DW_COL(k0) W0(w0) MACA(a) DW_COL(k1) DW_W(w1) DW_MLA(a) DW_COL(k2) DW_W(w2) DW_MLA(a)

/* `npix` (1 or 2) output pixels, all channels, 4 at a time. tp[ky * DW_COLS + j]
 * points at input column j of row ky (biased by +in_c, as c runs from -in_c to
 * 0); pixel 0 reads columns 0..2, pixel 1 columns S..S+2 (S = 1, 2). With
 * `vert` the pixels are one above the other and the table transposed:
 * tp[kx * DW_COLS + j] is input row j of column kx. o0, o1: the pixels'
 * outputs, biased by +in_c. */
INLINE void block_dsp(const int8_t *const *tp, int npix, int S, int vert, int32_t c, const TF_CONST_DATA int8_t *stream,
                      int8_t *o0, int8_t *o1, dw_stage st, int rq, int32_t ch0) {
  const int gs = rq == RQ_GENERAL ? 72 : 120; /* bytes per group */
  const uint32_t *w = (const uint32_t *)(const void *)((uintptr_t)stream - (uintptr_t)gs);
  do {
    int32_t a0, a1, a2, a3, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    uint32_t x, xe, we, wo;
    if (npix == 2 && S == 1 && vert) {
      __asm__(DW_ROW_S1(0, 1, 2, 3, 0, 24, 48, DW_MUL, DW_MUL, DW_WB)
              DW_ROW_S1(6, 7, 8, 9, 8, 32, 56, DW_MLA, DW_MLA, DW_W)
              DW_ROW_S1(12, 13, 14, 15, 16, 40, 64, DW_MLA, DW_MLA, DW_W)
              : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0),
                [b1] "=&r"(b1), [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(x), [xe] "=&r"(xe),
                [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(w)
              : [gs] "I"(gs), [c] "r"(c), DW_T(0), DW_T(1), DW_T(2), DW_T(3), DW_T(6), DW_T(7), DW_T(8),
                DW_T(9), DW_T(12), DW_T(13), DW_T(14), DW_T(15));
    } else if (npix == 2 && vert) {
      w = (const uint32_t *)(const void *)((const char *)w + gs); /* no operand left for the write-back */
      __asm__(DW_ROW_S2(0, 1, 2, 3, 4, 0, 24, 48, DW_MUL, DW_MUL, DW_W)
              DW_ROW_S2(6, 7, 8, 9, 10, 8, 32, 56, DW_MLA, DW_MLA, DW_W)
              DW_ROW_S2(12, 13, 14, 15, 16, 16, 40, 64, DW_MLA, DW_MLA, DW_W)
              : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0),
                [b1] "=&r"(b1), [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(x), [xe] "=&r"(xe),
                [we] "=&r"(we), [wo] "=&r"(wo)
              : [w] "r"(w), [c] "r"(c), DW_T(0), DW_T(1), DW_T(2), DW_T(3), DW_T(4), DW_T(6), DW_T(7),
                DW_T(8), DW_T(9), DW_T(10), DW_T(12), DW_T(13), DW_T(14), DW_T(15), DW_T(16));
    } else if (npix == 2 && S == 1) {
      __asm__(DW_ROW_S1(0, 1, 2, 3, 0, 8, 16, DW_MUL, DW_MUL, DW_WB)
              DW_ROW_S1(6, 7, 8, 9, 24, 32, 40, DW_MLA, DW_MLA, DW_W)
              DW_ROW_S1(12, 13, 14, 15, 48, 56, 64, DW_MLA, DW_MLA, DW_W)
              : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0),
                [b1] "=&r"(b1), [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(x), [xe] "=&r"(xe),
                [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(w)
              : [gs] "I"(gs), [c] "r"(c), DW_T(0), DW_T(1), DW_T(2), DW_T(3), DW_T(6), DW_T(7), DW_T(8),
                DW_T(9), DW_T(12), DW_T(13), DW_T(14), DW_T(15));
    } else if (npix == 2) {
      w = (const uint32_t *)(const void *)((const char *)w + gs);
      __asm__(DW_ROW_S2(0, 1, 2, 3, 4, 0, 8, 16, DW_MUL, DW_MUL, DW_W)
              DW_ROW_S2(6, 7, 8, 9, 10, 24, 32, 40, DW_MLA, DW_MLA, DW_W)
              DW_ROW_S2(12, 13, 14, 15, 16, 48, 56, 64, DW_MLA, DW_MLA, DW_W)
              : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0),
                [b1] "=&r"(b1), [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(x), [xe] "=&r"(xe),
                [we] "=&r"(we), [wo] "=&r"(wo)
              : [w] "r"(w), [c] "r"(c), DW_T(0), DW_T(1), DW_T(2), DW_T(3), DW_T(4), DW_T(6), DW_T(7),
                DW_T(8), DW_T(9), DW_T(10), DW_T(12), DW_T(13), DW_T(14), DW_T(15), DW_T(16));
    } else {
      __asm__(DW_ROW_1(0, 1, 2, 0, 8, 16, DW_MUL, DW_WB)
              DW_ROW_1(6, 7, 8, 24, 32, 40, DW_MLA, DW_W)
              DW_ROW_1(12, 13, 14, 48, 56, 64, DW_MLA, DW_W)
              : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xe] "=&r"(xe),
                [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(w)
              : [gs] "I"(gs), [c] "r"(c), DW_T(0), DW_T(1), DW_T(2), DW_T(6), DW_T(7), DW_T(8), DW_T(12),
                DW_T(13), DW_T(14));
    }
    if (rq == RQ_FAST_FULL && npix == 2) {
      /* per channel: C (LDRD) and M, SMLAL, SSAT with the ASR, STRB, M kept
       * for pixel 1 (rq_fast); once channel c's accumulators are done, their
       * registers hold the output pointers. */
      uint32_t lo, hi, m;
      __asm__ volatile("ldr %[m], [%[w], #80]\n\t"
              "ldrd %[lo], %[hi], [%[w], #72]\n\t"
              "smlal %[lo], %[hi], %[a0], %[m]\n\t"
              "ssat %[hi], #8, %[hi], asr #11\n\t"
              "ldr %[a0], %[p0]\n\t"
              "add %[a0], %[a0], %[c]\n\t"
              "strb %[hi], [%[a0]]\n\t"
              "ldrd %[lo], %[hi], [%[w], #72]\n\t"
              "smlal %[lo], %[hi], %[b0], %[m]\n\t"
              "ssat %[hi], #8, %[hi], asr #11\n\t"
              "ldr %[b0], %[p1]\n\t"
              "add %[b0], %[b0], %[c]\n\t"
              "strb %[hi], [%[b0]]\n\t"
              DW_RQ2(a1, b1, 84, 1) DW_RQ2(a2, b2, 96, 2) DW_RQ2(a3, b3, 108, 3)
              : [a0] "+&r"(a0), [a1] "+&r"(a1), [a2] "+&r"(a2), [a3] "+&r"(a3), [b0] "+&r"(b0),
                [b1] "+&r"(b1), [b2] "+&r"(b2), [b3] "+&r"(b3), [lo] "=&r"(lo), [hi] "=&r"(hi), [m] "=&r"(m)
              : [w] "r"(w), [c] "r"(c), [p0] "m"(o0), [p1] "m"(o1)
              : "memory");
    } else {
      const TF_CONST_DATA uint32_t *q = w + 18;
      const int32_t cc = ch0 + c;
      o0[c] = rq_out(a0, q, cc, st, rq);
      o0[c + 1] = rq_out(a1, q + 3, cc + 1, st, rq);
      o0[c + 2] = rq_out(a2, q + 6, cc + 2, st, rq);
      o0[c + 3] = rq_out(a3, q + 9, cc + 3, st, rq);
      if (npix == 2) {
        o1[c] = rq_out(b0, q, cc, st, rq);
        o1[c + 1] = rq_out(b1, q + 3, cc + 1, st, rq);
        o1[c + 2] = rq_out(b2, q + 6, cc + 2, st, rq);
        o1[c + 3] = rq_out(b3, q + 9, cc + 3, st, rq);
      }
    }
    c += 4;
  } while (c < 0);
}
#endif

/* The same on any core: one channel at a time, the int16 weights of the stream. */
INLINE void block_portable(const int8_t *const *tp, int npix, int S, int vert, int32_t c, const TF_CONST_DATA int8_t *stream,
                           int8_t *o0, int8_t *o1, dw_stage st, int rq, int32_t ch0) {
  const TF_CONST_DATA uint32_t *w = words_at(stream);
  const int ncol = npix == 2 ? S + 3 : 3;
  do {
    const TF_CONST_DATA int16_t *w16 = TF_DW_WORDS(const TF_CONST_DATA int16_t *, w);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const int pos = (k & 1) * 2 + (k >> 1); /* c, c+2 | c+1, c+3 */
      int32_t a = 0, b = 0;
#pragma GCC unroll 3
      for (int l = 0; l < 3; ++l) {
#pragma GCC unroll 6
        for (int j = 0; j < ncol; ++j) {
          const int32_t x = tp[l * DW_COLS + j][c + k];
          if (j < 3) {
            a += w16[4 * (vert ? j * 3 + l : l * 3 + j) + pos] * x;
          }
          const int kb = j - S;
          if (npix == 2 && kb >= 0 && kb < 3) {
            b += w16[4 * (vert ? kb * 3 + l : l * 3 + kb) + pos] * x;
          }
        }
      }
      const TF_CONST_DATA uint32_t *q = w + 18 + 3 * k;
      o0[c + k] = rq_out(a, q, ch0 + c + k, st, rq);
      if (npix == 2) {
        o1[c + k] = rq_out(b, q, ch0 + c + k, st, rq);
      }
    }
    w += rq == RQ_GENERAL ? 18 : 30;
    c += 4;
  } while (c < 0);
}

INLINE void block(const int8_t *const *tp, int npix, int S, int vert, int32_t in_c, const TF_CONST_DATA int8_t *stream,
                  int8_t *o0, int8_t *o1, dw_stage st, int rq) {
#if TF_DSP
  block_dsp(tp, npix, S, vert, -in_c, stream, o0 + in_c, o1 + in_c, st, rq, in_c);
#else
  block_portable(tp, npix, S, vert, -in_c, stream, o0 + in_c, o1 + in_c, st, rq, in_c);
#endif
}

typedef struct {
  const int8_t *in; /* the batch's input */
  int32_t in_h, in_w, in_c, out_w;
  const tf_window *win;
  const int8_t *pad; /* the zero-point row, biased by +in_c */
} dw_geom;

/* Row iy of the input, biased by +in_c, or NULL outside the input. */
static inline const int8_t *row_at(const dw_geom *g, int32_t iy) {
  return iy >= 0 && iy < g->in_h ? g->in + (iy * g->in_w + 1) * g->in_c : NULL;
}

/* Fills tp[l * DW_COLS + j] (l < 3 lines, j < n) for lines along x (cols_x:
 * line l is input column ix0 + l * dil of rows rb[j]) or, without cols_x,
 * lines along y (line l is row rb[l], j the column ix0 + j * dil). Taps
 * outside the input point at the zero-point row (rows_ok: every rb[j] is in). */
INLINE void fill_table(const int8_t **tp, const dw_geom *g, const int8_t *const *rb, int rows_ok, int32_t n,
                       int32_t ix0, int32_t dil, int cols_x) {
  const int32_t in_c = g->in_c;
#pragma GCC unroll 5
  for (int32_t k = 0; k < 5; ++k) { /* k: a column */
    if (k < (cols_x ? 3 : n)) {
      const int32_t ix = ix0 + k * dil;
      const int32_t off = ix * in_c;
      const int col_ok = ix >= 0 && ix < g->in_w;
#pragma GCC unroll 5
      for (int32_t r = 0; r < 5; ++r) { /* r: a row */
        if (r < (cols_x ? n : 3)) {
          tp[cols_x ? k * DW_COLS + r : r * DW_COLS + k] =
              col_ok && (rows_ok || rb[r] != NULL) ? rb[r] + off : g->pad;
        }
      }
    }
  }
}

/* Output row oy, pixels in pairs along x (S: pixel 1's column offset, 1 or 2;
 * 3: pixel by pixel). */
INLINE void dw_row(const dw_geom *g, int32_t oy, const TF_CONST_DATA int8_t *stream, int8_t *out, dw_stage st, int rq, int S) {
  const tf_window *win = g->win;
  const int8_t *tp[3 * DW_COLS];
  const int32_t iy0 = oy * win->stride_h - win->pad_h, in_c = g->in_c;
  const int8_t *rb[3];
  int rows_ok = 1;
  for (int32_t ky = 0; ky < 3; ++ky) {
    rb[ky] = row_at(g, iy0 + ky * win->dilation_h);
    rows_ok &= rb[ky] != NULL;
  }
  int32_t ox = 0;
  if (rq != RQ_GENERAL && S < 3) {
    for (; ox + 1 < g->out_w; ox += 2, out += 2 * in_c) {
      fill_table(tp, g, rb, rows_ok, S + 3, ox * win->stride_w - win->pad_w, 1, 0);
      block(tp, 2, S, 0, in_c, stream, out, out + in_c, st, rq);
    }
  }
  for (; ox < g->out_w; ++ox, out += in_c) {
    fill_table(tp, g, rb, rows_ok, 3, ox * win->stride_w - win->pad_w, win->dilation_w, 0);
    block(tp, 1, 1, 0, in_c, stream, out, out, st, rq);
  }
}

/* Output rows oy and oy + 1, pixels in pairs along y (S: pixel 1's row offset, 1 or 2). */
INLINE void dw_row_pair(const dw_geom *g, int32_t oy, const TF_CONST_DATA int8_t *stream, int8_t *out, dw_stage st, int rq,
                        int S) {
  const tf_window *win = g->win;
  const int8_t *tp[3 * DW_COLS];
  const int32_t iy0 = oy * win->stride_h - win->pad_h, in_c = g->in_c, row = g->out_w * in_c;
  const int8_t *rb[5];
  int rows_ok = 1;
  for (int32_t j = 0; j < S + 3; ++j) {
    rb[j] = row_at(g, iy0 + j);
    rows_ok &= rb[j] != NULL;
  }
  for (int32_t ox = 0; ox < g->out_w; ++ox, out += in_c) {
    fill_table(tp, g, rb, rows_ok, S + 3, ox * win->stride_w - win->pad_w, win->dilation_w, 1);
    block(tp, 2, S, 1, in_c, stream, out, out + row, st, rq);
  }
}

/* The row functions, one per compile-time case (out of line: the size of the
 * unrolled code stays in check, a call per row costs little). */
typedef void (*dw_row_fn)(const dw_geom *g, int32_t oy, const TF_CONST_DATA int8_t *stream, int8_t *out, dw_stage st);
#define DW_ROW_FN(name, body)                                                                          \
  static __attribute__((noinline)) void name(const dw_geom *g, int32_t oy, const TF_CONST_DATA int8_t *stream, int8_t *out, \
                                             dw_stage st) {                                           \
    body;                                                                                              \
  }
DW_ROW_FN(row_full_1, dw_row(g, oy, stream, out, st, RQ_FAST_FULL, 1))
DW_ROW_FN(row_full_2, dw_row(g, oy, stream, out, st, RQ_FAST_FULL, 2))
DW_ROW_FN(row_full_3, dw_row(g, oy, stream, out, st, RQ_FAST_FULL, 3))
DW_ROW_FN(row_clamp_1, dw_row(g, oy, stream, out, st, RQ_FAST_CLAMP, 1))
DW_ROW_FN(row_clamp_2, dw_row(g, oy, stream, out, st, RQ_FAST_CLAMP, 2))
DW_ROW_FN(row_clamp_3, dw_row(g, oy, stream, out, st, RQ_FAST_CLAMP, 3))
DW_ROW_FN(row_general, dw_row(g, oy, stream, out, st, RQ_GENERAL, 3))
DW_ROW_FN(pair_full_1, dw_row_pair(g, oy, stream, out, st, RQ_FAST_FULL, 1))
DW_ROW_FN(pair_full_2, dw_row_pair(g, oy, stream, out, st, RQ_FAST_FULL, 2))
DW_ROW_FN(pair_clamp_1, dw_row_pair(g, oy, stream, out, st, RQ_FAST_CLAMP, 1))
DW_ROW_FN(pair_clamp_2, dw_row_pair(g, oy, stream, out, st, RQ_FAST_CLAMP, 2))

static void dw3x3_stream(const tf_depthwise_params_s8 *params, const tf_out_stage_s8 *stage,
                         const tf_dims *input_dims, const int8_t *input, const TF_CONST_DATA int8_t *stream,
                         const tf_dims *output_dims, int8_t *output, const int8_t *pad) {
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t out_h = output_dims->h, out_w = output_dims->w;
  const dw_stage st = {stage->channels, stage->output_offset, stage->activation_min, stage->activation_max};
  const uint32_t mode = words_at(stream)[0];
  const int rq = mode == 0 ? RQ_GENERAL : st.lo == -128 && st.hi == 127 ? RQ_FAST_FULL : RQ_FAST_CLAMP;
  /* pairs along x or y, whichever leaves fewer single pixels (they cost more) */
  const int sx = win->dilation_w != 1 || win->stride_w > 2 ? 3 : win->stride_w;
  const int sy = win->dilation_h != 1 || win->stride_h > 2 ? 3 : win->stride_h;
  const int32_t singles_x = sx < 3 ? out_h * (out_w % 2) : out_h * out_w;
  const int32_t singles_y = sy < 3 ? out_w * (out_h % 2) : out_h * out_w;
  const int vert = rq != RQ_GENERAL && sy < 3 && singles_y < singles_x;
  const int full = rq == RQ_FAST_FULL;
  const dw_row_fn row_fn = rq == RQ_GENERAL ? row_general
                           : sx == 1         ? (full ? row_full_1 : row_clamp_1)
                           : sx == 2         ? (full ? row_full_2 : row_clamp_2)
                                             : (full ? row_full_3 : row_clamp_3);
  const dw_row_fn pair_fn = !vert ? NULL : sy == 1 ? (full ? pair_full_1 : pair_clamp_1)
                                                   : (full ? pair_full_2 : pair_clamp_2);
  const int32_t row = out_w * in_c;
  dw_geom g = {input, in_h, in_w, in_c, out_w, win, pad + in_c};
  int8_t *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    g.in = input + b * in_h * in_w * in_c;
    int32_t oy = 0;
    if (pair_fn != NULL) {
      for (; oy + 1 < out_h; oy += 2, out += 2 * row) {
        pair_fn(&g, oy, stream + 4, out, st);
      }
    }
    for (; oy < out_h; ++oy, out += row) {
      row_fn(&g, oy, stream + 4, out, st); /* pairs along x, or a row left over by pairs along y */
    }
  }
}

tf_status depthwise_conv2d_s8_fast(const tf_depthwise_params_s8 *params, const tf_out_stage_s8 *stage,
                                   const tf_dims *input_dims, const int8_t *input,
                                   const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                                   const tf_dims *output_dims, int8_t *output, int8_t *scratch) {
  if (params == NULL || stage == NULL || stage->channels == NULL || input_dims == NULL || input == NULL ||
      filter_dims == NULL || packed_filter == NULL || output_dims == NULL || output == NULL || scratch == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t in_c = input_dims->c, out_c = filter_dims->c;
  const int32_t multiplier = params->depth_multiplier;
  if (multiplier <= 0 || out_c != in_c * multiplier || output_dims->c != out_c ||
      output_dims->n != input_dims->n) {
    return TF_ERROR_SHAPE;
  }
  if (stage->activation_min > stage->activation_max) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t c = 0; c < in_c; ++c) {
    scratch[c] = (int8_t)(-params->input_offset); /* the zero-point row the border taps read */
  }
  if (filter_dims->h == 3 && filter_dims->w == 3 && multiplier == 1 && in_c > 0 && in_c % 4 == 0) {
    dw3x3_stream(params, stage, input_dims, input, packed_filter, output_dims, output, scratch);
    return TF_OK;
  }
  const stage_regs st = {stage->channels, stage->output_offset, stage->activation_min, stage->activation_max};
  if (st.lo == -128 && st.hi == 127) {
    depthwise(params, st, input_dims, input, filter_dims, packed_filter, output_dims, output, scratch, 1);
  } else {
    depthwise(params, st, input_dims, input, filter_dims, packed_filter, output_dims, output, scratch, 0);
  }
  return TF_OK;
}
