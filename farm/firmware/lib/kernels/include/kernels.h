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

/* ---- convolutions ------------------------------------------------------- */

/* int8 2-D convolution, one multiplier and shift per output channel (also
 * for per-tensor weights: the host repeats them). bias may be NULL. Grouped
 * when filter_dims->c < input_dims->c. */
tf_status conv2d_s8(const tf_conv_params_s8 *params,
                    const tf_per_channel_quant_params *quant_params,
                    const tf_dims *input_dims, const int8_t *input,
                    const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                    const TF_CONST_DATA int32_t *bias,
                    const tf_dims *output_dims, int8_t *output);

/* float32 2-D convolution. bias may be NULL. */
tf_status conv2d_f32(const tf_conv_params_f32 *params,
                     const tf_dims *input_dims, const float *input,
                     const tf_dims *filter_dims, const TF_CONST_DATA float *filter,
                     const TF_CONST_DATA float *bias,
                     const tf_dims *output_dims, float *output);

/* float32 2-D convolution with int8 weights, filter_scales[oc] * q each. */
tf_status conv2d_f32_w8(const tf_conv_params_f32 *params,
                        const tf_dims *input_dims, const float *input,
                        const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                        const TF_CONST_DATA float *filter_scales,
                        const TF_CONST_DATA float *bias,
                        const tf_dims *output_dims, float *output);

/* int8 depthwise convolution, any depth multiplier, per-channel requantization. */
tf_status depthwise_conv2d_s8(const tf_depthwise_params_s8 *params,
                              const tf_per_channel_quant_params *quant_params,
                              const tf_dims *input_dims, const int8_t *input,
                              const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                              const TF_CONST_DATA int32_t *bias,
                              const tf_dims *output_dims, int8_t *output);

/* ---- optimized int8 kernels (*_s8_fast) -----------------------------------
 * Bit-exact with the reference kernels above (tests check it op by op), on
 * weights the code generator pre-arranged (farm/codegen/packing.py) and an
 * effective bias with the input offset folded in (tf_out_stage_s8). A DSP path
 * (SXTB16/SMLAD) is compiled when the compiler defines __ARM_FEATURE_DSP, a
 * portable C path otherwise. */

/* CONV_2D, not grouped: im2col of two pixels into scratch, packed_filter
 * arranged by 2 rows. With depth = kernel_h * kernel_w * input_channels,
 * scratch holds (2 * depth rounded up to 4) + 16 * (depth / 4) bytes, 4-byte aligned. */
tf_status conv2d_s8_fast(const tf_conv_params_s8 *params, const tf_out_stage_s8 *stage,
                         const tf_dims *input_dims, const int8_t *input,
                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                         const tf_dims *output_dims, int8_t *output, int8_t *scratch);

/* CONV_2D 1x1, stride 1, no padding, not grouped: packed_filter arranged by 2
 * rows; scratch: 16 * (input_channels / 4) bytes, 4-byte aligned. The output
 * may overlap the input if it ends no later relative to it, pixel pair after
 * pixel pair (see the .c), then with 2 * input_channels bytes more scratch
 * (rounded up to 4) unless input_channels % 4 == 0 and output_channels is even. */
tf_status conv2d_1x1_s8_fast(const tf_out_stage_s8 *stage,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                             const tf_dims *output_dims, int8_t *output, int8_t *scratch);

/* DEPTHWISE_CONV_2D, any depth multiplier. packed_filter: for 3x3 filters with
 * depth multiplier 1 and channels a multiple of 4, the word stream of
 * pack_depthwise_3x3 (farm/codegen/packing.py: a mode word, then per 4
 * channels int16 tap pairs and, in the host-proven fast mode, 64-bit rounding
 * constants; aligned to 4); otherwise packed_filter[oc][kernel_h * kernel_w].
 * scratch: input_channels bytes. */
tf_status depthwise_conv2d_s8_fast(const tf_depthwise_params_s8 *params, const tf_out_stage_s8 *stage,
                                   const tf_dims *input_dims, const int8_t *input,
                                   const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                                   const tf_dims *output_dims, int8_t *output, int8_t *scratch);

/* FULLY_CONNECTED with symmetric weights: packed_filter arranged by 4 rows. */
tf_status fully_connected_s8_fast(const tf_out_stage_s8 *stage,
                                  const tf_dims *input_dims, const int8_t *input,
                                  const tf_dims *filter_dims, const TF_CONST_DATA int8_t *packed_filter,
                                  const tf_dims *output_dims, int8_t *output);

/* float32 depthwise convolution, any depth multiplier. */
tf_status depthwise_conv2d_f32(const tf_depthwise_params_f32 *params,
                               const tf_dims *input_dims, const float *input,
                               const tf_dims *filter_dims, const TF_CONST_DATA float *filter,
                               const TF_CONST_DATA float *bias,
                               const tf_dims *output_dims, float *output);

/* float32 depthwise convolution with int8 weights, filter_scales[oc] * q each. */
tf_status depthwise_conv2d_f32_w8(const tf_depthwise_params_f32 *params,
                                  const tf_dims *input_dims, const float *input,
                                  const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                  const TF_CONST_DATA float *filter_scales,
                                  const TF_CONST_DATA float *bias,
                                  const tf_dims *output_dims, float *output);

/* ---- fully connected ----------------------------------------------------- */

/* int8 fully connected, one requantization for the whole output (per-tensor
 * weight scale). bias may be NULL. */
tf_status fully_connected_s8(const tf_fc_params_s8 *params,
                             const tf_per_tensor_quant_params *quant_params,
                             const tf_dims *input_dims, const int8_t *input,
                             const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                             const TF_CONST_DATA int32_t *bias,
                             const tf_dims *output_dims, int8_t *output);

/* int8 fully connected with per-output-channel weight scales (one multiplier
 * and shift per output channel; symmetric weights). bias may be NULL. */
tf_status fully_connected_per_channel_s8(const tf_fc_params_s8 *params,
                                         const tf_per_channel_quant_params *quant_params,
                                         const tf_dims *input_dims, const int8_t *input,
                                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                         const TF_CONST_DATA int32_t *bias,
                                         const tf_dims *output_dims, int8_t *output);

/* float32 fully connected. bias may be NULL. */
tf_status fully_connected_f32(const tf_fc_params_f32 *params,
                              const tf_dims *input_dims, const float *input,
                              const tf_dims *filter_dims, const TF_CONST_DATA float *filter,
                              const TF_CONST_DATA float *bias,
                              const tf_dims *output_dims, float *output);

/* float32 fully connected with int8 weights ("Strategy A"): each weight is
 * dequantized in float, filter_scales[oc] * filter[oc][d], exactly as a
 * DEQUANTIZE op would, and the math is float. One scale per output channel.
 * bias may be NULL. */
tf_status fully_connected_f32_w8(const tf_fc_params_f32 *params,
                                 const tf_dims *input_dims, const float *input,
                                 const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                 const TF_CONST_DATA float *filter_scales,
                                 const TF_CONST_DATA float *bias,
                                 const tf_dims *output_dims, float *output);

/* QUANTIZE float32 -> int8: q = clamp(round(x / scale) + zero_point), ties
 * away from zero. */
tf_status quantize_f32_s8(const tf_affine_quant_params *quant_params, int32_t size,
                          const float *input, int8_t *output);

/* DEQUANTIZE int8 -> float32: x = scale * (q - zero_point). */
tf_status dequantize_s8_f32(const tf_affine_quant_params *quant_params, int32_t size,
                            const int8_t *input, float *output);

/* ---- hybrid (dynamic-range) kernels: float in/out, int8 weights ----------
 * TensorFlow Lite's hybrid FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D (see
 * tf_types.h): each batch of the float input is quantized to int8 at run time
 * (into scratch, caller-owned: one batch of the input, input_dims->h * ->w *
 * ->c bytes), accumulated int8 x int8 in int32, rescaled in float by the
 * batch's input scale and filter_scales[oc], plus the float bias, clamped.
 * bias may be NULL. */

/* Hybrid fully connected. row_sums[oc] (the sum of the channel's weights, for
 * the input zero point) is required when params->asymmetric, else may be NULL. */
tf_status fully_connected_hybrid_f32_s8(const tf_fc_params_hybrid *params,
                                        const tf_dims *input_dims, const float *input,
                                        const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                        const TF_CONST_DATA float *filter_scales, const TF_CONST_DATA int32_t *row_sums,
                                        const TF_CONST_DATA float *bias,
                                        const tf_dims *output_dims, float *output, int8_t *scratch);

/* Hybrid 2-D convolution (grouped when filter_dims->c < input_dims->c). */
tf_status conv2d_hybrid_f32_s8(const tf_conv_params_hybrid *params,
                               const tf_dims *input_dims, const float *input,
                               const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                               const TF_CONST_DATA float *filter_scales,
                               const TF_CONST_DATA float *bias,
                               const tf_dims *output_dims, float *output, int8_t *scratch);

/* Hybrid depthwise convolution, any depth multiplier. */
tf_status depthwise_conv2d_hybrid_f32_s8(const tf_depthwise_params_hybrid *params,
                                         const tf_dims *input_dims, const float *input,
                                         const tf_dims *filter_dims, const TF_CONST_DATA int8_t *filter,
                                         const TF_CONST_DATA float *filter_scales,
                                         const TF_CONST_DATA float *bias,
                                         const tf_dims *output_dims, float *output, int8_t *scratch);

/* ---- pooling and reductions ---------------------------------------------- */

/* Pooling: filter_dims->h / ->w is the window; padding does not count. */
tf_status avg_pool2d_s8(const tf_pool_params_s8 *params,
                        const tf_dims *input_dims, const int8_t *input,
                        const tf_dims *filter_dims,
                        const tf_dims *output_dims, int8_t *output);
tf_status avg_pool2d_f32(const tf_pool_params_f32 *params,
                         const tf_dims *input_dims, const float *input,
                         const tf_dims *filter_dims,
                         const tf_dims *output_dims, float *output);
tf_status max_pool2d_s8(const tf_pool_params_s8 *params,
                        const tf_dims *input_dims, const int8_t *input,
                        const tf_dims *filter_dims,
                        const tf_dims *output_dims, int8_t *output);
tf_status max_pool2d_f32(const tf_pool_params_f32 *params,
                         const tf_dims *input_dims, const float *input,
                         const tf_dims *filter_dims,
                         const tf_dims *output_dims, float *output);

/* MEAN over the contiguous reduced axes of shape [outer, reduced, inner]. */
tf_status mean_s8(const tf_mean_params_s8 *params,
                  const tf_reduce_shape *shape, const int8_t *input,
                  int8_t *output);
tf_status mean_f32(const tf_reduce_shape *shape, const float *input, float *output);

/* ---- element-wise -------------------------------------------------------- */

/* Binary ops broadcast NumPy-style over NHWC dims (each input dim equals the
 * output's or is 1). */
tf_status add_s8(const tf_add_params_s8 *params,
                 const tf_dims *input1_dims, const int8_t *input1,
                 const tf_dims *input2_dims, const int8_t *input2,
                 const tf_dims *output_dims, int8_t *output);
/* int8 ADD of same-shape inputs (no broadcasting), bit-exact with add_s8:
 * tables holds each input's offset, scaled and rescaled value as TFLM computes
 * it, indexed by the raw byte (tables[(uint8_t)x1], tables[256 + (uint8_t)x2]),
 * stage one channel (bias unused) requantizing their sum to the output. The
 * output may be either input. */
tf_status add_s8_fast(const tf_out_stage_s8 *stage, const TF_CONST_DATA int32_t *tables,
                      const tf_dims *input1_dims, const int8_t *input1,
                      const tf_dims *input2_dims, const int8_t *input2,
                      const tf_dims *output_dims, int8_t *output);
tf_status add_f32(const tf_activation_params_f32 *params,
                  const tf_dims *input1_dims, const float *input1,
                  const tf_dims *input2_dims, const float *input2,
                  const tf_dims *output_dims, float *output);
tf_status mul_s8(const tf_mul_params_s8 *params,
                 const tf_dims *input1_dims, const int8_t *input1,
                 const tf_dims *input2_dims, const int8_t *input2,
                 const tf_dims *output_dims, int8_t *output);
tf_status mul_f32(const tf_activation_params_f32 *params,
                  const tf_dims *input1_dims, const float *input1,
                  const tf_dims *input2_dims, const float *input2,
                  const tf_dims *output_dims, float *output);

/* int8 -> int8 requantization with a clamp (QUANTIZE, RELU, RELU6). */
tf_status requantize_s8(const tf_requantize_params_s8 *params, int32_t size,
                        const int8_t *input, int8_t *output);

/* int8 element-wise function by 256-entry table (LOGISTIC, TANH):
 * output = table[input + 128]. */
tf_status lut_s8(const TF_CONST_DATA int8_t *table, int32_t size, const int8_t *input, int8_t *output);

/* float32 RELU / RELU6 as a clamp. */
tf_status clamp_f32(const tf_activation_params_f32 *params, int32_t size, const float *input, float *output);

tf_status logistic_f32(int32_t size, const float *input, float *output);
tf_status tanh_f32(int32_t size, const float *input, float *output);

/* SOFTMAX over the innermost dim; the rows are n * h * w. */
tf_status softmax_s8(const tf_softmax_params_s8 *params,
                     const tf_dims *input_dims, const int8_t *input,
                     int8_t *output);
tf_status softmax_f32(const tf_softmax_params_f32 *params,
                      const tf_dims *input_dims, const float *input,
                      float *output);

/* ---- data movement (any element type, bytes) ------------------------------ */

tf_status pad(const tf_pad_params *params,
              const tf_dims *input_dims, const uint8_t *input,
              const tf_dims *output_dims, uint8_t *output);

tf_status concatenation(const tf_concat_params *params, const uint8_t *const TF_CONST_DATA *inputs, uint8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* KERNELS_H */
