"""Host-side "Prepare" arithmetic of TFLM's int8 kernels, reproduced exactly.

The firmware gets only integers: every real scale becomes a Q0.31 multiplier
and a power-of-two shift here, computed the way TFLM computes them, so the
device's integer arithmetic is bit-exact with the TFLM interpreter.

What TFLM does (tflite-micro, tensorflow/lite/...):
- ``QuantizeMultiplier`` (kernels/internal/quantization_util.cc): frexp() the
  double into q in [0.5, 1) and an exponent, round q * 2^31 half away from zero;
  a result of 2^31 is halved with the exponent bumped; an exponent below -31
  flushes to (0, 0). TFLM is built without TFLITE_SINGLE_ROUNDING, so there is
  no clamp of the shift to 30.
- FULLY_CONNECTED effective scale (micro/kernels/fully_connected_common.cc):
  double(input_scale) * double(filter_scale) / double(output_scale), per output
  channel when the weights carry more than one scale, else once. Note: the
  tflite-micro source of mid-2026 still reads ``static_cast<double>(input->params.scale
  * filter->params.scale)`` (a float product) for per-tensor weights, but the
  installed tflite-micro wheel — the reference we are bit-exact with — multiplies
  in double (seen in its machine code, and pinned by
  tests/test_quantize_multiplier.py::test_per_tensor_scale_product_matches_tflite_micro).
- Fused activation clamp (CalculateActivationRangeQuantized): the bound is
  zero_point + round(bound_real / scale), the division in float.
- ``MultiplyByQuantizedMultiplier`` (kernels/internal/common.cc, double rounding):
  RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, m), right).
  `multiply_by_quantized_multiplier` below is the Python model of the device's
  tf_multiply_by_quantized_multiplier (farm/firmware/lib/kernels/include/fixed_point.h).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """std::round on a double: halves go away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


_round_half_away = round_half_away


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real ~= multiplier * 2^(shift - 31).

    Returns (multiplier, shift) with multiplier in [2^30, 2^31) for a positive
    input (or (0, 0)); shift > 0 means a left shift.
    """
    if real_multiplier == 0.0:
        return 0, 0
    if not math.isfinite(real_multiplier):
        raise ValueError(f"cannot quantize a non-finite multiplier {real_multiplier}")
    q, shift = math.frexp(real_multiplier)
    q_fixed = _round_half_away(q * float(1 << 31))  # q * 2^31 is exact in double
    if abs(q_fixed) > (1 << 31):
        raise AssertionError(f"QuantizeMultiplier({real_multiplier}): {q_fixed} > 2^31")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > INT32_MAX:
        raise AssertionError(f"QuantizeMultiplier({real_multiplier}): {q_fixed} > INT32_MAX")
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def fc_real_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> float:
    """The effective FULLY_CONNECTED scale exactly as TFLM computes it (see module doc):
    the float32 scales widened to double, multiplied and divided in double."""
    return float(np.float32(input_scale)) * float(np.float32(filter_scale)) / float(np.float32(output_scale))


def quantize_bound(value: float, scale: float, zero_point: int) -> int:
    """TFLM's activation-range Quantize(): zero_point + round(value / scale), in float."""
    ratio = np.float32(value) / np.float32(scale)
    return int(zero_point) + _round_half_away(float(ratio))


#: fused activation -> (real min or None, real max or None)
_ACTIVATION_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "NONE": (None, None),
    "RELU": (0.0, None),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}

SUPPORTED_ACTIVATIONS = tuple(_ACTIVATION_BOUNDS)


def activation_range_int8(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized for an int8 output."""
    try:
        low, high = _ACTIVATION_BOUNDS[activation]
    except KeyError:
        raise ValueError(f"fused activation {activation} is not supported "
                         f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})") from None
    act_min, act_max = -128, 127
    if low is not None:
        act_min = max(act_min, quantize_bound(low, scale, zero_point))
    if high is not None:
        act_max = min(act_max, quantize_bound(high, scale, zero_point))
    return act_min, act_max


def activation_range_f32(activation: str) -> tuple[float, float]:
    """TFLM CalculateActivationRange for float: (lowest, max) when unbounded."""
    try:
        low, high = _ACTIVATION_BOUNDS[activation]
    except KeyError:
        raise ValueError(f"fused activation {activation} is not supported "
                         f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})") from None
    flt_max = float(np.finfo(np.float32).max)
    return (-flt_max if low is None else low), (flt_max if high is None else high)


# --------------------------------------------------------------------------- #
# Python model of the device arithmetic (fixed_point.h), for tests and checks.
# --------------------------------------------------------------------------- #

def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    high = abs(total) >> 31  # C's '/' truncates toward zero
    return high if total >= 0 else -high


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    if not 0 <= exponent <= 31:
        raise ValueError(f"exponent {exponent} outside [0, 31]")
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier(int32, int32, int), double rounding."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(_wrap32(x << left), multiplier), right)
