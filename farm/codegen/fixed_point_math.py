"""TFLM's int8 non-linearities (gemmlowp fixed point) and their "Prepare", on the host.

The firmware's int8 LOGISTIC and TANH are a 256-entry table per op, and its
int8 SOFTMAX reads a 256-entry table of exponentials: the code generator fills
those tables here with the very integer arithmetic TFLM runs on the device
(tensorflow/lite/kernels/internal/reference/integer_ops/{logistic,tanh}.h,
reference/softmax.h, gemmlowp/fixedpoint/fixedpoint.h), for every possible
input. Python integers are unbounded, so every int32 step wraps explicitly
(`wrap32`) where the C code would wrap, and saturates where gemmlowp saturates.

Fixed-point values are raw int32 with a number of integer bits k (gemmlowp's
FixedPoint<int32_t, k>: value = raw / 2^(31 - k)).
"""

from __future__ import annotations

import math

from farm.codegen.quantize_multiplier import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

srdhm = saturating_rounding_doubling_high_mul


def wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


# --------------------------------------------------------------------------- #
# gemmlowp primitives
# --------------------------------------------------------------------------- #

def saturating_rounding_multiply_by_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>(x)."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def rescale(x: int, src_bits: int, dst_bits: int) -> int:
    """gemmlowp Rescale<dst_bits>(FixedPoint<int32_t, src_bits>)."""
    return saturating_rounding_multiply_by_pot(x, src_bits - dst_bits)


def rounding_half_sum(a: int, b: int) -> int:
    """gemmlowp RoundingHalfSum(int32): (a + b) / 2, ties away from zero."""
    total = a + b
    sign = 1 if total >= 0 else -1
    return _trunc_div(total + sign, 2)


def _trunc_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _one(integer_bits: int) -> int:
    """FixedPoint<int32_t, k>::One()."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    inner = wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(inner, -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + x4_over_24_plus_x3_over_6_plus_x2_over_2)))


#: (exponent, Q0.31 of exp(-2^exponent)) of gemmlowp's barrel shifter
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for a <= 0 in Q(integer_bits); the result in Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap32((a & mask) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            if remainder & (1 << shift):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        if a < clamp:
            result = 0
    if a == 0:
        result = _one(0)
    return result


def _newton_raphson_reciprocal_q2(a: int) -> int:
    """The shared core of gemmlowp's 1/(1+a) and (1-a)/(1+a): x ~ 1/half_denominator in Q2.29."""
    half_denominator = rounding_half_sum(a, _one(0))
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = wrap32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus_half_denominator_times_x = wrap32(_one(2) - half_denominator_times_x)
        x = wrap32(x + rescale(srdhm(x, one_minus_half_denominator_times_x), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_raphson_reciprocal_q2(a)
    return rescale(x, 1, 0)  # ExactMulByPot<-1>: Q2 -> Q1 raw unchanged, then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_raphson_reciprocal_q2(a)
    return rescale(wrap32(x - _one(2)), 2, 0)


def tanh_fixed(a: int, integer_bits: int) -> int:
    """gemmlowp tanh(FixedPoint<int32_t, integer_bits>) -> Q0.31."""
    n = a if a < 0 else wrap32(-a)
    # neg_tanh_on_negative_values: exp of ExactMulByPot<1>(n), i.e. the same raw in Q(k+1)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    if a == 0:
        return 0
    return wrap32(-t) if a < 0 else t


def logistic_fixed(a: int, integer_bits: int) -> int:
    """gemmlowp logistic(FixedPoint<int32_t, integer_bits>) -> Q0.31."""
    abs_input = a if a > 0 else wrap32(-a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_input), integer_bits))
    result_if_negative = wrap32(_one(0) - result_if_positive)
    if a == 0:
        return 1 << 30
    return result_if_positive if a > 0 else result_if_negative


def count_leading_zeros32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLM GetReciprocal: (1/x in Q0.31 shifted, num_bits_over_unit)."""
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap32(((x & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# --------------------------------------------------------------------------- #
# TFLM "Prepare" arithmetic of the non-linear ops
# --------------------------------------------------------------------------- #

def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius (the double version)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def frexp_multiplier(real: float) -> tuple[int, int]:
    """LOGISTIC / TANH Prepare: q, shift = frexp(real); multiplier = round(q * 2^31)."""
    q, shift = math.frexp(real)
    multiplier = round_half_away(q * float(1 << 31))
    if multiplier > INT32_MAX:
        raise ValueError(f"input multiplier {real} rounds to 2^31")
    return multiplier, shift


def _gemmlowp_unary_lut(input_scale: float, input_zero_point: int, function, output_bits_shift: int,
                        output_offset: int) -> list[int]:
    """The 256 outputs of TFLM's int8 LOGISTIC / TANH kernel for inputs -128..127."""
    import numpy as np

    input_integer_bits = 4
    real = float(np.float32(input_scale)) * float(1 << (31 - input_integer_bits))
    multiplier, left_shift = frexp_multiplier(real)
    if left_shift < 0:
        raise ValueError(f"input scale {input_scale} is too small (shift {left_shift})")
    radius = calculate_input_radius(input_integer_bits, left_shift, 31)
    table = []
    for q in range(-128, 128):
        x = q - int(input_zero_point)
        if x <= -radius:
            table.append(-128)
        elif x >= radius:
            table.append(127)
        else:
            input_in_q4 = multiply_by_quantized_multiplier(x, multiplier, left_shift)
            out = rounding_divide_by_pot(function(input_in_q4, input_integer_bits), 31 - output_bits_shift)
            table.append(max(-128, min(127, out + output_offset)))
    return table


def logistic_lut(input_scale: float, input_zero_point: int) -> list[int]:
    """TFLM reference_integer_ops::Logistic for every int8 input (output zero point -128)."""
    return _gemmlowp_unary_lut(input_scale, input_zero_point, logistic_fixed, 8, -128)


def tanh_lut(input_scale: float, input_zero_point: int) -> list[int]:
    """TFLM reference_integer_ops::Tanh for every int8 input (output zero point 0)."""
    return _gemmlowp_unary_lut(input_scale, input_zero_point, tanh_fixed, 7, 0)


SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


def softmax_scaling(input_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLM PreprocessSoftmaxScaling + diff_min: (input_multiplier, input_left_shift, diff_min)."""
    import numpy as np

    bits = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - bits)),
               float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError(f"softmax input scale {input_scale} x beta {beta} is too small (shift {left_shift})")
    diff_min = -calculate_input_radius(bits, left_shift)
    return multiplier, left_shift, diff_min


def softmax_exp_lut(input_scale: float, beta: float) -> list[int]:
    """exp_lut[d] for d = max - x in 0..255: TFLM's exp_on_negative_values of the
    rescaled difference -d (Q0.31), or 0 where d is beyond diff_min (skipped by TFLM)."""
    multiplier, left_shift, diff_min = softmax_scaling(input_scale, beta)
    table = []
    for d in range(256):
        diff = -d
        if diff >= diff_min:
            rescaled = srdhm(wrap32(diff * (1 << left_shift)), multiplier)
            table.append(exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS))
        else:
            table.append(0)
    return table


def softmax_s8_reference(row: list[int], exp_lut: list[int]) -> list[int]:
    """The device kernel softmax_s8 on one row, in Python (for tests)."""
    max_in_row = max(row)
    total = 0
    for x in row:
        total = wrap32(total + rounding_divide_by_pot(exp_lut[max_in_row - x], SOFTMAX_ACCUMULATION_INTEGER_BITS))
    shifted_scale, num_bits_over_unit = get_reciprocal(total, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    out = []
    for x in row:
        value = rounding_divide_by_pot(srdhm(shifted_scale, exp_lut[max_in_row - x]), exponent) - 128
        out.append(max(-128, min(127, value)))
    return out
