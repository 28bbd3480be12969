/* int8 fully connected, per-tensor requantization (TFLM reference_integer_ops::
 * FullyConnected): acc = sum (w + filter_offset) * (x + input_offset) + bias,
 * requantized, offset, clamped. Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

tf_status fully_connected_s8(const tf_fc_params_s8 *params,
                             const tf_per_tensor_quant_params *quant_params,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                             const TF_CONST_DATA int32_t *bias,
                             const tf_dims *output_dims, int8_t *output) {
  if (params == NULL || quant_params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL ||
      filter == NULL || output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t batches = input_dims->n;
  const int32_t accum_depth = filter_dims->c;
  const int32_t output_depth = output_dims->c;
  if (input_dims->c != accum_depth || filter_dims->n != output_depth || output_dims->n != batches) {
    return TF_ERROR_SHAPE;
  }
  if (params->activation_min > params->activation_max || quant_params->shift < -31 ||
      quant_params->shift > 30) {
    return TF_ERROR_PARAMS;
  }

  for (int32_t b = 0; b < batches; ++b) {
    const int8_t *in = input + b * accum_depth;
    for (int32_t oc = 0; oc < output_depth; ++oc) {
      const TF_CONST_DATA int8_t *w = filter + oc * accum_depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < accum_depth; ++d) {
        acc += ((int32_t)w[d] + params->filter_offset) * ((int32_t)in[d] + params->input_offset);
      }
      if (bias != NULL) {
        acc += bias[oc];
      }
      acc = tf_multiply_by_quantized_multiplier(acc, quant_params->multiplier, quant_params->shift);
      acc += params->output_offset;
      acc = acc < params->activation_min ? params->activation_min : acc;
      acc = acc > params->activation_max ? params->activation_max : acc;
      output[b * output_depth + oc] = (int8_t)acc;
    }
  }
  return TF_OK;
}
