/* float32 fully connected (TFLM reference_ops::FullyConnected): the same
 * summation order, bias added after the dot product, then the clamp. */
#include <stddef.h>

#include "kernels.h"

tf_status fully_connected_f32(const tf_fc_params_f32 *params,
                              const tf_dims *input_dims, const float *input,
                              const tf_dims *filter_dims, const TF_CONST_DATA float *filter,
                              const TF_CONST_DATA float *bias,
                              const tf_dims *output_dims, float *output) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
      output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t batches = input_dims->n;
  const int32_t accum_depth = filter_dims->c;
  const int32_t output_depth = output_dims->c;
  if (input_dims->c != accum_depth || filter_dims->n != output_depth || output_dims->n != batches) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }

  for (int32_t b = 0; b < batches; ++b) {
    const float *in = input + b * accum_depth;
    for (int32_t oc = 0; oc < output_depth; ++oc) {
      const TF_CONST_DATA float *w = filter + oc * accum_depth;
      float total = 0.0f;
      for (int32_t d = 0; d < accum_depth; ++d) {
        total += in[d] * w[d];
      }
      const float bias_value = bias != NULL ? bias[oc] : 0.0f;
      float value = total + bias_value;
      value = value < params->activation_min ? params->activation_min : value;
      value = value > params->activation_max ? params->activation_max : value;
      output[b * output_depth + oc] = value;
    }
  }
  return TF_OK;
}
