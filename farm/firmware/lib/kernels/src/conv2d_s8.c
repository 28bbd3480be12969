/* int8 2-D convolution, per-output-channel requantization (TFLM
 * reference_integer_ops::ConvPerChannel): symmetric weights, so no filter
 * offset; grouped when the filter has fewer input channels than the input.
 * Padding is implicit: taps outside the input are skipped (they would add
 * (zero_point + input_offset) * w = 0). Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

tf_status conv2d_s8(const tf_conv_params_s8 *params,
                    const tf_per_channel_quant_params *quant_params,
                    const tf_dims *input_dims, const int8_t *input,
                    const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                    const TF_CONST_DATA int32_t *bias,
                    const tf_dims *output_dims, int8_t *output) {
  if (params == NULL || quant_params == NULL || quant_params->multiplier == NULL ||
      quant_params->shift == NULL || input_dims == NULL || input == NULL || filter_dims == NULL ||
      filter == NULL || output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t out_c = filter_dims->n, k_h = filter_dims->h, k_w = filter_dims->w;
  const int32_t group_c = filter_dims->c; /* input channels per group */
  if (group_c <= 0 || in_c % group_c != 0 || output_dims->c != out_c || output_dims->n != input_dims->n ||
      out_c % (in_c / group_c) != 0) {
    return TF_ERROR_SHAPE;
  }
  if (params->activation_min > params->activation_max) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t oc = 0; oc < out_c; ++oc) {
    if (quant_params->shift[oc] < -31 || quant_params->shift[oc] > 30) {
      return TF_ERROR_PARAMS;
    }
  }
  const int32_t filters_per_group = out_c / (in_c / group_c);
  const int32_t filter_size = k_h * k_w * group_c;

  int8_t *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const int8_t *in_batch = input + b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t in_y0 = oy * win->stride_h - win->pad_h;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t in_x0 = ox * win->stride_w - win->pad_w;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t in_c0 = (oc / filters_per_group) * group_c;
          const TF_CONST_DATA int8_t *w = filter + oc * filter_size;
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
              const int8_t *x = in_batch + (iy * in_w + ix) * in_c + in_c0;
              const TF_CONST_DATA int8_t *wk = w + (ky * k_w + kx) * group_c;
              for (int32_t ic = 0; ic < group_c; ++ic) {
                acc += (int32_t)wk[ic] * ((int32_t)x[ic] + params->input_offset);
              }
            }
          }
          if (bias != NULL) {
            acc += bias[oc];
          }
          acc = tf_multiply_by_quantized_multiplier(acc, quant_params->multiplier[oc], quant_params->shift[oc]);
          acc += params->output_offset;
          acc = acc < params->activation_min ? params->activation_min : acc;
          acc = acc > params->activation_max ? params->activation_max : acc;
          *out++ = (int8_t)acc;
        }
      }
    }
  }
  return TF_OK;
}
