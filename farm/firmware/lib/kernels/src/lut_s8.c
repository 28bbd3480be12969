/* int8 element-wise function by table: output = table[input + 128]. The code
 * generator fills the 256 entries on the host with TFLM's own integer
 * arithmetic for every possible input (LOGISTIC and TANH: gemmlowp's
 * fixed-point logistic / tanh after TFLM's input rescaling), so the table is
 * exactly what TFLM computes, element by element. Integer-only. */
#include <stddef.h>

#include "kernels.h"

tf_status lut_s8(const TF_CONST_DATA int8_t *table, int32_t size, const int8_t *input, int8_t *output) {
  if (table == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  for (int32_t i = 0; i < size; ++i) {
    output[i] = table[(int32_t)input[i] + 128];
  }
  return TF_OK;
}
