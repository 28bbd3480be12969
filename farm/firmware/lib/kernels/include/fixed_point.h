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

/* TF_MUL_PARTS: the 32 x 32 -> 64-bit products of the requantization built from
 * four 16 x 16 -> 32-bit ones and 32-bit adds with carries, never an int64_t.
 * On AVR (8-bit) GCC does every int64_t operation in libgcc (__mulsidi3,
 * __adddi3, __ashrdi3 shifting one bit a turn, ...): hundreds of cycles per
 * requantized value. The results are the same bits (tests/unit/test_fast_kernels.py
 * builds both forms on the host with -DTF_MUL_PARTS=1 and compares them on edge
 * and random values). Elsewhere the int64_t form below, unchanged. */
#ifndef TF_MUL_PARTS
#if defined(__AVR__)
#define TF_MUL_PARTS 1
#else
#define TF_MUL_PARTS 0
#endif
#endif

#if TF_MUL_PARTS
/* A 64-bit two's-complement value as its high (signed) and low words. */
typedef struct {
  uint32_t lo;
  int32_t hi;
} tf_s64_parts;

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TF_MUL_PARTS reads the halves of a word through a union: little-endian only"
#endif
/* The halves of a word, read through a union: written as shifts and casts,
 * avr-gcc 5 loses sight of the 16-bit operands and calls the 32 x 32 __mulsi3. */
typedef union {
  int32_t word;
  struct {
    uint16_t lo;
    int16_t hi;
  } half;
} tf_halves;

/* c + a * b, exactly: with a = ah * 2^16 + al and b = bh * 2^16 + bl (ah, bh
 * signed, al, bl unsigned 16-bit), a * b = ah*bh * 2^32 + (al*bh + ah*bl) * 2^16
 * + al*bl, each 16 x 16 product 32 bits wide. The sum is added up in 16-bit
 * columns, each column's carry going into the next in a 32-bit sum (no column
 * sum overflows it), so there is no compare for a carry anywhere. */
static inline tf_s64_parts tf_mul_add_parts(int32_t a, int32_t b, uint32_t c_lo, int32_t c_hi) {
  const tf_halves ha = {a}, hb = {b};
  const uint32_t ll = (uint32_t)ha.half.lo * (uint32_t)hb.half.lo;
  const int32_t lh = (int32_t)ha.half.lo * (int32_t)hb.half.hi;
  const int32_t hl = (int32_t)ha.half.hi * (int32_t)hb.half.lo;
  const int32_t hh = (int32_t)ha.half.hi * (int32_t)hb.half.hi;
  const tf_halves hll = {(int32_t)ll}, hlh = {lh}, hhl = {hl}, hc = {(int32_t)c_lo};
  /* bits 0..15, 16..31, then 32..63 */
  const uint32_t col0 = (uint32_t)hll.half.lo + hc.half.lo;
  const uint32_t col1 = (col0 >> 16) + (uint16_t)hll.half.hi + hlh.half.lo + hhl.half.lo + (uint16_t)hc.half.hi;
  const uint32_t col2 = (col1 >> 16) + (uint32_t)(int32_t)hlh.half.hi + (uint32_t)(int32_t)hhl.half.hi +
                        (uint32_t)hh + (uint32_t)c_hi; /* mod 2^32: the exact high word */
  const tf_s64_parts r = {(col1 << 16) | (uint16_t)col0, (int32_t)col2};
  return r;
}

/* a * b, exactly. */
static inline tf_s64_parts tf_mul_s32_parts(int32_t a, int32_t b) {
  return tf_mul_add_parts(a, b, 0, 0);
}

/* floor((a * b + 2^30) / 2^31), the low 32 bits: gemmlowp's rounded high half
 * (see tf_multiply_by_quantized_multiplier_fast for why the two roundings of
 * the int64_t form are this one floor). */
static inline int32_t tf_high_mul_parts(int32_t a, int32_t b) {
  const tf_s64_parts p = tf_mul_add_parts(a, b, UINT32_C(1) << 30, 0);
  return (int32_t)(((uint32_t)p.hi << 1) | (p.lo >> 31));
}
#endif

static inline int32_t tf_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) {
    return INT32_MAX;
  }
#if TF_MUL_PARTS
  return tf_high_mul_parts(a, b);
#else
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (INT64_C(1) - (INT64_C(1) << 30));
  /* C division truncates toward zero, as gemmlowp's does. */
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
#endif
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
#if TF_MUL_PARTS
  const int32_t high = tf_high_mul_parts((int32_t)((uint32_t)x << left_shift), multiplier);
#else
  const int64_t product = (int64_t)(int32_t)((uint32_t)x << left_shift) * multiplier + (INT64_C(1) << 30);
  const int32_t high = (int32_t)(product >> 31);
#endif
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
static inline int32_t tf_requantize_channel_s8(int32_t x, const TF_CONST_DATA tf_channel_s8 *ch) {
#if TF_MUL_PARTS
  /* Each member read once from program memory (on AVR), then words only: C -
   * 2^31 [x < 0] first, then the multiply-add. (Not as one struct copy: avr-gcc
   * 5.4 copies a struct from __flash with RAM loads.) */
  const int32_t shift = ch->shift, multiplier = ch->multiplier;
  if (shift < 0) {
    uint32_t c_lo = ch->round_lo;
    int32_t c_hi = ch->round_hi;
    if (x < 0) {
      c_hi = (int32_t)((uint32_t)c_hi - (c_lo < UINT32_C(0x80000000) ? 1u : 0u));
      c_lo -= UINT32_C(0x80000000);
    }
    return tf_mul_add_parts(x, multiplier, c_lo, c_hi).hi >> (-shift - 1);
  }
  return tf_multiply_by_quantized_multiplier_fast(x, multiplier, shift);
#else
  if (ch->shift < 0) {
    int64_t t = (int64_t)(((uint64_t)(uint32_t)ch->round_hi << 32) | ch->round_lo);
    t += (int64_t)x * ch->multiplier;
    t -= (int64_t)((uint64_t)(x < 0) << 31);
    return (int32_t)(t >> 32) >> (-ch->shift - 1);
  }
  return tf_multiply_by_quantized_multiplier_fast(x, ch->multiplier, ch->shift);
#endif
}

/* The optimized kernels' output stage: requantize, add the output offset, clamp
 * to [lo, hi]. `full` (a compile-time constant where the kernels call it) says
 * the clamp is the whole int8 range, which Armv7-M does in one SSAT. */
static inline __attribute__((always_inline)) int8_t tf_output_s8(int32_t acc, const TF_CONST_DATA tf_channel_s8 *ch,
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
