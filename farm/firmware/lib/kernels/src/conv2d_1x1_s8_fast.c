/* int8 pointwise (1x1, stride 1, no padding) convolution, optimized
 * (CMSIS-NN arm_convolve_1x1_s8_fast style): NHWC makes it a matrix multiply
 * of the pixels by the filter, computed two pixels x two output channels at a
 * time (mat_mult_s8.c) on weights pre-arranged by 2 rows, with the input offset
 * folded into the effective bias. scratch: TF_MAT_MULT_EXT_WORDS(input channels)
 * words, 4-byte aligned. Bit-exact with conv2d_s8. */
#include <stddef.h>

#include "kernels.h"
#include "mat_mult_s8.h"

tf_status conv2d_1x1_s8_fast(const tf_out_stage_s8 *stage,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const int8_t *packed_filter,
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
  int32_t p = 0;
  for (; p + 2 <= pixels; p += 2) {
    tf_mat_mult_s8_g2(packed_filter, rows, depth, input + p * depth, input + (p + 1) * depth, stage,
                      output + p * rows, output + (p + 1) * rows, ext);
  }
  if (p < pixels) {
    tf_mat_mult_s8_g2(packed_filter, rows, depth, input + p * depth, NULL, stage, output + p * rows, NULL, ext);
  }
  return TF_OK;
}
