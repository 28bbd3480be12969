/* int8 ADD of two same-shape tensors, optimized; bit-exact with add_s8 (TFLM
 * reference_integer_ops::Add) on them.
 *
 * add_s8 computes, per element,
 *   out = clamp(MBQM(S1(a) + S2(b), M_out, shift_out) + output_offset)
 * with S_i(v) = MBQM((v + input_offset_i) * 2^left_shift, M_i, shift_i) and MBQM
 * TFLM's MultiplyByQuantizedMultiplier. S_i depends on one int8 value only, so
 * the code generator tabulates it on the host (256 int32 per input, exactly
 * TFLM's arithmetic: farm/codegen/ops/elementwise.py), indexed by the input's
 * raw byte: tables[(uint8_t)a] = S1(a), tables[256 + (uint8_t)b] = S2(b). The
 * kernel does two table loads, one add and the output requantization per
 * element, the latter as the optimized kernels' output stage (tf_channel_s8,
 * fixed_point.h tf_requantize_offset_s8: its host-proven fast form folds the
 * output offset in; the slow form is TFLM's multiplier and shift). |S_i| <=
 * 255 * 2^20, so the sum is the reference's int32 sum exactly (no wrap).
 *
 * The output may be either input (in place): each element is read before the
 * element at the same position is written, in order. On cores with SSAT the
 * loop is compiled for a full-range clamp (one SSAT), an upper bound of 127
 * (SSAT and a compare) and any clamp; with the DSP extension the high word of
 * the fast form is one SMMLAR (its rounding constant 2^31 is the low word of
 * the folded constant, fixed_point.h). */
#include <stddef.h>

#include "broadcast.h"
#include "dsp_s8.h"
#include "fixed_point.h"
#include "kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* The high word of the fast form plus x - [x < 0] (tf_requantize_high_s8). */
INLINE int32_t add_high(int32_t x, int32_t mn, uint32_t k_lo, int32_t k_hi) {
#if TF_DSP
  int32_t h;
  (void)k_lo; /* 2^31: SMMLAR's rounding */
  __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(x), "r"(mn), "r"(k_hi));
  return (int32_t)((uint32_t)h + (uint32_t)x + (uint32_t)(x >> 31));
#else
  return tf_requantize_high_s8(x, mn, k_lo, k_hi);
#endif
}

/* The fast form's loop, 4 elements a turn (not on AVR, where the loop costs
 * little next to the requantization and flash is scarce), then the rest. */
INLINE void add_fast_loop(const TF_CONST_DATA int32_t *t1, const TF_CONST_DATA int32_t *t2,
                          const TF_CONST_DATA tf_channel_s8 *ch, int32_t lo, int32_t hi, int full,
                          const int8_t *a, const int8_t *b, int8_t *out, int32_t size) {
  const int32_t mn = ch->multiplier, e = ch->shift, k_hi = ch->round_hi;
  const uint32_t k_lo = ch->round_lo;
#define ADD_ONE(k)                                                                              \
  do {                                                                                          \
    const int32_t x = t1[(uint8_t)a[k]] + t2[(uint8_t)b[k]];                                    \
    out[k] = (int8_t)tf_clamp_s8(add_high(x, mn, k_lo, k_hi) >> e, lo, hi, full);               \
  } while (0)
#if !defined(__AVR__)
  for (; size >= 4; size -= 4) {
    ADD_ONE(0);
    ADD_ONE(1);
    ADD_ONE(2);
    ADD_ONE(3);
    a += 4;
    b += 4;
    out += 4;
  }
#endif
  for (int32_t k = 0; k < size; ++k) {
    ADD_ONE(k);
  }
#undef ADD_ONE
}

/* The slow form (M = 0, shift >= 0 or a fast form the host could not prove). */
static void add_slow_loop(const TF_CONST_DATA int32_t *t1, const TF_CONST_DATA int32_t *t2,
                          const TF_CONST_DATA tf_channel_s8 *ch, int32_t offset, int32_t lo, int32_t hi,
                          const int8_t *a, const int8_t *b, int8_t *out, int32_t size) {
  for (int32_t k = 0; k < size; ++k) {
    out[k] = tf_output_s8(t1[(uint8_t)a[k]] + t2[(uint8_t)b[k]], ch, offset, lo, hi, 0);
  }
}

tf_status add_s8_fast(const tf_out_stage_s8 *stage, const TF_CONST_DATA int32_t *tables,
                      const tf_dims *input1_dims, const int8_t *input1,
                      const tf_dims *input2_dims, const int8_t *input2,
                      const tf_dims *output_dims, int8_t *output) {
  if (stage == NULL || stage->channels == NULL || tables == NULL || input1_dims == NULL || input1 == NULL ||
      input2_dims == NULL || input2 == NULL || output_dims == NULL || output == NULL) {
    return TF_ERROR_NULL_POINTER;
  }
  if (!tf_same_dims(input1_dims, output_dims) || !tf_same_dims(input2_dims, output_dims)) {
    return TF_ERROR_SHAPE; /* no broadcasting: add_s8 does it */
  }
  const int32_t lo = stage->activation_min, hi = stage->activation_max;
  if (lo > hi || lo < -128 || hi > 127) {
    return TF_ERROR_PARAMS;
  }
  const int32_t size = output_dims->n * output_dims->h * output_dims->w * output_dims->c;
  const TF_CONST_DATA tf_channel_s8 *ch = stage->channels;
  const TF_CONST_DATA int32_t *t1 = tables, *t2 = tables + 256;
  if (ch->shift < 0) {
    add_slow_loop(t1, t2, ch, stage->output_offset, lo, hi, input1, input2, output, size);
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  } else if (lo == -128 && hi == 127) {
    add_fast_loop(t1, t2, ch, lo, hi, 1, input1, input2, output, size);
  } else if (hi == 127) {
    add_fast_loop(t1, t2, ch, lo, hi, 2, input1, input2, output, size);
#endif
  } else {
    add_fast_loop(t1, t2, ch, lo, hi, 0, input1, input2, output, size);
  }
  return TF_OK;
}
