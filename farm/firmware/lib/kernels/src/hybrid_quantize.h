/* Shared by the hybrid kernels (*_hybrid_f32_s8): the run-time quantization of
 * one batch of a float input to int8, as TensorFlow Lite's
 * SymmetricQuantizeFloats / AsymmetricQuantizeFloats do it. Private to the
 * library. */
#ifndef TF_HYBRID_QUANTIZE_H
#define TF_HYBRID_QUANTIZE_H

#include <stdint.h>

/* Quantizes values[0..size) into quantized[0..size) and returns the scale
 * (real = scale * (q - zero_point)) in *scale and the zero point in
 * *zero_point (always 0 when symmetric).
 *
 * Symmetric: range = max(|min|, |max|); scale = range / 127 and
 * q = clamp(round(x * (127 / range)), -127, 127), in float.
 * Asymmetric: the range [min(0, min), max(0, max)] over [-128, 127]; the scale
 * and the zero point are computed in double from the float width of the range
 * (TensorFlow Lite's arithmetic, kept exactly: float subtraction, double
 * division, the zero point from the end with the smaller error, nudged into
 * [-128, 127]), the scale then rounded to float; q = clamp(zero_point +
 * round(x * inverse_scale), -128, 127), the product in float.
 * round() is half away from zero. An all-zero range (every value 0) gives
 * q = 0, scale 1, zero point 0. NaN quantizes to the zero point. */
void tf_hybrid_quantize(const float *values, int32_t size, int32_t asymmetric,
                        int8_t *quantized, float *scale, int32_t *zero_point);

#endif /* TF_HYBRID_QUANTIZE_H */
