/* int8 MEAN over contiguous axes (TFLM reference_ops::QuantizedMeanOrSum, as the
 * TFLM MEAN kernel runs it for int8): the int32 sum of the reduced elements,
 * less zero_point * count, requantized with a multiplier that the host already
 * divided by the count, offset and clamped to int8. Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

tf_status mean_s8(const tf_mean_params_s8 *params,
                  const tf_reduce_shape *shape, const int8_t *input,
                  int8_t *output) {
  if (params == NULL || shape == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (shape->outer < 0 || shape->reduced <= 0 || shape->inner < 0) {
    return TF_ERROR_SHAPE;
  }
  if (params->shift < -31 || params->shift > 30) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t o = 0; o < shape->outer; ++o) {
    const int8_t *in = input + o * shape->reduced * shape->inner;
    for (int32_t i = 0; i < shape->inner; ++i) {
      int32_t sum = 0;
      for (int32_t r = 0; r < shape->reduced; ++r) {
        sum += in[r * shape->inner + i];
      }
      int32_t out = tf_multiply_by_quantized_multiplier(sum + params->input_sum_offset, params->multiplier,
                                                        params->shift) +
                    params->output_offset;
      out = out < -128 ? -128 : out;
      out = out > 127 ? 127 : out;
      output[o * shape->inner + i] = (int8_t)out;
    }
  }
  return TF_OK;
}
