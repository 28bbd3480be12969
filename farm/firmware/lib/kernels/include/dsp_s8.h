/* SIMD helpers of the optimized int8 kernels, for cores with the Arm DSP
 * extension (Cortex-M4/M7/M33/M55 with DSP: the compiler defines
 * __ARM_FEATURE_DSP). Kernels test TF_DSP and otherwise take their portable
 * path, so no core ever gets an instruction it lacks (the portability checks
 * look for these mnemonics in FPU-less / DSP-less builds).
 *
 * The 2-MAC step: a word holds four int8 values v0..v3 (little-endian).
 * SXTB16 sign-extends bytes 0 and 2 into two int16 halves (v0, v2); SXTB16
 * with ROR #8 gives (v1, v3). Doing the same to the matching word of the other
 * operand and SMLAD-ing the two pairs adds v0*u0 + v2*u2, then v1*u1 + v3*u3:
 * four products, in any byte order both operands share, with no reordering.
 */
#ifndef DSP_S8_H
#define DSP_S8_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TF_DSP 1
#else
#define TF_DSP 0
#endif

/* Four int8 values as one word (an unaligned load: Armv7-M allows it). The
 * builtin, so that it is one LDR even where the build says -fno-builtin. */
static inline uint32_t tf_load_s8x4(const int8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

#if TF_DSP
/* (int16)v0 | (int16)v2 << 16 */
static inline uint32_t tf_sxtb16(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
  return r;
}

/* (int16)v1 | (int16)v3 << 16 */
static inline uint32_t tf_sxtb16_ror8(uint32_t v) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
  return r;
}

/* acc + a.lo * b.lo + a.hi * b.hi (int16 halves) */
static inline int32_t tf_smlad(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}

/* acc + a.lo * b.lo (int16 halves) */
static inline int32_t tf_smlabb(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}

/* acc + a.hi * b.hi (int16 halves) */
static inline int32_t tf_smlatt(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}

/* a.lo * b.lo (int16 halves) */
static inline int32_t tf_smulbb(uint32_t a, uint32_t b) {
  int32_t r;
  __asm__("smulbb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

/* a.hi * b.hi (int16 halves) */
static inline int32_t tf_smultt(uint32_t a, uint32_t b) {
  int32_t r;
  __asm__("smultt %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

#endif /* TF_DSP */

#endif /* DSP_S8_H */
