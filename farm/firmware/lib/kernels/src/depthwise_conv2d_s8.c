/* int8 depthwise 2-D convolution, any depth multiplier, per-output-channel
 * requantization (TFLM reference_integer_ops::DepthwiseConvPerChannel):
 * output channel oc = ic * depth_multiplier + m reads input channel ic only.
 * Taps outside the input are skipped. Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

tf_status depthwise_conv2d_s8(const tf_depthwise_params_s8 *params,
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
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, out_c = filter_dims->c;
  const int32_t multiplier = params->depth_multiplier;
  if (multiplier <= 0 || out_c != in_c * multiplier || output_dims->c != out_c ||
      output_dims->n != input_dims->n) {
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

  int8_t *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const int8_t *in_batch = input + b * in_h * in_w * in_c;
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
                const int32_t x = in_batch[(iy * in_w + ix) * in_c + ic];
                const int32_t w = filter[(ky * k_w + kx) * out_c + oc];
                acc += w * (x + params->input_offset);
              }
            }
            if (bias != NULL) {
              acc += bias[oc];
            }
            acc = tf_multiply_by_quantized_multiplier(acc, quant_params->multiplier[oc], quant_params->shift[oc]);
            acc += params->output_offset;
            acc = acc < params->activation_min ? params->activation_min : acc;
            acc = acc > params->activation_max ? params->activation_max : acc;
            out[oc] = (int8_t)acc;
          }
        }
        out += out_c;
      }
    }
  }
  return TF_OK;
}
