/* Hybrid (dynamic-range) fully connected, TensorFlow Lite's EvalHybrid: each
 * batch row of the float input is quantized to int8 (symmetric, or asymmetric
 * with params->asymmetric, hybrid_quantize.h) into scratch; every output is
 * the int32 dot product with the int8 weights (less zero_point * row_sums[oc]
 * when asymmetric), rescaled in float by (input_scale * filter_scales[oc]),
 * added to the bias, clamped. As in TensorFlow Lite, an input that is all
 * zeros skips the products: the output is the bias, clamped.
 * scratch: input_dims->c bytes (one batch row). */
#include <stddef.h>

#include "hybrid_quantize.h"
#include "kernels.h"

static float clamp_value(float value, float lo, float hi) {
  value = value < lo ? lo : value;
  return value > hi ? hi : value;
}

tf_status fully_connected_hybrid_f32_s8(const tf_fc_params_hybrid *params,
                                        const tf_dims *input_dims, const float *input,
                                        const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                        const TF_CONST_DATA float *filter_scales, const TF_CONST_DATA int32_t *row_sums,
                                        const TF_CONST_DATA float *bias,
                                        const tf_dims *output_dims, float *output, int8_t *scratch) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
      filter_scales == NULL || output_dims == NULL || output == NULL || scratch == NULL ||
      (params->asymmetric && row_sums == NULL)) {
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

  int all_zero = 1;
  for (int32_t i = 0; i < batches * accum_depth && all_zero; ++i) {
    all_zero = input[i] == 0.0f;
  }
  if (all_zero) {
    for (int32_t b = 0; b < batches; ++b) {
      for (int32_t oc = 0; oc < output_depth; ++oc) {
        const float value = bias != NULL ? bias[oc] : 0.0f;
        output[b * output_depth + oc] = clamp_value(value, params->activation_min, params->activation_max);
      }
    }
    return TF_OK;
  }

  for (int32_t b = 0; b < batches; ++b) {
    float input_scale;
    int32_t zero_point;
    tf_hybrid_quantize(input + b * accum_depth, accum_depth, params->asymmetric, scratch, &input_scale,
                       &zero_point);
    float *out = output + b * output_depth;
    for (int32_t oc = 0; oc < output_depth; ++oc) {
      const TF_CONST_DATA int8_t *w = filter + oc * accum_depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < accum_depth; ++d) {
        acc += (int32_t)w[d] * (int32_t)scratch[d];
      }
      if (params->asymmetric) {
        acc -= row_sums[oc] * zero_point;
      }
      const float scale = input_scale * filter_scales[oc];
      const float value = (bias != NULL ? bias[oc] : 0.0f) + (float)acc * scale;
      out[oc] = clamp_value(value, params->activation_min, params->activation_max);
    }
  }
  return TF_OK;
}
