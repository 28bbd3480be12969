/* CONCATENATION for any element type (TFLM reference_ops::Concatenation):
 * the output is `outer` rows, each the matching rows of the inputs one after
 * another. int8 inputs share the output's scale and zero point (TFLM checks
 * it), so this copies bytes only. */
#include <stddef.h>
#include <string.h>

#include "kernels.h"

tf_status concatenation(const tf_concat_params *params, const uint8_t *const TF_CONST_DATA *inputs, uint8_t *output) {
  if (params == NULL || params->input_row_bytes == NULL || inputs == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (params->outer < 0 || params->count <= 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t i = 0; i < params->count; ++i) {
    if (inputs[i] == NULL) {
      return TF_ERROR_NULL_POINTER;
    }
    if (params->input_row_bytes[i] < 0) {
      return TF_ERROR_SHAPE;
    }
  }
  uint8_t *dst = output;
  for (int32_t row = 0; row < params->outer; ++row) {
    for (int32_t i = 0; i < params->count; ++i) {
      const int32_t n = params->input_row_bytes[i];
      memcpy(dst, inputs[i] + row * n, (size_t)n);
      dst += n;
    }
  }
  return TF_OK;
}
