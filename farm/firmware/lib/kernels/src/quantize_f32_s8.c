/* QUANTIZE float32 -> int8 (TFLM reference_ops::AffineQuantize): the division
 * is in float, as in TFLM (not a multiplication by 1/scale, which can round
 * differently), then round-half-away-from-zero, offset and clamp. */
#include <stddef.h>

#include "kernels.h"

/* roundf() without libm (halves go away from zero); x is finite here. For
 * |x| >= 2^23 every float is already an integer. */
static float round_half_away_f32(float x) {
  const float magnitude = x < 0.0f ? -x : x;
  if (!(magnitude < 8388608.0f)) {
    return x;
  }
  float r = (float)(int32_t)(magnitude + 0.5f);
  /* magnitude + 0.5f can round up when magnitude is just below a half (the
   * largest float under 0.5 gives 1.0); undo that case. */
  if (r - magnitude > 0.5f) {
    r -= 1.0f;
  }
  return x < 0.0f ? -r : r;
}

tf_status quantize_f32_s8(const tf_affine_quant_params *quant_params, int32_t size,
                          const float *input, int8_t *output) {
  if (quant_params == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (size < 0) {
    return TF_ERROR_SHAPE;
  }
  if (!(quant_params->scale > 0.0f)) {
    return TF_ERROR_PARAMS;
  }
  for (int32_t i = 0; i < size; ++i) {
    float scaled = input[i] / quant_params->scale;
    /* Anything beyond +-1024 clamps to the int8 range whatever the zero point
     * (|zero_point| <= 128), so limit it before the int conversion: values
     * saturate (TFLM's cast is undefined beyond int32; Arm saturates too, x86
     * yields INT32_MIN) and infinities stay defined. NaN becomes 0. */
    scaled = scaled != scaled ? 0.0f : scaled;
    scaled = scaled > 1024.0f ? 1024.0f : scaled;
    scaled = scaled < -1024.0f ? -1024.0f : scaled;
    int32_t q = (int32_t)round_half_away_f32(scaled);
    q += quant_params->zero_point;
    q = q < -128 ? -128 : q;
    q = q > 127 ? 127 : q;
    output[i] = (int8_t)q;
  }
  return TF_OK;
}
