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

/* The optimized kernels' requantization of one channel (tf_channel_s8 in
 * tf_types.h) plus the output offset: tf_multiply_by_quantized_multiplier(x,
 * M, shift) + offset, in one 64-bit multiply-add, two adds and a shift for a
 * "fast" channel (ch->shift >= 0, what the host emits when the proof below
 * applies), else the generic helper.
 *
 * Proof. Let e = -shift >= 1 (a right shift), M in [2^30, 2^31). With
 * P = x * M + 2^30 and h = floor(P / 2^31) (the high multiply, see
 * tf_multiply_by_quantized_multiplier_fast), TFLM rounds h / 2^e half away
 * from zero: floor((h + 2^(e-1) - [h < 0]) / 2^e). Folding the two floors
 * (floor(floor(a / b) / c) = floor(a / bc) for b, c > 0):
 *   r = floor((x M + 2^30 + 2^(30+e) - 2^31 [P < 0]) / 2^(31+e)),
 * and [P < 0] may be replaced by [x < 0]: they differ only when P = 0 (x = -1,
 * M = 2^30), where both numerators lie in [0, 2^(31+e)) for e >= 1.
 * 1. The output offset: an integer times the divisor moves out of the floor,
 *    so with K = 2^30 + 2^(30+e) + offset * 2^(31+e),
 *    r + offset = floor((x M + K - 2^31 [x < 0]) / 2^(31+e)).
 * 2. Doubling numerator and divisor, and 2 M = 2^32 + Mn with
 *    Mn = 2M - 2^32 in [-2^31, 0) (an int32):
 *    r + offset = floor((x Mn + 2K + 2^32 (x - [x < 0])) / 2^(32+e))
 *               = (floor((x Mn + 2K) / 2^32) + x - [x < 0]) >> e,
 *    the high word of the 64-bit sum T = 2K + x Mn (one SMLAL from the
 *    constant 2K, round_hi:round_lo) plus x + (x >> 31), shifted by e.
 *    For e >= 1 the low word of 2K is 2^31 (2 * 2^30; the other terms are
 *    multiples of 2^32), so the high word of T is also SMMLAR(x, Mn, K_hi) =
 *    (K_hi * 2^32 + x Mn + 2^31) >> 32 with K_hi = 2^(e-1) + offset * 2^e, the
 *    constant's high word (mat_mult_s8.c on DSP cores: no 64-bit constant in
 *    registers). SMMLAR keeps bits 63..32 of the sum mod 2^64, which are
 *    floor(T / 2^32) mod 2^32: the same word.
 * The 32-bit adds wrap, so the host (channel_table in
 * farm/codegen/ops/optimized.py) emits the fast form only when, for every
 * int32 x, T fits int64 and floor((2 x M + 2K - 2^32 [x < 0]) / 2^32) fits
 * int32 (both are monotone in x but for the step at 0: it checks the ends
 * and both sides of 0); then every step is exact. Otherwise (M = 0, shift >= 0,
 * or the bounds fail) the channel holds TFLM's multiplier and shift - 64 and
 * takes tf_multiply_by_quantized_multiplier_fast, which needs offset added.
 * tests/unit/test_fast_kernels.py checks the equality on edge and random values. */
#define TF_CHANNEL_SLOW_BIAS 64 /* a slow channel's shift field: TFLM's shift - 64 (< 0) */

/* The fast form's 32-bit value before the shift: the high word of
 * 2K + x * Mn, plus x - [x < 0]. */
static inline int32_t tf_requantize_high_s8(int32_t x, int32_t mn, uint32_t k_lo, int32_t k_hi) {
#if TF_MUL_PARTS
  const int32_t high = tf_mul_add_parts(x, mn, k_lo, k_hi).hi;
#else
  const int64_t t = (int64_t)(((uint64_t)(uint32_t)k_hi << 32) | k_lo) + (int64_t)x * mn;
  const int32_t high = (int32_t)((uint64_t)t >> 32);
#endif
  return (int32_t)((uint32_t)high + (uint32_t)x + (uint32_t)(x >> 31));
}

static inline int32_t tf_requantize_offset_s8(int32_t x, const TF_CONST_DATA tf_channel_s8 *ch, int32_t offset) {
  /* Each member read once (on AVR from program memory; a struct copy from
   * __flash would go through RAM loads with avr-gcc 5.4). */
  const int32_t shift = ch->shift, multiplier = ch->multiplier;
  if (__builtin_expect(shift >= 0, 1)) {
    return tf_requantize_high_s8(x, multiplier, ch->round_lo, ch->round_hi) >> shift;
  }
  return tf_multiply_by_quantized_multiplier_fast(x, multiplier, shift + TF_CHANNEL_SLOW_BIAS) + offset;
}

/* Clamps v to [lo, hi] (int8 bounds), as an int32 (the store truncates: no
 * sign extension of its own). `full` (a compile-time constant where the
 * kernels call it): 1, the clamp is the whole int8 range; 2, hi is 127
 * (ReLU-like): one SSAT on Armv7-M, then the lower bound alone; 0, any clamp. */
static inline __attribute__((always_inline)) int32_t tf_clamp_s8(int32_t v, int32_t lo, int32_t hi, int full) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  if (full != 0) {
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    if (r < -128 || r > 127) {
      __builtin_unreachable(); /* what SSAT #8 gives: the compiler may drop an SXTB */
    }
    if (full == 2) {
      r = r < lo ? lo : r;
    }
    return r;
  }
#else
  (void)full;
#endif
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return v;
}

/* The optimized kernels' output stage: requantize, add the output offset
 * (folded into the channel's constant, or added here for a slow channel),
 * clamp to [lo, hi] (tf_clamp_s8's `full`). */
static inline __attribute__((always_inline)) int8_t tf_output_s8(int32_t acc, const TF_CONST_DATA tf_channel_s8 *ch,
                                                                 int32_t offset, int32_t lo, int32_t hi,
                                                                 int full) {
  return (int8_t)tf_clamp_s8(tf_requantize_offset_s8(acc, ch, offset), lo, hi, full);
}

#endif /* FIXED_POINT_H */
