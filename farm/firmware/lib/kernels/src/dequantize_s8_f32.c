/* DEQUANTIZE int8 -> float32 (TFLM reference_ops::Dequantize). TFLM computes
 * (float)((double)scale * (q - zero_point)); the exact product of a float and a
 * 9-bit integer fits a double, so rounding it once to float equals the float
 * product computed here. */
#include <stddef.h>

#include "kernels.h"

tf_status dequantize_s8_f32(const tf_affine_quant_params *quant_params, int32_t size,
                            const int8_t *input, float *output) {
  if (quant_params == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t i = 0; i < size; ++i) {
    output[i] = quant_params->scale * (float)((int32_t)input[i] - quant_params->zero_point);
  }
  return TF_OK;
}
