/* int8 fully connected, optimized (CMSIS-NN arm_fully_connected_s8 style):
 * weights pre-arranged by 4 rows (mat_mult_s8.h), the input offset folded into
 * the effective bias on the host, four outputs per pass over the input.
 * Bit-exact with fully_connected_s8 / fully_connected_per_channel_s8 for
 * symmetric weights (filter_offset 0, which the code generator checks). */
#include <stddef.h>

#include "kernels.h"
#include "mat_mult_s8.h"

tf_status fully_connected_s8_fast(const tf_out_stage_s8 *stage,
                                  const tf_dims *input_dims, const int8_t *input,
                                  const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                                  const tf_dims *output_dims, int8_t *output) {
  if (stage == NULL || stage->channels == NULL ||
      input_dims == NULL || input == NULL || filter_dims == NULL || packed_filter == NULL ||
      output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t batches = input_dims->n, depth = filter_dims->c, rows = output_dims->c;
  if (input_dims->c != depth || filter_dims->n != rows || output_dims->n != batches) {
    return TF_ERROR_SHAPE;
  }
  if (stage->activation_min > stage->activation_max) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t b = 0; b < batches; ++b) {
    tf_mat_vec_s8_g4(packed_filter, rows, depth, input + b * depth, stage, output + b * rows);
  }
  return TF_OK;
}
