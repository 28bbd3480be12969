/* int8 average pooling (TFLM reference_integer_ops::AveragePool): the window is
 * clipped to the input (padding does not count), the sum divided by the number
 * of taps rounding half away from zero, then the clamp. Input and output share
 * scale and zero point. Integer-only. */
#include <stddef.h>

#include "kernels.h"

tf_status avg_pool2d_s8(const tf_pool_params_s8 *params,
                        const tf_dims *input_dims, const int8_t *input,
                        const tf_dims *filter_dims,
                        const tf_dims *output_dims, int8_t *output) {
  if (params == NULL || input_dims == NULL || input == NULL || filter_dims == NULL || output_dims == NULL ||
      output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const tf_window *win = &params->window;
  const int32_t in_h = input_dims->h, in_w = input_dims->w, depth = input_dims->c;
  if (output_dims->c != depth || output_dims->n != input_dims->n || filter_dims->h <= 0 || filter_dims->w <= 0) {
    return TF_ERROR_SHAPE;
  }
  if (params->activation_min > params->activation_max) {
    return TF_ERROR_PARAMS;
  }
  int8_t *out = output;
  for (int32_t b = 0; b < input_dims->n; ++b) {
    const int8_t *in_batch = input + b * in_h * in_w * depth;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
      const int32_t in_y0 = oy * win->stride_h - win->pad_h;
      const int32_t y_start = in_y0 < 0 ? -in_y0 : 0;
      const int32_t y_end = filter_dims->h < in_h - in_y0 ? filter_dims->h : in_h - in_y0;
      for (int32_t ox = 0; ox < output_dims->w; ++ox) {
        const int32_t in_x0 = ox * win->stride_w - win->pad_w;
        const int32_t x_start = in_x0 < 0 ? -in_x0 : 0;
        const int32_t x_end = filter_dims->w < in_w - in_x0 ? filter_dims->w : in_w - in_x0;
        const int32_t count = (y_end - y_start) * (x_end - x_start);
        if (y_end <= y_start || x_end <= x_start) {
          return TF_ERROR_SHAPE; /* a window entirely in the padding (TFLM fails too) */
        }
        for (int32_t ch = 0; ch < depth; ++ch) {
          int32_t acc = 0;
          for (int32_t fy = y_start; fy < y_end; ++fy) {
            for (int32_t fx = x_start; fx < x_end; ++fx) {
              acc += in_batch[((in_y0 + fy) * in_w + in_x0 + fx) * depth + ch];
            }
          }
          /* C division truncates toward zero: +-count/2 first rounds half away */
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          acc = acc < params->activation_min ? params->activation_min : acc;
          acc = acc > params->activation_max ? params->activation_max : acc;
          *out++ = (int8_t)acc;
        }
      }
    }
  }
  return TF_OK;
}
