/* The matrix-multiply cores of the optimized int8 kernels (mat_mult_s8.c):
 * fully connected, pointwise and im2col convolutions all end in
 *   out[r] = requantize(bias[r] + sum_k w[r][k] * x[k])
 * with the input offset already folded into bias[] by the code generator
 * (bias[r] = bias + input_offset * sum_k w[r][k]), so the inner loops multiply
 * raw int8 values.
 *
 * Weights are pre-arranged on the host (farm/codegen/packing.py) in groups of
 * G rows: for each group, for each 4-byte chunk of depth, the chunk of each of
 * the G rows (G words in a row); then the G rows' last depth % 4 bytes, row
 * after row. Rows left over (rows % G) follow unpacked, row after row. One
 * pointer walks the weights in the order the inner loop reads them.
 */
#ifndef MAT_MULT_S8_H
#define MAT_MULT_S8_H

#include <stdint.h>

#include "tf_types.h"

/* G = 4: one input vector x[depth] -> out[rows]. */
void tf_mat_vec_s8_g4(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x,
                      const tf_out_stage_s8 *stage, int8_t *out);

/* G = 2: two input vectors -> out0[rows], out1[rows]; x1 == NULL computes x0 only.
 * ext: TF_MAT_MULT_EXT_WORDS(depth) words of scratch, where the DSP path keeps
 * both vectors sign-extended to int16 (CMSIS-NN's s8 -> s16 step); unused by
 * the portable path. */
#define TF_MAT_MULT_EXT_WORDS(depth) (4 * ((depth) / 4))
void tf_mat_mult_s8_g2(const int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                       const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext);

#endif /* MAT_MULT_S8_H */
