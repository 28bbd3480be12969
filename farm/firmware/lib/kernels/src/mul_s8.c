/* int8 MUL with broadcasting (TFLM reference_integer_ops::Mul /
 * BroadcastMul): the product of the offset inputs, requantized once with the
 * combined scale s1 * s2 / s_out, offset, clamped. Integer-only. */
#include <stddef.h>

#include "broadcast.h"
#include "fixed_point.h"
#include "kernels.h"

static int8_t mul_one(const tf_mul_params_s8 *p, int32_t x1, int32_t x2) {
  const int32_t product = (x1 + p->input1_offset) * (x2 + p->input2_offset);
  int32_t out = p->output_offset + tf_multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift);
  out = out < p->activation_min ? p->activation_min : out;
  out = out > p->activation_max ? p->activation_max : out;
  return (int8_t)out;
}

tf_status mul_s8(const tf_mul_params_s8 *params,
                 const tf_dims *input1_dims, const int8_t *input1,
                 const tf_dims *input2_dims, const int8_t *input2,
                 const tf_dims *output_dims, int8_t *output) {
  if (params == NULL || input1_dims == NULL || input1 == NULL || input2_dims == NULL || input2 == NULL ||
      output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  tf_strides s1, s2;
  if (!tf_broadcast_strides(input1_dims, output_dims, &s1) || !tf_broadcast_strides(input2_dims, output_dims, &s2)) {
    return TF_ERROR_SHAPE;
  }
  if (params->activation_min > params->activation_max || params->output_shift < -31 || params->output_shift > 30) {
    return TF_ERROR_PARAMS;
  }
  if (tf_same_dims(input1_dims, output_dims) && tf_same_dims(input2_dims, output_dims)) {
    const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
    for (int32_t i = 0; i < size; ++i) {
      output[i] = mul_one(params, input1[i], input2[i]);
    }
    return TF_OK;
  }
  int8_t *out = output;
  for (int32_t n = 0; n < output_dims->n; ++n) {
    for (int32_t h = 0; h < output_dims->h; ++h) {
      for (int32_t w = 0; w < output_dims->w; ++w) {
        const int8_t *a = input1 + n * s1.n + h * s1.h + w * s1.w;
        const int8_t *b = input2 + n * s2.n + h * s2.h + w * s2.w;
        for (int32_t c = 0; c < output_dims->c; ++c) {
          *out++ = mul_one(params, a[c * s1.c], b[c * s2.c]);
        }
      }
    }
  }
  return TF_OK;
}
