/* float32 depthwise 2-D convolution with int8 weights ("Strategy A"): each
 * weight is dequantized in float, filter_scales[oc] * q, bit-identical to
 * TFLite's DEQUANTIZE (see fully_connected_f32_w8.c); the rest is
 * depthwise_conv2d_f32: output channel oc = ic * depth_multiplier + m,
 * taps summed in the reference order (kernel row, kernel column), bias added
 * after the sum, then the clamp. */
#include <stddef.h>

#include "kernels.h"

tf_status depthwise_conv2d_f32_w8(const tf_depthwise_params_f32 *params,
                                  const tf_dims *input_dims, const float *input,
                                  const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                  const TF_CONST_DATA float *filter_scales,
                                  const TF_CONST_DATA float *bias,
                                  const tf_dims *output_dims, float *output) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
      filter_scales == NULL || output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, out_c = filter_dims->c;
  const int32_t multiplier = params->depth_multiplier;
  if (multiplier <= 0 || out_c != in_c * multiplier || output_dims->c != out_c ||
      output_dims->n != input_dims->n) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }

  float *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const float *in_batch = input + b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t in_y0 = oy * win->stride_h - win->pad_h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t in_x0 = ox * win->stride_w - win->pad_w;
        for (int32_t ic = 0; ic < in_c; ++ic) {
          for (int32_t m = 0; m < multiplier; ++m) {
            const int32_t oc = ic * multiplier + m;
            float total = 0.0f;
            for (int32_t ky = 0; ky < k_h; ++ky) {
              const int32_t iy = in_y0 + win->dilation_h * ky;
              if (iy < 0 || iy >= in_h) {
                continue;
              }
              for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ix = in_x0 + win->dilation_w * kx;
                if (ix < 0 || ix >= in_w) {
                  continue;
                }
                total += in_batch[(iy * in_w + ix) * in_c + ic] *
                         (filter_scales[oc] * (float)filter[(ky * k_w + kx) * out_c + oc]);
              }
            }
            float value = total + (bias != NULL ? bias[oc] : 0.0f);
            value = value < params->activation_min ? params->activation_min : value;
            value = value > params->activation_max ? params->activation_max : value;
            out[oc] = value;
          }
        }
        out += out_c;
      }
    }
  }
  return TF_OK;
}
