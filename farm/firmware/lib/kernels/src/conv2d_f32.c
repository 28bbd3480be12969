/* float32 2-D convolution (TFLM reference_ops::Conv): taps summed in the
 * reference order (kernel row, kernel column, input channel), bias added after
 * the sum, then the clamp. Grouped when the filter has fewer input channels
 * than the input. */
#include <stddef.h>

#include "kernels.h"

tf_status conv2d_f32(const tf_conv_params_f32 *params,
                     const tf_dims *input_dims, const float *input,
                     const tf_dims *filter_dims, const TF_CONST_DATA float *filter,
                     const TF_CONST_DATA float *bias,
                     const tf_dims *output_dims, float *output) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || filter == NULL ||
      output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t out_c = filter_dims->n, k_h = filter_dims->h, k_w = filter_dims->w;
  const int32_t group_c = filter_dims->c;
  if (group_c <= 0 || in_c % group_c != 0 || output_dims->c != out_c || output_dims->n != input_dims->n ||
      out_c % (in_c / group_c) != 0) {
    return TF_ERROR_SHAPE;
  }
  if (!(params->activation_min <= params->activation_max)) {
    return TF_ERROR_PARAMS;
  }
  const int32_t filters_per_group = out_c / (in_c / group_c);
  const int32_t filter_size = k_h * k_w * group_c;

  float *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const float *in_batch = input + b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t in_y0 = oy * win->stride_h - win->pad_h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t in_x0 = ox * win->stride_w - win->pad_w;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t in_c0 = (oc / filters_per_group) * group_c;
          const TF_CONST_DATA float *w = filter + oc * filter_size;
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
              const float *x = in_batch + (iy * in_w + ix) * in_c + in_c0;
              const TF_CONST_DATA float *wk = w + (ky * k_w + kx) * group_c;
              for (int32_t ic = 0; ic < group_c; ++ic) {
                total += x[ic] * wk[ic];
              }
            }
          }
          float value = total + (bias != NULL ? bias[oc] : 0.0f);
          value = value < params->activation_min ? params->activation_min : value;
          value = value > params->activation_max ? params->activation_max : value;
          *out++ = value;
        }
      }
    }
  }
  return TF_OK;
}
