/* int8 pointwise (1x1, stride 1, no padding) convolution, optimized
 * (CMSIS-NN arm_convolve_1x1_s8_fast style): NHWC makes it a matrix multiply
 * of the pixels by the filter, computed two pixels x two output channels at a
 * time (mat_mult_s8.c) on weights pre-arranged in groups of 4 rows (mat_mult_s8.h), with the input offset
 * folded into the effective bias. Bit-exact with conv2d_s8.
 *
 * In place: the output may overlap the input (the code generator's memory plan
 * puts it over an input that dies here, farm/codegen/inplace.py). Pixels go two
 * at a time, both read before either is written: on the DSP path
 * tf_mat_mult_s8_g2 sign-extends them into `ext` first and, when depth % 4 == 0
 * and rows is even, reads nothing else; otherwise they are copied to scratch
 * first and multiplied from there. Writing a pair then harms no read if its
 * bytes miss the input pixels not read yet:
 *  - forward (pixel 0 first), k pixels read: out + k * rows <= in + k * depth
 *    for k = 2, 4, ... short of the last pair; any out <= in when rows <= depth;
 *  - backward (the last pair first), q pixels not read yet:
 *    in + q * depth <= out + q * rows for q = N - 2, N - 4, ... down to 1 or 2;
 *    any out >= in when rows >= depth.
 * Both are linear in k (q), so checked at the first and last one. The first
 * direction that is safe is taken; an overlap neither spares is refused
 * (TF_ERROR_PARAMS). So the output may start at the input (or below it), for
 * any channel counts.
 *
 * scratch, 4-byte aligned: TF_MAT_MULT_EXT_WORDS(depth) words (`ext`); when
 * the output overlaps the input and depth % 4 != 0 or rows is odd, 2 * depth
 * more bytes (rounded up to 4) after them for the copy. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dsp_s8.h"
#include "kernels.h"
#include "mat_mult_s8.h"

/* a + k * x <= b + k * y for k = lo and k = hi (so for every k between), without overflow */
static int below_at_both(uintptr_t a, int32_t x, uintptr_t b, int32_t y, int32_t lo, int32_t hi) {
  return a + (uintptr_t)lo * (uintptr_t)x <= b + (uintptr_t)lo * (uintptr_t)y &&
         a + (uintptr_t)hi * (uintptr_t)x <= b + (uintptr_t)hi * (uintptr_t)y;
}

/* Pixels forward: writing the pair that ends at pixel k spares the input from pixel k on. */
static int forward_is_safe(uintptr_t in, uintptr_t out, int32_t pixels, int32_t depth, int32_t rows) {
  const int32_t k_last = 2 * ((pixels - 1) / 2); /* pixels read once the last pair but one is written */
  return k_last < 2 || below_at_both(out, rows, in, depth, 2, k_last);
}

/* Pixels backward: writing the pair that starts at pixel q spares the input below pixel q. */
static int backward_is_safe(uintptr_t in, uintptr_t out, int32_t pixels, int32_t depth, int32_t rows) {
  const int32_t q_first = pixels - 2, q_last = 2 - (pixels & 1);
  return q_first < q_last || below_at_both(in, depth, out, rows, q_last, q_first);
}

static void pair(const TF_CONST_DATA int8_t *packed_filter, int32_t rows, int32_t depth, const tf_out_stage_s8 *stage,
                 const int8_t *input, int8_t *output, int32_t p, int32_t count, int8_t *copy, uint32_t *ext) {
  const int8_t *x0 = input + p * depth;
  if (copy != NULL) {
    memcpy(copy, x0, (size_t)(count * depth)); /* the pixels, adjacent in the input */
    x0 = copy;
  }
  tf_mat_mult_s8_g2(packed_filter, rows, depth, x0, count == 2 ? x0 + depth : NULL, stage, output + p * rows,
                    count == 2 ? output + (p + 1) * rows : NULL, ext);
}

tf_status conv2d_1x1_s8_fast(const tf_out_stage_s8 *stage,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                             const tf_dims *output_dims, int8_t *output, int8_t *scratch) {
  if (stage == NULL || stage->channels == NULL ||
      input_dims == NULL || input == NULL || filter_dims == NULL || packed_filter == NULL ||
      output_dims == NULL || output == NULL || scratch == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t depth = input_dims->c, rows = filter_dims->n;
  if (filter_dims->h != 1 || filter_dims->w != 1 || filter_dims->c != depth || output_dims->c != rows ||
      output_dims->n != input_dims->n || output_dims->h != input_dims->h || output_dims->w != input_dims->w) {
    return TF_ERROR_SHAPE;
  }
  if (stage->activation_min > stage->activation_max) {
    return TF_ERROR_PARAMS;
  }
  const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
  uint32_t *ext = (uint32_t *)(void *)scratch; /* 4-byte aligned by the caller */
  const uintptr_t in_at = (uintptr_t)input, out_at = (uintptr_t)output;
  const int overlap = out_at < in_at + (uintptr_t)pixels * (uintptr_t)depth &&
                      in_at < out_at + (uintptr_t)pixels * (uintptr_t)rows;
  int backward = 0;
  if (overlap && !forward_is_safe(in_at, out_at, pixels, depth, rows)) {
    if (!backward_is_safe(in_at, out_at, pixels, depth, rows)) {
      return TF_ERROR_PARAMS;
    }
    backward = 1;
  }
  /* where the pixels are copied before they are multiplied, if they must be */
  int8_t *copy = NULL;
  if (overlap) {
#if TF_DSP
    if ((depth & 3) != 0 || (rows & 1) != 0) { /* the tails or the odd row read the pixels again */
      copy = scratch + 4 * TF_MAT_MULT_EXT_WORDS(depth);
    }
#else
    copy = (depth & 3) == 0 && (rows & 1) == 0 ? scratch /* `ext` is unused by the portable path */
                                               : scratch + 4 * TF_MAT_MULT_EXT_WORDS(depth);
#endif
  }
  if (backward) {
    for (int32_t p = pixels - 2; p >= (pixels & 1); p -= 2) {
      pair(packed_filter, rows, depth, stage, input, output, p, 2, copy, ext);
    }
    if (pixels & 1) {
      pair(packed_filter, rows, depth, stage, input, output, 0, 1, copy, ext);
    }
  } else {
    int32_t p = 0;
    for (; p + 2 <= pixels; p += 2) {
      pair(packed_filter, rows, depth, stage, input, output, p, 2, copy, ext);
    }
    if (p < pixels) {
      pair(packed_filter, rows, depth, stage, input, output, p, 1, copy, ext);
    }
  }
  return TF_OK;
}
