/* Hybrid (dynamic-range) 2-D convolution, TensorFlow Lite's hybrid CONV_2D.
 * Each batch of the float input is quantized to int8 into scratch
 * (hybrid_quantize.h); each output is the int32 sum over the taps inside the
 * image of w * (q - zero_point) (taps in the padding add nothing: the padding
 * is real zero), rescaled in float, plus the bias, clamped.
 *
 * params->asymmetric selects which of TensorFlow Lite's two kernels this is:
 * 1 = EvalHybridPerChannel (per-channel weights): asymmetric input,
 *     value = ((float)acc * filter_scales[oc]) * input_scale;
 * 0 = EvalHybrid (per-tensor weights): symmetric input,
 *     value = (float)acc * (input_scale * filter_scales[oc]).
 * The float products are kept in those orders, so outputs match bit for bit.
 * Grouped when filter_dims->c < input_dims->c.
 * scratch: input_dims->h * ->w * ->c bytes (one batch). */
#include <stddef.h>

#include "hybrid_quantize.h"
#include "kernels.h"

tf_status conv2d_hybrid_f32_s8(const tf_conv_params_hybrid *params,
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
  const int32_t batch_size = in_h * in_w * in_c;

  float *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    float input_scale;
    int32_t zero_point;
    tf_hybrid_quantize(input + b * batch_size, batch_size, params->asymmetric, scratch, &input_scale,
                       &zero_point);
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
              const int8_t *x = scratch + (iy * in_w + ix) * in_c + in_c0;
              const TF_CONST_DATA int8_t *wk = w + (ky * k_w + kx) * group_c;
              for (int32_t ic = 0; ic < group_c; ++ic) {
                acc += (int32_t)wk[ic] * ((int32_t)x[ic] - zero_point);
              }
            }
          }
          float value;
          if (params->asymmetric) {
            value = ((float)acc * filter_scales[oc]) * input_scale;
          } else {
            value = (float)acc * (input_scale * filter_scales[oc]);
          }
          value = value + (bias != NULL ? bias[oc] : 0.0f);
          value = value < params->activation_min ? params->activation_min : value;
          value = value > params->activation_max ? params->activation_max : value;
          *out++ = value;
        }
      }
    }
  }
  return TF_OK;
}
