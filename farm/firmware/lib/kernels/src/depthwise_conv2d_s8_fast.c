/* int8 depthwise convolution, optimized (CMSIS-NN arm_depthwise_conv_s8_opt /
 * _3x3 style). The host pre-arranges the filter channel-major
 * (packed[oc][kernel_h * kernel_w]) and folds the input offset into the
 * effective bias. For 3x3 filters every pixel takes an unrolled loop with no
 * bounds checks: inside the input it reads the taps from three row pointers,
 * on the border from nine tap pointers, those outside the input pointing at a
 * row of the input zero point in `scratch` (input_channels bytes) — their
 * products cancel their share of the folded offset, as the reference skips
 * them. Other filter sizes take a generic loop. Any depth multiplier.
 * Bit-exact with depthwise_conv2d_s8. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

typedef struct {
  const tf_channel_s8 *ch;
  int32_t offset, lo, hi;
} stage_regs;

/* One output pixel of a 3x3 filter, depth multiplier 1, window inside the
 * input: three row pointers and two column offsets reach the nine taps. */
INLINE void pixel_3x3_m1(const int8_t *base, int32_t channels, int32_t col_step, int32_t row_step,
                         const int8_t *w, stage_regs st, int8_t *out, int full) {
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
INLINE void pixel_3x3_taps_m1(const int8_t *const tap[9], int32_t channels, const int8_t *w, stage_regs st,
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
INLINE void pixel_3x3_taps(const int8_t *const tap[9], int32_t in_c, int32_t multiplier, const int8_t *w,
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
                      const int8_t *packed, stage_regs st, int8_t *out) {
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, taps = k_h * k_w;
  const int8_t *w = packed;
  int32_t oc = 0;
  for (int32_t ic = 0; ic < in_c; ++ic) {
    for (int32_t m = 0; m < multiplier; ++m, ++oc, w += taps) {
      int32_t acc = st.ch[oc].bias;
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const int32_t iy = iy0 + ky * win->dilation_h;
        const int8_t *wk = w + ky * k_w;
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
                      const int8_t *input, const tf_dims *filter_dims, const int8_t *packed,
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

tf_status depthwise_conv2d_s8_fast(const tf_depthwise_params_s8 *params, const tf_out_stage_s8 *stage,
                                   const tf_dims *input_dims, const int8_t *input,
                                   const tf_dims *filter_dims, const int8_t *packed_filter,
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
  const stage_regs st = {stage->channels, stage->output_offset, stage->activation_min, stage->activation_max};
  if (st.lo == -128 && st.hi == 127) {
    depthwise(params, st, input_dims, input, filter_dims, packed_filter, output_dims, output, scratch, 1);
  } else {
    depthwise(params, st, input_dims, input, filter_dims, packed_filter, output_dims, output, scratch, 0);
  }
  return TF_OK;
}
