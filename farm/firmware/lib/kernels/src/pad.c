/* PAD for any element type (TFLM reference_ops::Pad): the input placed at
 * offset before[] of an NHWC output, everything else the pad value (int8: the
 * output zero point; float32: 0.0f). Copies bytes only. */
#include <stddef.h>
#include <string.h>

#include "kernels.h"

tf_status pad(const tf_pad_params *params,
              const tf_dims *input_dims, const uint8_t *input,
              const tf_dims *output_dims, uint8_t *output) {
  if (params == NULL || input_dims == NULL || input == NULL || output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t in[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
  const int32_t out[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  for (int i = 0; i < 4; ++i) {
    if (params->before[i] < 0 || in[i] < 0 || params->before[i] + in[i] > out[i]) {
      return TF_ERROR_SHAPE;
    }
  }
  const int32_t size = params->element_bytes;
  if (size != 1 && size != 2 && size != 4) {
    return TF_ERROR_PARAMS;
  }
  uint8_t value[4];
  for (int i = 0; i < 4; ++i) {
    value[i] = (uint8_t)(params->pad_value >> (8 * i));
  }
  const int32_t row_bytes = in[3] * size; /* one input row along c */
  uint8_t *dst = output;
  for (int32_t n = 0; n < out[0]; ++n) {
    for (int32_t h = 0; h < out[1]; ++h) {
      for (int32_t w = 0; w < out[2]; ++w) {
        const int32_t sn = n - params->before[0], sh = h - params->before[1], sw = w - params->before[2];
        const int inside = sn >= 0 && sn < in[0] && sh >= 0 && sh < in[1] && sw >= 0 && sw < in[2];
        for (int32_t c = 0; c < out[3];) {
          if (inside && c == params->before[3]) {
            memcpy(dst, input + ((sn * in[1] + sh) * in[2] + sw) * row_bytes, (size_t)row_bytes);
            dst += row_bytes;
            c += in[3];
            continue;
          }
          for (int32_t b = 0; b < size; ++b) {
            *dst++ = value[b];
          }
          ++c;
        }
      }
    }
  }
  return TF_OK;
}
