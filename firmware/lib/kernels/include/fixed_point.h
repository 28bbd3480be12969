/* Fixed-point arithmetic for the int8 kernels: the ONE requantization helper of
 * the library, tf_multiply_by_quantized_multiplier(), and the two gemmlowp
 * primitives it is built from. Integer-only.
 *
 * Rounding (bit-exact with TensorFlow Lite Micro, which is built without
 * TFLITE_SINGLE_ROUNDING and so uses gemmlowp's "double rounding"):
 *   1. tf_saturating_rounding_doubling_high_mul(a, b) = a*b / 2^31 (the high
 *      32 bits of 2*a*b) rounded to nearest, ties toward +infinity (0.5 -> 1,
 *      -0.5 -> 0, -1.5 -> -1); the one overflowing case, a == b == INT32_MIN,
 *      saturates to INT32_MAX.
 *   2. tf_rounding_divide_by_pot(x, e) = x / 2^e rounded to nearest, ties away
 *      from zero (0.5 -> 1, -0.5 -> -1).
 * A requantization with a right shift rounds twice (step 1, then step 2); a
 * left shift is applied before step 1 and does not round.
 *
 * Right shifts of negative values are arithmetic (GCC, Clang and Arm compilers
 * define them so; gemmlowp and TFLM make the same assumption).
 */
#ifndef FIXED_POINT_H
#define FIXED_POINT_H

#include <stdint.h>

static inline int32_t tf_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) {
    return INT32_MAX;
  }
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (INT64_C(1) - (INT64_C(1) << 30));
  /* C division truncates toward zero, as gemmlowp's does. */
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

/* exponent in [0, 31] */
static inline int32_t tf_rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - UINT32_C(1));
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31), rounded as documented above; shift in [-31, 30].
 * This is TFLM's MultiplyByQuantizedMultiplier(int32_t, int32_t, int). */
static inline int32_t tf_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift) {
  const int32_t left_shift = shift > 0 ? shift : 0;
  const int32_t right_shift = shift > 0 ? 0 : -shift;
  /* x * 2^left_shift, wrapping like the two's-complement multiply TFLM does */
  const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
  return tf_rounding_divide_by_pot(tf_saturating_rounding_doubling_high_mul(shifted, multiplier),
                                   right_shift);
}

#endif /* FIXED_POINT_H */
