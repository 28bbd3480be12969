/* int8 -> int8 requantization with a clamp (TFLM reference_ops::Requantize for
 * QUANTIZE with an int8 input, ReluQuantized for RELU; RELU6 with the identity
 * multiplier): out = clamp(output_offset + requant(x - input_zero_point)).
 * Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

tf_status requantize_s8(const tf_requantize_params_s8 *params, int32_t size,
                        const int8_t *input, int8_t *output) {
  if (params == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  if (params->activation_min > params->activation_max || params->shift < -31 || params->shift > 30) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t i = 0; i < size; ++i) {
    int32_t out = params->output_offset +
                  tf_multiply_by_quantized_multiplier((int32_t)input[i] - params->input_zero_point,
                                                      params->multiplier, params->shift);
    out = out < params->activation_min ? params->activation_min : out;
    out = out > params->activation_max ? params->activation_max : out;
    output[i] = (int8_t)out;
  }
  return TF_OK;
}
