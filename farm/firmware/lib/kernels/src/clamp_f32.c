/* float32 RELU / RELU6 / RELU_N1_TO_1 as a clamp to [activation_min,
 * activation_max] (TFLM ReluFloat, Relu6Float). */
#include <stddef.h>

#include "kernels.h"

tf_status clamp_f32(const tf_activation_params_f32 *params, int32_t size, const float *input, float *output) {
  if (params == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t i = 0; i < size; ++i) {
    const float value = input[i];
    output[i] = value > params->activation_max ? params->activation_max
                : value < params->activation_min ? params->activation_min
                                                 : value;
  }
  return TF_OK;
}
