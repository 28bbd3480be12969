/* Run-time input quantization of the hybrid kernels (hybrid_quantize.h). No
 * libm: the rounding is done here, exactly (truncate, then compare the
 * fraction, which is exact: x - trunc(x) is representable). */
#include "hybrid_quantize.h"

/* round(x), halves away from zero, for |x| well inside the int32 range (the
 * callers clamp to +-1024 first). */
static int32_t round_half_away_f32(float x) {
  const float magnitude = x < 0.0f ? -x : x;
  int32_t r = (int32_t)magnitude;
  if (magnitude - (float)r >= 0.5f) {
    r += 1;
  }
  return x < 0.0f ? -r : r;
}

static int32_t round_half_away_f64(double x) {
  const double magnitude = x < 0.0 ? -x : x;
  int32_t r = (int32_t)magnitude;
  if (magnitude - (double)r >= 0.5) {
    r += 1;
  }
  return x < 0.0 ? -r : r;
}

static float abs_f32(float x) { return x < 0.0f ? -x : x; }

static double abs_f64(double x) { return x < 0.0 ? -x : x; }

/* x limited to [-1024, 1024] (everything beyond clamps to the int8 range
 * anyway), NaN to 0: the int conversion stays defined. */
static float limit(float x) {
  if (x != x) {
    return 0.0f;
  }
  x = x > 1024.0f ? 1024.0f : x;
  return x < -1024.0f ? -1024.0f : x;
}

static int8_t clamp_s8(int32_t q, int32_t lo, int32_t hi) {
  q = q < lo ? lo : q;
  return (int8_t)(q > hi ? hi : q);
}

static void zero_fill(int8_t *quantized, int32_t size) {
  for (int32_t i = 0; i < size; ++i) {
    quantized[i] = 0;
  }
}

void tf_hybrid_quantize(const float *values, int32_t size, int32_t asymmetric,
                        int8_t *quantized, float *scale, int32_t *zero_point) {
  float lo = size > 0 ? values[0] : 0.0f;
  float hi = lo;
  for (int32_t i = 1; i < size; ++i) {
    lo = values[i] < lo ? values[i] : lo;
    hi = values[i] > hi ? values[i] : hi;
  }
  *zero_point = 0;

  if (!asymmetric) {
    const float range = abs_f32(lo) > abs_f32(hi) ? abs_f32(lo) : abs_f32(hi);
    if (range == 0.0f) {
      zero_fill(quantized, size);
      *scale = 1.0f;
      return;
    }
    *scale = range / 127.0f;
    const float inverse = 127.0f / range;
    for (int32_t i = 0; i < size; ++i) {
      quantized[i] = clamp_s8(round_half_away_f32(limit(values[i] * inverse)), -127, 127);
    }
    return;
  }

  const float rmin = lo < 0.0f ? lo : 0.0f;
  const float rmax = hi > 0.0f ? hi : 0.0f;
  if (rmin == rmax) {
    zero_fill(quantized, size);
    *scale = 1.0f;
    return;
  }
  const double qmin = -128.0;
  const double qmax = 127.0;
  const double step = (double)(rmax - rmin) / (qmax - qmin);
  const double from_min = qmin - (double)rmin / step;
  const double from_max = qmax - (double)rmax / step;
  const double error_min = abs_f64(qmin) + abs_f64((double)rmin / step);
  const double error_max = abs_f64(qmax) + abs_f64((double)rmax / step);
  const double zp = error_min < error_max ? from_min : from_max;
  int32_t nudged;
  if (zp <= qmin) {
    nudged = -128;
  } else if (zp >= qmax) {
    nudged = 127;
  } else if (zp == zp) {
    nudged = round_half_away_f64(zp);
  } else {
    nudged = 0; /* NaN: an infinite input */
  }
  const float step_f32 = (float)step;
  const float inverse = (float)(1.0 / (double)step_f32);
  for (int32_t i = 0; i < size; ++i) {
    quantized[i] = clamp_s8(nudged + round_half_away_f32(limit(values[i] * inverse)), -128, 127);
  }
  *scale = step_f32;
  *zero_point = nudged;
}
