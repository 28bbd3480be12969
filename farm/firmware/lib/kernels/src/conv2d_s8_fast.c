/* int8 2-D convolution, optimized (CMSIS-NN arm_convolve_s8 style): the
 * receptive fields of two output pixels are gathered into `scratch` (im2col,
 * 2 x depth bytes, depth = kernel_h x kernel_w x input_channels; then, 4-byte
 * aligned, TF_MAT_MULT_EXT_WORDS(depth) words for mat_mult_s8.c), taps
 * outside the input filled with the input zero point (= -input_offset: their
 * share of the host-folded offset then cancels, as the reference skips them),
 * and multiplied by the weights pre-arranged by 4 rows (mat_mult_s8.h).
 * Not grouped (filter_dims->c == input_dims->c). Bit-exact with conv2d_s8. */
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "mat_mult_s8.h"

/* Word at a time (unaligned words: Armv7-M allows them; elsewhere the
 * builtin becomes byte moves), then the last bytes. */
static inline __attribute__((always_inline)) void fill(int8_t *dst, int8_t value, int32_t n) {
  const uint32_t v = 0x01010101u * (uint8_t)value;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __builtin_memcpy(dst + i, &v, 4);
  }
  for (; i < n; ++i) {
    dst[i] = value;
  }
}

static inline __attribute__((always_inline)) void copy(int8_t *dst, const int8_t *src, int32_t n) {
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint32_t a, b;
    __builtin_memcpy(&a, src + i, 4);
    __builtin_memcpy(&b, src + i + 4, 4);
    __builtin_memcpy(dst + i, &a, 4);
    __builtin_memcpy(dst + i + 4, &b, 4);
  }
  if (i + 4 <= n) {
    uint32_t a;
    __builtin_memcpy(&a, src + i, 4);
    __builtin_memcpy(dst + i, &a, 4);
    i += 4;
  }
  for (; i < n; ++i) {
    dst[i] = src[i];
  }
}

/* The receptive field of output pixel (oy, ox) of one batch, as one column. */
static void gather(int8_t *col, const int8_t *in, const tf_dims *input_dims, const tf_dims *filter_dims,
                   const tf_window *win, int32_t oy, int32_t ox, int8_t pad) {
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
  const int32_t iy0 = oy * win->stride_h - win->pad_h, ix0 = ox * win->stride_w - win->pad_w;
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int32_t iy = iy0 + ky * win->dilation_h;
    if (iy < 0 || iy >= in_h) {
      fill(col, pad, k_w * in_c);
      col += k_w * in_c;
      continue;
    }
    const int8_t *row = in + iy * in_w * in_c;
    if (win->dilation_w == 1 && ix0 >= 0 && ix0 + k_w <= in_w) { /* the whole row is inside */
      copy(col, row + ix0 * in_c, k_w * in_c);
      col += k_w * in_c;
      continue;
    }
    for (int32_t kx = 0; kx < k_w; ++kx) {
      const int32_t ix = ix0 + kx * win->dilation_w;
      if (ix < 0 || ix >= in_w) {
        fill(col, pad, in_c);
      } else {
        copy(col, row + ix * in_c, in_c);
      }
      col += in_c;
    }
  }
}

tf_status conv2d_s8_fast(const tf_conv_params_s8 *params, const tf_out_stage_s8 *stage,
                         const tf_dims *input_dims, const int8_t *input,
                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                         const tf_dims *output_dims, int8_t *output, int8_t *scratch) {
  if (params == NULL || stage == NULL || stage->channels == NULL || input_dims == NULL || input == NULL || filter_dims == NULL ||
      packed_filter == NULL || output_dims == NULL || output == NULL || scratch == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t rows = filter_dims->n;
  const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
  if (filter_dims->c != input_dims->c || output_dims->c != rows || output_dims->n != input_dims->n) {
    return TF_ERROR_SHAPE;
  }
  if (stage->activation_min > stage->activation_max) {
    return TF_ERROR_PARAMS;
  }
  const int8_t pad = (int8_t)(-params->input_offset);
  uint32_t *ext = (uint32_t *)(void *)(scratch + ((2 * depth + 3) & ~3));
  const int32_t out_h = output_dims->h, out_w = output_dims->w;
  const int32_t per_batch = out_h * out_w;
  const int32_t in_batch = input_dims->h * input_dims->w * input_dims->c;
  const int32_t pixels = input_dims->n * per_batch;
  for (int32_t p = 0; p < pixels; p += 2) {
    const int32_t count = pixels - p < 2 ? 1 : 2;
    for (int32_t j = 0; j < count; ++j) {
      const int32_t q = p + j, b = q / per_batch, yx = q % per_batch;
      gather(scratch + j * depth, input + b * in_batch, input_dims, filter_dims, &params->window, yx / out_w,
             yx % out_w, pad);
    }
    tf_mat_mult_s8_g2(packed_filter, rows, depth, scratch, count == 2 ? scratch + depth : NULL, stage,
                      output + p * rows, count == 2 ? output + (p + 1) * rows : NULL, ext);
  }
  return TF_OK;
}
