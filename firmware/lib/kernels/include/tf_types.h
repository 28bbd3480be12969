/* Plain-data types shared by every kernel: dims, op parameters, quantization
 * parameters and the status every kernel returns.
 *
 * Argument order, for every op:
 *   (params, quant_params, input_dims, input, filter_dims, filter, bias,
 *    output_dims, output)
 * leaving out what an op does not have. Dims follow CMSIS-NN: n = batches (or
 * output channels for a filter), c = innermost depth.
 */
#ifndef TF_TYPES_H
#define TF_TYPES_H

#include <stdint.h>

/* Return value of every kernel (and, nonzero, of model_invoke()). */
typedef enum {
  TF_OK = 0,
  TF_ERROR_NULL_POINTER = 1,   /* a required buffer or parameter is NULL */
  TF_ERROR_SHAPE = 2,          /* dims that do not fit together */
  TF_ERROR_PARAMS = 3,         /* out-of-range parameter (shift, clamp range) */
} tf_status;

/* Tensor dims, NHWC. A fully connected input is {batches, 1, 1, accum_depth},
 * its filter {output_depth, 1, 1, accum_depth}, its output {batches, 1, 1,
 * output_depth}. */
typedef struct {
  int32_t n;
  int32_t h;
  int32_t w;
  int32_t c;
} tf_dims;

/* int8 fully connected: offsets are the negated zero points of input and
 * filter and the output zero point, as in TFLM's FullyConnectedParams. */
typedef struct {
  int32_t input_offset;    /* -input_zero_point */
  int32_t filter_offset;   /* -filter_zero_point (0 for symmetric weights) */
  int32_t output_offset;   /* output_zero_point */
  int32_t activation_min;  /* quantized clamp range (fused activation) */
  int32_t activation_max;
} tf_fc_params_s8;

/* float fully connected (also with int8 weights dequantized on the fly). */
typedef struct {
  float activation_min;    /* -FLT_MAX / FLT_MAX when there is no activation */
  float activation_max;
} tf_fc_params_f32;

/* Requantization of a whole tensor: real multiplier = multiplier * 2^(shift - 31),
 * multiplier a Q0.31 value in [2^30, 2^31) (or 0), shift > 0 a left shift. */
typedef struct {
  int32_t multiplier;
  int32_t shift;
} tf_per_tensor_quant_params;

/* Requantization per output channel: one multiplier and shift per channel. */
typedef struct {
  const int32_t *multiplier;
  const int32_t *shift;
} tf_per_channel_quant_params;

/* Affine quantization of a tensor: real = scale * (q - zero_point). */
typedef struct {
  float scale;
  int32_t zero_point;
} tf_affine_quant_params;

#endif /* TF_TYPES_H */
