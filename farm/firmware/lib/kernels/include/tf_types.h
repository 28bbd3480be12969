/* Plain-data types shared by every kernel: dims, op parameters, quantization
 * parameters and the status every kernel returns.
 *
 * Argument order, for every op:
 *   (params, quant_params, input_dims, input, filter_dims, filter, bias,
 *    output_dims, output)
 * leaving out what an op does not have (binary ops take input1_dims, input1,
 * input2_dims, input2; element-wise unary ops take a size instead of dims).
 * Dims follow CMSIS-NN: n = batches (or output channels for a filter),
 * c = innermost depth.
 *
 * Every number here was computed on the host by the code generator (TFLM's
 * "Prepare"); the int8 structs hold integers only.
 */
#ifndef TF_TYPES_H
#define TF_TYPES_H

#include <stdint.h>

/* The address space of the model's constant data (weights, biases, per-channel
 * multipliers and shifts, lookup tables, packed weights): the code generator
 * qualifies every constant array it emits with it, and the kernels take it on
 * their constant-tensor pointers. On AVR (a Harvard core) it is GCC's named
 * address space __flash (C, -std=gnu11): the arrays stay in program memory,
 * read with LPM, instead of being copied into the few KiB of SRAM by avr-libc's
 * start-up; __flash reaches the low 64 KiB of flash only, which preflight
 * checks (farm/build/fits.py). Elsewhere (Arm, RISC-V, the host) it is empty:
 * flash and RAM share one address space and the code is unchanged. */
#if defined(__AVR__) && !defined(__cplusplus)
#define TF_CONST_DATA __flash
#else
#define TF_CONST_DATA
#endif

/* Return value of every kernel (and, nonzero, of model_invoke()). */
typedef enum {
  TF_OK = 0,
  TF_ERROR_NULL_POINTER = 1,   /* a required buffer or parameter is NULL */
  TF_ERROR_SHAPE = 2,          /* dims that do not fit together */
  TF_ERROR_PARAMS = 3,         /* out-of-range parameter (shift, clamp range) */
} tf_status;

/* Tensor dims, NHWC. A fully connected input is {batches, 1, 1, accum_depth},
 * its filter {output_depth, 1, 1, accum_depth}, its output {batches, 1, 1,
 * output_depth}. A convolution filter is {output_channels, kernel_h, kernel_w,
 * input_channels}; a depthwise filter {1, kernel_h, kernel_w, output_channels};
 * a pooling window {1, window_h, window_w, 1}. */
typedef struct {
  int32_t n;
  int32_t h;
  int32_t w;
  int32_t c;
} tf_dims;

/* A reduction seen as [outer, reduced, inner]: the reduced axes are contiguous,
 * every output element reduces `reduced` input elements `inner` apart. */
typedef struct {
  int32_t outer;
  int32_t reduced;
  int32_t inner;
} tf_reduce_shape;

/* Sliding-window geometry of convolutions and pooling. pad_h / pad_w are the
 * padding before the first row / column (TFLM's padding_values; the padding
 * after is implied by the output size). Pooling has dilation 1. */
typedef struct {
  int32_t stride_h;
  int32_t stride_w;
  int32_t dilation_h;
  int32_t dilation_w;
  int32_t pad_h;
  int32_t pad_w;
} tf_window;

/* ---- int8 ---------------------------------------------------------------- */

/* int8 fully connected: offsets are the negated zero points of input and
 * filter and the output zero point, as in TFLM's FullyConnectedParams. */
typedef struct {
  int32_t input_offset;    /* -input_zero_point */
  int32_t filter_offset;   /* -filter_zero_point (0 for symmetric weights) */
  int32_t output_offset;   /* output_zero_point */
  int32_t activation_min;  /* quantized clamp range (fused activation) */
  int32_t activation_max;
} tf_fc_params_s8;

/* One output channel of the optimized int8 kernels (*_s8_fast), all computed on
 * the host (channel_table in farm/codegen/ops/optimized.py): the effective
 * bias (the op's bias plus input_offset times the sum of the channel's
 * weights, so the inner loops skip the input offset), then the requantization
 * of tf_requantize_offset_s8() (fixed_point.h), in one of two forms:
 *  - fast (shift >= 0): multiplier = 2M - 2^32 (M TFLM's multiplier), shift =
 *    the right shift e of the 32-bit result (-TFLM's shift), round_lo/hi the
 *    64-bit constant 2 (2^30 + 2^(30+e) + output_offset * 2^(31+e)), the
 *    output offset folded in;
 *  - slow (shift < 0): TFLM's multiplier, TFLM's shift - 64, round_lo/hi 0;
 *    the kernel adds the output offset. */
typedef struct {
  int32_t bias;
  int32_t multiplier;
  int32_t shift;
  uint32_t round_lo;
  int32_t round_hi;
} tf_channel_s8;

/* Output stage of the optimized int8 kernels: the channels, then the output
 * offset and the clamp. */
typedef struct {
  const TF_CONST_DATA tf_channel_s8 *channels;
  int32_t output_offset;
  int32_t activation_min;
  int32_t activation_max;
} tf_out_stage_s8;

/* int8 convolution (symmetric weights, per-channel requantization). */
typedef struct {
  tf_window window;
  int32_t input_offset;    /* -input_zero_point */
  int32_t output_offset;   /* output_zero_point */
  int32_t activation_min;
  int32_t activation_max;
} tf_conv_params_s8;

/* int8 depthwise convolution: output channel = input channel * depth_multiplier + m. */
typedef struct {
  tf_window window;
  int32_t depth_multiplier;
  int32_t input_offset;
  int32_t output_offset;
  int32_t activation_min;
  int32_t activation_max;
} tf_depthwise_params_s8;

/* int8 pooling: input and output share scale and zero point (TFLM checks it). */
typedef struct {
  tf_window window;
  int32_t activation_min;
  int32_t activation_max;
} tf_pool_params_s8;

/* int8 ADD, TFLM's scheme: both inputs are brought to a common scale
 * (twice the larger input scale) at 2^left_shift resolution, added, and the
 * sum requantized to the output. All shifts are <= 0. */
typedef struct {
  int32_t input1_offset;   /* -input1_zero_point */
  int32_t input2_offset;   /* -input2_zero_point */
  int32_t output_offset;   /* output_zero_point */
  int32_t left_shift;      /* 20 for int8 */
  int32_t input1_multiplier;
  int32_t input1_shift;
  int32_t input2_multiplier;
  int32_t input2_shift;
  int32_t output_multiplier;
  int32_t output_shift;
  int32_t activation_min;
  int32_t activation_max;
} tf_add_params_s8;

/* int8 MUL: (x1 + offset1) * (x2 + offset2), requantized once. */
typedef struct {
  int32_t input1_offset;
  int32_t input2_offset;
  int32_t output_offset;
  int32_t output_multiplier;
  int32_t output_shift;
  int32_t activation_min;
  int32_t activation_max;
} tf_mul_params_s8;

/* int8 MEAN: (sum - input_zero_point * count) requantized with the host's
 * 1/count-adjusted multiplier and shift (TFLM's QuantizedMeanOrSum). */
typedef struct {
  int32_t input_sum_offset;  /* -input_zero_point * reduced count */
  int32_t output_offset;
  int32_t multiplier;
  int32_t shift;
} tf_mean_params_s8;

/* int8 -> int8 requantization with a clamp: QUANTIZE (int8 in), RELU, RELU6.
 * out = clamp(output_offset + requant(x - input_zero_point)). */
typedef struct {
  int32_t input_zero_point;
  int32_t output_offset;
  int32_t multiplier;
  int32_t shift;
  int32_t activation_min;
  int32_t activation_max;
} tf_requantize_params_s8;

/* int8 SOFTMAX (TFLM's gemmlowp path, beta folded in on the host):
 * exp_lut[d] is exp(-(scaled d)) in Q0.31 for a difference d = max - x in
 * 0..255, or 0 where TFLM skips the element (d beyond its diff_min). */
typedef struct {
  const TF_CONST_DATA int32_t *exp_lut;  /* 256 entries */
} tf_softmax_params_s8;

/* Requantization of a whole tensor: real multiplier = multiplier * 2^(shift - 31),
 * multiplier a Q0.31 value in [2^30, 2^31) (or 0), shift > 0 a left shift. */
typedef struct {
  int32_t multiplier;
  int32_t shift;
} tf_per_tensor_quant_params;

/* Requantization per output channel: one multiplier and shift per channel. */
typedef struct {
  const TF_CONST_DATA int32_t *multiplier;
  const TF_CONST_DATA int32_t *shift;
} tf_per_channel_quant_params;

/* ---- float32 ------------------------------------------------------------- */

/* A fused activation as a float clamp: -FLT_MAX / FLT_MAX when there is none. */
typedef struct {
  float activation_min;
  float activation_max;
} tf_activation_params_f32;

/* float fully connected (also with int8 weights dequantized on the fly). */
typedef tf_activation_params_f32 tf_fc_params_f32;

typedef struct {
  tf_window window;
  float activation_min;
  float activation_max;
} tf_conv_params_f32;

typedef struct {
  tf_window window;
  int32_t depth_multiplier;
  float activation_min;
  float activation_max;
} tf_depthwise_params_f32;

typedef struct {
  tf_window window;
  float activation_min;
  float activation_max;
} tf_pool_params_f32;

typedef struct {
  float beta;
} tf_softmax_params_f32;

/* Affine quantization of a tensor: real = scale * (q - zero_point). */
typedef struct {
  float scale;
  int32_t zero_point;
} tf_affine_quant_params;

/* ---- hybrid (dynamic-range) ----------------------------------------------
 * float32 input and output, int8 weights (symmetric, one scale per output
 * channel: the host repeats a per-tensor scale). The kernel quantizes each
 * batch of the input to int8 at run time into caller-owned scratch, multiplies
 * int8 x int8 into int32, then rescales in float (input scale x weight scale),
 * adds the float bias and clamps (TensorFlow Lite's hybrid kernels). */

/* Hybrid fully connected. asymmetric: the op's asymmetric_quantize_inputs
 * (input quantized to [-128, 127] with a zero point per batch, else
 * symmetric to [-127, 127]). */
typedef struct {
  float activation_min;
  float activation_max;
  int32_t asymmetric;
} tf_fc_params_hybrid;

/* Hybrid 2-D convolution. asymmetric = 1 is TensorFlow Lite's per-channel
 * hybrid kernel (asymmetric input quantization, rescale (acc * weight_scale)
 * * input_scale); 0 its per-tensor one (symmetric, acc * (input_scale *
 * weight_scale)). */
typedef struct {
  tf_window window;
  float activation_min;
  float activation_max;
  int32_t asymmetric;
} tf_conv_params_hybrid;

/* Hybrid depthwise convolution: always TensorFlow Lite's per-channel kernel
 * (asymmetric input quantization, rescale acc * (weight_scale * input_scale)). */
typedef struct {
  tf_window window;
  int32_t depth_multiplier;
  float activation_min;
  float activation_max;
} tf_depthwise_params_hybrid;

/* ---- data movement (any element type) ----------------------------------- */

/* PAD: before[] elements of padding ahead of each NHWC axis; elements outside
 * the input are filled with the element_bytes of pad_value (little-endian): the
 * output zero point for int8, 0.0f for float32. */
typedef struct {
  int32_t before[4];
  int32_t element_bytes;
  uint32_t pad_value;
} tf_pad_params;

/* CONCATENATION along one axis, seen as `outer` rows: each row of the output is
 * the rows of the inputs one after another (input_row_bytes[i] bytes each). */
typedef struct {
  int32_t outer;
  int32_t count;
  const TF_CONST_DATA int32_t *input_row_bytes;
} tf_concat_params;

#endif /* TF_TYPES_H */
