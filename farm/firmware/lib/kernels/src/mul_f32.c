/* float32 MUL with broadcasting (TFLM reference_ops::Mul / BroadcastMul4DSlow):
 * x1 * x2, then the clamp of the fused activation. */
#include <stddef.h>

#include "broadcast.h"
#include "kernels.h"

static float mul_one(const tf_activation_params_f32 *p, float x1, float x2) {
  float value = x1 * x2;
  value = value < p->activation_min ? p->activation_min : value;
  value = value > p->activation_max ? p->activation_max : value;
  return value;
}

tf_status mul_f32(const tf_activation_params_f32 *params,
                  const tf_dims *input1_dims, const float *input1,
                  const tf_dims *input2_dims, const float *input2,
                  const tf_dims *output_dims, float *output) {
  if (params == NULL || input1_dims == NULL || input1 == NULL || input2_dims == NULL || input2 == NULL ||
      output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  tf_strides s1, s2;
  if (!tf_broadcast_strides(input1_dims, output_dims, &s1) || !tf_broadcast_strides(input2_dims, output_dims, &s2)) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }
  if (tf_same_dims(input1_dims, output_dims) && tf_same_dims(input2_dims, output_dims)) {
    const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
    for (int32_t i = 0; i < size; ++i) {
      output[i] = mul_one(params, input1[i], input2[i]);
    }
    return TF_OK;
  }
  float *out = output;
  for (int32_t n = 0; n < output_dims->n; ++n) {
    for (int32_t h = 0; h < output_dims->h; ++h) {
      for (int32_t w = 0; w < output_dims->w; ++w) {
        const float *a = input1 + n * s1.n + h * s1.h + w * s1.w;
        const float *b = input2 + n * s2.n + h * s2.h + w * s2.w;
        for (int32_t c = 0; c < output_dims->c; ++c) {
          *out++ = mul_one(params, a[c * s1.c], b[c * s2.c]);
        }
      }
    }
  }
  return TF_OK;
}
