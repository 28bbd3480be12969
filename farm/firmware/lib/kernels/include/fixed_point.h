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

#include "tf_types.h"

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

/* The same function as tf_multiply_by_quantized_multiplier(), in fewer
 * instructions, for the optimized kernels; valid for multiplier >= 0 (every
 * multiplier the code generator emits is 0 or in [2^30, 2^31)).
 *
 * Why it is equal: gemmlowp's high multiply computes (ab + nudge) / 2^31
 * truncated toward zero, with nudge 2^30 for ab >= 0 and 1 - 2^30 for ab < 0.
 * For ab >= 0 that is floor((ab + 2^30) / 2^31). For ab < 0 it is
 * -floor((|ab| + 2^30 - 1) / 2^31) = -ceil((|ab| - 2^30) / 2^31)
 * = floor((ab + 2^30) / 2^31). So one 64-bit multiply-add and an arithmetic
 * shift give the rounded high half (on Arm: SMLAL and two shifts); the
 * saturating case (a == b == INT32_MIN) cannot occur with multiplier >= 0.
 * tests/test_kernels_host.py checks the equality on edge and random values. */
static inline int32_t tf_multiply_by_quantized_multiplier_fast(int32_t x, int32_t multiplier,
                                                               int32_t shift) {
  const int32_t left_shift = shift > 0 ? shift : 0;
  const int32_t right_shift = shift > 0 ? 0 : -shift;
  const int64_t product = (int64_t)(int32_t)((uint32_t)x << left_shift) * multiplier + (INT64_C(1) << 30);
  const int32_t high = (int32_t)(product >> 31);
  const int32_t mask = (int32_t)((UINT32_C(1) << right_shift) - UINT32_C(1));
  const int32_t threshold = (mask >> 1) - (high >> 31); /* + 1 when high < 0 */
  return (high >> right_shift) + ((high & mask) > threshold ? 1 : 0);
}

/* tf_multiply_by_quantized_multiplier() for a channel of an optimized kernel
 * (tf_channel_s8 in tf_types.h), in one 64-bit multiply-add and a shift when
 * shift < 0 (a right shift e = -shift >= 1, every usual convolution):
 *
 * With P = x * M + 2^30 and h = floor(P / 2^31) (the high multiply, above),
 * TFLM rounds h / 2^e half away from zero: floor((h + 2^(e-1) - [h < 0]) / 2^e).
 * Folding the two floors into one (floor(floor(a / b) / c) = floor(a / bc)):
 *   result = floor((x * M + 2^30 + 2^(30+e) - 2^31 [P < 0]) / 2^(31+e)),
 * which is the high word of the 64-bit sum shifted right by e - 1. [P < 0]
 * equals [x < 0] except for P = 0 and M = 0, where both forms give 0 when
 * e >= 1. The constant 2^30 + 2^(30+e) comes from the host (round_lo/hi).
 * tests/test_kernels_host.py checks the equality on edge and random values. */
static inline int32_t tf_requantize_channel_s8(int32_t x, const tf_channel_s8 *ch) {
  if (ch->shift < 0) {
    int64_t t = (int64_t)(((uint64_t)(uint32_t)ch->round_hi << 32) | ch->round_lo);
    t += (int64_t)x * ch->multiplier;
    t -= (int64_t)((uint64_t)(x < 0) << 31);
    return (int32_t)(t >> 32) >> (-ch->shift - 1);
  }
  return tf_multiply_by_quantized_multiplier_fast(x, ch->multiplier, ch->shift);
}

/* The optimized kernels' output stage: requantize, add the output offset, clamp
 * to [lo, hi]. `full` (a compile-time constant where the kernels call it) says
 * the clamp is the whole int8 range, which Armv7-M does in one SSAT. */
static inline __attribute__((always_inline)) int8_t tf_output_s8(int32_t acc, const tf_channel_s8 *ch,
                                                                 int32_t offset, int32_t lo, int32_t hi,
                                                                 int full) {
  int32_t v = tf_requantize_channel_s8(acc, ch) + offset;
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  if (full) {
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return (int8_t)r;
  }
#else
  (void)full;
#endif
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int8_t)v;
}

#endif /* FIXED_POINT_H */
