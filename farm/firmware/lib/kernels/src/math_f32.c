/* tf_expf: e^x in float, for the float32 kernels (SOFTMAX, LOGISTIC, TANH).
 * x = k * ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts so that k * ln2
 * is exact enough), e^r by its degree-7 Taylor polynomial (truncation error
 * below 1e-8 relative), then scaled by 2^k in two exact steps. */
#include <stdint.h>

#include "math_f32.h"

static float pow2i(int32_t k) {
  /* 2^k for k in [-126, 127], built from the exponent bits */
  union {
    uint32_t u;
    float f;
  } bits;
  bits.u = (uint32_t)(k + 127) << 23;
  return bits.f;
}

float tf_expf(float x) {
  if (x != x) {
    return x;
  }
  if (x > 88.7228394f) {
    return pow2i(127) * pow2i(127); /* overflows to +inf */
  }
  if (x < -103.972084f) {
    return 0.0f;
  }
  const float ln2_hi = 0.693145751953125f;      /* 12 significant bits: k * ln2_hi is exact */
  const float ln2_lo = 1.42860676533018704e-06f;
  const float scaled = x * 1.44269504088896341f;
  const int32_t k = (int32_t)(scaled < 0.0f ? scaled - 0.5f : scaled + 0.5f);
  const float r = (x - (float)k * ln2_hi) - (float)k * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  /* k in [-150, 128]: two factors, each a normal power of two */
  const int32_t k1 = k / 2;
  return p * pow2i(k1) * pow2i(k - k1);
}
