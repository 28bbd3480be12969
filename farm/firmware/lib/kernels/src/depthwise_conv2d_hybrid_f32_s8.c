/* Hybrid (dynamic-range) depthwise convolution, TensorFlow Lite's
 * DepthwiseConvHybridPerChannel (its only hybrid depthwise kernel). Each batch
 * of the float input is quantized to int8, asymmetric, into scratch
 * (hybrid_quantize.h); output channel oc = ic * depth_multiplier + m is the
 * int32 sum over the taps inside the image of w * (q - zero_point), rescaled
 * value = (float)acc * (filter_scales[oc] * input_scale), plus the bias,
 * clamped. scratch: input_dims->h * ->w * ->c bytes (one batch). */
#include <stddef.h>

#include "hybrid_quantize.h"
#include "kernels.h"

tf_status depthwise_conv2d_hybrid_f32_s8(const tf_depthwise_params_hybrid *params,
                                         const tf_dims *input_dims, const float *input,
                                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                         const TF_CONST_DATA float *filter_scales,
                                         const TF_CONST_DATA float *bias,
                                         const tf_dims *output_dims, float *output, int8_t *scratch) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
      filter_scales == NULL || output_dims == NULL || output == NULL || scratch == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, out_c = filter_dims->c;
  const int32_t multiplier = params->depth_multiplier;
  if (multiplier <= 0 || out_c != in_c * multiplier || output_dims->c != out_c || output_dims->n != input_dims->n) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }
  const int32_t batch_size = in_h * in_w * in_c;

  float *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    float input_scale;
    int32_t zero_point;
    tf_hybrid_quantize(input + b * batch_size, batch_size, 1, scratch, &input_scale, &zero_point);
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t in_y0 = oy * win->stride_h - win->pad_h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t in_x0 = ox * win->stride_w - win->pad_w;
        for (int32_t ic = 0; ic < in_c; ++ic) {
          for (int32_t m = 0; m < multiplier; ++m) {
            const int32_t oc = ic * multiplier + m;
            int32_t acc = 0;
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
                const int32_t q = scratch[(iy * in_w + ix) * in_c + ic];
                acc += (int32_t)filter[(ky * k_w + kx) * out_c + oc] * (q - zero_point);
              }
            }
            float value = (float)acc * (filter_scales[oc] * input_scale);
            value = value + (bias != NULL ? bias[oc] : 0.0f);
            value = value < params->activation_min ? params->activation_min : value;
            value = value > params->activation_max ? params->activation_max : value;
            *out++ = value;
          }
        }
      }
    }
  }
  return TF_OK;
}
