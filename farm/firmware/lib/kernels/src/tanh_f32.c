/* float32 TANH: (1 - e^-2|x|) / (1 + e^-2|x|) with the sign of x (TFLM calls
 * std::tanh; this form is within a few 1e-8 of it, absolute). */
#include <stddef.h>

#include "kernels.h"
#include "math_f32.h"

tf_status tanh_f32(int32_t size, const float *input, float *output) {
  if (input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t i = 0; i < size; ++i) {
    const float x = input[i];
    const float magnitude = x < 0.0f ? -x : x;
    float t;
    if (magnitude > 9.0f) {
      t = 1.0f; /* tanh(9) rounds to 1.0f */
    } else {
      const float e = tf_expf(-2.0f * magnitude);
      t = (1.0f - e) / (1.0f + e);
    }
    output[i] = x < 0.0f ? -t : t;
  }
  return TF_OK;
}
