/* int8 SOFTMAX over the innermost dim, int8 output with scale 1/256 and zero
 * point -128 (TFLM reference_ops::Softmax, the gemmlowp fixed-point path):
 *
 *   d = max - x (0..255); e = exp_lut[d], e^(-beta * scale * d) in Q0.31,
 *   computed on the host exactly as TFLM computes it (0 where TFLM skips d);
 *   sum = sum of e / 2^12 (Q12.19, rounded); 1/sum by gemmlowp's Newton-Raphson
 *   reciprocal; out = e * (1/sum), rounded to 8 bits, -128.
 *
 * Integer-only. */
#include <stddef.h>

#include "fixed_point.h"
#include "kernels.h"

static int32_t count_leading_zeros(uint32_t x) {
  int32_t n = 0;
  if (x == 0u) {
    return 32;
  }
  while ((x & UINT32_C(0x80000000)) == 0u) {
    x <<= 1;
    ++n;
  }
  return n;
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded to nearest, ties away from zero. */
static int32_t rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent in 1..30 (a
 * saturating left shift). */
static int32_t saturating_shift_left(int32_t x, int32_t exponent) {
  const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
  if (x > threshold) {
    return INT32_MAX;
  }
  if (x < -threshold) {
    return INT32_MIN;
  }
  return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a in [0, 1), a and
 * the result in Q0.31; three Newton-Raphson steps in Q2.29. */
static int32_t one_over_one_plus_x(int32_t a) {
  const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
  const int32_t constant_48_over_17 = 1515870810;
  const int32_t constant_neg_32_over_17 = -1010580540;
  const int32_t one_q2 = INT32_C(1) << 29;
  int32_t x = constant_48_over_17 + tf_saturating_rounding_doubling_high_mul(half_denominator,
                                                                            constant_neg_32_over_17);
  for (int i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = tf_saturating_rounding_doubling_high_mul(half_denominator, x);
    const int32_t one_minus = one_q2 - half_denominator_times_x;
    x = x + saturating_shift_left(tf_saturating_rounding_doubling_high_mul(x, one_minus), 2);
  }
  return saturating_shift_left(x, 1);
}

tf_status softmax_s8(const tf_softmax_params_s8 *params,
                     const tf_dims *input_dims, const int8_t *input,
                     int8_t *output) {
  if (params == NULL || params->exp_lut == NULL || input_dims == NULL || input == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  const int32_t rows = input_dims->n * input_dims->h * input_dims->w;
  const int32_t depth = input_dims->c;
  if (rows < 0 || depth <= 0) {
    return TF_ERROR_SHAPE;
  }
  const TF_CONST_DATA int32_t *exp_lut = params->exp_lut;
  for (int32_t row = 0; row < rows; ++row) {
    const int8_t *in = input + row * depth;
    int8_t *out = output + row * depth;
    int32_t max = -128;
    for (int32_t c = 0; c < depth; ++c) {
      max = in[c] > max ? in[c] : max;
    }
    int32_t sum_of_exps = 0; /* Q12.19 */
    for (int32_t c = 0; c < depth; ++c) {
      sum_of_exps += tf_rounding_divide_by_pot(exp_lut[max - in[c]], 12);
    }
    /* GetReciprocal(sum, 12 integer bits) */
    const int32_t headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
    const int32_t num_bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (UINT32_C(1) << 31));
    const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
    const int32_t exponent = num_bits_over_unit + 31 - 8;
    if (exponent < 0 || exponent > 31) {
      return TF_ERROR_PARAMS;
    }
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t e = exp_lut[max - in[c]];
      int32_t value =
          tf_rounding_divide_by_pot(tf_saturating_rounding_doubling_high_mul(shifted_scale, e), exponent) - 128;
      value = value > 127 ? 127 : value;
      value = value < -128 ? -128 : value;
      out[c] = (int8_t)value;
    }
  }
  return TF_OK;
}
