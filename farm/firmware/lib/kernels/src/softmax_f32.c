/* float32 SOFTMAX over the innermost dim (TFLM reference_ops::Softmax):
 * e^((x - max) * beta) per element, divided by their sum. */
#include <stddef.h>

#include "kernels.h"
#include "math_f32.h"

tf_status softmax_f32(const tf_softmax_params_f32 *params,
                      const tf_dims *input_dims, const float *input,
                      float *output) {
  if (params == NULL || input_dims == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t rows = input_dims->n * input_dims->h * input_dims->w;
  const int32_t depth = input_dims->c;
  if (rows < 0 || depth <= 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t row = 0; row < rows; ++row) {
    const float *in = input + row * depth;
    float *out = output + row * depth;
    float max = in[0];
    for (int32_t c = 1; c < depth; ++c) {
      max = in[c] > max ? in[c] : max;
    }
    float sum = 0.0f;
    for (int32_t c = 0; c < depth; ++c) {
      const float e = tf_expf((in[c] - max) * params->beta);
      out[c] = e;
      sum += e;
    }
    for (int32_t c = 0; c < depth; ++c) {
      out[c] = out[c] / sum;
    }
  }
  return TF_OK;
}
