/* tinyfarm kernel library: one op per file, TFLM reference arithmetic.
 *
 * Every kernel returns a tf_status and follows one argument order (tf_types.h).
 * int8 kernels (_s8) are integer-only: all scales were turned into Q0.31
 * multipliers and shifts on the host. No kernel allocates memory: the caller
 * owns every buffer (weights in flash, activations in the static arena).
 */
#ifndef KERNELS_H
#define KERNELS_H

#include <stdint.h>

#include "tf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* int8 fully connected, one requantization for the whole output (per-tensor
 * weight scale). bias may be NULL. */
tf_status fully_connected_s8(const tf_fc_params_s8 *params,
                             const tf_per_tensor_quant_params *quant_params,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const int8_t *filter,
                             const int32_t *bias,
                             const tf_dims *output_dims, int8_t *output);

/* int8 fully connected with per-output-channel weight scales (one multiplier
 * and shift per output channel; symmetric weights). bias may be NULL. */
tf_status fully_connected_per_channel_s8(const tf_fc_params_s8 *params,
                                         const tf_per_channel_quant_params *quant_params,
                                         const tf_dims *input_dims, const int8_t *input,
                                         const tf_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tf_dims *output_dims, int8_t *output);

/* float32 fully connected. bias may be NULL. */
tf_status fully_connected_f32(const tf_fc_params_f32 *params,
                              const tf_dims *input_dims, const float *input,
                              const tf_dims *filter_dims, const float *filter,
                              const float *bias,
                              const tf_dims *output_dims, float *output);

/* float32 fully connected with int8 weights ("Strategy A"): each weight is
 * dequantized in float, filter_scales[oc] * filter[oc][d], exactly as a
 * DEQUANTIZE op would, and the math is float. One scale per output channel.
 * bias may be NULL. */
tf_status fully_connected_f32_w8(const tf_fc_params_f32 *params,
                                 const tf_dims *input_dims, const float *input,
                                 const tf_dims *filter_dims, const int8_t *filter,
                                 const float *filter_scales,
                                 const float *bias,
                                 const tf_dims *output_dims, float *output);

/* QUANTIZE float32 -> int8: q = clamp(round(x / scale) + zero_point), ties
 * away from zero. */
tf_status quantize_f32_s8(const tf_affine_quant_params *quant_params, int32_t size,
                          const float *input, int8_t *output);

/* DEQUANTIZE int8 -> float32: x = scale * (q - zero_point). */
tf_status dequantize_s8_f32(const tf_affine_quant_params *quant_params, int32_t size,
                            const int8_t *input, float *output);

#ifdef __cplusplus
}
#endif

#endif /* KERNELS_H */
