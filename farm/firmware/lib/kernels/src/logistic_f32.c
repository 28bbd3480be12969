/* float32 LOGISTIC (TFLM reference_ops::Logistic, with its cut-offs):
 * 1 above 16.619..., e^x below -9, else 1 / (1 + e^-x). */
#include <stddef.h>

#include "kernels.h"
#include "math_f32.h"

tf_status logistic_f32(int32_t size, const float *input, float *output) {
  if (input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t i = 0; i < size; ++i) {
    const float x = input[i];
    if (x > 16.619047164916992188f) {
      output[i] = 1.0f;
    } else if (x < -9.0f) {
      output[i] = tf_expf(x);
    } else {
      output[i] = 1.0f / (1.0f + tf_expf(-x));
    }
  }
  return TF_OK;
}
