/* float32 MEAN over contiguous axes (TFLM reference_ops::Mean): each output is
 * the sum of its reduced elements in input order, divided by their count. */
#include <stddef.h>

#include "kernels.h"

tf_status mean_f32(const tf_reduce_shape *shape, const float *input, float *output) {
  if (shape == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (shape->outer < 0 || shape->reduced <= 0 || shape->inner < 0) {
    return TF_ERROR_SHAPE;
  }
  const float count = (float)shape->reduced;
  for (int32_t o = 0; o < shape->outer; ++o) {
    const float *in = input + o * shape->reduced * shape->inner;
    for (int32_t i = 0; i < shape->inner; ++i) {
      float sum = 0.0f;
      for (int32_t r = 0; r < shape->reduced; ++r) {
        sum += in[r * shape->inner + i];
      }
      output[o * shape->inner + i] = sum / count;
    }
  }
  return TF_OK;
}
