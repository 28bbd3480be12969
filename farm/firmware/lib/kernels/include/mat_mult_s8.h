/* The matrix-multiply cores of the optimized int8 kernels (mat_mult_s8.c):
 * fully connected, pointwise and im2col convolutions all end in
 *   out[r] = requantize(bias[r] + sum_k w[r][k] * x[k])
 * with the input offset already folded into bias[] by the code generator
 * (bias[r] = bias + input_offset * sum_k w[r][k]), so the inner loops multiply
 * raw int8 values.
 *
 * Weights are pre-arranged on the host (farm/codegen/packing.py, pack_rows):
 * every row is padded with zeros to P = 4 * ceil(depth / 4) bytes, a whole
 * number of 4-byte chunks. Rows go in groups of 4: for each chunk, the chunk
 * of each of the 4 rows (16 bytes, 4 words in a row). When 2 or 3 rows are
 * left, the next 2 form a group the same way (8 bytes per chunk); an odd last
 * row follows alone (P bytes). For tf_mat_mult_s8_g2, when the number of
 * chunks is odd, 16 zero bytes follow: its DSP loop takes two chunks a turn
 * and reads one past the rows (multiplying it by zeros, see `ext`). Every
 * group is a whole number of words, so the words stay aligned when the array
 * is (the code generator aligns it to 16). One pointer walks each group in
 * the order the inner loops read it.
 */
#ifndef MAT_MULT_S8_H
#define MAT_MULT_S8_H

#include <stdint.h>

#include "tf_types.h"

/* One input vector x[depth] -> out[rows]. */
void tf_mat_vec_s8_g4(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x,
                      const tf_out_stage_s8 *stage, int8_t *out);

/* Two input vectors (two columns) -> out0[rows], out1[rows]; x1 == NULL
 * computes x0 only. Reads x0 and x1 before it writes any output.
 * ext: TF_MAT_MULT_EXT_WORDS(depth) words of scratch, 4-byte aligned, where
 * the DSP path keeps both vectors sign-extended to int16 (CMSIS-NN's
 * s8 -> s16 step), a whole even number of chunks, zero-padded; the other
 * paths leave it untouched. */
#define TF_MAT_MULT_EXT_WORDS(depth) (8 * (((depth) + 7) / 8))
void tf_mat_mult_s8_g2(const TF_CONST_DATA int8_t *packed, int32_t rows, int32_t depth, const int8_t *x0, const int8_t *x1,
                       const tf_out_stage_s8 *stage, int8_t *out0, int8_t *out1, uint32_t *ext);

#endif /* MAT_MULT_S8_H */
